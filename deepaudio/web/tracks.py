"""``/api``: health, the API description, and the track library every page shares (list,
search, upload, remove, stream)."""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, current_app, jsonify, request, send_file

from deepaudio.web.catalog import track_json, track_path, track_row, user_track_json
from deepaudio.web.db import db
from deepaudio.web.http import arg, identify, send_media, user_id
from deepaudio.web.runs import list_runs
from deepaudio.web.uploads import remove_upload, save_upload

bp = Blueprint("tracks", __name__)
bp.before_request(identify)

AUDIO_MIME = {"mp3": "audio/mpeg", "wav": "audio/wav", "flac": "audio/flac", "ogg": "audio/ogg",
              "aiff": "audio/aiff", "m4a": "audio/mp4", "mp4": "video/mp4",
              "webm": "audio/webm", "mkv": "video/x-matroska", "wma": "audio/x-ms-wma",
              "aac": "audio/aac"}


@bp.get("/health")
def health():
    n = db().execute("SELECT COUNT(*) FROM tracks").fetchone()[0]
    runs = list_runs(current_app.config["MODELS_DIR"])
    demo = Path(current_app.config["SERVER_CONFIG"].demo_dir)
    return jsonify(status="ok", tracks=n, models=len(runs),
                   three_installed=(demo / "node_modules" / "three").is_dir())


@bp.get("/openapi.json")
def openapi():
    return send_file(current_app.config["OPENAPI_PATH"], mimetype="application/json")


@bp.get("/tracks")
def list_tracks():
    q = arg("q", str, "").strip()
    genre = arg("genre", str, "").strip()
    source = arg("source", str, "all", choices=("all", "fma", "upload", "mine"))
    page = arg("page", int, 1, lo=1)
    per_page = arg("per_page", int, 50, lo=1, hi=500)
    # each upload under the title of this user's own file; u.user_id is set for their own
    base = "FROM tracks t LEFT JOIN uploads u ON u.track_id = t.id AND u.user_id = ?"
    where, params = [], [user_id()]
    if source == "fma":
        where.append("t.source = 'fma'")
    elif source in ("upload", "mine"):    # uploads are only ever listed to their uploaders
        where.append("u.user_id IS NOT NULL")
    else:   # the FMA set plus this user's uploads, never other users' uploads
        where.append("(t.source = 'fma' OR u.user_id IS NOT NULL)")
    if q:
        like = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        where.append("(COALESCE(u.title, t.title) LIKE ? ESCAPE '\\' OR t.artist LIKE ? "
                     "ESCAPE '\\' OR t.genre LIKE ? ESCAPE '\\' OR CAST(t.fma_id AS TEXT) = ?)")
        params += [like, like, like, q]
    if genre:
        where.append("t.genre = ?")
        params.append(genre)
    sql_where = " WHERE " + " AND ".join(where)
    total = db().execute(f"SELECT COUNT(*) {base}{sql_where}", params).fetchone()[0]
    rows = db().execute(
        f"SELECT t.*, u.title AS my_title {base}{sql_where} ORDER BY t.source = 'upload' "
        "DESC, t.genre, t.fma_id, COALESCE(u.title, t.title) LIMIT ? OFFSET ?",
        params + [per_page, (page - 1) * per_page]).fetchall()
    genres = [r[0] for r in db().execute(
        "SELECT DISTINCT genre FROM tracks WHERE genre != '' ORDER BY genre")]
    return jsonify(items=[track_json(r, r["my_title"]) for r in rows], total=total,
                   page=page, per_page=per_page, genres=genres)


@bp.post("/tracks")
def upload():
    return jsonify(save_upload(request.files.get("file"))), 201


@bp.get("/tracks/<track_id>")
def get_track(track_id: str):
    return jsonify(user_track_json(track_row(track_id)))


@bp.delete("/tracks/<track_id>")
def remove_track(track_id: str):
    return jsonify(remove_upload(track_id))


@bp.get("/tracks/<track_id>/audio")
def audio(track_id: str):
    row = track_row(track_id)
    # conditional=True: ETag/Last-Modified and Range requests (206 Partial Content)
    return send_media(track_path(track_id), mimetype=AUDIO_MIME[row["format"]], etag=row["id"],
                      max_age=86400)
