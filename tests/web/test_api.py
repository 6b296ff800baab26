"""The playground API through Flask's test client: tracks, uploads, streaming, models,
feature timelines and their cache, genre probabilities, safety."""

from __future__ import annotations

import io
import json
import os
import re
import stat
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from deepaudio.core.config import ConfigError
from deepaudio.mapping.mappings import Mapping, mapping_path
from deepaudio.mapping.timeline import mapped_timeline
from deepaudio.web import visualizer
from deepaudio.web.app import create_app
from deepaudio.web.catalog import file_hash, track_path
from deepaudio.web.db import SCHEMA, init_db

ROOT = Path(__file__).resolve().parents[2]     # the checkout


@pytest.fixture(scope="module")
def app(sample_set, playground_models, tmp_path_factory, make_app):
    return make_app(tmp_path_factory.mktemp("data"), sample_set, playground_models)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture(scope="module")
def first_track(app):
    return app.test_client().get("/api/tracks?per_page=1").json["items"][0]


def wav_bytes(seconds=1.0, sr=22050, freq=440.0, fmt="WAV", subtype=None) -> bytes:
    t = np.arange(int(seconds * sr)) / sr
    buf = io.BytesIO()
    sf.write(buf, 0.3 * np.sin(2 * np.pi * freq * t), sr, format=fmt, subtype=subtype)
    return buf.getvalue()


def upload(client, data: bytes, name="song.wav"):
    return client.post("/api/tracks", data={"file": (io.BytesIO(data), name)},
                       content_type="multipart/form-data")


# ------------------------------------------------------------------------------------ tracks

def test_health_and_track_listing(client):
    h = client.get("/api/health").json
    assert h["status"] == "ok" and h["tracks"] == 24 and h["models"] == 2
    page = client.get("/api/tracks?per_page=5&page=2").json
    assert page["total"] == 24 and len(page["items"]) == 5 and page["page"] == 2
    assert len(page["genres"]) == 8
    t = page["items"][0]
    assert re.fullmatch(r"[0-9a-f]{20}", t["id"]) and t["source"] == "fma"
    assert t["duration"] == pytest.approx(6.0, abs=0.1)


def test_track_search_and_genre_filter(client):
    rock = client.get("/api/tracks?genre=Rock").json
    assert rock["total"] == 3 and {t["genre"] for t in rock["items"]} == {"Rock"}
    one = rock["items"][0]
    by_title = client.get(f"/api/tracks?q={one['title'][:6]}").json["items"]
    assert one["id"] in [t["id"] for t in by_title]
    by_id = client.get(f"/api/tracks?q={one['fma_id']}").json["items"]
    assert [t["id"] for t in by_id] == [one["id"]]
    assert client.get("/api/tracks?q=%25%25nothing%25").json["total"] == 0
    assert client.get("/api/tracks?page=0").status_code == 400


def test_track_ids_are_content_hashes(app, client, first_track):
    assert client.get(f"/api/tracks/{first_track['id']}").json == first_track
    assert first_track["id"] == file_hash(_path_of(app, first_track["id"]))


def _path_of(app, track_id):
    with app.test_request_context():
        return track_path(track_id)


def test_audio_streams_with_range(app, client, first_track):
    path = _path_of(app, first_track["id"])
    data = path.read_bytes()
    full = client.get(first_track["audio_url"])
    assert full.status_code == 200 and full.data == data
    assert full.headers["Content-Type"] == "audio/mpeg"
    part = client.get(first_track["audio_url"], headers={"Range": "bytes=100-1099"})
    assert part.status_code == 206 and part.data == data[100:1100]
    assert part.headers["Content-Range"] == f"bytes 100-1099/{len(data)}"
    tail = client.get(first_track["audio_url"], headers={"Range": "bytes=-10"})
    assert tail.status_code == 206 and tail.data == data[-10:]


def test_unknown_track_is_404_json(client):
    for url in ("/api/tracks/0123456789abcdef0123", "/api/tracks/..%5C..%5Cetc",
                "/api/tracks/nothex/audio", "/api/tracks/abc/features", "/api/tracks/abc/genres"):
        r = client.get(url)
        assert r.status_code == 404, url
        assert "error" in r.json


# ------------------------------------------------------------------------------------ uploads

def test_upload_stores_under_hash_and_dedupes(app, client):
    data = wav_bytes(1.5, freq=330.0)
    r = upload(client, data, "My Song.wav")
    assert r.status_code == 201, r.json
    t = r.json
    assert t["source"] == "upload" and t["title"] == "My Song" and t["format"] == "wav"
    assert t["duration"] == pytest.approx(1.5, abs=1e-3)
    stored = _path_of(app, t["id"])
    assert stored.read_bytes() == data and stored.name == f"{t['id']}.wav"
    again = upload(client, data, "other name.wav")
    assert again.json["id"] == t["id"]
    uploads = [p for p in stored.parent.iterdir()]
    assert uploads.count(stored) == 1 and not [p for p in uploads if p.suffix == ".part"]
    assert client.get(t["audio_url"]).data == data


@pytest.mark.parametrize("fmt,subtype,ext", [("FLAC", None, "flac"), ("OGG", "VORBIS", "ogg"),
                                             ("MP3", "MPEG_LAYER_III", "mp3")])
def test_upload_formats_are_sniffed(client, fmt, subtype, ext):
    data = wav_bytes(1.0, freq=500.0 + len(ext), fmt=fmt, subtype=subtype)
    r = upload(client, data, "no_extension")
    assert r.status_code == 201, r.json
    assert r.json["format"] == ext


def test_bad_uploads_are_rejected_and_leave_nothing(app, client):
    uploads = _path_of(app, upload(client, wav_bytes(0.5, freq=220.0)).json["id"]).parent
    before = sorted(uploads.iterdir())
    cases = {
        "not audio": (b"hello, this is a text file" * 10, "notes.mp3", "not an audio file"),
        "empty": (b"", "empty.wav", "empty"),
        "fake header": (b"RIFF\x00\x00\x00\x00WAVEjunkjunkjunk" * 4, "x.wav", "cannot decode"),
    }
    for what, (data, name, msg) in cases.items():
        r = upload(client, data, name)
        assert r.status_code == 400, what
        assert msg in r.json["error"], (what, r.json)
    assert client.post("/api/tracks", data={}).status_code == 400
    assert sorted(uploads.iterdir()) == before


def test_path_traversal_name_stays_inside_data(app, client, tmp_path):
    r = upload(client, wav_bytes(0.7, freq=660.0), "../../../../tmp/evil.wav")
    assert r.status_code == 201
    path = _path_of(app, r.json["id"])
    assert path.parent == Path(app.config["DATA_DIR"]) / "uploads"
    assert r.json["title"] == "evil"
    assert not os.path.exists("/tmp/evil.wav")


def test_oversize_upload_413(sample_set, playground_models, tmp_path, make_app):
    app = make_app(tmp_path / "data", sample_set, playground_models, max_upload_mb=0.05)
    r = upload(app.test_client(), wav_bytes(3.0, sr=22050), "big.wav")  # ~130 kB > 52 kB
    assert r.status_code == 413 and "limit" in r.json["error"]
    assert not list((tmp_path / "data").glob("uploads/*"))


def test_uploads_are_private_to_their_user(app):
    alice, bob = app.test_client(), app.test_client()
    t = upload(alice, wav_bytes(0.8, freq=770.0), "alice.wav").json
    assert t["id"] in [x["id"] for x in alice.get("/api/tracks?source=mine").json["items"]]
    for source in ("all", "upload", "mine"):
        seen = bob.get(f"/api/tracks?per_page=500&source={source}").json["items"]
        assert t["id"] not in [x["id"] for x in seen], source
    assert t["id"] in [x["id"] for x in alice.get("/api/tracks?source=upload").json["items"]]


def test_the_same_upload_belongs_to_each_uploader_under_their_own_name(app):
    alice, bob, carol = app.test_client(), app.test_client(), app.test_client()
    song = wav_bytes(0.7, freq=330.0)
    a = upload(alice, song, "our demo.wav").json
    b = upload(bob, song, "bobs secret title.wav")
    assert b.status_code == 201 and b.json["id"] == a["id"]       # stored once
    assert b.json["title"] == "bobs secret title" and a["title"] == "our demo"
    for client, title in ((alice, "our demo"), (bob, "bobs secret title")):
        mine = client.get("/api/tracks?source=mine").json["items"]
        assert [t["title"] for t in mine if t["id"] == a["id"]] == [title]
        assert client.get(f"/api/tracks/{a['id']}").json["title"] == title
        found = client.get(f"/api/tracks?q={title.split()[0]}").json["items"]
        assert a["id"] in [t["id"] for t in found]
    assert not bob.get("/api/tracks?q=demo&source=mine").json["items"]   # not alice's name
    seen = carol.get("/api/tracks?per_page=500").json["items"]
    assert a["id"] not in [t["id"] for t in seen]
    assert len(list((Path(app.config["DATA_DIR"]) / "uploads").glob(f"{a['id']}.*"))) == 1


def test_removing_an_upload(app):
    """Off the remover's list; deleted with its caches only when no other uploader has it."""
    import sqlite3
    alice, bob, carol = app.test_client(), app.test_client(), app.test_client()
    song = wav_bytes(2.0, freq=415.0)
    t = upload(alice, song, "alice take.wav").json
    upload(bob, song, "bob take.wav")
    path = _path_of(app, t["id"])
    timeline = f"/api/tracks/{t['id']}/features?run=sample/conv_ae&method=pca"
    assert alice.get(timeline).status_code == 200           # a cached timeline of it
    db = Path(app.config["DB_PATH"])

    def cached() -> int:
        with sqlite3.connect(db) as con:
            return con.execute("SELECT COUNT(*) FROM timelines WHERE track_id = ?",
                               (t["id"],)).fetchone()[0]

    assert cached() >= 1
    assert carol.delete(f"/api/tracks/{t['id']}").status_code == 404     # not hers
    r = alice.delete(f"/api/tracks/{t['id']}")
    assert r.status_code == 200 and r.json == {"id": t["id"], "removed": True, "deleted": False}
    assert t["id"] not in [x["id"] for x in alice.get("/api/tracks?source=mine").json["items"]]
    assert alice.delete(f"/api/tracks/{t['id']}").status_code == 404    # already off her list
    assert bob.get(f"/api/tracks/{t['id']}").json["title"] == "bob take"
    assert bob.get(t["audio_url"]).data == song and path.is_file() and cached() >= 1
    r = bob.delete(f"/api/tracks/{t['id']}")
    assert r.status_code == 200 and r.json["deleted"] is True
    assert not path.exists() and cached() == 0
    assert not list(path.parent.glob(".removing-*"))
    assert bob.get(f"/api/tracks/{t['id']}").status_code == 404
    assert bob.get(t["audio_url"]).status_code == 404
    again = upload(bob, song, "back again.wav")                # uploading it again works
    assert again.status_code == 201 and again.json["id"] == t["id"] and path.is_file()
    first = alice.get("/api/tracks?source=fma&per_page=1").json["items"][0]
    r = alice.delete(f"/api/tracks/{first['id']}")
    assert r.status_code == 403 and "sample set" in r.json["error"]
    assert alice.delete("/api/tracks/0123456789abcdef0123").status_code == 404


def test_an_upload_being_separated_is_not_removed(app):
    import sqlite3
    import time
    alice = app.test_client()
    t = upload(alice, wav_bytes(0.6, freq=590.0), "busy.wav").json
    alice.get("/api/mixer/jobs")                     # the mixer's tables exist
    with sqlite3.connect(app.config["DB_PATH"]) as con:
        con.execute("INSERT INTO mixer_jobs (id, user_id, track_id, track_path, backend, model, "
                    "cache_key, state, created) VALUES ('j1', 'x', ?, 'p', 'hpss', 'm', 'k', "
                    "'running', ?)", (t["id"], time.time()))
    r = alice.delete(f"/api/tracks/{t['id']}")
    assert r.status_code == 409 and "separation" in r.json["error"]
    assert t["id"] in [x["id"] for x in alice.get("/api/tracks?source=mine").json["items"]]
    with sqlite3.connect(app.config["DB_PATH"]) as con:
        con.execute("UPDATE mixer_jobs SET state = 'done' WHERE id = 'j1'")
    assert alice.delete(f"/api/tracks/{t['id']}").json["deleted"] is True


def test_a_failed_removal_leaves_the_upload_as_it_was(app, monkeypatch):
    alice = app.test_client()
    song = wav_bytes(0.6, freq=610.0)
    t = upload(alice, song, "keep.wav").json
    path = _path_of(app, t["id"])

    def disk_error(*_a, **_k):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "replace", disk_error)
    assert alice.delete(f"/api/tracks/{t['id']}").status_code == 500
    monkeypatch.undo()
    assert t["id"] in [x["id"] for x in alice.get("/api/tracks?source=mine").json["items"]]
    assert alice.get(t["audio_url"]).data == song and path.is_file()


def test_uploads_of_an_old_database_stay_their_owners(tmp_path):
    import sqlite3

    db = tmp_path / "old.sqlite"
    con = sqlite3.connect(db)
    con.executescript(SCHEMA.split("CREATE TABLE IF NOT EXISTS uploads")[0])
    con.execute("INSERT INTO tracks (id, source, path, format, title, duration, sample_rate, "
                "channels, size, owner, added) VALUES ('abc', 'upload', 'uploads/abc.wav', "
                "'wav', 'old song', 1.0, 44100, 1, 10, 'u1', 5.0)")
    con.commit()
    con.close()
    init_db(db)
    init_db(db)                      # idempotent
    con = sqlite3.connect(db)
    assert con.execute("SELECT user_id, track_id, title FROM uploads").fetchall() == [
        ("u1", "abc", "old song")]
    assert con.execute("SELECT owner FROM tracks").fetchall() == [(None,)]   # moved, once
    con.close()


# ------------------------------------------------------------------------------------ models

def test_models_list_kinds_layers(client):
    res = client.get("/api/models").json
    by_id = {m["id"]: m for m in res["models"]}
    assert by_id["sample/conv_ae"]["kind"] == "autoencoder"
    assert by_id["sample/conv_ae"]["layers"] == ["code"]
    cls = by_id["sample/classifier"]
    assert cls["kind"] == "classifier" and cls["layers"] == ["L8", "L9", "L10"]
    assert len(cls["genres"]) == 8 and res["classifier"] == "sample/classifier"
    assert "pca" in cls["mappings"]


# ------------------------------------------------------------------------------------ features

def test_features_match_mapping_utils_and_cache(app, client, first_track):
    url = (f"/api/tracks/{first_track['id']}/features?run=sample/conv_ae&method=pca"
           "&fps=20&assign=deterministic")
    a = client.get(url)
    assert a.status_code == 200, a.json
    j = a.json
    frames = np.array(j["frames"])
    assert frames.shape == (int(6.0 * 20) + 1, 10)
    assert frames.min() >= 0 and frames.max() <= 1 and frames.std() > 0.01
    expected = mapped_timeline(_path_of(app, first_track["id"]),
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


# ------------------------------------------------------------------------------------ safety

def test_cors_same_origin_by_default(client, sample_set, playground_models, tmp_path, make_app):
    r = client.get("/api/health", headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in r.headers
    w = client.post("/api/tracks", headers={"Origin": "https://evil.example"},
                    data={"file": (io.BytesIO(wav_bytes(0.5)), "a.wav")})
    assert w.status_code == 403
    same = client.post("/api/tracks", headers={"Origin": "http://localhost"},
                       data={"file": (io.BytesIO(wav_bytes(0.5, freq=300.0)), "a.wav")})
    assert same.status_code == 201
    app = make_app(tmp_path / "d", sample_set, playground_models,
                   cors_origins=["https://friend.example"])
    ok = app.test_client().get("/api/health", headers={"Origin": "https://friend.example"})
    assert ok.headers["Access-Control-Allow-Origin"] == "https://friend.example"


def test_secret_key_generated_per_install(app, sample_set, playground_models, tmp_path, make_app):
    key_file = os.path.join(app.config["DATA_DIR"], "secret_key")
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    other = make_app(tmp_path / "other", sample_set, playground_models)
    assert len(app.config["SECRET_KEY"]) == 32 and app.config["SECRET_KEY"] != \
        other.config["SECRET_KEY"]
    source = "".join(p.read_text() for p in (ROOT / "deepaudio" / "web").glob("*.py"))
    assert "SECRET_KEY=" in source and not re.search(r"SECRET_KEY\s*=\s*['\"]", source)


def test_static_files_and_vendor(client):
    assert client.get("/").status_code == 200
    assert b"importmap" in client.get("/").data
    assert client.get("/js/app.js").status_code == 200
    assert client.get("/vendor/three/build/three.module.js").status_code == 200
    for bad in ("/node_modules/three/package.json", "/vendor/three/package.json",
                "/../api.py", "/%2e%2e/api.py", "/api.py", "/.git/config"):
        assert client.get(bad).status_code == 404, bad


def test_bad_server_config_names_key(tmp_path):
    with pytest.raises(ConfigError, match="bogus"):
        create_app({"data_dir": str(tmp_path), "bogus": 1})
    with pytest.raises(ConfigError, match="max_upload_mb"):
        create_app({"data_dir": str(tmp_path), "max_upload_mb": -1})
    with pytest.raises(ConfigError, match="crossfade_cache_mb"):
        create_app({"data_dir": str(tmp_path), "crossfade_cache_mb": 0})


def test_openapi_documents_every_api_route(app):
    spec = json.loads((ROOT / "docs" / "openapi.json").read_text())
    assert spec["openapi"].startswith("3.")
    documented = {(path, method) for path, ops in spec["paths"].items() for method in ops}
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/"):
            continue
        path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule.rule)
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            assert (path, method.lower()) in documented, f"{method} {path} not in openapi.json"


def test_mapping_saved_by_cli_loads_in_process(ae_run, tmp_path):
    import shutil
    run = tmp_path / "run"
    shutil.copytree(ae_run, run)
    subprocess.run([sys.executable, str(ROOT / "mapping_utils.py"), "fit", "--run", str(run),
                    "--method", "kmeans"], check=True, capture_output=True, cwd=ROOT)
    m = Mapping.load(mapping_path(run, "kmeans", "code", "standard", "features"))
    assert m.method == "kmeans" and m.out_params
