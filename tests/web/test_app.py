"""The app itself: CORS, the secret key, static files, server config errors."""

from __future__ import annotations

import io
import os
import re
import stat
import time
from pathlib import Path

import pytest

from deepaudio.core.config import ConfigError
from deepaudio.web.app import create_app
from deepaudio.web.db import connect

ROOT = Path(__file__).resolve().parents[2]     # the checkout


def test_cors_same_origin_by_default(client, sample_set, playground_models, tmp_path, make_app,
                                     wav_bytes):
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


def test_requests_that_store_nothing_leave_nothing(sample_set, playground_models, tmp_path,
                                                   make_app):
    app = make_app(tmp_path / "data", sample_set, playground_models)
    for _ in range(20):
        assert app.test_client().get("/api/health").status_code == 200   # no cookie each time
    con = connect(app.config["DB_PATH"])
    assert con.execute("SELECT COUNT(*) FROM users").fetchone()[0] == 0
    con.close()


def test_leftovers_of_a_killed_server_are_removed_at_start(sample_set, playground_models,
                                                           tmp_path, make_app):
    uploads = tmp_path / "data" / "uploads"
    uploads.mkdir(parents=True)
    old, fresh = uploads / ".upload-old.part", uploads / ".upload-fresh.part"
    aside = tmp_path / "data" / "mixer" / "jobs" / ".removing-0123456789abcdef"
    aside.mkdir(parents=True)
    for path in (old, fresh):
        path.write_bytes(b"half an upload")
    for path in (old, aside):
        os.utime(path, (time.time() - 3600, time.time() - 3600))
    make_app(tmp_path / "data", sample_set, playground_models)
    assert not old.exists() and not aside.exists()
    assert fresh.exists()                   # maybe another server process's upload in progress


def test_forged_host_is_refused_and_headers_protect_the_pages(client):
    """A page on another site that rebinds its name to 127.0.0.1 reaches the server under its
    own Host: refused, also with a matching forged Origin (a DNS-rebinding attack)."""
    r = client.post("/api/mixer/mixes", json={}, headers={"Host": "evil.example",
                                                          "Origin": "http://evil.example"})
    assert r.status_code == 400
    ok = client.get("/")
    assert ok.headers["X-Frame-Options"] == "DENY"
    csp = ok.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp
    assert "script-src 'self' 'wasm-unsafe-eval' 'sha256-" in csp
    assert "'unsafe-eval'" not in csp.replace("'wasm-unsafe-eval'", "")


def test_data_folder_is_private_and_requests_are_logged(sample_set, playground_models, tmp_path,
                                                        make_app, caplog):
    app = make_app(tmp_path / "data", sample_set, playground_models)
    assert stat.S_IMODE((tmp_path / "data").stat().st_mode) == 0o700
    assert stat.S_IMODE(os.stat(app.config["DB_PATH"]).st_mode) == 0o600
    with caplog.at_level("INFO", logger="playground.access"):
        app.test_client().get("/api/health?secret=1", headers={"Cookie": "session=x"})
    lines = [r.getMessage() for r in caplog.records if r.name == "playground.access"]
    assert any(" GET /api/health 200 " in line for line in lines), lines
    assert not any("secret" in line or "session" in line for line in lines)


def test_range_headers_follow_rfc_9110(client, first_track):
    url = f"/api/tracks/{first_track['id']}/audio"
    whole = client.get(url)
    assert whole.status_code == 200
    size = len(whole.data)
    part = client.get(url, headers={"Range": "bytes=0-99"})
    assert part.status_code == 206 and part.data == whole.data[:100]
    for ignored in ("garbage", "bytes=0-9,20-29", "bytes=", "items=0-9", "bytes=9-x"):
        r = client.get(url, headers={"Range": ignored})
        assert r.status_code == 200 and len(r.data) == size, ignored
    assert client.get(url, headers={"Range": f"bytes={size + 10}-"}).status_code == 416
