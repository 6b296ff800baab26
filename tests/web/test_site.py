"""``make site``: the visualizer as a static folder holding the playground's own answers
(tests/browser/test_site.py opens it in Chromium from a plain file server)."""

from __future__ import annotations

import json
import re

import pytest

from deepaudio.cli.mapping import main as mapping_main
from deepaudio.core.errors import ToolkitError
from deepaudio.web.site import build_site


@pytest.fixture(scope="module")
def site(sample_set, playground_models, tmp_path_factory):
    out = tmp_path_factory.mktemp("www") / "site"
    info = build_site(out, fma_dir=sample_set, models_dir=playground_models, max_tracks=2)
    return out, info


def test_the_site_holds_the_servers_answers(site, app):
    out, info = site
    client = app.test_client()
    data = out / "data"
    assert json.loads((data / "site.json").read_text()) == info
    assert info["tracks"] == 2 and info["default"] == "sample/conv_ae"
    assert set(info["runs"]) == {"sample/conv_ae", "sample/classifier", "sample/spectrum_ae"}
    for run, entry in info["runs"].items():
        assert entry["onnx"], (run, entry["reason"])
        spec = json.loads((out / entry["onnx"]).read_text())
        assert (out / spec["graph"]).stat().st_size > 1000
        assert spec["hop_seconds"] > 0
    models = json.loads((data / "models.json").read_text())
    assert all(m["layers"] == [m["default_layer"]] for m in models["models"])
    tracks = json.loads((data / "tracks.json").read_text())["items"]
    server = client.get("/api/tracks?per_page=2").json["items"]
    assert [t["id"] for t in tracks] == [t["id"] for t in server]
    for t in tracks:
        assert not t["audio_url"].startswith("/")
        audio = (out / t["audio_url"]).read_bytes()
        assert audio == client.get(f"/api/tracks/{t['id']}/audio").data
        want = client.get(f"/api/tracks/{t['id']}/features?run=sample/spectrum_ae&fps=30").json
        got = json.loads((data / "features/sample/spectrum_ae" / f"{t['id']}.json").read_text())
        assert got["frames"] == want["frames"]
        assert got["feature_variance"] == want["feature_variance"]
        src = json.loads((data / "sources" / f"{t['id']}.json").read_text())
        assert src["beats"]["names"][0] == "tempo" and src["dsp"]["frames"]
        assert json.loads((data / "genres" / f"{t['id']}.json").read_text())["top"]


def test_the_page_uses_relative_addresses_and_the_vendored_libraries(site):
    out, _ = site
    html = (out / "index.html").read_text()
    assert '<meta name="deepaudio-site" content="data/site.json">' in html
    assert not re.search(r'(href|src)="/[^/]', html) and '"/vendor/' not in html
    for f in ("js/app.js", "js/shared/site.js", "js/live/dsp.js", "css/style.css",
              "vendor/three/build/three.module.js", "vendor/ort/ort.wasm.min.mjs",
              "vendor/ort/ort-wasm-simd-threaded.wasm", ".nojekyll"):
        assert (out / f).is_file(), f
    assert not (out / "mixer.html").exists()      # server-only pages are not on the site


def test_a_rebuild_replaces_the_site_and_a_foreign_folder_is_kept(sample_set, playground_models,
                                                                  tmp_path):
    out = tmp_path / "site"
    build_site(out, fma_dir=sample_set, models_dir=playground_models, max_tracks=2)
    build_site(out, fma_dir=sample_set, models_dir=playground_models, max_tracks=1)
    assert json.loads((out / "data/site.json").read_text())["tracks"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["site"]      # nothing left over
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    with pytest.raises(ToolkitError, match="not a site"):
        build_site(mine, fma_dir=sample_set, models_dir=playground_models)
    assert (mine / "notes.txt").read_text() == "keep me"


def test_cli_errors_are_one_line(sample_set, tmp_path, capsys):
    empty = tmp_path / "runs"
    empty.mkdir()
    assert mapping_main(["site", "-o", str(tmp_path / "s"), "--fma", str(sample_set),
                         "--models", str(empty)]) == 2
    err = capsys.readouterr().err.strip()
    assert "no trained runs" in err and len(err.splitlines()) == 1
    assert mapping_main(["site", "-o", str(tmp_path / "s"), "--max-tracks", "0"]) == 2
    assert "--max-tracks" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs"]


def test_upload_limits_must_be_positive(sample_set, playground_models, tmp_path, capsys):
    assert mapping_main(["site", "-o", str(tmp_path / "s"), "--fma", str(sample_set),
                         "--models", str(playground_models), "--max-upload-minutes", "0"]) == 2
    assert "upload limits must be positive" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()
