"""The static site (make site) served by a plain static file server, under a sub-path as on
GitHub Pages: the sample tracks play with their precomputed features, an upload is decoded and
encoded in the browser, and what needs the server says so."""

from __future__ import annotations

import functools
import json
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
import soundfile as sf

from deepaudio.web.site import build_site


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def site(sample_set, playground_models, tmp_path_factory):
    www = tmp_path_factory.mktemp("www")
    # uploads of 12 s at most: a longer one tests the limit (the sample songs last 6 s)
    build_site(www / "deep", fma_dir=sample_set, models_dir=playground_models, max_tracks=4,
               max_upload_minutes=0.2)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0),
                                functools.partial(QuietHandler, directory=str(www)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield www / "deep", f"http://127.0.0.1:{httpd.server_address[1]}/deep/"
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture
def page(browser, recording_page):
    with recording_page(browser, viewport={"width": 1200, "height": 720}) as pg:
        yield pg


def wait_ready(page):
    page.wait_for_function("() => !document.getElementById('play').disabled"
                           " && window.__playground.state.timeline", timeout=120000)


def test_a_sample_track_plays_with_its_precomputed_features(page, site, artifacts):
    folder, url = site
    page.goto(url + "?assign=deterministic&smoothing=0")
    page.wait_for_selector("#track-list li")
    assert page.locator("#track-list li").count() == 4
    assert "4 tracks" in page.inner_text("#page-info")
    page.locator("#track-list li").first.click()
    wait_ready(page)
    tl = page.evaluate("() => window.__playground.state.timeline")
    stored = json.loads((folder / "data/features" / tl["run"] / f"{tl['track']}.json").read_text())
    assert tl["frames"] == stored["frames"] and tl["permutation"] == list(range(10))
    assert tl["run"] == "sample/conv_ae"
    pool = page.evaluate("() => window.__playground.sample().pool")
    assert "beat:tempo" in pool and "dsp:bass" in pool
    page.click("#play")
    page.wait_for_function("() => window.__playground.player.currentTime() > 1.0", timeout=30000)
    s = page.evaluate("() => window.__playground.sample()")
    assert s["playing"] and s["frames"] > 10 and s["timeline"]
    assert np.ptp(np.asarray(stored["frames"]), axis=0).max() > 0.1
    # the genre meter comes from the stored classifier answer
    page.wait_for_function("() => document.getElementById('meter-genre').textContent !== ''")
    page.screenshot(path=str(artifacts / "site.png"))
    # what needs the server is disabled and the note says so
    assert page.get_attribute("nav a[href='/mixer.html']", "aria-disabled") == "true"
    assert page.is_disabled("#render-video") and page.is_disabled("#train")
    assert page.is_disabled("#method")
    note = page.inner_text("#site-note")
    assert "crossfades" in note and "4 sample tracks" in note
    page.click("nav a[href='/crossfade.html']", force=True)
    assert page.url.startswith(url)                  # stays; the status line says why
    assert "playground server" in page.inner_text("#status")
    # another model: the spectrum model's stored features
    page.select_option("#run", "sample/spectrum_ae")
    page.wait_for_function("() => window.__playground.state.timeline.run === 'sample/spectrum_ae'",
                           timeout=60000)
    assert page.errors == []


def test_an_upload_is_decoded_and_encoded_in_the_browser(page, site, sample_set):
    folder, url = site
    tracks = json.loads((folder / "data/tracks.json").read_text())["items"]
    # one of the site's own songs, uploaded: its in-browser features and DSP bands against
    # the server's stored ones
    mp3 = next(p for p in (sample_set / "fma_small").rglob("*.mp3")
               if p.stat().st_size == tracks[0]["size"])
    page.goto(url + "?assign=deterministic&smoothing=0")
    page.wait_for_selector("#track-list li")
    page.set_input_files("#upload", str(mp3))
    page.wait_for_function("() => window.__playground.state.track"
                           " && window.__playground.state.track.source === 'upload'"
                           " && !document.getElementById('play').disabled", timeout=120000)
    wait_ready(page)
    assert page.locator("#track-list li").count() == 5
    tl = page.evaluate("() => window.__playground.state.timeline")
    want = np.asarray(json.loads((folder / "data/features/sample/conv_ae"
                                  / f"{tracks[0]['id']}.json").read_text())["frames"])
    got = np.asarray(tl["frames"])
    n = min(len(got), len(want))
    assert abs(len(got) - len(want)) <= 1 and n > 100
    # the browser's decoder and resampler against the server's (here: max 1e-4)
    err = np.abs(got[:n] - want[:n])
    assert np.median(err) < 0.005 and err.max() < 0.05, (np.median(err), err.max())
    src = page.evaluate("() => window.__playground.state.sources")
    assert src["beats"]["names"][0] == "tempo" and len(src["beats"]["frames"]) == len(got)
    stored = json.loads((folder / "data/sources" / f"{tracks[0]['id']}.json").read_text())
    dsp, want_dsp = np.asarray(src["dsp"]["frames"]), np.asarray(stored["dsp"]["frames"])
    n = min(len(dsp), len(want_dsp))
    assert np.median(np.abs(dsp[:n] - want_dsp[:n])) < 0.03
    page.click("#play")
    page.wait_for_function("() => window.__playground.player.currentTime() > 0.5", timeout=30000)
    # a file the browser cannot decode: a clear message, nothing added
    bad = folder.parent / "broken.mp3"
    bad.write_bytes(b"ID3" + bytes(range(256)) * 40)
    page.set_input_files("#upload", str(bad))
    page.wait_for_function("() => document.getElementById('status').textContent"
                           ".includes('cannot decode')", timeout=30000)
    assert page.locator("#track-list li").count() == 5
    # longer than the site's limit: refused after decoding, nothing added
    long_wav = folder.parent / "long.wav"
    sf.write(long_wav, np.zeros(8000 * 20, np.float32), 8000)
    page.set_input_files("#upload", str(long_wav))
    page.wait_for_function("() => document.getElementById('status').textContent"
                           ".includes('limit is 0.2 minutes')", timeout=30000)
    assert page.locator("#track-list li").count() == 5
    assert page.errors == []


def test_an_upload_gets_its_beat_grid_in_the_browser(page, site, click_track):
    """The live beat tracker runs over an upload: a 120 bpm click track gets its tempo, beats
    on the clicks after the tracker's first 4 s, and downbeats every four beats."""
    folder, url = site
    wav = folder.parent / "clicks.wav"
    sf.write(wav, click_track(120, 11.0), 22050)
    page.goto(url + "?assign=deterministic&smoothing=0")
    page.wait_for_selector("#track-list li")
    page.set_input_files("#upload", str(wav))
    page.wait_for_function("() => { const s = window.__playground.state;"
                           " return s.track && s.track.source === 'upload' && s.sources; }",
                           timeout=120000)
    beats = page.evaluate("() => window.__playground.state.sources.beats")
    assert beats["bpm"] == pytest.approx(120, rel=0.02) and beats["reason"] is None
    got = np.asarray(beats["beat_times"])
    assert len(got) >= 10 and got[0] < 6.0
    assert np.abs((got + 0.25) % 0.5 - 0.25).max() < 0.05          # on the clicks (every 0.5 s)
    assert np.allclose(np.diff(beats["downbeat_times"]), 2.0, atol=0.05)
    assert f"{beats['bpm']:.1f} bpm" in page.inner_text("#sources-info")
    assert page.errors == []
