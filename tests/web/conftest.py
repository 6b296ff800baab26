"""What the API tests share: a playground app on the sample set and its runs, a client,
upload helpers, and a finished separation of a track."""

from __future__ import annotations

import io
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from deepaudio.web.catalog import resolve_track_path
from deepaudio.web.db import connect


@pytest.fixture(scope="module")
def app(sample_set, playground_models, tmp_path_factory, make_app):
    return make_app(tmp_path_factory.mktemp("data"), sample_set, playground_models)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture(scope="module")
def first_track(app):
    return app.test_client().get("/api/tracks?per_page=1").json["items"][0]


def _wav_bytes(seconds=1.0, sr=22050, freq=440.0, fmt="WAV", subtype=None) -> bytes:
    t = np.arange(int(seconds * sr)) / sr
    buf = io.BytesIO()
    sf.write(buf, 0.3 * np.sin(2 * np.pi * freq * t), sr, format=fmt, subtype=subtype)
    return buf.getvalue()


def _upload(client, data: bytes, name="song.wav"):
    return client.post("/api/tracks", data={"file": (io.BytesIO(data), name)},
                       content_type="multipart/form-data")


def _path_of(app, track_id):
    con = connect(app.config["DB_PATH"])
    try:
        row = con.execute("SELECT * FROM tracks WHERE id = ?", (track_id,)).fetchone()
    finally:
        con.close()
    return resolve_track_path(row, Path(app.config["DATA_DIR"]))


@pytest.fixture(scope="session")
def wav_bytes():
    """``wav_bytes(seconds=1.0, sr=22050, freq=440.0, fmt="WAV", subtype=None)``: a tone file."""
    return _wav_bytes


@pytest.fixture(scope="session")
def upload():
    """``upload(client, data, name="song.wav")``: POST /api/tracks with the file."""
    return _upload


@pytest.fixture(scope="session")
def path_of():
    """``path_of(app, track_id)``: a track's audio file."""
    return _path_of


def _separate(client, track_id: str, backend: str = "dsp", timeout: float = 120.0) -> dict:
    job = client.post("/api/mixer/jobs", json={"track_id": track_id, "backend": backend}).json
    deadline = time.monotonic() + timeout
    while job["state"] not in ("done", "failed"):
        assert time.monotonic() < deadline, job
        time.sleep(0.1)
        job = client.get(f"/api/mixer/jobs/{job['id']}").json
    assert job["state"] == "done", job
    return job


@pytest.fixture(scope="session")
def separate():
    """``separate(client, track_id, backend="dsp")``: a stem mixer job for the track, waited
    for until done (asserted); the job's JSON."""
    return _separate
