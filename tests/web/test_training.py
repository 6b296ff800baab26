"""Training an encoder on a user's own songs as a job (/api/training): too few uploads is a
clear 400; ten uploads train the real-folder recipe with progress to a run that the
visualizer offers to its owner, and to no one else; one job at a time per user; bad bodies
are 400s."""

from __future__ import annotations

import io
import time

import pytest

from deepaudio.core.audio import save_audio
from deepaudio.data.samples import STYLES, render_track


def wait_training(client, job_id: str, timeout: float = 300.0) -> dict:
    deadline = time.monotonic() + timeout
    stages = set()
    while time.monotonic() < deadline:
        job = client.get(f"/api/training/{job_id}").json
        stages.add(job["stage"])
        if job["state"] in ("done", "failed"):
            return {**job, "stages_seen": stages}
        time.sleep(0.1)
    raise AssertionError(f"training job {job_id} did not finish in {timeout} s")


@pytest.fixture(scope="module")
def trained(app, tmp_path_factory):
    """User A uploads ten songs of their own (8 s, OGG, made by the sample generator with
    another seed) and trains a model on them."""
    a = app.test_client()
    folder = tmp_path_factory.mktemp("my-songs")
    songs = []
    for i, genre in enumerate(list(STYLES) * 2):
        if len(songs) == 10:
            break
        stems, _ = render_track(genre, 100 + i, seed=7, seconds=8.0, sr=22050)
        songs.append(save_audio(folder / f"s{i}.ogg", sum(stems.values()), 22050))
    few = a.post("/api/training", json={"name": "mine"})
    assert few.status_code == 400 and "at least 10 uploaded songs" in few.json["error"]
    assert few.json["error"].endswith("you have 0")
    for path in songs:
        r = a.post("/api/tracks", data={"file": (io.BytesIO(path.read_bytes()), path.name)},
                   content_type="multipart/form-data")
        assert r.status_code in (200, 201), r.json
    res = a.post("/api/training", json={"name": "My songs!"})
    assert res.status_code == 202, res.json
    job = res.json
    again = a.post("/api/training", json={"name": "again"})
    assert again.status_code in (202, 429)      # 429 while the first is queued or running
    if again.status_code == 202:                # (the first may have finished already)
        assert wait_training(a, again.json["id"])["state"] == "done"
    return a, wait_training(a, job["id"])


def test_ten_uploads_train_a_model_offered_to_its_owner_only(app, trained):
    a, job = trained
    assert job["state"] == "done", job
    assert job["songs"] == 10 and job["run"].endswith("/My-songs")
    assert {"features", "training"} <= job["stages_seen"]
    assert 0 < job["test"]["mse_ratio_to_baseline"] and 0 < job["test"][
        "pca_mse_ratio_to_baseline"] < 1
    mine = {m["id"]: m for m in a.get("/api/models").json["models"]}
    assert job["run"] in mine and mine[job["run"]]["kind"] == "autoencoder"
    assert mine[job["run"]]["test_metrics"]["pca_components"] == 10
    track = a.get("/api/tracks?source=mine&per_page=1").json["items"][0]["id"]
    feats = a.get(f"/api/tracks/{track}/features?run={job['run']}")
    assert feats.status_code == 200, feats.json
    # another user: not listed, not usable, the job unknown
    b = app.test_client()
    assert job["run"] not in {m["id"] for m in b.get("/api/models").json["models"]}
    sample = b.get("/api/tracks?per_page=1").json["items"][0]["id"]
    assert b.get(f"/api/tracks/{sample}/features?run={job['run']}").status_code == 404
    assert b.get(f"/api/training/{job['id']}").status_code == 404
    assert b.get("/api/training").json["jobs"] == []
    assert [j["id"] for j in a.get("/api/training").json["jobs"]][-1] == job["id"]


@pytest.mark.parametrize("body, message", [
    ({"name": ""}, "'name' must be a text of 1 to 60"),
    ({"name": "x" * 61}, "'name' must be a text of 1 to 60"),
    ({"name": 5}, "'name' must be a text"),
    ({"source": "disk"}, "'source' must be 'uploads'"),
    ({"source": "folder"}, "this server has no training folder"),
    ({"name": "a", "epochs": 3}, "unknown key 'epochs'"),
])
def test_bad_requests_are_400s(app, body, message):
    res = app.test_client().post("/api/training", json=body)
    assert res.status_code == 400 and message in res.json["error"]


def test_unknown_job_ids_are_404s(app):
    c = app.test_client()
    for job in ("0123456789abcdef", "../../etc", "x" * 100):
        assert c.get(f"/api/training/{job}").status_code == 404


def test_runs_are_listed_while_a_training_job_removes_its_work_folder(tmp_path, monkeypatch):
    """A work folder that vanishes while the runs are listed (a training job ending in another
    thread) is skipped, not a 500; the order stays rglob's (nested runs before their parent's
    later siblings)."""
    import os

    from deepaudio.web.runs import _run_folders, list_runs
    for rel in ("a", "a/b", "a-b", "users/x/work"):
        (tmp_path / rel).mkdir(parents=True)
        (tmp_path / rel / "config.json").write_text("{}")
    assert _run_folders(tmp_path) == [p.parent for p in sorted(tmp_path.rglob("config.json"))]
    scandir = os.scandir

    def vanishing(path="."):
        if str(path).endswith("users/x"):
            raise FileNotFoundError(2, "No such file or directory", str(path))
        return scandir(path)

    monkeypatch.setattr(os, "scandir", vanishing)
    assert tmp_path / "users/x/work" not in _run_folders(tmp_path)
    assert list_runs(tmp_path) == []            # none has weights; and no error
