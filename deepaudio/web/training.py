"""``/api/training``: an encoder trained on a user's own songs, as a job.

A user with at least ten uploads (or, where the server names one, its ``training_folder``)
asks for a model; a job of the web node's job runner (:meth:`deepaudio.web.jobs.JobQueue.
local_task`) runs the real-folder recipe (the segments of ``FOLDER_DATASET``, the dense
autoencoder of :mod:`deepaudio.training.folder`, early stopping on cv, a test against
PCA-10), with its stage and progress
in ``training_jobs`` for the page to poll. The finished run lives under
``<models_dir>/users/<user key>/<job>/`` and is offered to that user, and only to them, like
the sample models (``GET /api/models``); a failed or interrupted job leaves no run behind.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import secrets
import shutil
import time
from pathlib import Path

from flask import Blueprint, Flask, current_app, jsonify

from deepaudio.core.errors import ToolkitError
from deepaudio.data.config import FOLDER_MIN_SONGS as MIN_SONGS
from deepaudio.data.config import folder_dataset_config
from deepaudio.data.process import process_dataset
from deepaudio.training.fma import evaluate_run, train
from deepaudio.training.folder import folder_train_config
from deepaudio.web.catalog import track_path
from deepaudio.web.db import connect, db
from deepaudio.web.http import ApiError, ensure_user, json_body, public_message, user_id
from deepaudio.web.jobs import JobLimitError
from deepaudio.web.runs import USER_RUNS, user_key

log = logging.getLogger(__name__)
bp = Blueprint("training", __name__)
PROGRESS_EVERY_S = 0.5
MAX_NAME = 60
JOB_ID = re.compile(r"^[0-9a-f]{16}$")


def init_app(app: Flask) -> None:
    con = connect(app.config["DB_PATH"])
    try:
        for row in con.execute("SELECT id, user_key FROM training_jobs WHERE state IN "
                               "('queued', 'running')").fetchall():
            shutil.rmtree(_work(app, row["user_key"], row["id"]), ignore_errors=True)
        con.execute("UPDATE training_jobs SET state = 'failed', finished = ?, message = "
                    "'interrupted by a server restart; start it again' WHERE state IN "
                    "('queued', 'running')", (time.time(),))
    finally:
        con.close()
    app.extensions["training_enqueue"] = app.extensions["mixer_jobs"].local_task(
        f"training_{id(app)}", functools.partial(_train_job, app))


def _work(app: Flask, ukey: str, job_id: str) -> Path:
    return Path(app.config["MODELS_DIR"]) / USER_RUNS / ukey / job_id


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "-", name).strip("-")[:40] or "my-songs"


def train_on_folder(songs: Path, work: Path, name: str, progress) -> dict:
    """Segment the songs, train the recipe's autoencoder into ``work/name`` and test its best
    checkpoint; ``progress(fraction, stage)`` along the way. Returns the test metrics."""
    dcfg = folder_dataset_config(songs, work / "dataset")
    tcfg = folder_train_config(dcfg.h5_path, work, name)
    progress(0.0, "features")
    process_dataset(dcfg, workers=1)
    progress(0.3, "training")
    train(tcfg, resume=True, on_epoch=lambda row: progress(
        0.3 + 0.65 * row["epoch"] / tcfg.num_epochs, "training"))
    progress(0.95, "testing")
    return evaluate_run(tcfg)


def _train_job(app: Flask, payload: dict) -> None:
    """The recipe in a consumer thread; the songs (or the folder) travel in the payload."""
    job = payload["id"]
    work = _work(app, payload["user_key"], job)
    con = connect(app.config["DB_PATH"])
    try:
        if con.execute("UPDATE training_jobs SET state = 'running', started = ?, stage = "
                       "'features', progress = 0 WHERE id = ? AND state = 'queued'",
                       (time.time(), job)).rowcount == 0:
            return
        last = [0.0]

        def progress(fraction: float, stage: str) -> None:
            now = time.monotonic()
            if now - last[0] >= PROGRESS_EVERY_S or fraction >= 0.95:
                last[0] = now
                con.execute("UPDATE training_jobs SET progress = ?, stage = ? WHERE id = ?",
                            (round(fraction, 4), stage, job))

        songs = Path(payload["folder"]) if payload.get("folder") else work / "songs"
        try:
            if not payload.get("folder"):
                songs.mkdir(parents=True, exist_ok=True)
                for i, path in enumerate(payload["files"]):
                    os.symlink(path, songs / f"{i:04d}{Path(path).suffix}")
            metrics = train_on_folder(songs, work, payload["slug"], progress)
        except ToolkitError as e:
            shutil.rmtree(work, ignore_errors=True)
            _failed(con, job, public_message(str(e)))
            return
        except Exception:
            log.exception("training job %s failed", job)
            shutil.rmtree(work, ignore_errors=True)
            _failed(con, job, "training failed on the server (logged); start it again")
            return
        finally:
            if not payload.get("folder"):
                shutil.rmtree(work / "songs", ignore_errors=True)
        run_id = f"{USER_RUNS}/{payload['user_key']}/{job}/{payload['slug']}"
        con.execute("UPDATE training_jobs SET state = 'done', progress = 1, stage = '', "
                    "run_id = ?, test_ratio = ?, pca_ratio = ?, finished = ? WHERE id = ?",
                    (run_id, metrics.get("mse_ratio_to_baseline"),
                     metrics.get("pca_mse_ratio_to_baseline"), time.time(), job))
    finally:
        con.close()


def _failed(con, job: str, message: str) -> None:
    con.execute("UPDATE training_jobs SET state = 'failed', message = ?, finished = ? "
                "WHERE id = ?", (message[:1000], time.time(), job))


def _job_json(row) -> dict:
    p = float(row["progress"])
    eta = None
    if row["state"] == "running" and row["started"] and p >= 0.35:
        eta = round((time.time() - row["started"]) * (1 - p) / p, 1)
    test = None
    if row["test_ratio"] is not None:
        test = {"mse_ratio_to_baseline": row["test_ratio"],
                "pca_mse_ratio_to_baseline": row["pca_ratio"]}
    return {"id": row["id"], "name": row["name"], "source": row["source"],
            "songs": row["songs"], "state": row["state"], "stage": row["stage"],
            "progress": round(p, 4), "eta_seconds": eta, "message": row["message"],
            "run": row["run_id"], "test": test, "status_url": f"/api/training/{row['id']}"}


def _my_job(job_id: str):
    row = None
    if isinstance(job_id, str) and JOB_ID.match(job_id):
        row = db().execute("SELECT * FROM training_jobs WHERE id = ? AND user_id = ?",
                           (job_id, user_id())).fetchone()
    if row is None:
        raise ApiError(404, f"unknown training job {job_id!r}")
    return row


@bp.post("")
def create():
    body = json_body()
    name = body.get("name", "my songs")
    source = body.get("source", "uploads")
    if not isinstance(name, str) or not 1 <= len(name.strip()) <= MAX_NAME:
        raise ApiError(400, f"'name' must be a text of 1 to {MAX_NAME} characters")
    if source not in ("uploads", "folder"):
        raise ApiError(400, "'source' must be 'uploads' (your uploaded songs) or 'folder' "
                            "(the server's training folder)")
    unknown = set(body) - {"name", "source"}
    if unknown:
        raise ApiError(400, f"unknown key {sorted(unknown)[0]!r}: expected name, source")
    folder = current_app.config["SERVER_CONFIG"].training_folder
    files: list[str] = []
    if source == "folder":
        if not folder:
            raise ApiError(400, "this server has no training folder (training_folder in its "
                                "config); train on your uploads instead")
        count = None
    else:
        ids = [r["track_id"] for r in db().execute(
            "SELECT track_id FROM uploads WHERE user_id = ? ORDER BY added", (user_id(),))]
        for tid in ids:
            try:
                files.append(str(track_path(tid)))
            except ApiError:            # a file gone since: not a song to train on
                continue
        if len(files) < MIN_SONGS:
            raise ApiError(400, f"training on your own songs needs at least {MIN_SONGS} "
                                f"uploaded songs (one to validate, one to test, eight to "
                                f"learn from); you have {len(files)}")
        count = len(files)
    user = ensure_user()
    con = db()
    con.execute("BEGIN IMMEDIATE")
    try:
        limit = current_app.config["SERVER_CONFIG"].max_jobs_per_user
        mine = con.execute("SELECT COUNT(*) FROM training_jobs WHERE user_id = ? AND state IN "
                           "('queued', 'running')", (user,)).fetchone()[0]
        if mine >= min(1, limit):          # one training at a time per user: it is long
            raise JobLimitError(1, "training jobs")
        job = secrets.token_hex(8)
        con.execute("INSERT INTO training_jobs (id, user_id, user_key, name, source, songs, "
                    "state, created) VALUES (?, ?, ?, ?, ?, ?, 'queued', ?)",
                    (job, user, user_key(user), name.strip(), source, count, time.time()))
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    current_app.extensions["training_enqueue"](
        {"id": job, "user_key": user_key(user), "slug": _slug(name), "files": files,
         "folder": str(folder) if source == "folder" else None})
    return jsonify(_job_json(_my_job(job))), 202


@bp.get("")
def list_jobs():
    rows = db().execute("SELECT * FROM training_jobs WHERE user_id = ? ORDER BY created DESC",
                        (user_id(),)).fetchall()
    return jsonify(jobs=[_job_json(r) for r in rows], min_songs=MIN_SONGS,
                   folder=bool(current_app.config["SERVER_CONFIG"].training_folder))


@bp.get("/<training_id>")
def get(training_id: str):
    row = _my_job(training_id)
    return jsonify(_job_json(row)), (202 if row["state"] in ("queued", "running") else 200)
