"""Schemathesis against a live server, from docs/openapi.json: generated requests for every
operation (coverage, fuzzing, and the stateful phase that follows the spec's links), checking
that no input gives a 5xx, and that status codes, content types and bodies are the documented
ones. A user's real ids (a sample track, a finished separation, a saved mix, a crossfade, a
training job) and session cookie are given to Schemathesis, so every operation reaches its
logic, not a 404."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf

SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"
CHECKS = ("not_a_server_error,status_code_conformance,content_type_conformance,"
          "response_schema_conformance")
FADE = {"style": "equal_power", "seconds": 1.0, "context": 0.5, "measures": False}


class _Errors(logging.Handler):
    """The server's own account of every 5xx (its log has the traceback)."""

    def __init__(self):
        super().__init__(logging.ERROR)
        self.seen: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.seen.append(self.format(record))


def _real_ids(client) -> dict:
    """A sample track, a finished DSP separation of it, a saved mix, a crossfade, a training
    job and a video job."""
    tracks = client.get("/api/tracks?source=fma&per_page=2").json["items"]
    job = client.post("/api/mixer/jobs", json={"track_id": tracks[0]["id"], "backend": "dsp"})
    job_id = job.json["id"]
    deadline = time.monotonic() + 120
    while client.get(f"/api/mixer/jobs/{job_id}").json["state"] != "done":
        assert time.monotonic() < deadline, "the separation did not finish"
        time.sleep(0.1)
    mix = client.post("/api/mixer/mixes", json={"job_id": job_id, "name": "fuzz",
                                                "settings": {"gains": {"vocals": 3}}})
    fade = client.post("/api/crossfade", json={"track_a": tracks[0]["id"],
                                               "track_b": tracks[1]["id"], **FADE})
    # a training job on ten uploads of the user's own (done or failed, it has an id)
    for k in range(10):
        t = np.arange(22050) / 22050
        buf = io.BytesIO()
        sf.write(buf, 0.3 * np.sin(2 * np.pi * (200 + 37 * k) * t), 22050, format="WAV")
        client.post("/api/tracks", data={"file": (io.BytesIO(buf.getvalue()), f"t{k}.wav")},
                    content_type="multipart/form-data")
    training = client.post("/api/training", json={"name": "fuzz"}).json["id"]
    while client.get(f"/api/training/{training}").json["state"] in ("queued", "running"):
        assert time.monotonic() < deadline + 120, "the training job did not finish"
        time.sleep(0.1)
    # a music video (done, or failed where no Chromium is installed: it has an id)
    video = client.post(f"/api/tracks/{tracks[0]['id']}/videos",
                        json={"viz": "bars", "fps": 24}).json["id"]
    while client.get(f"/api/videos/{video}").json["state"] in ("queued", "running"):
        assert time.monotonic() < deadline + 300, "the video job did not finish"
        time.sleep(0.2)
    return {"track_id": tracks[0]["id"], "job_id": job_id, "mix_id": mix.json["id"],
            "key": fade.json["id"], "track_b": tracks[1]["id"], "training_id": training,
            "video_id": video}


def test_no_generated_request_gets_a_5xx(sample_set, playground_models, tmp_path_factory,
                                        make_app, serve, tmp_path):
    app = make_app(tmp_path_factory.mktemp("data"), sample_set, playground_models)
    errors = _Errors()
    logging.getLogger("playground").addHandler(errors)
    with serve(app) as url:
        client = app.test_client()
        ids = _real_ids(client)
        cookie = client.get_cookie("session")
        (tmp_path / "schemathesis.toml").write_text(
            f'headers = {{ Cookie = "session={cookie.value}" }}\n'
            "[parameters]\n"
            f'"path.track_id" = "{ids["track_id"]}"\n'
            f'"path.job_id" = "{ids["job_id"]}"\n'
            f'"path.mix_id" = "{ids["mix_id"]}"\n'
            f'"path.key" = "{ids["key"]}"\n'
            f'"path.training_id" = "{ids["training_id"]}"\n'
            f'"path.video_id" = "{ids["video_id"]}"\n')
        out = subprocess.run(
            [str(SCHEMATHESIS), "--config-file", str(tmp_path / "schemathesis.toml"), "run",
             f"{url}/api/openapi.json", "--url", url, "--checks", CHECKS,
             "--max-examples", "25", "--max-time", "120", "--seed", "0",
             "--generation-database", "none", "--no-color", "--workers", "2",
             "--request-timeout", "60", "--report", "json",
             "--report-json-path", str(tmp_path / "report.json")],
            capture_output=True, text=True, timeout=600, cwd=tmp_path)
    logging.getLogger("playground").removeHandler(errors)
    failures = out.stdout.split("=== FAILURES ===")[-1].split("=== WARNINGS ===")[0]
    assert out.returncode == 0, (failures[-8000:] + out.stdout[-3000:] + out.stderr[-2000:]
                                 + "\n".join(e[-3000:] for e in errors.seen[:3]))
    assert not errors.seen
    # Every operation got real data, except removing a mix: the one saved mix is used by the
    # others, so the delete is left to the stateful phase (it follows POST /mixes' link).
    report = json.loads((tmp_path / "report.json").read_text())
    missing = report.get("warnings", {}).get("missing_test_data", [])
    assert set(missing) <= {"DELETE /api/mixer/mixes/{mix_id}"}, missing
