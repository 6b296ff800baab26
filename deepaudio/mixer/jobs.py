"""Separation jobs as a worker runs them, wherever it runs.

A job is a :class:`JobSpec` (what to separate, carried whole in the queue message) and a
:class:`JobStatus` (where its state and progress go). Inside the server the status is its
SQLite database (:mod:`deepaudio.web.jobs`); on worker processes elsewhere it is Redis
(:class:`RedisStatus`), and the server copies it into its database: a worker shares only the
data folder (a shared mount, for the song files and the stems) and never opens the server's
database, which SQLite does not support over a network file system.

Stems are built once per cache key (content hash, backend, model) under ``stems/<key>/``, in a
temporary folder renamed into place; a job whose stems another job is building waits for them
and shows that job's progress. With Redis the builder holds a lock (``SET NX`` with a time to
live that its heartbeat renews), so when a worker dies, its lock lapses and a waiting job
builds the stems itself.

A running job's heartbeat (every :data:`HEARTBEAT_S` seconds, from its own thread) tells the
server it is alive; the server retries a job whose heartbeat stops (its worker was killed)
or fails it cleanly. Each try has its own ``attempt`` number and status key, so a worker that
comes back after its job was given to another cannot overwrite the new try.

``python mixer_api.py worker --redis URL --data DIR`` runs :func:`run_worker`.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import socket
import threading
import time
import typing as tp
from pathlib import Path

import numpy as np

from deepaudio.core.errors import ToolkitError
from deepaudio.core.files import atomic_write_json
from deepaudio.core.loudness import integrated_loudness
from deepaudio.mixer.separate import separate
from deepaudio.mixer.stems import load_stems, stems_sum, write_previews

log = logging.getLogger("mixer.jobs")

HUEY_NAME = "deepaudio-mixer"   # the queue's name in Redis (server and workers must agree)
TASK = "mixer_separate"         # the task's name in queue messages
HEARTBEAT_S = 2.0               # a running job's heartbeat period
LOCK_TTL_S = 20.0               # a stem build lock lapses this long after the last heartbeat
STATUS_TTL_S = 7 * 24 * 3600    # a job's status stays in Redis this long
REDIS_PREFIX = "deepaudio:mixer:"


def cache_key(track_id: str, backend: str, model: str) -> str:
    return f"{track_id}-{backend}-{model if backend == 'demucs' else 'dsp-v1'}"


@dataclasses.dataclass
class JobSpec:
    """What a worker needs to run a job, and nothing it would have to look up."""
    id: str
    attempt: int
    track_id: str
    track: str                  # "data:<path>", "fma:<path>" (relative) or an absolute path
    backend: str
    model: str
    cache_key: str
    demucs_repo: str | None = None

    @classmethod
    def from_dict(cls, d: dict) -> JobSpec:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    def track_file(self, data: Path, fma: Path | None) -> Path:
        """The song on this machine: under its data folder, its FMA folder, or as given."""
        where, _, rel = self.track.partition(":")
        if where == "data":
            return data / rel
        if where == "fma":
            if fma is None:
                raise ToolkitError("this job's song is in the FMA folder: start the worker "
                                   "with --fma (the folder the server was given)")
            return fma / rel
        return Path(self.track)


def track_ref(path: Path, data: Path, fma: Path | None) -> str:
    """How a job names its song so that a worker elsewhere finds it (see ``JobSpec.track``)."""
    path = path.resolve()
    for where, root in (("data", data), ("fma", fma)):
        if root is not None and path.is_relative_to(root.resolve()):
            return f"{where}:{path.relative_to(root.resolve()).as_posix()}"
    return str(path)


class JobStatus(tp.Protocol):
    """Where a running job reports (the server's SQLite, or Redis)."""

    def start(self) -> bool:
        """Mark the job running; False if it is no longer this worker's to run."""

    def progress(self, fraction: float, stage: str) -> None: ...

    def claim(self, key: str) -> str:
        """'build' (this job builds the stems), 'done' (they exist) or 'wait' (another
        job builds them)."""

    def builder_progress(self, key: str) -> tuple[float, str] | None:
        """The progress of the job building ``key``'s stems, if known."""

    def built(self, key: str, manifest: dict) -> None: ...

    def build_failed(self, key: str) -> None: ...

    def done(self, cache_hit: bool) -> None: ...

    def fail(self, message: str, retryable: bool) -> None: ...


class _Throttle:
    """Passes progress on at most every 0.25 s (and always the final value), scaled into
    [lo, hi]."""

    def __init__(self, status: JobStatus, lo: float = 0.0, hi: float = 1.0):
        self.status, self.lo, self.hi = status, lo, hi
        self.last = 0.0

    def __call__(self, fraction: float, stage: str) -> None:
        now = time.monotonic()
        if now - self.last < 0.25 and fraction < 1.0:
            return
        self.last = now
        self.status.progress(self.lo + (self.hi - self.lo) * min(max(fraction, 0.0), 1.0),
                             stage)


def run_separation(spec: JobSpec, root: Path, song: Path, status: JobStatus, *,
                   poll_s: float = 0.2) -> bool:
    """Separate ``song`` into ``root/stems/<cache key>`` (or reuse those stems) and link them
    into ``root/jobs/<id>/stems``, reporting to ``status``. Returns whether the job finished.
    Errors are reported as failures: a ToolkitError (the song, the weights) is final, anything
    else may be retried."""
    try:
        if not status.start():
            return False                # retried elsewhere, or no longer queued
        progress = _Throttle(status, 0.0, 0.97)
        hit = False
        while True:
            decision = status.claim(spec.cache_key)
            if decision == "build":
                try:
                    manifest = _build_stems(spec, root, song, progress)
                except BaseException:
                    status.build_failed(spec.cache_key)
                    raise
                status.built(spec.cache_key, manifest)
                break
            if decision == "done":
                hit = True
                break
            other = status.builder_progress(spec.cache_key)
            if other is not None:
                progress(other[0], f"waiting: {other[1]}")
            time.sleep(poll_s)
        _link_stems(root / "stems" / spec.cache_key, root / "jobs" / spec.id / "stems")
        progress(1.0, "analysing")
        status.done(hit)
        return True
    except ToolkitError as e:
        status.fail(str(e), False)
    except Exception as e:
        log.exception("separation job %s failed", spec.id)
        status.fail(f"{type(e).__name__}: {e}", True)
    return False


def run_job(spec: JobSpec, data: Path, fma: Path | None, status: JobStatus) -> bool:
    """Find the job's song on this machine (see ``JobSpec.track``) and run it; a song that
    cannot be found fails the job with a message."""
    try:
        song = spec.track_file(data, fma)
    except ToolkitError as e:
        if status.start():
            status.fail(str(e), False)
        return False
    return run_separation(spec, data / "mixer", song, status)


def _build_stems(spec: JobSpec, root: Path, song: Path, progress: _Throttle) -> dict:
    final = root / "stems" / spec.cache_key
    tmp = root / "stems" / f".build-{spec.cache_key}-{spec.id}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        manifest = separate(song, tmp, backend=spec.backend, model=spec.model,
                            repo=spec.demucs_repo, progress=lambda f, s: progress(0.9 * f, s))
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


# ---------------------------------------------------------------------------------------------
# Redis: the status of jobs run by workers on other machines

def status_key(job_id: str, attempt: int) -> str:
    return f"{REDIS_PREFIX}job:{job_id}:{attempt}"


def lock_key(key: str) -> str:
    return f"{REDIS_PREFIX}stems:{key}"


def register_task(huey, run: tp.Callable[[dict], None]):
    """The separation task on ``huey``, running ``run(spec dict)``. Huey names a task after
    the module of its function, so the server and the workers register it here, under one
    name."""
    def mixer_separate(spec: dict) -> None:
        run(spec)
    return huey.task(name=TASK)(mixer_separate)


def redis_huey(url: str):
    """The Huey instance of the Redis queue (priorities need Redis 5 or later)."""
    try:
        import redis  # noqa: F401
        from huey import PriorityRedisHuey
    except ImportError:
        raise ToolkitError("--redis needs the 'redis' package: pip install redis") from None
    return PriorityRedisHuey(name=HUEY_NAME, url=url)


class RedisStatus:
    """A job's status as a Redis hash (``status_key``): state, stage, progress, message,
    retryable, cache_hit, started, finished, heartbeat; written by the worker only."""

    def __init__(self, conn, spec: JobSpec, root: Path):
        self.r, self.spec, self.root = conn, spec, root
        self.key = status_key(spec.id, spec.attempt)
        self.me = f"{spec.id}:{spec.attempt}"
        self._locks: set[str] = set()
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None

    def _set(self, **fields) -> None:
        self.r.hset(self.key, mapping={k: json.dumps(v) for k, v in fields.items()})
        self.r.expire(self.key, int(STATUS_TTL_S))

    def start(self) -> bool:
        if not self.r.hsetnx(self.key, "state", json.dumps("running")):
            return False                # this try already ran (a redelivered message)
        now = time.time()
        self._set(started=now, heartbeat=now, stage="starting", progress=0.0,
                  worker=f"{socket.gethostname()}:{os.getpid()}")
        self._beat = threading.Thread(target=self._heartbeat, daemon=True,
                                      name=f"heartbeat-{self.spec.id}")
        self._beat.start()
        return True

    def _heartbeat(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            try:
                self.r.hset(self.key, "heartbeat", json.dumps(time.time()))
                for lock in list(self._locks):
                    if self.r.get(lock_key(lock)) == self.me.encode():
                        self.r.pexpire(lock_key(lock), int(LOCK_TTL_S * 1000))
            except Exception:           # Redis away for a moment: the next beat tries again
                log.warning("heartbeat of job %s failed", self.spec.id, exc_info=True)

    def _end(self) -> None:
        self._stop.set()
        if self._beat is not None:
            self._beat.join(timeout=5)

    def progress(self, fraction: float, stage: str) -> None:
        self._set(progress=round(float(fraction), 4), stage=stage)

    def claim(self, key: str) -> str:
        if (self.root / "stems" / key / "stems.json").is_file():
            return "done"
        if self.r.set(lock_key(key), self.me, nx=True, px=int(LOCK_TTL_S * 1000)) or \
                self.r.get(lock_key(key)) == self.me.encode():
            self._locks.add(key)
            return "build"
        return "wait"

    def builder_progress(self, key: str) -> tuple[float, str] | None:
        holder = self.r.get(lock_key(key))
        if holder is None:
            return None
        job_id, _, attempt = holder.decode().rpartition(":")
        h = self.r.hmget(status_key(job_id, int(attempt)), "progress", "stage")
        if h[0] is None:
            return None
        return float(json.loads(h[0])), json.loads(h[1] or '""')

    def _release(self, key: str) -> None:
        if self.r.get(lock_key(key)) == self.me.encode():
            self.r.delete(lock_key(key))
        self._locks.discard(key)

    def built(self, key: str, manifest: dict) -> None:
        self._release(key)

    def build_failed(self, key: str) -> None:
        self._release(key)

    def done(self, cache_hit: bool) -> None:
        self._end()
        self._set(state="done", progress=1.0, stage="done", cache_hit=cache_hit,
                  finished=time.time())

    def fail(self, message: str, retryable: bool) -> None:
        self._end()
        for key in list(self._locks):
            self._release(key)
        self._set(state="failed", message=message[:1000], retryable=retryable,
                  finished=time.time())


def read_status(conn, job_id: str, attempt: int) -> dict:
    """A job's status hash as a dict (empty while no worker has started it)."""
    return {k.decode(): json.loads(v) for k, v in conn.hgetall(status_key(job_id,
                                                                         attempt)).items()}


def run_worker(redis_url: str, data: str | os.PathLike, *, fma: str | os.PathLike | None = None,
               workers: int = 1) -> None:
    """Take separation jobs from the Redis queue until stopped (Ctrl-C, SIGTERM)."""
    data_dir = Path(data).resolve()
    fma_dir = Path(fma).resolve() if fma else None
    root = data_dir / "mixer"
    if not root.is_dir():
        raise ToolkitError(f"{root} not found: --data must be the server's data folder (a "
                           "shared mount)")
    huey = redis_huey(redis_url)

    def separate_task(spec: dict) -> None:
        job = JobSpec.from_dict(spec)
        run_job(job, data_dir, fma_dir, RedisStatus(huey.storage.conn, job, root))

    register_task(huey, separate_task)

    log.info("worker for %s on %s (data %s)", HUEY_NAME, redis_url, data_dir)
    huey.create_consumer(workers=workers, worker_type="thread", periodic=False).run()
