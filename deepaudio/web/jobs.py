"""Separation jobs on the server, the one job runner: a Huey queue, per-job state in SQLite,
a content-addressed stem cache, a fair share of the workers per user.

- **Queue.** ``SqliteHuey`` in the data folder with consumer threads started inside the server
  process (nothing else to run), or a Redis queue when a redis URL is given, so that
  ``python mixer_api.py worker --redis URL --data DIR`` processes on other machines (sharing
  the data folder) take the jobs. What a worker runs is :mod:`deepaudio.mixer.jobs`; the whole
  job travels in the queue message.
- **State.** The ``mixer_jobs`` table is the truth the API answers from: id, owner, track,
  backend, model, state (queued / running / done / failed), progress in [0, 1], message,
  retryable, attempt, timestamps. Embedded jobs write it directly; Redis workers write their
  status into Redis and a monitor thread here copies it into the table, every
  :data:`MONITOR_S` seconds. ETA = elapsed x (1 - p) / p.
- **Fairness.** A user may have at most ``max_jobs_per_user`` jobs queued or running (more
  answer 429), and a job is queued with a priority that falls with the number of its owner's
  jobs ahead of it: the workers take the first job of every user before anyone's second, so
  one user's batch cannot hold up another user's single song.
- **Workers that die.** A Redis worker's running job sends a heartbeat; when it stops for
  ``heartbeat_timeout`` seconds (the worker was killed or lost its machine), the job is queued
  again as a new attempt, or after ``max_attempts`` failed with a message (retryable).
- **Isolation.** Each job has its own folder ``mixer/jobs/<id>/`` with hard links to its stems
  and its exports; nothing is global (the Human Audio Mixer had one progress file and one stem
  folder for everybody). Only the owner can see a job.
- **Cache.** Stems are built once per (content hash, backend, model) under
  ``mixer/stems/<key>/``; a second job for the same song waits for the first, mirroring its
  progress, and never separates it again.
- **Restart.** On start-up (embedded queue) running jobs are marked failed and retryable
  (their worker died with the server); queued jobs are queued again; finished jobs are kept.
- **Jobs of the web node.** :meth:`JobQueue.local_task` runs other jobs (the neural
  crossfade, training on a user's songs: they need the runs, which live with the server) on
  the same embedded consumer, or with Redis on a small embedded queue of the server's own,
  never on the remote workers. Music videos run in a lane of their own (one queue, one
  thread), so an hour-long render holds up nothing else.
"""

from __future__ import annotations

import atexit
import dataclasses
import json
import logging
import os
import secrets
import shutil
import sqlite3
import threading
import time
import typing as tp
from pathlib import Path

from flask import Flask

from deepaudio.core.errors import ToolkitError
from deepaudio.mapping.encode import genre_probabilities
from deepaudio.mixer.jobs import (
    JobSpec,
    cache_key,
    lock_key,
    read_status,
    redis_huey,
    register_task,
    run_job,
    track_ref,
)
from deepaudio.mixer.preferences import track_features
from deepaudio.web.db import connect, init_db
from deepaudio.web.http import ApiError, public_message

log = logging.getLogger("mixer.jobs")

MONITOR_S = 0.5                 # how often the server reads the Redis workers' job status
ACTIVE = ("queued", "running")

__all__ = ["JobLimitError", "JobQueue", "cache_key", "job_json", "init_app", "shutdown"]


def job_json(row: sqlite3.Row) -> dict:
    p = float(row["progress"])
    eta = None
    if row["state"] == "running" and row["started"] and p >= 0.02:
        eta = round((time.time() - row["started"]) * (1 - p) / p, 1)
    return {"id": row["id"], "track_id": row["track_id"], "backend": row["backend"],
            "model": row["model"], "state": row["state"], "stage": row["stage"],
            "progress": round(p, 4), "eta_seconds": eta, "message": row["message"],
            "retryable": bool(row["retryable"]), "cache_hit": bool(row["cache_hit"]),
            "backend_reason": json.loads(row["options"] or "{}").get("backend_reason", ""),
            "created": row["created"], "started": row["started"], "finished": row["finished"]}


class JobLimitError(ApiError):
    """A user has as many jobs queued or running as allowed (429)."""

    def __init__(self, limit: int, what: str = "separation jobs"):
        super().__init__(429, f"you have {limit} {what} queued or running, the most "
                              "allowed at once; wait for one to finish and try again",
                         {"Retry-After": "10"})


class JobQueue:
    """One per data folder: the Huey instance, its task, (embedded) its consumer threads or
    (Redis) the monitor that follows the remote workers."""

    def __init__(self, db_path: str | os.PathLike, root: str | os.PathLike, *,
                 redis_url: str | None = None, workers: int = 2, consume: bool = True,
                 fma_dir: str | os.PathLike | None = None, max_jobs_per_user: int = 3,
                 heartbeat_timeout: float = 30.0, max_attempts: int = 2):
        self.db_path = str(db_path)
        init_db(self.db_path)
        self.root = Path(root)
        self.data = self.root.parent
        self.fma = Path(fma_dir).expanduser().resolve() if fma_dir else None
        (self.root / "jobs").mkdir(parents=True, exist_ok=True)
        (self.root / "stems").mkdir(parents=True, exist_ok=True)
        self.max_jobs_per_user = max_jobs_per_user
        self.heartbeat_timeout = heartbeat_timeout
        self.max_attempts = max_attempts
        self.embedded = redis_url is None
        self.consumer: tp.Any = None        # huey's Consumer, when embedded
        self._stop = threading.Event()
        self._monitor: threading.Thread | None = None
        self._local_consumer: tp.Any = None
        self._consume = consume
        self._lanes: dict[str, tp.Any] = {}        # lane name -> (huey, its consumer or None)
        if redis_url is None:
            from huey import SqliteHuey
            self.huey = SqliteHuey(name="mixer", filename=str(self.root / "huey.sqlite"))
            self.local_huey = self.huey
            self.task = register_task(self.huey, self._run_embedded)
            con = connect(self.db_path)
            try:
                self._recover(con)
            finally:
                con.close()
            if consume:
                self.start_consumer(workers)
        else:
            self.huey = redis_huey(redis_url)
            self.redis = self.huey.storage.conn
            self.task = register_task(self.huey, _remote_only)
            from huey import SqliteHuey
            self.local_huey = SqliteHuey(name="local", filename=str(self.root / "local.sqlite"))
            self.local_huey.storage.flush_queue()           # its jobs died with the server
            if consume:
                self._local_consumer = self._consumer(self.local_huey, 1)
            if consume:
                self._monitor = threading.Thread(target=self._follow, daemon=True,
                                                 name="mixer-monitor")
                self._monitor.start()

    # -- submitting ------------------------------------------------------------------------

    def submit(self, con: sqlite3.Connection, *, user_id: str, track_id: str,
               track_path: str | os.PathLike, backend: str, model: str,
               options: dict | None = None) -> str:
        """Queue a job (429 past the user's limit); returns its id."""
        job_id = secrets.token_hex(8)
        con.execute("BEGIN IMMEDIATE")
        try:
            ahead = self._check_limit(con, user_id)
            con.execute("INSERT INTO mixer_jobs (id, user_id, track_id, track_path, backend, "
                        "model, options, cache_key, state, created) VALUES (?, ?, ?, ?, ?, ?, "
                        "?, ?, 'queued', ?)",
                        (job_id, user_id, track_id, str(track_path), backend,
                         model if backend == "demucs" else "dsp-v1", json.dumps(options or {}),
                         cache_key(track_id, backend, model), time.time()))
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        (self.root / "jobs" / job_id).mkdir(parents=True, exist_ok=True)
        self._enqueue(con, job_id, ahead)
        return job_id

    def retry(self, con: sqlite3.Connection, job_id: str) -> None:
        con.execute("BEGIN IMMEDIATE")
        try:
            user = con.execute("SELECT user_id FROM mixer_jobs WHERE id = ?",
                               (job_id,)).fetchone()["user_id"]
            ahead = self._check_limit(con, user)
            con.execute("UPDATE mixer_jobs SET state = 'queued', progress = 0, message = '', "
                        "stage = '', retryable = 0, started = NULL, finished = NULL, "
                        "attempt = attempt + 1 WHERE id = ?", (job_id,))
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        self._enqueue(con, job_id, ahead)

    def _check_limit(self, con: sqlite3.Connection, user_id: str) -> int:
        """The number of the user's jobs queued or running (JobLimitError at the limit)."""
        ahead = con.execute("SELECT COUNT(*) FROM mixer_jobs WHERE user_id = ? AND state IN "
                            "('queued', 'running')", (user_id,)).fetchone()[0]
        if ahead >= self.max_jobs_per_user:
            raise JobLimitError(self.max_jobs_per_user)
        return ahead

    def spec(self, row: sqlite3.Row) -> JobSpec:
        options = json.loads(row["options"])
        return JobSpec(id=row["id"], attempt=int(row["attempt"]), track_id=row["track_id"],
                       track=track_ref(Path(row["track_path"]), self.data, self.fma),
                       backend=row["backend"], model=row["model"], cache_key=row["cache_key"],
                       demucs_repo=options.get("demucs_repo"))

    def _enqueue(self, con: sqlite3.Connection, job_id: str, ahead: int) -> None:
        """Hand the job to Huey; its priority falls with its owner's jobs ahead of it."""
        row = con.execute("SELECT * FROM mixer_jobs WHERE id = ?", (job_id,)).fetchone()
        self.task(dataclasses.asdict(self.spec(row)), priority=-ahead)

    # -- embedded: the consumer threads run the jobs here ------------------------------------

    def _run_embedded(self, spec: dict) -> None:
        job = JobSpec.from_dict(spec)
        with SqliteStatus(self.db_path, job.id, self.root) as status:
            run_job(job, self.data, self.fma, status)

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
        rank: dict[str, int] = {}
        for row in con.execute("SELECT id, user_id FROM mixer_jobs WHERE state = 'queued' "
                               "ORDER BY created").fetchall():
            self._enqueue(con, row["id"], rank.get(row["user_id"], 0))
            rank[row["user_id"]] = rank.get(row["user_id"], 0) + 1

    def start_consumer(self, workers: int) -> None:
        self.consumer = self._consumer(self.huey, workers)

    @staticmethod
    def _consumer(huey, workers: int):
        from huey.consumer import Consumer

        class EmbeddedConsumer(Consumer):
            def _set_signal_handlers(self):     # the server owns the signals
                pass

        consumer = EmbeddedConsumer(huey, workers=workers, worker_type="thread",
                                    periodic=False, initial_delay=0.05, backoff=1.5,
                                    max_delay=0.5, check_worker_health=False)
        consumer.start()
        return consumer

    def local_task(self, name: str, fn: tp.Callable[[dict], None], *,
                   lane: str | None = None):
        """Register ``fn(payload)`` as a job of the web node; returns ``enqueue(payload,
        priority=0)``. The payload must pickle (Huey stores it until a consumer takes it).

        With ``lane``, the jobs run one at a time on a queue and thread of their own, so that
        long ones (a music video renders for minutes to an hour) never hold up separation,
        neural crossfades or training. A lane's queue starts empty: its jobs' owners mark
        interrupted ones failed on start-up."""
        huey = self.local_huey
        if lane is not None:
            if lane not in self._lanes:
                from huey import SqliteHuey
                lane_huey = SqliteHuey(name=f"lane-{lane}",
                                       filename=str(self.root / f"lane-{lane}.sqlite"))
                lane_huey.storage.flush_queue()
                self._lanes[lane] = (lane_huey, self._consumer(lane_huey, 1)
                                     if self._consume else None)
            huey = self._lanes[lane][0]
        task = huey.task(name=name)(fn)
        return lambda payload, priority=0: task(payload, priority=priority)

    @property
    def stopping(self) -> bool:
        """True once :meth:`stop` began: long jobs give up at their next step."""
        return self._stop.is_set()

    def stop(self) -> None:
        self._stop.set()
        if self._monitor is not None:
            self._monitor.join(timeout=5)
            self._monitor = None
        lanes = [consumer for _, consumer in self._lanes.values()]
        for consumer in (self.consumer, self._local_consumer, *lanes):
            if consumer is not None:
                consumer.stop(graceful=False)
                for _, t in consumer.worker_threads:
                    t.join(timeout=5)
                consumer.scheduler.join(timeout=5)
        self.consumer = self._local_consumer = None
        self._lanes = {name: (huey, None) for name, (huey, _) in self._lanes.items()}

    # -- Redis: follow the remote workers ---------------------------------------------------

    def _follow(self) -> None:
        con = connect(self.db_path)
        try:
            while not self._stop.wait(MONITOR_S):
                try:
                    self.sync(con)
                except Exception:       # Redis or the disk away for a moment: try again
                    log.warning("following the mixer workers failed", exc_info=True)
        finally:
            con.close()

    def sync(self, con: sqlite3.Connection) -> None:
        """Copy the Redis workers' status of every active job into ``mixer_jobs``; queue
        again (or fail) running jobs whose heartbeat stopped."""
        now = time.time()
        for row in con.execute("SELECT * FROM mixer_jobs WHERE state IN ('queued', "
                               "'running')").fetchall():
            s = read_status(self.redis, row["id"], int(row["attempt"]))
            if not s:
                continue                                    # still waiting for a worker
            state = s.get("state", "running")
            if state == "running" and now - float(s.get("heartbeat", now)) > \
                    self.heartbeat_timeout:
                self._worker_lost(con, row)
                continue
            message = public_message(str(s.get("message", "")),
                                     {row["track_path"]: "the track"})
            con.execute("UPDATE mixer_jobs SET state = ?, stage = ?, progress = ?, message = ?, "
                        "retryable = ?, cache_hit = ?, started = ?, finished = ? WHERE id = ? "
                        "AND attempt = ?",
                        (state, s.get("stage", ""), float(s.get("progress", 0.0)), message,
                         int(bool(s.get("retryable"))), int(bool(s.get("cache_hit"))),
                         s.get("started"), s.get("finished"), row["id"], row["attempt"]))
            if state == "done":
                self._finished(con, row)

    def _worker_lost(self, con: sqlite3.Connection, row: sqlite3.Row) -> None:
        lock = lock_key(row["cache_key"])         # the lost try's stem build lock, if it held it
        if self.redis.get(lock) == f"{row['id']}:{row['attempt']}".encode():
            self.redis.delete(lock)
        attempt = int(row["attempt"]) + 1
        if attempt < self.max_attempts:
            log.warning("job %s: its worker stopped (no heartbeat for %.0f s); trying again",
                        row["id"], self.heartbeat_timeout)
            con.execute("UPDATE mixer_jobs SET state = 'queued', progress = 0, stage = "
                        "'worker lost; queued again', started = NULL, attempt = ? WHERE id = ?",
                        (attempt, row["id"]))
            self._enqueue(con, row["id"], 0)
            return
        log.warning("job %s: its worker stopped again; failing it", row["id"])
        con.execute("UPDATE mixer_jobs SET state = 'failed', retryable = 1, finished = ?, "
                    "message = 'the worker running this job stopped (killed or its machine "
                    "lost); retry to run it again' WHERE id = ?", (time.time(), row["id"]))

    def _finished(self, con: sqlite3.Connection, row: sqlite3.Row) -> None:
        """A remote job is done: record its stem set and analyse its song for suggestions
        (on this machine, with this server's classifier)."""
        manifest_path = self.root / "stems" / row["cache_key"] / "stems.json"
        if manifest_path.is_file():
            con.execute("INSERT OR REPLACE INTO mixer_stemsets (key, state, job_id, manifest, "
                        "updated) VALUES (?, 'done', ?, ?, ?)",
                        (row["cache_key"], row["id"], manifest_path.read_text(), time.time()))
        try:
            song_features(con, row)
        except Exception:       # suggestions are optional; the stems are what the user waits for
            log.exception("feature analysis of %s failed", row["track_id"])


def _remote_only(spec: dict) -> None:
    raise RuntimeError("with --redis, jobs run on 'mixer_api.py worker' processes")


def song_features(con: sqlite3.Connection, job: sqlite3.Row) -> None:
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


class SqliteStatus:
    """A job run inside the server reports straight into its database."""

    def __init__(self, db_path: str, job_id: str, root: Path):
        self.con = connect(db_path)
        self.job_id, self.root = job_id, root

    def __enter__(self) -> SqliteStatus:
        return self

    def __exit__(self, *exc) -> None:
        self.con.close()

    def _job(self) -> sqlite3.Row:
        return self.con.execute("SELECT * FROM mixer_jobs WHERE id = ?",
                                (self.job_id,)).fetchone()

    def start(self) -> bool:
        cur = self.con.execute("UPDATE mixer_jobs SET state = 'running', started = ?, stage = "
                               "'starting' WHERE id = ? AND state = 'queued'",
                               (time.time(), self.job_id))
        return cur.rowcount == 1

    def progress(self, fraction: float, stage: str) -> None:
        self.con.execute("UPDATE mixer_jobs SET progress = ?, stage = ? WHERE id = ?",
                         (fraction, stage, self.job_id))

    def claim(self, key: str) -> str:
        con = self.con
        con.execute("BEGIN IMMEDIATE")
        try:
            row = con.execute("SELECT s.state, s.job_id, j.state AS job_state FROM "
                              "mixer_stemsets s LEFT JOIN mixer_jobs j ON j.id = s.job_id "
                              "WHERE s.key = ?", (key,)).fetchone()
            if row is not None and row["state"] == "done" and \
                    (self.root / "stems" / key / "stems.json").is_file():
                decision = "done"
            elif (row is not None and row["state"] == "building"
                  and row["job_state"] in ACTIVE and row["job_id"] != self.job_id):
                decision = "wait"
            else:
                con.execute("INSERT OR REPLACE INTO mixer_stemsets (key, state, job_id, updated) "
                            "VALUES (?, 'building', ?, ?)", (key, self.job_id, time.time()))
                decision = "build"
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        return decision

    def builder_progress(self, key: str) -> tuple[float, str] | None:
        other = self.con.execute("SELECT j.progress, j.stage FROM mixer_stemsets s JOIN "
                                 "mixer_jobs j ON j.id = s.job_id WHERE s.key = ?",
                                 (key,)).fetchone()
        return None if other is None else (float(other["progress"]), other["stage"])

    def built(self, key: str, manifest: dict) -> None:
        self.con.execute("UPDATE mixer_stemsets SET state = 'done', manifest = ?, updated = ? "
                         "WHERE key = ?", (json.dumps(manifest), time.time(), key))

    def build_failed(self, key: str) -> None:
        self.con.execute("UPDATE mixer_stemsets SET state = 'failed', updated = ? WHERE key = ?",
                         (time.time(), key))

    def done(self, cache_hit: bool) -> None:
        try:
            song_features(self.con, self._job())
        except Exception:      # suggestions are optional; the stems are what the user waits for
            log.exception("feature analysis of job %s failed", self.job_id)
        self.con.execute("UPDATE mixer_jobs SET state = 'done', progress = 1, stage = 'done', "
                         "cache_hit = ?, finished = ? WHERE id = ?",
                         (int(cache_hit), time.time(), self.job_id))

    def fail(self, message: str, retryable: bool) -> None:
        """Mark the job failed with a message the user may read: the track's file is "the
        track", other server paths are hidden (the log has the detail)."""
        row = self._job()
        log.info("job %s failed: %s", self.job_id, message)
        message = public_message(message, {row["track_path"]: "the track"} if row else {})
        self.con.execute("UPDATE mixer_jobs SET state = 'failed', message = ?, retryable = ?, "
                         "finished = ? WHERE id = ?",
                         (message[:1000], int(retryable), time.time(), self.job_id))


def init_app(app: Flask) -> JobQueue:
    """The app's job queue (embedded consumer threads, or Redis workers), stopped at exit."""
    cfg = app.config["SERVER_CONFIG"]
    queue = JobQueue(app.config["DB_PATH"], Path(app.config["DATA_DIR"]) / "mixer",
                     redis_url=app.config.get("REDIS_URL"), fma_dir=cfg.fma_dir,
                     workers=int(app.config.get("MIXER_WORKERS", 2)),
                     max_jobs_per_user=cfg.max_jobs_per_user,
                     heartbeat_timeout=cfg.worker_heartbeat_timeout)
    app.extensions["mixer_jobs"] = queue
    atexit.register(queue.stop)
    return queue


def shutdown(app: Flask) -> None:
    """Stop an app's job consumer or monitor (tests; the server stops it at exit)."""
    queue = app.extensions.get("mixer_jobs")
    if queue is not None:
        queue.stop()
