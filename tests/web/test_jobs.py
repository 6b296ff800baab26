"""The job runner: a fair share of the workers per user (a limit, then round-robin), and
separation on worker processes that share only the data folder and a Redis server with the
web node, one of them killed mid-job."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import soundfile as sf

from deepaudio.core.errors import ToolkitError
from deepaudio.mixer import jobs as mixer_jobs
from deepaudio.mixer.jobs import lock_key, status_key
from deepaudio.web.db import connect
from deepaudio.web.jobs import JobLimitError, JobQueue, shutdown

ROOT = Path(__file__).resolve().parents[2]


def _queue(tmp_path, **kw) -> tuple[JobQueue, object]:
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    queue = JobQueue(data / "playground.sqlite", data / "mixer", consume=False, **kw)
    return queue, connect(data / "playground.sqlite")


def _submit(queue, con, user: str, track: str = "t" * 20) -> str:
    return queue.submit(con, user_id=user, track_id=track, track_path="/songs/x.flac",
                        backend="dsp", model="htdemucs")


def test_each_users_first_job_runs_before_anyones_second(tmp_path):
    """Eight jobs could not hold up another user's one: a user has at most three queued or
    running, and the queue hands out every user's first job before anyone's second."""
    queue, con = _queue(tmp_path, max_jobs_per_user=3)
    a = [_submit(queue, con, "alice") for _ in range(3)]
    with pytest.raises(JobLimitError) as refused:
        _submit(queue, con, "alice")
    assert refused.value.status == 429 and "3 separation jobs" in refused.value.message
    b = _submit(queue, con, "bob")
    c = [_submit(queue, con, "carol") for _ in range(2)]
    order = []
    while (task := queue.huey.dequeue()) is not None:
        order.append(task.args[0]["id"])
    assert order == [a[0], b, c[0], a[1], c[1], a[2]]
    assert con.execute("SELECT COUNT(*) FROM mixer_jobs").fetchone()[0] == 6   # none stored


def test_a_lane_runs_its_jobs_one_at_a_time_beside_the_others(tmp_path):
    """A music video renders in the "video" lane: while one holds the lane (and the next
    waits behind it), the web node's other jobs still run, on both runners' threads."""
    data = tmp_path / "data"
    data.mkdir()
    queue = JobQueue(data / "playground.sqlite", data / "mixer", workers=1)
    try:
        release, ran = threading.Event(), []
        lock = threading.Lock()
        running = [0, 0]                                  # now, most at once

        def video(payload):
            with lock:
                running[0] += 1
                running[1] = max(running)
            release.wait(60)
            with lock:
                running[0] -= 1
            ran.append(payload["id"])

        render = queue.local_task("test_video", video, lane="video")
        other = queue.local_task("test_other", lambda payload: ran.append(payload["id"]))
        render({"id": "v1"})
        render({"id": "v2"})
        deadline = time.monotonic() + 30
        while running[0] == 0:
            assert time.monotonic() < deadline, "the render did not start"
            time.sleep(0.02)
        other({"id": "crossfade"})
        while "crossfade" not in ran:
            assert time.monotonic() < deadline, "a render held up the other jobs"
            time.sleep(0.02)
        assert ran == ["crossfade"]
        release.set()
        while len(ran) < 3:
            assert time.monotonic() < deadline, "the second render did not run"
            time.sleep(0.02)
        assert ran == ["crossfade", "v1", "v2"] and running[1] == 1
    finally:
        release.set()
        queue.stop()


def test_the_limit_answers_429_and_frees_as_jobs_end(sample_set, tmp_path, make_app,
                                                    monkeypatch):
    started, release = threading.Semaphore(0), threading.Event()

    def held(*args, **kwargs):              # a separation that runs until the test ends it
        started.release()
        release.wait(60)
        raise ToolkitError("stopped by the test")

    monkeypatch.setattr(mixer_jobs, "separate", held)
    app = make_app(tmp_path / "data", sample_set, tmp_path / "none", max_jobs_per_user=2)
    try:
        alice, bob = app.test_client(), app.test_client()
        tracks = [t["id"] for t in alice.get("/api/tracks?per_page=4").json["items"]]
        for t in tracks[:2]:
            assert alice.post("/api/mixer/jobs", json={"track_id": t}).status_code == 202
        r = alice.post("/api/mixer/jobs", json={"track_id": tracks[2]})
        assert r.status_code == 429 and r.headers["Retry-After"] == "10"
        assert "2 separation jobs queued or running" in r.json["error"]
        assert bob.post("/api/mixer/jobs", json={"track_id": tracks[3]}).status_code == 202
        assert started.acquire(timeout=30)
        release.set()
        deadline = time.monotonic() + 60
        while any(j["state"] in ("queued", "running")
                  for j in alice.get("/api/mixer/jobs").json["items"]):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert alice.post("/api/mixer/jobs", json={"track_id": tracks[2]}).status_code == 202
    finally:
        release.set()
        shutdown(app)


def test_a_lost_worker_is_retried_then_failed_cleanly(tmp_path, redis_url):
    """The monitor's side, with a worker that starts jobs and then goes silent."""
    import redis
    queue, con = _queue(tmp_path, redis_url=redis_url, heartbeat_timeout=5, max_attempts=2)
    r = redis.Redis.from_url(redis_url)
    job = _submit(queue, con, "alice")
    row = lambda: con.execute("SELECT * FROM mixer_jobs WHERE id = ?", (job,)).fetchone()  # noqa
    queue.sync(con)
    assert row()["state"] == "queued"                     # no worker has it yet
    old = time.time() - 60

    def silent_worker(attempt: int, **fields) -> None:
        r.hset(status_key(job, attempt), mapping={k: json.dumps(v) for k, v in {
            "state": "running", "progress": 0.3, "stage": "separating", "started": old,
            "heartbeat": old, **fields}.items()})

    silent_worker(0)
    r.set(lock_key(row()["cache_key"]), f"{job}:0")
    queue.sync(con)
    assert (row()["state"], row()["attempt"]) == ("queued", 1)
    assert r.get(lock_key(row()["cache_key"])) is None    # its stem lock is given up
    silent_worker(1, heartbeat=time.time())               # alive: its status is copied
    queue.sync(con)
    assert (row()["state"], row()["progress"], row()["stage"]) == ("running", 0.3, "separating")
    silent_worker(1)
    queue.sync(con)
    assert row()["state"] == "failed" and row()["retryable"] == 1
    assert "worker running this job stopped" in row()["message"]
    queue.retry(con, job)                                 # a retry is a new attempt
    assert (row()["state"], row()["attempt"]) == ("queued", 2)
    silent_worker(2, state="failed", message="/srv/secret/uploads/x.flac: not audio",
                  heartbeat=time.time(), retryable=False)
    queue.sync(con)
    assert row()["state"] == "failed" and "/srv" not in row()["message"]


def _worker(tmp_path: Path, name: str, url: str, data: Path, fma: Path) -> subprocess.Popen:
    log = open(tmp_path / f"{name}.log", "w")
    return subprocess.Popen([sys.executable, "mixer_api.py", "worker", "--redis", url,
                             "--data", str(data), "--fma", str(fma), "--workers", "1"],
                            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})


def _open_files(pid: int) -> list[str]:
    folder = Path(f"/proc/{pid}/fd")
    return [os.readlink(f) for f in folder.iterdir()] if folder.is_dir() else []


def test_workers_on_other_machines_separate_and_survive_a_kill(sample_set, tmp_path, make_app,
                                                              redis_url, long_song):
    """Two worker processes that share only the data folder and Redis with the web app
    separate a sample track and an upload; the worker running the upload is killed mid-job
    and the other one finishes it as a second attempt."""
    import redis
    data = tmp_path / "data"
    app = make_app(data, sample_set, tmp_path / "none", redis_url=redis_url,
                   worker_heartbeat_timeout=5)
    workers = [_worker(tmp_path, f"worker{k}", redis_url, data, sample_set) for k in (0, 1)]
    try:
        client = app.test_client()
        sample = client.get("/api/tracks?per_page=1").json["items"][0]["id"]
        song = long_song(tmp_path / "song.flac", 0.5)
        with open(song, "rb") as f:
            r = client.post("/api/mixer/jobs", data={"file": (f, "song.flac")},
                            content_type="multipart/form-data")
        assert r.status_code == 202, r.json
        upload = r.json["id"]
        first = client.post("/api/mixer/jobs", json={"track_id": sample}).json["id"]

        def job(job_id):
            return client.get(f"/api/mixer/jobs/{job_id}").json

        deadline = time.monotonic() + 120
        while not (job(upload)["state"] == "running" and job(upload)["progress"] > 0.05):
            assert time.monotonic() < deadline, (job(upload), (tmp_path / "worker0.log")
                                                 .read_text()[-2000:])
            time.sleep(0.1)
        status = redis.Redis.from_url(redis_url).hget(status_key(upload, 0), "worker")
        pid = int(json.loads(status).rsplit(":", 1)[1])
        victim = next(w for w in workers if w.pid == pid)
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=30)
        deadline = time.monotonic() + 180
        while job(upload)["state"] != "done" or job(first)["state"] != "done":
            assert job(upload)["state"] != "failed", job(upload)
            assert time.monotonic() < deadline, (job(upload), job(first))
            time.sleep(0.2)
        con = connect(data / "playground.sqlite")
        assert con.execute("SELECT attempt FROM mixer_jobs WHERE id = ?",
                           (upload,)).fetchone()[0] == 1
        for job_id in (upload, first):
            stems = job(job_id)["stems"]
            assert set(stems) == {"drums", "bass", "other", "vocals"}
            assert client.get(stems["vocals"]["lossless"]).data[:4] == b"fLaC"
        info = sf.info(str(data / "mixer" / "jobs" / upload / "stems" / "vocals.flac"))
        assert info.duration == pytest.approx(30.0, abs=0.1)
        assert not list((data / "mixer" / "stems").glob(".build-*"))      # no leftovers
        survivor = next(w for w in workers if w is not victim)
        assert survivor.poll() is None
        assert not [f for f in _open_files(survivor.pid) if "playground.sqlite" in f]
        suggestions = client.get(f"/api/mixer/jobs/{upload}/suggestions")
        assert suggestions.status_code == 200          # analysed on the web node
    finally:
        for w in workers:
            if w.poll() is None:
                w.send_signal(signal.SIGTERM)
        for w in workers:
            try:
                w.wait(timeout=30)
            except subprocess.TimeoutExpired:
                w.kill()
        shutdown(app)
