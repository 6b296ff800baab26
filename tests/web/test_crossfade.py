"""The crossfade blueprint (deepaudio.web.crossfade) through Flask's test client, on the 6 s
sample-set tracks: renders, the content-addressed cache, validation and error codes."""

from __future__ import annotations

import io
import os
import threading
import time

import numpy as np
import pytest
import soundfile as sf

from deepaudio.core.cache import KeyLocks
from deepaudio.crossfade.render import NEURAL_RAMPS, RAMPS, ramp
from deepaudio.data.samples import render_track
from deepaudio.networks.checkpoint import save_weights
from deepaudio.networks.wavenet import HOP, SR, WaveNetAutoencoder, make_config
from deepaudio.web import crossfade as crossfade_web
from deepaudio.web.crossfade import CURVE_POINTS, prune_renders
from deepaudio.web.jobs import shutdown

FAST = {"seconds": 1.0, "context": 1.0}


@pytest.fixture(scope="module")
def app(sample_set, tmp_path_factory, make_app):
    app = make_app(tmp_path_factory.mktemp("data"), sample_set,
                   tmp_path_factory.mktemp("models"))
    yield app
    shutdown(app)


@pytest.fixture(scope="module")
def client(app):
    return app.test_client()


@pytest.fixture(scope="module")
def ids(client) -> list[str]:
    return [t["id"] for t in client.get("/api/tracks?per_page=50").json["items"]]


def post(client, **body):
    return client.post("/api/crossfade", json=body)


def renders(app) -> int:
    return app.extensions["crossfade_renders"]


def test_styles(client):
    s = client.get("/api/crossfade/styles").json
    assert s["simple"] == list(RAMPS) and s["beats"] == [8, 16, 32]
    assert s["runs"] == [] and s["neural"] == []           # no WaveNet run: no neural styles
    assert s["defaults"]["style"] == "equal_power" and s["defaults"]["context"] == 5.0
    assert s["limits"]["seconds"] == 30 and s["limits"]["context"] == 30


def test_render_decodes_to_the_reported_duration_and_is_cached(app, client, ids):
    before = renders(app)
    r = post(client, track_a=ids[0], track_b=ids[1], style="equal_power", seconds=2.0,
             context=1.0)
    assert r.status_code == 200, r.json
    res = r.json
    assert res["cached"] is False and renders(app) == before + 1
    s = res["sidecar"]
    assert s["mode"] == "simple" and s["style"] == "equal_power" and s["tempi"] is None
    assert s["stretch_rate"] == 1.0 and s["stretch_percent"] == 0.0
    assert set(s["trims"]) == {"a", "b"} and "gain_db" in s["loudness"]
    tl = s["timeline"]
    assert tl["overlap_start_s"] == pytest.approx(1.0, abs=1e-3)
    assert tl["overlap_end_s"] - tl["overlap_start_s"] == pytest.approx(2.0, abs=1e-3)
    assert res["duration"] == pytest.approx(4.0, abs=1e-3) == tl["duration_s"]
    assert "first_song" not in s and "/" not in s["track_a"]      # no server paths leak
    m = res["measures"]
    assert m["roughness"] > 0 and 0 <= m["roughness_0_100"] <= 100
    assert m["dissonance_min"] > 0 and abs(m["loudness_dip_db"]) < 3

    audio = client.get(res["audio_url"])
    assert audio.status_code == 200 and audio.mimetype == "audio/ogg"
    x, sr = sf.read(io.BytesIO(audio.data), dtype="float32")
    assert sr == 44100 and x.shape[1] == 2
    assert x.shape[0] / sr == pytest.approx(res["duration"], abs=0.01)
    part = client.get(res["audio_url"], headers={"Range": "bytes=0-99"})
    assert part.status_code == 206 and len(part.data) == 100

    # the server's ramp, binned: equal power over the overlap, A alone before, B after
    c = s["curves"]
    g_out, g_in = np.array(c["g_out"]), np.array(c["g_in"])
    assert c["span"] == "output" and len(g_in) == c["points"] == CURVE_POINTS
    t = (np.arange(len(g_in)) + 0.5) / len(g_in) * res["duration"]
    inside = (t > 1.05) & (t < 2.95)
    assert np.allclose(g_out[inside] ** 2 + g_in[inside] ** 2, 1, atol=2e-3)
    assert np.all(g_out[t < 0.95] == 1) and np.all(g_in[t < 0.95] == 0)
    assert np.all(g_in[t > 3.05] == 1) and np.all(g_out[t > 3.05] == 0)
    assert np.all(np.diff(g_in) >= -1e-9)

    # the same request again: served from the cache, the file untouched
    path = app.config["DATA_DIR"] + f"/crossfades/{res['id']}/transition.ogg"
    mtime = os.stat(path).st_mtime_ns
    again = post(client, track_a=ids[0], track_b=ids[1], seconds=2, context=1,
                 style="equal_power", beats=32)        # beats do not matter without beat sync
    assert again.status_code == 200
    assert again.json["cached"] is True and again.json["id"] == res["id"]
    assert again.json["sidecar"] == s and again.json["measures"] == m
    assert renders(app) == before + 1 and os.stat(path).st_mtime_ns == mtime
    assert client.get(f"/api/crossfade/{res['id']}").json["sidecar"] == s


def test_concurrent_identical_requests_render_once(app, ids):
    before = renders(app)
    body = {"track_a": ids[2], "track_b": ids[3], "style": "s_curve", **FAST}
    codes, found = [], []

    def go():
        r = app.test_client().post("/api/crossfade", json=body)
        codes.append(r.status_code)
        found.append((r.json["id"], r.json["cached"]))

    threads = [threading.Thread(target=go) for _ in range(3)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert codes == [200] * 3 and len({i for i, _ in found}) == 1
    assert sorted(c for _, c in found) == [False, True, True]
    assert renders(app) == before + 1
    assert len(app.extensions["crossfade_locks"]) == 0      # no lock left behind per id


@pytest.mark.parametrize("style", sorted(RAMPS))
def test_every_style_renders_with_its_ramp(client, ids, style):
    r = post(client, track_a=ids[4], track_b=ids[4], style=style, format="flac", **FAST)
    assert r.status_code == 200, r.json                  # the same track twice is allowed
    s = r.json["sidecar"]
    assert s["style"] == style and s["seed"] == 0
    # the curves are the server's per-sample gains averaged into bins: rebuild them exactly
    sr, tl = s["sr"], s["timeline"]
    n = int(round(tl["duration_s"] * sr))
    i0, overlap = int(round(tl["overlap_start_s"] * sr)), int(round(s["seconds"] * sr))
    g_out, g_in = ramp(style, overlap, seed=0)
    full_out, full_in = np.zeros(n), np.zeros(n)
    full_out[:i0], full_in[i0 + overlap:] = 1, 1
    full_out[i0:i0 + overlap], full_in[i0:i0 + overlap] = g_out, g_in
    edges = np.linspace(0, n, CURVE_POINTS + 1).astype(int)
    for got, full in ((s["curves"]["g_out"], full_out), (s["curves"]["g_in"], full_in)):
        want = np.add.reduceat(full, edges[:-1]) / np.diff(edges)
        assert np.allclose(got, want, atol=1e-4)
    audio = post(client, track_a=ids[4], track_b=ids[4], style=style, format="flac", **FAST)
    assert audio.json["cached"] is True
    assert client.get(r.json["audio_url"]).mimetype == "audio/flac"


@pytest.mark.parametrize("body, status, key", [
    ({"style": "swoosh"}, 400, "'style'"),
    ({"bogus": 1}, 400, "'bogus'"),
    ({"seconds": 31}, 400, "'seconds'"),
    ({"seconds": 0}, 400, "'seconds'"),
    ({"context": 31}, 400, "'context'"),
    ({"context": -1}, 400, "'context'"),
    ({"beats": 12}, 400, "'beats'"),
    ({"beat_sync": "true"}, 400, "'beat_sync'"),
    ({"seconds": "2"}, 400, "'seconds'"),
    ({"format": "mp3"}, 400, "'format'"),
    ({"track_b": None}, 400, "'track_b'"),
    ({"track_a": "0123456789abcdef0123"}, 404, "unknown track"),
    ({"track_b": "../../etc/passwd"}, 404, "unknown track"),
    ({"run": "nope", "style": "linear"}, 404, "unknown WaveNet run"),
    ({"run": "nope", "style": "s_curve"}, 400, "'style'"),
    ({"seconds": 25}, 422, "longer than a song"),
])
def test_bad_requests_name_the_key(client, ids, body, status, key):
    r = post(client, **{"track_a": ids[0], "track_b": ids[1], **FAST, **body})
    assert r.status_code == status and key in r.json["error"], r.json


def test_bad_bodies_and_ids(client):
    r = client.post("/api/crossfade", data="not json", content_type="text/plain")
    assert r.status_code == 400 and "JSON object" in r.json["error"]
    r = client.post("/api/crossfade", json=[1, 2])
    assert r.status_code == 400
    for key in ("zz", "0" * 64, "0" * 63 + "g", "0" * 65):
        for suffix in ("", "/audio"):
            r = client.get(f"/api/crossfade/{key}{suffix}")
            assert r.status_code == 404 and r.is_json, (key, suffix)


def test_beat_sync_gives_a_plan_or_a_clear_4xx(client, ids):
    r = post(client, track_a=ids[5], track_b=ids[6], beat_sync=True, beats=8, context=1.0)
    assert r.status_code in (200, 422), r.json
    if r.status_code == 422:
        assert r.json["error"]
        return
    # beat_sync ignores `seconds` (the plan decides the overlap): not checked, not in the id
    again = post(client, track_a=ids[5], track_b=ids[6], beat_sync=True, beats=8, context=1.0,
                 seconds=99)
    assert again.status_code == 200 and again.json["id"] == r.json["id"], again.json
    s = r.json["sidecar"]
    assert s["mode"] in ("beat_sync", "cut") and s["plan"]["beats"] == 8
    assert s["tempi"]["a"] > 0 and s["tempi"]["b"] > 0
    assert s["stretch_percent"] == pytest.approx(100 * (s["stretch_rate"] - 1), abs=1e-3)
    tl = s["timeline"]
    assert tl["overlap_start_s"] <= tl["a_downbeat_s"] <= tl["overlap_end_s"] + 1e-6
    assert s["request"]["beats"] == 8 and "seconds" not in s["request"]


def test_long_overlaps_are_measured_on_request(app, client, ids, monkeypatch):
    monkeypatch.setattr(crossfade_web, "MEASURE_MAX_SECONDS", 0.5)
    body = {"track_a": ids[7], "track_b": ids[8], **FAST}
    first = post(client, **body).json
    assert first["measures"] is None and "measures" in first["measures_skipped"]
    before = renders(app)
    measured = post(client, **body, measures=True).json
    assert measured["id"] == first["id"] and measured["measures"]["roughness"] > 0
    assert renders(app) == before + 1
    again = post(client, **body).json                  # now stored with the render
    assert again["cached"] and again["measures"] == measured["measures"]


def _wait_for_render(client, res, timeout: float = 120.0):
    """Poll a neural render's job until it is done (or failed): the final response."""
    deadline = time.monotonic() + timeout
    while res.status_code == 202:
        assert res.json["state"] in ("queued", "running") and 0 <= res.json["progress"] <= 1
        assert time.monotonic() < deadline, f"the render job did not finish: {res.json}"
        time.sleep(0.05)
        res = client.get(res.json["status_url"])
    return res


def test_neural_with_a_wavenet_run(sample_set, tmp_path, ids, make_app):
    import torch

    torch.manual_seed(0)
    tiny = {"enc_layers": 3, "enc_channels": 6, "dec_layers": 6, "residual_channels": 8,
            "skip_channels": 8, "dilation_cycle": 3, "bottleneck": 4}
    models = tmp_path / "models"
    save_weights(WaveNetAutoencoder(make_config("small", tiny)), models / "wn" / "tiny")
    save_weights(WaveNetAutoencoder(make_config("small", tiny)), models / "wn" / "broken")
    (models / "wn" / "broken" / "last.pt").write_bytes(b"not a checkpoint")
    app = make_app(tmp_path / "data", sample_set, models)
    try:
        client = app.test_client()
        s = client.get("/api/crossfade/styles").json
        assert [r["id"] for r in s["runs"]] == ["wn/broken", "wn/tiny"]
        assert s["neural"] == list(NEURAL_RAMPS)
        body = {"track_a": ids[0], "track_b": ids[1], "run": "wn/tiny", "style": "hann",
                "seconds": 0.1, "context": 0.5}
        r = post(client, **body)
        # a neural fade is a job: 202 at once, then the page polls the id
        assert r.status_code == 202, r.json
        assert r.json["status_url"] == f"/api/crossfade/{r.json['id']}"
        r = _wait_for_render(client, r)
        assert r.status_code == 200, r.json
        side = r.json["sidecar"]
        assert side["mode"] == "neural" and side["sr"] == SR and side["channels"] == 1
        assert side["curves"]["span"] == "overlap" and side["curves"]["applied_to"] == "encodings"
        assert side["generation"]["samples_per_s"] > 0
        tl = side["timeline"]
        assert tl["overlap_end_s"] - tl["overlap_start_s"] == pytest.approx(3 * HOP / SR)
        x, sr = sf.read(io.BytesIO(client.get(r.json["audio_url"]).data))
        assert sr == SR and len(x) / sr == pytest.approx(r.json["duration"], abs=0.01)
        again = post(client, **body)                         # rendered once: from the cache
        assert again.status_code == 200 and again.json["cached"]
        # an id that was never rendered nor queued is unknown
        assert client.get("/api/crossfade/" + "0" * 64).status_code == 404
        bad = post(client, track_a=ids[0], track_b=ids[1], run="wn/tiny", style="linear",
                   seconds=5)
        assert bad.status_code == 400 and "'seconds'" in bad.json["error"]
        # a run whose weights cannot be read: the job fails with a message, no server path
        failed = _wait_for_render(client, post(client, **{**body, "run": "wn/broken"}))
        assert failed.status_code == 422 and "failed" in failed.json["error"]
        assert str(models) not in failed.json["error"]
        # requesting it again queues it again (and it fails again)
        retry = post(client, **{**body, "run": "wn/broken"})
        assert retry.status_code == 202
        assert _wait_for_render(client, retry).status_code == 422
    finally:
        shutdown(app)


def test_neural_jobs_are_limited_per_user(sample_set, tmp_path, ids, make_app):
    import torch

    torch.manual_seed(0)
    tiny = {"enc_layers": 2, "enc_channels": 4, "dec_layers": 2, "residual_channels": 4,
            "skip_channels": 4, "dilation_cycle": 2, "bottleneck": 4}
    models = tmp_path / "models"
    save_weights(WaveNetAutoencoder(make_config("small", tiny)), models / "wn")
    app = make_app(tmp_path / "data", sample_set, models, max_jobs_per_user=2)
    queued = []
    app.extensions["crossfade_enqueue"] = lambda payload, priority=0: queued.append(payload)
    try:
        client = app.test_client()
        body = {"track_a": ids[0], "track_b": ids[1], "run": "wn", "seconds": 0.1}
        first = post(client, **body, style="linear")
        assert first.status_code == 202 and first.json["state"] == "queued"
        assert post(client, **body, style="linear").json["id"] == first.json["id"]  # joins
        assert post(client, **body, style="hann").status_code == 202
        third = post(client, **body, style="equal_power")
        assert third.status_code == 429 and third.headers["Retry-After"]
        assert "2 neural crossfades queued or running" in third.json["error"]
        assert len(queued) == 2 and {q["request"]["style"] for q in queued} == {"linear", "hann"}
        other = app.test_client()                         # another user has a limit of their own
        assert post(other, **body, style="equal_power").status_code == 202
    finally:
        shutdown(app)


def _fake_render(root, key: str, size: int, used: float) -> None:
    folder = root / key
    folder.mkdir(parents=True)
    (folder / "transition.ogg").write_bytes(b"x" * size)
    (folder / "transition.json").write_text("{}")
    os.utime(folder / "transition.json", (used, used))


def test_prune_renders_drops_the_least_recently_used_first(tmp_path):
    root = tmp_path / "crossfades"
    for key, used in [("old", 100), ("held", 50), ("mid", 200), ("new", 300)]:
        _fake_render(root, key, 1000, used)
    locks = KeyLocks()
    with locks.hold("held"):            # a render in progress is never deleted
        gone = prune_renders(root, 3100, locks, keep="old")
    # 4 x 1002 bytes, over by about 1 KB: "held" is busy and "old" is kept, so the least
    # recently used of the others goes, and that alone brings it under the limit
    assert gone == ["mid"]
    assert sorted(p.name for p in root.iterdir()) == ["held", "new", "old"]
    assert prune_renders(root, 10**9, locks) == []     # under the limit: none
    assert prune_renders(tmp_path / "missing", 0, locks) == []
    assert len(locks) == 0


def test_renders_past_the_cache_limit_are_pruned(sample_set, tmp_path, ids, make_app):
    app = make_app(tmp_path / "data", sample_set, tmp_path / "models",
                   crossfade_cache_mb=0.001)                 # ~1 KB: keeps only the newest
    try:
        client = app.test_client()
        first = post(client, track_a=ids[0], track_b=ids[1], style="linear", **FAST).json
        second = post(client, track_a=ids[1], track_b=ids[0], style="linear", **FAST).json
        assert client.get(f"/api/crossfade/{first['id']}").status_code == 404
        assert client.get(second["audio_url"]).status_code == 200
        again = post(client, track_a=ids[0], track_b=ids[1], style="linear", **FAST).json
        assert again["id"] == first["id"] and again["cached"] is False   # rendered anew
    finally:
        shutdown(app)


def test_keys_in_the_sidecar_and_key_matching(client, ids):
    body = {"track_a": ids[0], "track_b": ids[1], "seconds": 1.0, "context": 1.0,
            "measures": False}
    plain = post(client, **body)
    assert plain.status_code == 200, plain.json
    keys = plain.json["sidecar"]["keys"]
    assert set(keys) >= {"a", "b", "key_match", "shift_semitones"}
    assert keys["key_match"] is False and keys["shift_semitones"] == 0
    matched = post(client, **body, key_match=True)
    assert matched.status_code == 200 and matched.json["id"] != plain.json["id"]
    assert matched.json["sidecar"]["keys"]["key_match"] is True
    assert abs(matched.json["sidecar"]["keys"]["shift_semitones"]) <= 2
    bad = post(client, track_a=ids[0], track_b=ids[1], style="linear", run="x",
               key_match=True)
    assert bad.status_code == 400 and "key_match" in bad.json["error"]
    by_hand = post(client, **body, shift=-1)
    assert by_hand.status_code == 200 and by_hand.json["id"] != plain.json["id"]
    keys = by_hand.json["sidecar"]["keys"]
    assert keys["shift_semitones"] == -1 and keys["shift_by_hand"] is True
    assert by_hand.json["sidecar"]["request"]["shift"] == -1
    assert "shift" not in plain.json["sidecar"]["request"]


@pytest.fixture(scope="module")
def stem_pair(client, upload):
    """Two 24 s Pop songs 4.3 % apart in tempo, uploaded by this client; their ids."""
    ids = []
    for tid in (8, 9):
        stems, _ = render_track("Pop", tid, seed=0, seconds=24.0, sr=22050)
        buf = io.BytesIO()
        sf.write(buf, np.sum(list(stems.values()), axis=0).T, 22050, format="FLAC")
        r = upload(client, buf.getvalue(), name=f"pop{tid}.flac")
        assert r.status_code in (200, 201), r.json
        ids.append(r.json["id"])
    return ids


def test_a_stem_schedule_uses_this_users_separations(app, client, stem_pair, separate):
    a, b = stem_pair
    body = {"track_a": a, "track_b": b, "beat_sync": True, "schedule": "vocal_handoff",
            "context": 2.0}
    r = post(client, **body)
    assert r.status_code == 409 and r.json["needs_stems"] == [a, b], r.json
    assert "stem mixer job" in r.json["error"]
    for t in (a, b):
        separate(client, t)
    r = post(client, **body)
    assert r.status_code == 200, r.json
    s = r.json["sidecar"]
    assert s["mode"] == "beat_sync" and s["schedule"]["name"] == "vocal_handoff"
    assert set(s["stems"]["a"]) == set(s["stems"]["b"]) == {"drums", "bass", "other", "vocals"}
    assert s["keys"]["a_from"] == s["keys"]["b_from"] == "other stem"
    cands = s["candidates"]
    assert s["candidate"] == 0 and len(cands) >= 2
    assert [c["score"] for c in cands] == sorted((c["score"] for c in cands), reverse=True)
    assert cands[0]["parts"]["vocal_overlap_s"] == 0.0
    # one lane per stem and song, binned over the output like the whole-mix curves: A's vocals
    # are gone by the middle of the overlap, B's start there
    lanes = s["lanes"]
    tl = s["timeline"]
    points = len(lanes["a"]["vocals"])
    assert points == s["curves"]["points"]
    t = (np.arange(points) + 0.5) / points * tl["duration_s"]
    mid = (tl["overlap_start_s"] + tl["overlap_end_s"]) / 2
    va, vb = np.array(lanes["a"]["vocals"]), np.array(lanes["b"]["vocals"])
    assert va[t < tl["overlap_start_s"] - 0.1].min() > 0.99 and va[t > mid + 0.1].max() < 1e-3
    assert vb[t < mid - 0.1].max() < 1e-3 and vb[t > tl["overlap_end_s"] + 0.1].min() > 0.99
    assert np.array(lanes["a"]["drums"]) == pytest.approx(np.array(s["curves"]["g_out"]))
    # another candidate is another render; the same request is served from the cache
    other = post(client, **body, candidate=1)
    assert other.status_code == 200 and other.json["sidecar"]["candidate"] == 1
    assert other.json["id"] != r.json["id"]
    assert post(client, **body).json["cached"] is True
    too_far = post(client, **body, candidate=len(cands))
    assert too_far.status_code == 400 and "candidate must be below" in too_far.json["error"]
    custom = post(client, **{**body, "schedule": {"stems": {"flute": {"a": {"end": 4}}}}})
    assert custom.status_code == 400 and "schedule.stems.flute" in custom.json["error"]
    # without a schedule the stems still inform the planner (vocal overlap, keys)
    plain = post(client, **{k: v for k, v in body.items() if k != "schedule"})
    assert plain.status_code == 200 and plain.json["sidecar"]["stems"] is not None
    assert plain.json["sidecar"]["candidates"][0]["parts"]["vocal_overlap_s"] is not None
    # another user has no separations of these tracks: their schedule asks for them
    stranger = app.test_client()
    r = post(stranger, **body)
    assert r.status_code in (404, 409), r.json


@pytest.mark.parametrize("extra, key", [
    ({"schedule": "nope", "beat_sync": True}, "'schedule'"),
    ({"schedule": "bass_swap"}, "'schedule' needs beat_sync"),
    ({"candidate": 2}, "'candidate' needs beat_sync"),
    ({"candidate": -1, "beat_sync": True}, "'candidate'"),
    ({"schedule": 3, "beat_sync": True}, "'schedule'"),
    ({"shift": 3}, "'shift' must be in [-2, 2]"),
    ({"shift": 1.5}, "'shift'"),
    ({"shift": 1, "key_match": True}, "'shift' must be null with run or key_match"),
])
def test_bad_schedule_and_shift_requests_name_the_key(client, ids, extra, key):
    r = post(client, track_a=ids[0], track_b=ids[1], **FAST, **extra)
    assert r.status_code == 400 and key in r.json["error"], r.json
