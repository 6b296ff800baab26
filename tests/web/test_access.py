"""Access by ownership, with two users on every route: an upload, and everything made from it
(features, genres, separation jobs, stems, mixes, crossfades), is visible only to the users who
uploaded that content; anyone else gets the 404 an unknown id gets. Sample tracks stay public.
The last owner's removal deletes what was made from the upload, files included."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

FAST_FADE = {"style": "equal_power", "seconds": 1.0, "context": 0.5, "format": "ogg",
             "measures": False}


def wait_done(client, job_id: str, timeout: float = 120.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/api/mixer/jobs/{job_id}").json
        if job["state"] in ("done", "failed"):
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not finish in {timeout} s")


@pytest.fixture(scope="module")
def owned(app, wav_bytes, upload):
    """User A's upload, a finished separation of it, a saved mix and a crossfade with a sample
    track; returns A's client and the ids."""
    a = app.test_client()
    track = upload(a, wav_bytes(seconds=4.0, freq=330.0), name="mine.wav").json["id"]
    sample = a.get("/api/tracks?source=fma&per_page=1").json["items"][0]["id"]
    job = a.post("/api/mixer/jobs", json={"track_id": track, "backend": "dsp"}).json["id"]
    assert wait_done(a, job)["state"] == "done"
    mix = a.post("/api/mixer/mixes", json={"job_id": job, "name": "m", "settings": {}}).json["id"]
    fade = a.post("/api/crossfade", json={"track_a": track, "track_b": sample, **FAST_FADE})
    assert fade.status_code == 200, fade.json
    return a, {"track": track, "sample": sample, "job": job, "mix": mix,
               "fade": fade.json["id"]}


def test_another_user_gets_404_on_every_route(app, owned):
    _, ids = owned
    b = app.test_client()
    t, j, m, f = ids["track"], ids["job"], ids["mix"], ids["fade"]
    requests = [
        ("get", f"/api/tracks/{t}", None), ("get", f"/api/tracks/{t}/audio", None),
        ("get", f"/api/tracks/{t}/features", None), ("get", f"/api/tracks/{t}/genres", None),
        ("delete", f"/api/tracks/{t}", None),
        ("post", "/api/mixer/jobs", {"track_id": t, "backend": "dsp"}),
        ("get", f"/api/mixer/jobs/{j}", None), ("post", f"/api/mixer/jobs/{j}/retry", None),
        ("get", f"/api/mixer/jobs/{j}/stems/vocals.ogg", None),
        ("post", f"/api/mixer/jobs/{j}/mix", {}),
        ("get", f"/api/mixer/jobs/{j}/suggestions", None),
        ("post", "/api/mixer/mixes", {"job_id": j, "name": "theirs", "settings": {}}),
        ("get", f"/api/mixer/mixes/{m}", None), ("delete", f"/api/mixer/mixes/{m}", None),
        ("post", "/api/crossfade", {"track_a": t, "track_b": ids["sample"], **FAST_FADE}),
        ("get", f"/api/crossfade/{f}", None), ("get", f"/api/crossfade/{f}/audio", None),
    ]
    for method, url, body in requests:
        r = getattr(b, method)(url, json=body) if body is not None else getattr(b, method)(url)
        assert r.status_code == 404, (method, url, r.status_code, r.get_data()[:200])
        assert r.is_json and "error" in r.json
    listed = b.get("/api/tracks?per_page=500").json["items"]
    assert t not in {x["id"] for x in listed}
    assert b.get(f"/api/tracks/{ids['sample']}").status_code == 200     # samples are public


def test_the_same_content_uploaded_makes_it_theirs_too(app, owned, wav_bytes, upload):
    _, ids = owned
    c = app.test_client()
    assert c.get(f"/api/tracks/{ids['track']}").status_code == 404
    same = upload(c, wav_bytes(seconds=4.0, freq=330.0), name="also mine.wav")
    assert same.status_code == 201 and same.json["id"] == ids["track"]
    assert c.get(f"/api/tracks/{ids['track']}/audio").status_code == 200
    assert c.get(f"/api/crossfade/{ids['fade']}").status_code == 200   # both tracks usable now
    assert c.get(f"/api/mixer/jobs/{ids['job']}").status_code == 404    # jobs stay personal
    assert c.delete(f"/api/tracks/{ids['track']}").json["deleted"] is False   # A keeps it


def test_the_last_owner_removal_deletes_what_was_made_from_it(app, owned):
    a, ids = owned
    data = Path(app.config["DATA_DIR"])
    stems = list((data / "mixer" / "stems").glob(f"{ids['track']}-*"))
    job_dir = data / "mixer" / "jobs" / ids["job"]
    fade_dir = data / "crossfades" / ids["fade"]
    assert stems and job_dir.is_dir() and fade_dir.is_dir()
    r = a.delete(f"/api/tracks/{ids['track']}")
    assert r.status_code == 200 and r.json["deleted"] is True
    assert not any(p.exists() for p in stems) and not job_dir.exists()
    assert not fade_dir.exists()
    assert not list(data.rglob(".removing-*"))
    for url in (f"/api/tracks/{ids['track']}", f"/api/mixer/jobs/{ids['job']}",
                f"/api/mixer/mixes/{ids['mix']}", f"/api/crossfade/{ids['fade']}"):
        assert a.get(url).status_code == 404, url
