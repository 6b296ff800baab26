"""Separation jobs, the server's one job runner: a Huey queue, per-job state in SQLite, a
content-addressed stem cache.

- **Queue.** ``SqliteHuey`` in the data folder with consumer threads started inside the server
  process (nothing else to run), or ``RedisHuey`` when a redis URL is given, so that
  ``python mixer_api.py worker --data DIR --redis URL`` processes on other machines (sharing
  the data folder) take the jobs.
- **State.** The ``mixer_jobs`` table is the truth: id, owner, track, backend, model, state
  (queued / running / done / failed), progress in [0, 1], message, retryable, timestamps.
  Huey only carries the job id. ETA = elapsed x (1 - p) / p.
- **Isolation.** Each job has its own folder ``mixer/jobs/<id>/`` with hard links to its stems
  and its exports; nothing is global (the Human Audio Mixer had one progress file and one stem
  folder for everybody). Only the owner can see a job.
- **Cache.** Stems are built once per (content hash, backend, model) under
  ``mixer/stems/<key>/`` (built in a temporary folder, renamed into place). A second job for the
  same song waits for the first, mirroring its progress, and never separates it again.
- **Restart.** On start-up (embedded queue) running jobs are marked failed and retryable
  (their worker died with the server); queued jobs are re-queued; finished jobs are kept.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import secrets
import shutil
import sqlite3
import time
import typing as tp
from pathlib import Path

import numpy as np
from flask import Flask

from deepaudio.core.errors import ToolkitError
from deepaudio.core.files import atomic_write_json
from deepaudio.core.loudness import integrated_loudness
from deepaudio.mapping.encode import genre_probabilities
from deepaudio.mixer.preferences import track_features
from deepaudio.mixer.separate import separate
from deepaudio.mixer.stems import load_stems, stems_sum, write_previews
from deepaudio.web.db import connect, init_db
from deepaudio.web.http import public_message

log = logging.getLogger("mixer.jobs")


def cache_key(track_id: str, backend: str, model: str) -> str:
    return f"{track_id}-{backend}-{model if backend == 'demucs' else 'dsp-v1'}"


def job_json(row: sqlite3.Row) -> dict:
    p = float(row["progress"])
    eta = None
    if row["state"] == "running" and row["started"] and p >= 0.02:
        eta = round((time.time() - row["started"]) * (1 - p) / p, 1)
    return {"id": row["id"], "track_id": row["track_id"], "backend": row["backend"],
            "model": row["model"], "state": row["state"], "stage": row["stage"],
            "progress": round(p, 4), "eta_seconds": eta, "message": row["message"],
            "retryable": bool(row["retryable"]), "cache_hit": bool(row["cache_hit"]),
            "created": row["created"], "started": row["started"], "finished": row["finished"]}


class JobQueue:
    """One per data folder: the Huey instance, its task, and (embedded) its consumer."""

    def __init__(self, db_path: str | os.PathLike, root: str | os.PathLike, *,
                 redis_url: str | None = None, workers: int = 2, consume: bool = True):
        self.db_path = str(db_path)
        init_db(self.db_path)           # a worker may be the first to open the database
        self.root = Path(root)
        (self.root / "jobs").mkdir(parents=True, exist_ok=True)
        (self.root / "stems").mkdir(parents=True, exist_ok=True)
        self.embedded = redis_url is None
        if redis_url is None:
            from huey import SqliteHuey
            self.huey = SqliteHuey(name="mixer", filename=str(self.root / "huey.sqlite"))
        else:
            try:
                from huey import RedisHuey
                self.huey = RedisHuey(name="mixer", url=redis_url)
            except ImportError:
                raise ToolkitError("--redis needs the 'redis' package: pip install redis") \
                    from None
        db, root_s = self.db_path, str(self.root)
        self.task = self.huey.task(name="mixer_separate")(
            lambda job_id: run_job(db, root_s, job_id))
        self.consumer: tp.Any = None        # huey's Consumer, when embedded
        con = connect(self.db_path)
        try:
            if self.embedded:
                self._recover(con)
        finally:
            con.close()
        if consume and self.embedded:
            self.start_consumer(workers)

    def _recover(self, con: sqlite3.Connection) -> None:
        """After a restart: interrupted jobs fail (retryable), queued ones are queued again."""
        now = time.time()
        con.execute("UPDATE mixer_jobs SET state = 'failed', retryable = 1, finished = ?, "
                    "message = 'interrupted by a server restart; retry to run it again' "
                    "WHERE state = 'running'", (now,))
        con.execute("DELETE FROM mixer_stemsets WHERE state = 'building'")
        for tmp in (self.root / "stems").glob(".build-*"):
            shutil.rmtree(tmp, ignore_errors=True)
        self.huey.storage.flush_queue()
        for (job_id,) in con.execute("SELECT id FROM mixer_jobs WHERE state = 'queued' "
                                     "ORDER BY created").fetchall():
            self.task(job_id)

    def start_consumer(self, workers: int) -> None:
        from huey.consumer import Consumer

        class EmbeddedConsumer(Consumer):
            def _set_signal_handlers(self):     # the server owns the signals
                pass

        self.consumer = EmbeddedConsumer(self.huey, workers=workers, worker_type="thread",
                                         periodic=False, initial_delay=0.05, backoff=1.5,
                                         max_delay=0.5, check_worker_health=False)
        self.consumer.start()

    def stop(self) -> None:
        if self.consumer is not None:
            self.consumer.stop(graceful=False)
            for _, t in self.consumer.worker_threads:
                t.join(timeout=5)
            self.consumer.scheduler.join(timeout=5)
            self.consumer = None

    def submit(self, con: sqlite3.Connection, *, user_id: str, track_id: str,
               track_path: str | os.PathLike, backend: str, model: str,
               options: dict | None = None) -> str:
        job_id = secrets.token_hex(8)
        con.execute("INSERT INTO mixer_jobs (id, user_id, track_id, track_path, backend, model, "
                    "options, cache_key, state, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, "
                    "'queued', ?)",
                    (job_id, user_id, track_id, str(track_path), backend,
                     model if backend == "demucs" else "dsp-v1", json.dumps(options or {}),
                     cache_key(track_id, backend, model), time.time()))
        (self.root / "jobs" / job_id).mkdir(parents=True, exist_ok=True)
        self.task(job_id)
        return job_id

    def retry(self, con: sqlite3.Connection, job_id: str) -> None:
        con.execute("UPDATE mixer_jobs SET state = 'queued', progress = 0, message = '', "
                    "stage = '', retryable = 0, started = NULL, finished = NULL WHERE id = ?",
                    (job_id,))
        self.task(job_id)


class _Progress:
    """Writes progress to the job row, at most every 0.25 s (and always the final value)."""

    def __init__(self, con: sqlite3.Connection, job_id: str, lo: float = 0.0, hi: float = 1.0):
        self.con, self.job_id, self.lo, self.hi = con, job_id, lo, hi
        self.last = 0.0

    def __call__(self, fraction: float, stage: str) -> None:
        now = time.monotonic()
        if now - self.last < 0.25 and fraction < 1.0:
            return
        self.last = now
        self.con.execute("UPDATE mixer_jobs SET progress = ?, stage = ? WHERE id = ?",
                         (self.lo + (self.hi - self.lo) * min(max(fraction, 0.0), 1.0), stage,
                          self.job_id))


def _claim_stemset(con: sqlite3.Connection, key: str, job_id: str) -> str:
    """'build' (this job builds the stems), 'done' (cached) or 'wait' (another job builds)."""
    con.execute("BEGIN IMMEDIATE")
    try:
        row = con.execute("SELECT s.state, s.job_id, j.state AS job_state FROM mixer_stemsets s "
                          "LEFT JOIN mixer_jobs j ON j.id = s.job_id WHERE s.key = ?",
                          (key,)).fetchone()
        if row is not None and row["state"] == "done":
            decision = "done"
        elif (row is not None and row["state"] == "building"
              and row["job_state"] in ("queued", "running") and row["job_id"] != job_id):
            decision = "wait"
        else:
            con.execute("INSERT OR REPLACE INTO mixer_stemsets (key, state, job_id, updated) "
                        "VALUES (?, 'building', ?, ?)", (key, job_id, time.time()))
            decision = "build"
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return decision


def _build_stems(con, job: sqlite3.Row, root: Path, progress: _Progress) -> dict:
    final = root / "stems" / job["cache_key"]
    tmp = root / "stems" / f".build-{job['cache_key']}-{job['id']}"
    shutil.rmtree(tmp, ignore_errors=True)
    options = json.loads(job["options"])
    try:
        manifest = separate(job["track_path"], tmp, backend=job["backend"], model=job["model"],
                            repo=options.get("demucs_repo"),
                            progress=lambda f, s: progress(0.9 * f, s))
        progress(0.9, "previews")
        manifest["previews"] = write_previews(tmp, manifest)
        manifest["mix_lufs"] = _mix_loudness(tmp)
        atomic_write_json(tmp / "stems.json", manifest)
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return manifest


def _mix_loudness(stems_dir: Path) -> float | None:
    """Loudness of the stems summed at 0 dB: lets the page set a preview master gain once."""
    stems, sr = load_stems(stems_dir)
    try:
        value = integrated_loudness(stems_sum(stems), sr)
    except ToolkitError:
        return None
    return round(value, 2) if np.isfinite(value) else None


def _link_stems(src: Path, dst: Path) -> None:
    """The job's own copy of its stems: hard links (no extra space), copies across devices."""
    dst.mkdir(parents=True, exist_ok=True)
    for f in src.iterdir():
        if f.name.startswith("."):
            continue
        target = dst / f.name
        if target.exists():
            continue
        try:
            os.link(f, target)
        except OSError:
            shutil.copy2(f, target)


def _features(con, job: sqlite3.Row) -> None:
    """The track's 23-d feature vector for suggestions (once per track and classifier)."""
    options = json.loads(job["options"])
    run = options.get("classifier_run") or ""
    if con.execute("SELECT 1 FROM mixer_features WHERE track_id = ? AND classifier = ?",
                   (job["track_id"], run)).fetchone():
        return
    probs = None
    if run:
        try:
            probs = genre_probabilities(job["track_path"], run)
        except ToolkitError as e:
            log.warning("genre probabilities for %s: %s", job["track_id"], e)
    v = track_features(job["track_path"], genre_probabilities=probs)
    con.execute("INSERT OR REPLACE INTO mixer_features VALUES (?, ?, ?)",
                (job["track_id"], run, json.dumps([round(float(x), 6) for x in v])))


def run_job(db_path: str, root_dir: str, job_id: str) -> None:
    """Separate one job's track (or reuse cached stems), then analyse it for suggestions."""
    root = Path(root_dir)
    con = connect(db_path)
    try:
        cur = con.execute("UPDATE mixer_jobs SET state = 'running', started = ?, stage = "
                          "'starting' WHERE id = ? AND state = 'queued'", (time.time(), job_id))
        if cur.rowcount != 1:
            return                               # retried elsewhere, or no longer queued
        job = con.execute("SELECT * FROM mixer_jobs WHERE id = ?", (job_id,)).fetchone()
        progress = _Progress(con, job_id, 0.0, 0.97)
        hit = False
        while True:
            decision = _claim_stemset(con, job["cache_key"], job_id)
            if decision == "build":
                try:
                    manifest = _build_stems(con, job, root, progress)
                except BaseException as e:
                    con.execute("UPDATE mixer_stemsets SET state = 'failed', updated = ? "
                                "WHERE key = ?", (time.time(), job["cache_key"]))
                    raise e
                con.execute("UPDATE mixer_stemsets SET state = 'done', manifest = ?, "
                            "updated = ? WHERE key = ?",
                            (json.dumps(manifest), time.time(), job["cache_key"]))
                break
            if decision == "done":
                if (root / "stems" / job["cache_key"] / "stems.json").is_file():
                    hit = True
                    break
                con.execute("DELETE FROM mixer_stemsets WHERE key = ?", (job["cache_key"],))
                continue
            # another job is building these stems: show its progress, then use them
            other = con.execute("SELECT j.progress, j.stage FROM mixer_stemsets s JOIN "
                                "mixer_jobs j ON j.id = s.job_id WHERE s.key = ?",
                                (job["cache_key"],)).fetchone()
            if other is not None:
                progress(other["progress"], f"waiting: {other['stage']}")
            time.sleep(0.2)
        _link_stems(root / "stems" / job["cache_key"], root / "jobs" / job_id / "stems")
        progress(1.0, "analysing")
        try:
            _features(con, job)
        except Exception:      # suggestions are optional; the stems are what the user waits for
            log.exception("feature analysis of %s failed", job["track_id"])
        con.execute("UPDATE mixer_jobs SET state = 'done', progress = 1, stage = 'done', "
                    "cache_hit = ?, finished = ? WHERE id = ?", (int(hit), time.time(), job_id))
    except ToolkitError as e:
        _fail(con, job_id, str(e), retryable=False)
    except Exception as e:
        log.exception("separation job %s failed", job_id)
        _fail(con, job_id, f"{type(e).__name__}: {e}", retryable=True)
    finally:
        con.close()


def _fail(con: sqlite3.Connection, job_id: str, message: str, *, retryable: bool) -> None:
    """Mark a job failed with a message the user may read: the track's file is "the track",
    other server paths are hidden (the log has the detail)."""
    row = con.execute("SELECT track_path FROM mixer_jobs WHERE id = ?", (job_id,)).fetchone()
    log.info("job %s failed: %s", job_id, message)
    message = public_message(message, {row["track_path"]: "the track"} if row else {})
    con.execute("UPDATE mixer_jobs SET state = 'failed', message = ?, retryable = ?, "
                "finished = ? WHERE id = ?", (message[:1000], int(retryable), time.time(), job_id))


def init_app(app: Flask) -> JobQueue:
    """The app's job queue (embedded consumer threads, or Redis workers), stopped at exit."""
    queue = JobQueue(app.config["DB_PATH"], Path(app.config["DATA_DIR"]) / "mixer",
                     redis_url=app.config.get("REDIS_URL"),
                     workers=int(app.config.get("MIXER_WORKERS", 2)))
    app.extensions["mixer_jobs"] = queue
    atexit.register(queue.stop)
    return queue


def shutdown(app: Flask) -> None:
    """Stop an app's embedded job consumer (tests; the server stops it at exit)."""
    queue = app.extensions.get("mixer_jobs")
    if queue is not None:
        queue.stop()
