"""``/api/mixer``: the stem mixer's routes (JSON in and out, errors as ``{"error": ...}``
with a 4xx status):

    POST   /jobs                    {"track_id", "backend"?, "model"?} or multipart 'file'
    GET    /jobs                    my jobs, newest first
    GET    /jobs/<id>               state, progress, eta_seconds, stems (when done)
    POST   /jobs/<id>/retry         re-run a failed, retryable job
    GET    /jobs/<id>/stems/<stem>.<ogg|flac>   compressed preview or lossless stem
    POST   /jobs/<id>/mix           MixSettings -> the rendered file (attachment)
    GET    /jobs/<id>/suggestions   {"gains": {stem: dB}, "trained", "n_examples"}
    POST   /mixes                   {"job_id", "name", "settings"} -> saved mix (trains)
    GET    /mixes?page=&per_page=, GET /mixes/<id>, DELETE /mixes/<id>   (delete retrains)

The browser plays and mixes the stems itself (Web Audio); the server renders only on export,
with the same dB and pan math (:mod:`deepaudio.mixer.render`). Only the owner sees a job or a
mix: another user's id is unknown (404).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import secrets
import sqlite3
import time
from pathlib import Path

import numpy as np
from flask import Blueprint, current_app, jsonify, request, send_file

from deepaudio.core.download import offline_requested
from deepaudio.core.errors import ToolkitError
from deepaudio.mixer import preferences
from deepaudio.mixer.demucs_backend import check_demucs_weights
from deepaudio.mixer.render import FORMATS, MIME, MixSettings, mix_settings, render_to_file
from deepaudio.mixer.separate import choose_backend
from deepaudio.mixer.stems import STEMS, UnknownModelError, open_stems
from deepaudio.web.catalog import track_path
from deepaudio.web.db import db
from deepaudio.web.http import (
    ApiError,
    arg,
    check_text,
    data_dir,
    ensure_user,
    finite,
    identify,
    json_body,
    send_media,
    setting,
    user_id,
)
from deepaudio.web.jobs import JobQueue, job_json
from deepaudio.web.uploads import save_upload

# a job's backend is part of its stem cache key, so "auto" is resolved when the job is made
SERVER_BACKENDS = ("auto", "demucs", "dsp")

bp = Blueprint("mixer", __name__)
log = logging.getLogger("playground")
bp.before_request(identify)

MODEL_NAME = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")
KEEP_EXPORTS = 5


# ---------------------------------------------------------------------------------------------
# Jobs

def _queue() -> JobQueue:
    return current_app.extensions["mixer_jobs"]


def _root() -> Path:
    return data_dir() / "mixer"


def _my_job(job_id: str) -> sqlite3.Row:
    row = None
    if re.fullmatch(r"[0-9a-f]{16}", job_id or ""):
        row = db().execute("SELECT * FROM mixer_jobs WHERE id = ?", (job_id,)).fetchone()
    if row is None or row["user_id"] != user_id():    # another user's job is unknown
        raise ApiError(404, f"unknown job {job_id!r}")
    return row


def _done_job(job_id: str) -> sqlite3.Row:
    row = _my_job(job_id)
    if row["state"] != "done":
        raise ApiError(409, f"job {job_id} is {row['state']}: the stems are not ready"
                       + (f" ({row['message']})" if row["message"] else ""))
    return row


def _stems_dir(row: sqlite3.Row) -> Path:
    return _root() / "jobs" / row["id"] / "stems"


def track_stems(track_id: str) -> tuple[Path, str] | None:
    """The stems of ``track_id`` this user has separated (their newest finished job: its stem
    folder and cache key), or None."""
    row = db().execute("SELECT * FROM mixer_jobs WHERE user_id = ? AND track_id = ? AND "
                       "state = 'done' ORDER BY finished DESC LIMIT 1",
                       (user_id(), track_id)).fetchone()
    if row is None or not (_stems_dir(row) / "stems.json").is_file():
        return None
    return _stems_dir(row), row["cache_key"]


def _full_job(row: sqlite3.Row) -> dict:
    out = job_json(row)
    out["original_url"] = f"/api/tracks/{row['track_id']}/audio"
    if row["state"] == "done":
        manifest = json.loads((_stems_dir(row) / "stems.json").read_text())
        base = f"/api/mixer/jobs/{row['id']}/stems"
        out.update(sample_rate=manifest["sample_rate"], duration=manifest["duration"],
                   mix_lufs=manifest.get("mix_lufs"),
                   stems={s: {"preview": f"{base}/{s}.ogg", "lossless": f"{base}/{s}.flac"}
                          for s in manifest["sources"]})
    return out


@bp.post("/jobs")
def start_job():
    upload = request.files.get("file") if request.files else None
    body = ({k: check_text(v, f"field {k!r}") for k, v in request.form.items()}
            if request.mimetype == "multipart/form-data" else json_body())
    unknown = sorted(map(str, set(body) - {"track_id", "backend", "model", "file"}))
    if unknown:
        raise ApiError(400, f"unknown field {unknown[0]!r} (fields: track_id, backend, model)")
    # every field is checked before an upload is stored: a refused job stores nothing
    backend = body.get("backend") or setting("MIXER_BACKEND", "auto")
    if backend not in SERVER_BACKENDS:
        raise ApiError(400, f"backend must be one of {', '.join(SERVER_BACKENDS)}, got "
                            f"{backend!r}")
    model = body.get("model") or setting("DEMUCS_MODEL", "htdemucs")
    if not isinstance(model, str) or not MODEL_NAME.match(model):
        raise ApiError(400, f"model must be a Demucs model name, got {model!r}")
    repo = setting("DEMUCS_REPO")
    reason = f"{backend} asked for"
    if backend == "auto":
        backend, reason = choose_backend(model, repo)
    if backend == "demucs":
        fetchable = repo is None and not offline_requested()
        try:
            check_demucs_weights(model, repo)
        except UnknownModelError as e:       # not in demucs' tables: the hub may have it
            if not fetchable:
                raise ApiError(400, str(e)) from None
            reason = f"{reason}; {model} will be looked up on the Hugging Face hub by the job"
        except ToolkitError as e:            # a known model whose weights are not here
            if fetchable:
                reason = f"{reason}; the weights of {model} will be fetched by the job"
            else:
                log.info("Demucs model %r requested but not usable: %s", model, e)
                raise ApiError(409, f"Demucs model {model!r} is not installed on this server "
                                    "(its weights are missing and fetching is off); use the "
                                    "dsp backend") from None
    track_id = save_upload(upload)["id"] if upload is not None else body.get("track_id")
    if not isinstance(track_id, str):
        raise ApiError(400, "send 'track_id' (JSON) or a multipart 'file' upload")
    path = track_path(track_id)
    job_id = _queue().submit(db(), user_id=ensure_user(), track_id=track_id, track_path=path,
                             backend=backend, model=model,
                             options={"demucs_repo": repo,
                                      "classifier_run": setting("CLASSIFIER_RUN"),
                                      "backend_reason": reason})
    row = db().execute("SELECT * FROM mixer_jobs WHERE id = ?", (job_id,)).fetchone()
    return jsonify(_full_job(row)), 202


@bp.get("/jobs")
def list_jobs():
    rows = db().execute("SELECT * FROM mixer_jobs WHERE user_id = ? ORDER BY created DESC "
                        "LIMIT 200", (user_id(),)).fetchall()
    return jsonify(items=[job_json(r) for r in rows])


@bp.get("/jobs/<job_id>")
def get_job(job_id: str):
    return jsonify(_full_job(_my_job(job_id)))


@bp.post("/jobs/<job_id>/retry")
def retry_job(job_id: str):
    row = _my_job(job_id)
    if row["state"] != "failed" or not row["retryable"]:
        raise ApiError(409, f"job {job_id} is {row['state']}"
                       + ("" if row["state"] != "failed" else " and not retryable"))
    _queue().retry(db(), job_id)
    return jsonify(_full_job(_my_job(job_id))), 202


@bp.get("/jobs/<job_id>/stems/<name>")
def get_stem(job_id: str, name: str):
    row = _done_job(job_id)
    stem, _, ext = name.rpartition(".")
    if stem not in _job_stems(row) or ext not in ("ogg", "flac"):
        raise ApiError(404, f"unknown stem file {name!r} (use <stem>.ogg for the preview or "
                            "<stem>.flac for the lossless stem)")
    path = _stems_dir(row) / name
    if not path.is_file():
        raise ApiError(404, f"stem file {name!r} is missing")
    return send_media(path, mimetype=MIME[f".{ext}"], max_age=86400,
                      download_name=f"{row['track_id']}-{name}")


@bp.post("/jobs/<job_id>/mix")
def render(job_id: str):
    body = json_body()
    row = _done_job(job_id)
    folder = open_stems(_stems_dir(row))
    settings = mix_settings(body, folder.names)
    ext = FORMATS[settings.format][0]
    digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]
    out = _root() / "jobs" / job_id / "exports" / f"mix-{digest}{ext}"
    report = render_to_file(current_app.extensions["stems"].source(folder), folder.sr,
                            settings, out)
    exports = sorted(out.parent.glob("mix-*"), key=lambda p: p.stat().st_mtime)
    for old in exports[:-KEEP_EXPORTS]:
        old.unlink(missing_ok=True)
    resp = send_file(out, mimetype=MIME[ext], as_attachment=True,
                     download_name=f"mix-{row['track_id']}{ext}")
    resp.headers["X-Mix-Report"] = json.dumps(finite(report))
    return resp


# ---------------------------------------------------------------------------------------------
# Suggestions: each user's network, stored in SQLite

def _track_features(con: sqlite3.Connection, job: sqlite3.Row) -> np.ndarray:
    """The job's track features (computed by the job; computed here if that failed)."""
    run = json.loads(job["options"]).get("classifier_run") or ""
    row = con.execute("SELECT features FROM mixer_features WHERE track_id = ? AND "
                      "classifier = ?", (job["track_id"], run)).fetchone()
    if row is not None:
        return np.array(json.loads(row["features"]), np.float32)
    try:
        v = preferences.track_features(job["track_path"])
    except ToolkitError as e:
        raise ApiError(409, f"cannot analyse the track for suggestions: {e}") from None
    con.execute("INSERT OR REPLACE INTO mixer_features VALUES (?, ?, ?)",
                (job["track_id"], run, json.dumps([float(x) for x in v])))
    return v


def _load_model(con: sqlite3.Connection, user: str) -> tuple[preferences.PreferenceNet | None,
                                                            int]:
    row = con.execute("SELECT state, n_examples FROM mixer_preference_models WHERE user_id = ?",
                      (user,)).fetchone()
    if row is None:
        return None, 0
    return preferences.from_bytes(row["state"]), int(row["n_examples"])


def _store_model(con: sqlite3.Connection, user: str, model: preferences.PreferenceNet | None,
                 n: int) -> None:
    if model is None:
        con.execute("DELETE FROM mixer_preference_models WHERE user_id = ?", (user,))
        return
    con.execute("INSERT OR REPLACE INTO mixer_preference_models VALUES (?, ?, ?, ?)",
                (user, preferences.to_bytes(model), n, time.time()))


def _job_stems(row: sqlite3.Row) -> list[str]:
    """The stems a finished job made (four, six, two: whatever its model returns)."""
    try:
        return list(json.loads((_stems_dir(row) / "stems.json").read_text())["sources"])
    except (OSError, ValueError, KeyError):
        return list(STEMS)


def _preference_target(settings: MixSettings) -> np.ndarray:
    """What a saved mix teaches: its relative gains, with muted stems, and every stem left out
    of a solo, at the -60 dB floor."""
    silent = set(settings.mutes)
    if settings.solos:
        silent |= set(STEMS) - set(settings.solos)
    return preferences.relative_gains(settings.gains, silent)


def _retrain_preferences(con: sqlite3.Connection, user: str) -> int:
    """Retrain ``user``'s suggestion network from scratch on their saved mixes; a mix whose
    track can no longer be analysed is left out rather than failing the request."""
    feats, targets = [], []
    for r in con.execute("SELECT m.settings, j.* FROM mixer_mixes m JOIN mixer_jobs j ON "
                         "j.id = m.job_id WHERE m.user_id = ? ORDER BY m.created",
                         (user,)).fetchall():
        if not preferences.learns_from(_job_stems(r)):
            continue                    # another stem set: saved, not learned from
        try:
            feats.append(_track_features(con, r))
        except ApiError:
            continue
        targets.append(_preference_target(mix_settings(json.loads(r["settings"]))))
    model = preferences.retrain(user, np.array(feats).reshape(-1, preferences.N_FEATURES),
                                np.array(targets).reshape(-1, len(STEMS)))
    _store_model(con, user, model, len(feats))
    return len(feats)


@bp.get("/jobs/<job_id>/suggestions")
def suggestions(job_id: str):
    row = _done_job(job_id)
    feats = _track_features(db(), row)
    model, n = _load_model(db(), user_id())
    return jsonify(job_id=job_id, relative=True,
                   **preferences.suggest(model, feats, n, stems=_job_stems(row)))


# ---------------------------------------------------------------------------------------------
# Saved mixes

def _mix_json(m: sqlite3.Row) -> dict:
    return {"id": m["id"], "name": m["name"], "job_id": m["job_id"], "track_id": m["track_id"],
            "settings": json.loads(m["settings"]), "created": m["created"]}


def _my_mix(mix_id: str) -> sqlite3.Row:
    m = None
    if re.fullmatch(r"[0-9a-f]{16}", mix_id or ""):
        m = db().execute("SELECT * FROM mixer_mixes WHERE id = ?", (mix_id,)).fetchone()
    if m is None or m["user_id"] != user_id():
        raise ApiError(404, f"unknown mix {mix_id!r}")
    return m


@bp.post("/mixes")
def save_mix():
    body = json_body()
    unknown = sorted(set(body) - {"job_id", "name", "settings"})
    if unknown:
        raise ApiError(400, f"unknown field {unknown[0]!r} (fields: job_id, name, settings)")
    name = body.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        raise ApiError(400, "name must be a non-empty string of at most 200 characters")
    if not isinstance(body.get("settings"), dict):
        raise ApiError(400, "settings must be a JSON object (gains, pans, mutes, ...)")
    row = _done_job(str(body.get("job_id")))
    settings = mix_settings(body["settings"], _job_stems(row))
    con, user = db(), ensure_user()
    feats = _track_features(con, row)
    key = (user, row["id"], name.strip())
    existing = con.execute("SELECT id FROM mixer_mixes WHERE user_id = ? AND job_id = ? AND "
                           "name = ?", key).fetchone()
    # one mix per (user, stems, name), also when two saves race: the unique index decides
    con.execute("INSERT INTO mixer_mixes VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT "
                "(user_id, job_id, name) DO UPDATE SET settings = excluded.settings, "
                "created = excluded.created",
                (secrets.token_hex(8), user, row["id"], row["track_id"], row["cache_key"],
                 name.strip(), json.dumps(body["settings"], sort_keys=True), time.time()))
    mix_id = con.execute("SELECT id FROM mixer_mixes WHERE user_id = ? AND job_id = ? AND "
                         "name = ?", key).fetchone()["id"]
    if not preferences.learns_from(_job_stems(row)):
        pass                            # another stem set: saved, not learned from
    elif existing is None:
        model, n = _load_model(con, user)
        model = preferences.update_on_save(model, user, n, feats, _preference_target(settings))
        _store_model(con, user, model, n + 1)
    else:   # a replaced mix must not count twice: learn the user's mixes afresh
        _retrain_preferences(con, user)
    return jsonify(_mix_json(_my_mix(mix_id))), 201 if existing is None else 200


@bp.get("/mixes")
def list_mixes():
    page = arg("page", int, 1, lo=1)
    per_page = arg("per_page", int, 100, lo=1, hi=500)
    con, user = db(), user_id()
    total = con.execute("SELECT COUNT(*) FROM mixer_mixes WHERE user_id = ?",
                        (user,)).fetchone()[0]
    rows = con.execute("SELECT * FROM mixer_mixes WHERE user_id = ? ORDER BY created DESC, "
                       "rowid DESC LIMIT ? OFFSET ?",
                       (user, per_page, (page - 1) * per_page)).fetchall()
    return jsonify(items=[_mix_json(m) for m in rows], total=total, page=page, per_page=per_page)


@bp.get("/mixes/<mix_id>")
def get_mix(mix_id: str):
    m = _my_mix(mix_id)
    job = db().execute("SELECT * FROM mixer_jobs WHERE id = ?", (m["job_id"],)).fetchone()
    return jsonify(_mix_json(m) | {"job": _full_job(job) if job else None})


@bp.delete("/mixes/<mix_id>")
def delete_mix(mix_id: str):
    m = _my_mix(mix_id)
    con, user = db(), user_id()
    con.execute("DELETE FROM mixer_mixes WHERE id = ?", (m["id"],))
    return jsonify(deleted=m["id"], retrained_on=_retrain_preferences(con, user))
