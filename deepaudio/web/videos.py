"""``/api/tracks/<id>/videos`` and ``/api/videos``: a music video of a track rendered on the
server, as a job.

The page asks for the track it shows with its features (run, layer, mapping), visualization,
seed and smoothing, at 1280x720 or 1920x1080 and 24, 30 or 60 fps; a job of the web node's
job runner renders it with :func:`deepaudio.mapping.video.render_video` (headless Chromium,
frame-exact on a virtual clock, H.264 + AAC), with its progress in ``video_jobs`` for the page
to poll. The finished MP4 is the user's own (``GET /api/videos/<job>/video.mp4``); one render
per user at a time; a failed or interrupted job leaves no file behind.
"""

from __future__ import annotations

import functools
import logging
import re
import secrets
import time
from pathlib import Path

from flask import Blueprint, Flask, current_app, jsonify, send_file

from deepaudio.core.errors import ToolkitError
from deepaudio.mapping.encode import get_run
from deepaudio.mapping.mappings import METHODS
from deepaudio.mapping.video import render_video
from deepaudio.web.catalog import track_path, track_row
from deepaudio.web.db import connect, db
from deepaudio.web.http import ApiError, ensure_user, json_body, public_message, user_id
from deepaudio.web.jobs import JobLimitError
from deepaudio.web.runs import default_run, run_dir

log = logging.getLogger(__name__)
bp = Blueprint("videos", __name__)
JOB_ID = re.compile(r"^[0-9a-f]{16}$")
SIZES = {"1280x720": (1280, 720), "1920x1080": (1920, 1080)}
FPS = (24, 30, 60)
VIZ = re.compile(r"^[a-z]{1,20}$")
PROGRESS_EVERY_S = 0.5


def init_app(app: Flask) -> None:
    con = connect(app.config["DB_PATH"])
    try:
        for row in con.execute("SELECT id FROM video_jobs WHERE state IN ('queued', "
                               "'running')").fetchall():
            _file(app, row["id"]).unlink(missing_ok=True)
        con.execute("UPDATE video_jobs SET state = 'failed', finished = ?, message = "
                    "'interrupted by a server restart; start it again' WHERE state IN "
                    "('queued', 'running')", (time.time(),))
    finally:
        con.close()
    app.extensions["video_enqueue"] = app.extensions["mixer_jobs"].local_task(
        f"video_{id(app)}", functools.partial(_render_job, app), lane="video")


def _file(app: Flask, job: str) -> Path:
    return Path(app.config["DATA_DIR"]) / "videos" / f"{job}.mp4"


def _render_job(app: Flask, payload: dict) -> None:
    job = payload["id"]
    con = connect(app.config["DB_PATH"])
    try:
        if con.execute("UPDATE video_jobs SET state = 'running', started = ? WHERE id = ? AND "
                       "state = 'queued'", (time.time(), job)).rowcount == 0:
            return
        last = [0.0]

        def progress(done: int, total: int) -> None:
            if app.extensions["mixer_jobs"].stopping:     # the server is shutting down
                raise ToolkitError("the server stopped during the render; start it again")
            now = time.monotonic()
            if now - last[0] >= PROGRESS_EVERY_S or done == total:
                last[0] = now
                con.execute("UPDATE video_jobs SET progress = ?, frames = ? WHERE id = ?",
                            (round(done / total, 4), total, job))

        out = _file(app, job)
        try:
            o = payload["options"]
            render_video(payload["song"], payload["run_dir"], out, viz=o["viz"],
                         size=SIZES[o["size"]], fps=o["fps"], method=o["method"],
                         layer=o["layer"], scaling=o["scaling"], per=o["per"],
                         smoothing=o["smoothing"], assign=o["assign"], seed=o["seed"],
                         progress=progress)
        except ToolkitError as e:
            out.unlink(missing_ok=True)
            _failed(con, job, public_message(str(e)))
            return
        except Exception:
            log.exception("video job %s failed", job)
            out.unlink(missing_ok=True)
            _failed(con, job, "the render failed on the server (logged); start it again")
            return
        con.execute("UPDATE video_jobs SET state = 'done', progress = 1, finished = ?, "
                    "bytes = ? WHERE id = ?", (time.time(), out.stat().st_size, job))
    finally:
        con.close()


def _failed(con, job: str, message: str) -> None:
    con.execute("UPDATE video_jobs SET state = 'failed', message = ?, finished = ? WHERE id = ?",
                (message[:1000], time.time(), job))


def _job_json(row) -> dict:
    import json
    p = float(row["progress"])
    eta = None
    if row["state"] == "running" and row["started"] and p >= 0.05:
        eta = round((time.time() - row["started"]) * (1 - p) / p, 1)
    done = row["state"] == "done"
    return {"id": row["id"], "track_id": row["track_id"], "state": row["state"],
            "progress": round(p, 4), "frames": row["frames"], "eta_seconds": eta,
            "message": row["message"], "options": json.loads(row["options"]),
            "bytes": row["bytes"], "status_url": f"/api/videos/{row['id']}",
            "video_url": f"/api/videos/{row['id']}/video.mp4" if done else None}


def _my_job(job_id: str):
    row = None
    if isinstance(job_id, str) and JOB_ID.match(job_id):
        row = db().execute("SELECT * FROM video_jobs WHERE id = ? AND user_id = ?",
                           (job_id, user_id())).fetchone()
    if row is None:
        raise ApiError(404, f"unknown video job {job_id!r}")
    return row


def _options(body: dict) -> tuple[dict, str]:
    """The validated render options and the run id."""
    allowed = {"run", "layer", "method", "scaling", "per", "viz", "size", "fps",
               "smoothing", "assign", "seed"}
    unknown = set(body) - allowed
    if unknown:
        raise ApiError(400, f"unknown key {sorted(unknown)[0]!r}: expected "
                            f"{', '.join(sorted(allowed))}")

    def pick(key, kind, default, choices=None):
        v = body.get(key, default)
        if v is None and default is None:
            return None
        if kind is float and isinstance(v, int) and not isinstance(v, bool):
            v = float(v)
        if not isinstance(v, kind) or isinstance(v, bool):
            raise ApiError(400, f"{key!r} must be {kind.__name__}")
        if choices is not None and v not in choices:
            raise ApiError(400, f"{key!r} must be one of {', '.join(map(str, choices))}")
        return v

    run_id = pick("run", str, None) or default_run(current_app)
    folder = run_dir(current_app, run_id)
    layer = pick("layer", str, None)
    if layer is not None and layer not in get_run(folder).layers:
        raise ApiError(404, f"unknown layer {layer!r} for run {run_id!r}")
    viz = pick("viz", str, "spheres")
    if not VIZ.match(viz):
        raise ApiError(400, "'viz' must be a visualization id (bars, spheres, ...)")
    smoothing = pick("smoothing", float, 0.5)
    if not 0 <= smoothing < 1:
        raise ApiError(400, "'smoothing' must be in [0, 1)")
    seed = pick("seed", int, None)
    if seed is not None and not 0 <= seed < 2**31:
        raise ApiError(400, "'seed' must be from 0 to 2^31 - 1")
    return {"run": run_id, "layer": layer, "viz": viz,
            "method": pick("method", str, "pca", METHODS),
            "scaling": pick("scaling", str, "standard", ("standard", "minmax")),
            "per": pick("per", str, "features", ("features", "across")),
            "size": pick("size", str, "1280x720", tuple(SIZES)),
            "fps": pick("fps", int, 30, FPS), "smoothing": smoothing,
            "assign": pick("assign", str, "random", ("deterministic", "random", "ranked")),
            "seed": seed if seed is not None else secrets.randbelow(2**31)}, str(folder)


@bp.post("/tracks/<track_id>/videos")
def create(track_id: str):
    import json
    options, folder = _options(json_body())
    track_row(track_id)
    song = str(track_path(track_id))
    user = ensure_user()
    con = db()
    con.execute("BEGIN IMMEDIATE")
    try:
        mine = con.execute("SELECT COUNT(*) FROM video_jobs WHERE user_id = ? AND state IN "
                           "('queued', 'running')", (user,)).fetchone()[0]
        if mine >= 1:                       # one render at a time per user: it is long
            raise JobLimitError(1, "video renders")
        job = secrets.token_hex(8)
        con.execute("INSERT INTO video_jobs (id, user_id, track_id, options, state, created) "
                    "VALUES (?, ?, ?, ?, 'queued', ?)",
                    (job, user, track_id, json.dumps(options), time.time()))
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    current_app.extensions["video_enqueue"](
        {"id": job, "song": song, "run_dir": folder, "options": options})
    return jsonify(_job_json(_my_job(job))), 202


@bp.get("/videos/<video_id>")
def get(video_id: str):
    row = _my_job(video_id)
    return jsonify(_job_json(row)), (202 if row["state"] in ("queued", "running") else 200)


@bp.get("/videos/<video_id>/video.mp4")
def video_file(video_id: str):
    row = _my_job(video_id)
    path = _file(current_app, row["id"])
    if row["state"] != "done" or not path.is_file():
        raise ApiError(409 if row["state"] in ("queued", "running") else 404,
                       f"video {video_id} is {row['state']}, not rendered")
    return send_file(path, mimetype="video/mp4", as_attachment=True,
                     download_name=f"video-{row['id']}.mp4", conditional=True)
