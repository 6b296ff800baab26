"""The track library: listing, search, content-hash ids, Range streaming, 404s, and the
OpenAPI file listing every route."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from deepaudio.web.catalog import file_hash

ROOT = Path(__file__).resolve().parents[2]     # the checkout


def test_health_and_track_listing(client):
    h = client.get("/api/health").json
    assert h["status"] == "ok" and h["tracks"] == 24 and h["models"] == 3
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


def test_track_ids_are_content_hashes(app, client, first_track, path_of):
    assert client.get(f"/api/tracks/{first_track['id']}").json == first_track
    assert first_track["id"] == file_hash(path_of(app, first_track["id"]))


def test_audio_streams_with_range(app, client, first_track, path_of):
    path = path_of(app, first_track["id"])
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
