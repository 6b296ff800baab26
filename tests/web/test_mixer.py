"""The mixer blueprint through the real app (api.create_app) and Flask's test client: job
lifecycle on the embedded Huey queue, caching, isolation between users, restart, exports,
saved mixes and suggestions, bad input."""

from __future__ import annotations

import io
import json
import time

import numpy as np
import pyloudnorm as pyln
import pytest
import soundfile as sf

from deepaudio.data.samples import render_track
from deepaudio.mixer.stems import STEMS
from deepaudio.web.db import connect
from deepaudio.web.jobs import shutdown

SR = 44100


def song_bytes(genre: str, tid: int, seconds: float = 5.0) -> tuple[bytes, np.ndarray]:
    stems, _ = render_track(genre, tid, seed=tid, seconds=seconds)
    mix = sum(stems.values())
    buf = io.BytesIO()
    sf.write(buf, mix.T, SR, format="WAV", subtype="PCM_16")
    return buf.getvalue(), mix


def upload_job(client, data: bytes, name="song.wav", **fields):
    return client.post("/api/mixer/jobs", data={"file": (io.BytesIO(data), name), **fields},
                       content_type="multipart/form-data")


def wait(client, job_id: str, timeout: float = 60.0) -> tuple[dict, list[dict]]:
    seen = []
    end = time.time() + timeout
    while time.time() < end:
        job = client.get(f"/api/mixer/jobs/{job_id}").json
        seen.append(job)
        if job["state"] in ("done", "failed"):
            return job, seen
        time.sleep(0.03)
    raise AssertionError(f"job {job_id} did not finish: {seen[-1]}")


@pytest.fixture(scope="module")
def demucs_repos(tmp_path_factory, make_demucs_repo):
    root = tmp_path_factory.mktemp("repos")
    bad = root / "bad"
    bad.mkdir()
    (bad / "tinyht.yaml").write_text("models: ['0a1b2c3d']\n")
    (bad / "0a1b2c3d-deadbeef.th").write_bytes(b"corrupt")
    return make_demucs_repo(root / "good"), bad


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("mixer_data")


@pytest.fixture(scope="module")
def app(data_dir, sample_set, tmp_path_factory, make_app):
    app = make_app(data_dir, sample_set, tmp_path_factory.mktemp("no_models"),
                   max_upload_mb=2.0)
    yield app
    shutdown(app)


@pytest.fixture(scope="module")
def finished(app):
    """One user's finished dsp job on a sample-set track."""
    client = app.test_client()
    track = client.get("/api/tracks?per_page=1").json["items"][0]
    r = client.post("/api/mixer/jobs", json={"track_id": track["id"], "backend": "dsp"})
    assert r.status_code == 202 and r.json["state"] == "queued"
    job, seen = wait(client, r.json["id"])
    return client, track, job, seen


def test_job_lifecycle_progress_and_stems(finished):
    client, track, job, seen = finished
    assert job["state"] == "done" and job["progress"] == 1.0 and not job["cache_hit"]
    states = [j["state"] for j in seen]
    assert set(states) <= {"queued", "running", "done"}
    assert states.index("done") == len(states) - 1
    progress = [j["progress"] for j in seen]
    assert progress == sorted(progress)
    running = [j for j in seen if j["state"] == "running" and 0 < j["progress"] < 1]
    assert running, "never saw the job running"
    assert job["started"] <= job["finished"] and job["duration"] == pytest.approx(6.0, abs=0.01)
    assert set(job["stems"]) == {"drums", "bass", "other", "vocals"}
    r = client.get(job["stems"]["vocals"]["preview"])
    assert r.status_code == 200 and r.mimetype == "audio/ogg" and r.data[:4] == b"OggS"
    r = client.get(job["stems"]["vocals"]["lossless"])
    assert r.status_code == 200 and r.data[:4] == b"fLaC"
    assert client.get(f"/api/mixer/jobs/{job['id']}/stems/vocals.wav").status_code == 404
    assert client.get(f"/api/mixer/jobs/{job['id']}/stems/../x.flac").status_code == 404
    mine = client.get("/api/mixer/jobs").json["items"]
    assert [j["id"] for j in mine] == [job["id"]]


def test_same_song_is_never_separated_twice_and_jobs_stay_private(app, finished, data_dir):
    owner, track, job, _ = finished
    other = app.test_client()
    assert other.get(f"/api/mixer/jobs/{job['id']}").status_code == 404
    assert other.get(job["stems"]["vocals"]["lossless"]).status_code == 404
    assert other.get("/api/mixer/jobs").json["items"] == []
    r = other.post("/api/mixer/jobs", json={"track_id": track["id"], "backend": "dsp"})
    second, _ = wait(other, r.json["id"])
    assert second["state"] == "done" and second["cache_hit"] and second["id"] != job["id"]
    a = data_dir / "mixer" / "jobs" / job["id"] / "stems" / "vocals.flac"
    b = data_dir / "mixer" / "jobs" / second["id"] / "stems" / "vocals.flac"
    assert a.read_bytes() == b.read_bytes()
    assert len(list((data_dir / "mixer" / "stems").iterdir())) == 1     # one separation


def test_two_users_separating_at_once_get_their_own_stems(app):
    users = [app.test_client(), app.test_client()]
    songs = [song_bytes("Hip-Hop", 11), song_bytes("Folk", 12)]
    ids = []
    for client, (data, _) in zip(users, songs):
        r = upload_job(client, data, backend="dsp")
        assert r.status_code == 202, r.json
        ids.append(r.json["id"])
    jobs = [wait(c, i)[0] for c, i in zip(users, ids)]
    assert all(j["state"] == "done" and not j["cache_hit"] for j in jobs)
    for k, (client, job) in enumerate(zip(users, jobs)):
        stems = [sf.read(io.BytesIO(client.get(job["stems"][s]["lossless"]).data))[0]
                 for s in job["stems"]]
        total = sum(stems).T
        own, other = songs[k][1], songs[1 - k][1]
        assert np.abs(total - own).max() < 1e-3          # the stems add up to *this* user's song
        assert np.abs(total - other).max() > 0.05
        assert users[1 - k].get(f"/api/mixer/jobs/{job['id']}").status_code == 404


def test_render_mix_export(finished):
    client, _, job, _ = finished
    url = f"/api/mixer/jobs/{job['id']}/mix"
    r = client.post(url, json={"gains": {"vocals": 3, "drums": -6}, "normalize": "lufs",
                               "format": "wav24"})
    assert r.status_code == 200 and r.mimetype == "audio/wav"
    assert "attachment" in r.headers["Content-Disposition"]
    report = json.loads(r.headers["X-Mix-Report"])
    audio, sr = sf.read(io.BytesIO(r.data))
    assert audio.shape == (int(6.0 * SR), 2) and sf.info(io.BytesIO(r.data)).subtype == "PCM_24"
    if not report.get("limited_by_true_peak"):
        assert pyln.Meter(sr).integrated_loudness(audio) == pytest.approx(-14, abs=0.5)
    for fmt, magic in (("flac", b"fLaC"), ("mp3", None)):
        r = client.post(url, json={"format": fmt, "mutes": ["drums"]})
        assert r.status_code == 200 and (magic is None or r.data[:4] == magic)
    for bad, status in (({"gains": {"vocals": 20}}, 400), ({"gains": {"kazoo": 1}}, 400),
                        ({"format": "aac"}, 400), ({"pans": {"bass": -3}}, 400)):
        r = client.post(url, json=bad)
        assert r.status_code == status and "error" in r.json, bad
    assert "[-60, 12]" in client.post(url, json={"gains": {"vocals": 20}}).json["error"]
    assert client.post(url, data="x", content_type="text/plain").status_code == 400


def test_bad_requests_are_4xx_json(app, finished, demucs_repos):
    client = app.test_client()
    assert client.get("/api/mixer/jobs/0123456789abcdef").status_code == 404
    assert client.get("/api/mixer/jobs/nope").status_code == 404
    r = client.post("/api/mixer/jobs", json={"track_id": "f" * 20})
    assert r.status_code == 404 and "unknown track" in r.json["error"]
    track = finished[1]["id"]
    assert client.post("/api/mixer/jobs", json={"track_id": track, "backend": "x"}
                       ).status_code == 400
    assert client.post("/api/mixer/jobs", json={"track_id": track, "model": "../x"}
                       ).status_code == 400
    assert client.post("/api/mixer/jobs", json={"track": track}).status_code == 400
    r = upload_job(client, b"this is not audio at all" * 10, name="x.mp3")
    assert r.status_code == 400 and "not an audio file" in r.json["error"]
    r = upload_job(client, b"RIFF" + b"\0" * (3 << 20))
    assert r.status_code == 413
    r = client.post("/api/mixer/jobs", json={"track_id": track, "backend": "demucs",
                                             "model": "htdemucs"})
    assert r.status_code == 409 and "not installed on this server" in r.json["error"]
    assert "/" not in r.json["error"]                               # no server paths
    r = client.post("/api/mixer/jobs", json={"track_id": track, "backend": "demucs",
                                             "model": "nosuchmodel"})
    assert r.status_code == 400 and "unknown Demucs model 'nosuchmodel'" in r.json["error"]


def test_failed_job_then_mix_is_refused(data_dir, sample_set, tmp_path, demucs_repos, make_app):
    good, bad = demucs_repos
    app = make_app(tmp_path / "data", sample_set, tmp_path / "m", demucs_repo=str(bad))
    try:
        client = app.test_client()
        track = client.get("/api/tracks?per_page=1").json["items"][0]["id"]
        r = client.post("/api/mixer/jobs", json={"track_id": track, "backend": "demucs",
                                                 "model": "tinyht"})
        job, _ = wait(client, r.json["id"])
        assert job["state"] == "failed" and "checksum" in job["message"]
        assert not job["retryable"]                     # broken weights: retrying cannot help
        r = client.post(f"/api/mixer/jobs/{job['id']}/mix", json={})
        assert r.status_code == 409 and "not ready" in r.json["error"]
        assert client.post(f"/api/mixer/jobs/{job['id']}/retry").status_code == 409
    finally:
        shutdown(app)
    app = make_app(tmp_path / "data2", sample_set, tmp_path / "m", demucs_repo=str(good))
    try:
        client = app.test_client()
        data, _ = song_bytes("Electronic", 5, seconds=3.0)
        r = upload_job(client, data, backend="demucs", model="tinyht")
        job, _ = wait(client, r.json["id"])
        assert job["state"] == "done" and job["model"] == "tinyht", job
    finally:
        shutdown(app)


def test_restart_keeps_finished_and_fails_interrupted_jobs(sample_set, tmp_path, make_app):
    models = tmp_path / "m"
    app = make_app(tmp_path / "data", sample_set, models)
    client = app.test_client()
    track = client.get("/api/tracks?per_page=1").json["items"][0]["id"]
    done, _ = wait(client, client.post("/api/mixer/jobs", json={"track_id": track}).json["id"])
    shutdown(app)
    # a job that was running when the server died
    con = connect(app.config["DB_PATH"])
    con.execute("INSERT INTO mixer_jobs (id, user_id, track_id, track_path, backend, model, "
                "cache_key, state, progress, created, started) SELECT 'aaaaaaaaaaaaaaaa', "
                "user_id, track_id, track_path, backend, model, cache_key || 'x', 'running', "
                "0.4, created, started FROM mixer_jobs WHERE id = ?", (done["id"],))
    con.close()
    app2 = make_app(tmp_path / "data", sample_set, models)
    try:
        client2 = app2.test_client()
        with client.session_transaction() as s:
            uid = s["uid"]
        with client2.session_transaction() as s:       # the same browser after the restart
            s["uid"] = uid
        again = client2.get(f"/api/mixer/jobs/{done['id']}").json
        assert again["state"] == "done"
        assert client2.get(again["stems"]["bass"]["lossless"]).status_code == 200
        lost = client2.get("/api/mixer/jobs/aaaaaaaaaaaaaaaa").json
        assert lost["state"] == "failed" and lost["retryable"] and "restart" in lost["message"]
        r = client2.post("/api/mixer/jobs/aaaaaaaaaaaaaaaa/retry")
        assert r.status_code == 202 and r.json["state"] == "queued"
        assert wait(client2, "aaaaaaaaaaaaaaaa")[0]["state"] == "done"
    finally:
        shutdown(app2)


def test_saved_mixes_and_suggestions(app, finished):
    client, track, job, _ = finished
    other = app.test_client()
    url = f"/api/mixer/jobs/{job['id']}/suggestions"
    neutral = client.get(url).json
    assert neutral["gains"] == {"drums": 0.0, "bass": 0.0, "other": 0.0, "vocals": 0.0}
    assert not neutral["trained"] and neutral["relative"]
    settings = {"gains": {"vocals": 6, "drums": -3}, "pans": {"bass": 0.2}, "normalize": "lufs"}
    ids = []
    for k in range(3):
        r = client.post("/api/mixer/mixes", json={"job_id": job["id"], "name": f"loud {k}",
                                                  "settings": settings})
        assert r.status_code == 201, r.json
        ids.append(r.json["id"])
    learned = client.get(url).json
    assert learned["trained"] and learned["n_examples"] == 3
    assert learned["gains"]["vocals"] > 1.0 and learned["gains"]["drums"] < 0
    assert other.get(url).status_code == 404                    # not their job
    assert [m["id"] for m in client.get("/api/mixer/mixes").json["items"]] == ids[::-1]
    pages = [client.get(f"/api/mixer/mixes?per_page=2&page={p}").json for p in (1, 2, 3)]
    assert [[m["id"] for m in p["items"]] for p in pages] == [ids[:0:-1], ids[:1], []]
    assert {p["total"] for p in pages} == {3} and pages[1]["page"] == 2
    bad_page = client.get("/api/mixer/mixes?per_page=0")
    assert bad_page.status_code == 400 and "per_page" in bad_page.json["error"]
    m = client.get(f"/api/mixer/mixes/{ids[0]}").json
    assert m["settings"] == settings and m["job"]["id"] == job["id"]
    assert m["job"]["stems"]["vocals"] == job["stems"]["vocals"]      # reopens the right stems
    assert other.get(f"/api/mixer/mixes/{ids[0]}").status_code == 404
    assert other.delete(f"/api/mixer/mixes/{ids[0]}").status_code == 404
    assert other.get("/api/mixer/mixes").json["items"] == []
    bad = client.post("/api/mixer/mixes", json={"job_id": job["id"], "name": "x",
                                                "settings": {"gains": {"vocals": 99}}})
    assert bad.status_code == 400
    assert client.post("/api/mixer/mixes", json={"job_id": "0" * 16, "name": "x",
                                                 "settings": {}}).status_code == 404
    r = client.delete(f"/api/mixer/mixes/{ids[0]}")
    assert r.status_code == 200 and r.json["retrained_on"] == 2
    assert client.get(url).json["n_examples"] == 2
    for mix_id in ids[1:]:
        client.delete(f"/api/mixer/mixes/{mix_id}")
    assert not client.get(url).json["trained"]                   # back to neutral


def test_refused_job_stores_no_upload(app, data_dir):
    client = app.test_client()
    data, _ = song_bytes("Rock", 7, seconds=2.0)
    files = lambda: sorted((data_dir / "uploads").glob("*"))  # noqa: E731
    before = files()
    r = upload_job(client, data, backend="nonsense")
    assert r.status_code == 400 and "backend" in r.json["error"]
    assert files() == before
    assert client.get("/api/tracks?source=upload").json["items"] == []


def test_resave_solo_and_silent_report(app, finished):
    client, _, job, _ = finished
    user = app.test_client()          # a fresh user: their own preference model
    r = user.post("/api/mixer/jobs", json={"track_id": job["track_id"], "backend": "dsp"})
    mine, _ = wait(user, r.json["id"])
    url = f"/api/mixer/jobs/{mine['id']}/suggestions"
    solo = {"solos": ["vocals"], "gains": {"vocals": 0}}
    for _ in range(2):                # saving the same name again replaces, never counts twice
        r = user.post("/api/mixer/mixes", json={"job_id": mine["id"], "name": "solo",
                                                "settings": solo})
        assert r.status_code in (200, 201)
    assert len(user.get("/api/mixer/mixes").json["items"]) == 1
    learned = user.get(url).json
    assert learned["n_examples"] == 1
    # a vocals solo teaches "vocals far above the rest", not "all stems at 0 dB"
    g = learned["gains"]
    assert g["vocals"] > max(g["drums"], g["bass"], g["other"]) + 1.0
    # silence has no loudness: the report says null, and stays valid JSON
    r = user.post(f"/api/mixer/jobs/{mine['id']}/mix",
                  json={"mutes": ["drums", "bass", "other", "vocals"], "normalize": "lufs"})
    assert r.status_code == 200
    header = r.headers["X-Mix-Report"]
    assert "Infinity" not in header and "NaN" not in header       # strict JSON for browsers
    assert json.loads(header)["input_lufs"] is None


def test_auto_backend_fetches_demucs_in_the_job_or_falls_back(sample_set, tmp_path, make_app,
                                                             demucs_hub, monkeypatch):
    """The server's default backend, auto: online, a job for a model whose weights are not
    here runs Demucs and fetches them first (its stage says so); offline, the job runs the DSP
    separator and says why; asking for demucs offline without weights is a 409."""
    app = make_app(tmp_path / "data", sample_set, tmp_path / "models",
                   demucs_model=demucs_hub.model)
    try:
        client = app.test_client()
        track = client.get("/api/tracks?per_page=1").json["items"][0]["id"]
        r = client.post("/api/mixer/jobs", json={"track_id": track})
        assert r.status_code == 202, r.json
        assert r.json["backend"] == "demucs" and "hub" in r.json["backend_reason"]
        job, seen = wait(client, r.json["id"], timeout=120)
        assert job["state"] == "done", job
        assert any(s["stage"].startswith("fetching weights") for s in seen) or \
            any(path.endswith(".safetensors") for path, _ in demucs_hub.requests)
        assert sorted(job["stems"]) == sorted(STEMS)
        # offline: auto is dsp, and explicit demucs for a model not here is refused
        monkeypatch.setenv("DEEPAUDIO_OFFLINE", "1")
        r = client.post("/api/mixer/jobs", json={"track_id": track, "model": "htdemucs"})
        assert r.status_code == 202 and r.json["backend"] == "dsp"
        assert "fetching is off" in r.json["backend_reason"]
        wait(client, r.json["id"])
        r = client.post("/api/mixer/jobs", json={"track_id": track, "backend": "demucs",
                                                 "model": "htdemucs"})
        assert r.status_code == 409 and "fetching is off" in r.json["error"]
    finally:
        shutdown(app)


def test_a_six_stem_model_mixes_with_six_stems(sample_set, tmp_path, make_app,
                                               make_demucs_repo):
    """Whatever stems the model returns: a six-stem model (htdemucs_6s's drums, bass, other,
    vocals, guitar, piano) gives six stems to hear, mix, export and save; suggestions keep the
    two the network never learned at 0 dB, and a mix of them is saved but not learned from."""
    six = ("drums", "bass", "other", "vocals", "guitar", "piano")
    repo = make_demucs_repo(tmp_path / "repo", name="tiny6", sources=six)
    app = make_app(tmp_path / "data", sample_set, tmp_path / "models", demucs_repo=str(repo),
                   demucs_model="tiny6")
    try:
        client = app.test_client()
        track = client.get("/api/tracks?per_page=1").json["items"][0]["id"]
        r = client.post("/api/mixer/jobs", json={"track_id": track, "backend": "demucs"})
        assert r.status_code == 202, r.json
        job, _ = wait(client, r.json["id"], timeout=120)
        assert job["state"] == "done", job
        assert sorted(job["stems"]) == sorted(six)
        assert client.get(job["stems"]["guitar"]["preview"]).status_code == 200
        assert client.get(f"/api/mixer/jobs/{job['id']}/stems/banjo.ogg").status_code == 404
        settings = {"gains": {"guitar": -6.0, "piano": 3.0}, "mutes": ["vocals"],
                    "format": "wav16"}
        mix = client.post(f"/api/mixer/jobs/{job['id']}/mix", json=settings)
        assert mix.status_code == 200, mix.data[:200]
        x, sr = sf.read(io.BytesIO(mix.data))
        assert x.shape[1] == 2 and np.abs(x).max() > 1e-3
        saved = client.post("/api/mixer/mixes", json={"job_id": job["id"], "name": "six",
                                                       "settings": settings})
        assert saved.status_code == 201, saved.json
        bad = client.post("/api/mixer/mixes", json={"job_id": job["id"], "name": "x",
                                                     "settings": {"gains": {"banjo": 1.0}}})
        assert bad.status_code == 400 and "banjo" in bad.json["error"]
        s = client.get(f"/api/mixer/jobs/{job['id']}/suggestions").json
        assert sorted(s["gains"]) == sorted(six) and s["gains"]["guitar"] == 0.0
        assert not s["trained"]                     # a six-stem mix teaches nothing yet
    finally:
        shutdown(app)
