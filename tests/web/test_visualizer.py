"""The visualizer's API: runs, feature timelines and their cache (memory, SQLite,
concurrent requests), genre probabilities."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from deepaudio.mapping.mappings import Mapping, mapping_path
from deepaudio.mapping.timeline import mapped_timeline
from deepaudio.web import visualizer
from deepaudio.web.db import connect

ROOT = Path(__file__).resolve().parents[2]     # the checkout


def test_models_list_kinds_layers(client):
    res = client.get("/api/models").json
    by_id = {m["id"]: m for m in res["models"]}
    assert by_id["sample/conv_ae"]["kind"] == "autoencoder"
    assert by_id["sample/conv_ae"]["layers"] == ["code"]
    cls = by_id["sample/classifier"]
    assert cls["kind"] == "classifier" and cls["layers"] == ["L8", "L9", "L10"]
    assert len(cls["genres"]) == 8 and res["classifier"] == "sample/classifier"
    assert "pca" in cls["mappings"]
    spec = by_id["sample/spectrum_ae"]
    assert spec["mode"] == "spectrum" and spec["kind"] == "autoencoder"
    assert spec["segment_seconds"] == pytest.approx(0.5)


def test_features_match_mapping_utils_and_cache(app, client, first_track, path_of):
    url = (f"/api/tracks/{first_track['id']}/features?run=sample/conv_ae&method=pca"
           "&fps=20&assign=deterministic")
    a = client.get(url)
    assert a.status_code == 200, a.json
    j = a.json
    frames = np.array(j["frames"])
    assert frames.shape == (int(6.0 * 20) + 1, 10)
    assert frames.min() >= 0 and frames.max() <= 1 and frames.std() > 0.01
    expected = mapped_timeline(path_of(app, first_track["id"]),
                                  app.config["MODELS_DIR"] + "/sample/conv_ae", method="pca",
                                  fps=20.0)
    np.testing.assert_allclose(frames, expected.frames, atol=1e-4)
    assert j["permutation"] == list(range(10)) and j["fps"] == 20.0
    b = client.get(url)
    assert b.headers["X-Cache"] == "hit" and b.data == a.data


def test_features_persist_across_restart(sample_set, playground_models, tmp_path, monkeypatch,
                                         make_app):
    data = tmp_path / "data"
    app1 = make_app(data, sample_set, playground_models)
    tid = app1.test_client().get("/api/tracks?per_page=1").json["items"][0]["id"]
    url = f"/api/tracks/{tid}/features?run=sample/conv_ae&fps=10"
    first = app1.test_client().get(url)
    assert first.headers["X-Cache"] == "miss"
    monkeypatch.setattr(visualizer, "mapped_timeline", lambda *a, **k: pytest.fail("recomputed"))
    app2 = make_app(data, sample_set, playground_models)
    second = app2.test_client().get(url)
    assert second.headers["X-Cache"] == "hit" and second.json["frames"] == first.json["frames"]


def test_feature_assignment_seed_and_ranked(client, first_track):
    base = f"/api/tracks/{first_track['id']}/features?run=sample/conv_ae&fps=10"
    r = client.get(base + "&assign=random").json
    assert isinstance(r["seed"], int) and sorted(r["permutation"]) == list(range(10))
    same = client.get(base + f"&assign=random&seed={r['seed']}").json
    assert same["permutation"] == r["permutation"]
    other = client.get(base + f"&assign=random&seed={r['seed'] + 1}").json
    assert other["permutation"] != r["permutation"]
    ranked = client.get(base + "&assign=ranked").json
    var = np.array(ranked["feature_variance"])
    assert ranked["permutation"] == np.argsort(-var, kind="stable").tolist()
    assert ranked["frames"] == r["frames"]     # frames come in feature order; perm applies


def test_features_of_classifier_layer(client, first_track):
    base = f"/api/tracks/{first_track['id']}/features?run=sample/classifier&fps=5"
    r = client.get(base + "&layer=L9&method=kmeans")
    assert r.status_code == 200 and np.array(r.json["frames"]).shape[1] == 10
    raw = client.get(base + "&layer=L9&method=raw")
    assert raw.status_code == 400 and "raw mapping needs 10 features" in raw.json["error"]


@pytest.mark.parametrize("query,status,word", [
    ("run=nope", 404, "unknown run"), ("layer=L99", 404, "unknown layer"),
    ("fps=abc", 400, "fps"), ("fps=1000", 400, "fps"), ("method=magic", 400, "method"),
    ("smoothing=1.5", 400, "smoothing"), ("assign=sorted", 400, "assign"),
    ("seed=-1", 400, "seed"), ("run=../../etc", 404, "unknown run")])
def test_feature_bad_options(client, first_track, query, status, word):
    r = client.get(f"/api/tracks/{first_track['id']}/features?{query}")
    assert r.status_code == status and word in r.json["error"]


def test_concurrent_cold_requests_compute_once(sample_set, playground_models, tmp_path,
                                               monkeypatch, make_app):
    app = make_app(tmp_path / "data", sample_set, playground_models)
    tid = app.test_client().get("/api/tracks?per_page=1").json["items"][0]["id"]
    calls = []
    real = mapped_timeline
    monkeypatch.setattr(visualizer, "mapped_timeline",
                        lambda *a, **k: calls.append(1) or real(*a, **k))
    url = f"/api/tracks/{tid}/features?run=sample/conv_ae&fps=15&method=kmeans"
    results = [None] * 8

    def get(i):
        results[i] = app.test_client().get(url)

    threads = [threading.Thread(target=get, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(r.status_code == 200 for r in results)
    assert len({r.data for r in results}) == 1 and len(calls) == 1


def test_genre_probabilities(client, first_track):
    r = client.get(f"/api/tracks/{first_track['id']}/genres").json
    p = r["probabilities"]
    assert len(p) == 8 and sum(p.values()) == pytest.approx(1.0, abs=1e-4)
    assert r["top"] == max(p, key=p.get) and r["run"] == "sample/classifier"
    assert client.get(f"/api/tracks/{first_track['id']}/genres?run=sample/conv_ae").status_code \
        == 400


def test_mapping_saved_by_cli_loads_in_process(ae_run, tmp_path):
    import shutil
    run = tmp_path / "run"
    shutil.copytree(ae_run, run)
    subprocess.run([sys.executable, str(ROOT / "mapping_utils.py"), "fit", "--run", str(run),
                    "--method", "kmeans"], check=True, capture_output=True, cwd=ROOT)
    m = Mapping.load(mapping_path(run, "kmeans", "code", "standard", "features"))
    assert m.method == "kmeans" and m.out_params


def test_stored_timelines_are_pruned_to_their_budget(sample_set, playground_models, tmp_path,
                                                     make_app):
    app = make_app(tmp_path / "data", sample_set, playground_models, timeline_cache_mb=0.003)
    client = app.test_client()
    tid = client.get("/api/tracks?per_page=1").json["items"][0]["id"]
    for fps in (10, 12, 14, 16):
        assert client.get(f"/api/tracks/{tid}/features?run=sample/conv_ae&fps={fps}"
                          ).status_code == 200
    con = connect(app.config["DB_PATH"])
    rows, size = con.execute("SELECT COUNT(*), SUM(LENGTH(frames)) FROM timelines").fetchone()
    con.close()
    assert 1 <= rows < 4 and size <= 0.003 * 2**20 + 4000      # the newest always stays


def test_sources_give_the_beat_grid_and_this_users_stems(app, first_track, separate):
    from deepaudio.mapping.sources import BEAT_NAMES

    mine, other = app.test_client(), app.test_client()
    url = f"/api/tracks/{first_track['id']}/sources?fps=20"
    r = mine.get(url)
    assert r.status_code == 200, r.json
    j = r.json
    assert j["beats"]["names"] == list(BEAT_NAMES) and j["fps"] == 20
    assert j["dsp"]["names"][:3] == ["bass", "mid", "treb"]
    assert len(j["dsp"]["frames"]) == len(j["beats"]["frames"])
    assert len(j["beats"]["frames"]) == int(6.0 * 20) + 1
    assert j["stems"] is None and "stem mixer" in j["stems_reason"]
    assert mine.get(url).headers["X-Cache"] == "hit"
    # stored too: after a restart (an empty memory cache) the same answer, not computed again
    from deepaudio.core.cache import MemoryLRU
    app.extensions["timelines"].memory = MemoryLRU(2**20)
    again = mine.get(url)
    assert again.headers["X-Cache"] == "hit" and again.json == j
    separate(mine, first_track["id"])
    r = mine.get(url)
    assert r.headers["X-Cache"] == "miss"           # another separation: another answer
    stems = r.json["stems"]
    assert stems["names"] == ["drums_onset", "bass_energy", "vocals_energy", "vocals_pitch",
                              "other_brightness"]
    frames = np.array(stems["frames"])
    assert frames.shape == (int(6.0 * 20) + 1, 5) and frames.min() >= 0 and frames.max() <= 1
    assert other.get(url).json["stems"] is None     # another user's separation is theirs
    for bad in ("fps=0", "fps=500", "fps=x"):
        assert mine.get(f"/api/tracks/{first_track['id']}/sources?{bad}").status_code == 400
    assert mine.get("/api/tracks/0123456789abcdef0123/sources").status_code == 404
