"""The crossfade page in a real browser: Debian's Chromium driven by Playwright, against the
real server (waitress) on the 6 s sample-set tracks.

The page decodes the rendered transition with Web Audio and draws it on a canvas; the
assertions read the page's state through ``window.__crossfade`` and the canvas pixels. A
screenshot goes to ``test-artifacts/crossfade.png``.
"""

from __future__ import annotations

import io
import time

import numpy as np
import pytest
import soundfile as sf
from PIL import Image


@pytest.fixture(scope="module")
def server(sample_set, tmp_path_factory, make_app, serve):
    app = make_app(tmp_path_factory.mktemp("data"), sample_set,
                   tmp_path_factory.mktemp("no_models"))
    with serve(app) as url:
        yield url


@pytest.fixture
def page(browser, recording_page):
    with recording_page(browser, viewport={"width": 1280, "height": 820}) as pg:
        yield pg


def snap(page) -> dict:
    return page.evaluate("() => window.__crossfade.snapshot()")


def click_render(page):
    """Press Render; the answer to the first POST /api/crossfade."""
    with page.expect_response(lambda r: r.url.endswith("/api/crossfade")
                              and r.request.method == "POST") as answer:
        page.click("#render")
    return answer.value


def wave_pixels(page) -> np.ndarray:
    png = page.locator("#wave").screenshot()
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.int16)


def test_pick_render_draw_and_play(page, server, artifacts):
    page.goto(f"{server}/crossfade.html")
    page.wait_for_selector("#track-list li")
    page.wait_for_selector("#style option[value=equal_power]", state="attached")
    assert page.is_disabled("#render") and page.is_disabled("#play")
    # a row click fills A, the next one B; the B button of a row sets B directly
    page.locator("#track-list li").nth(0).click()
    page.locator("#track-list li").nth(3).locator(".xfade-pick-b").click()
    s = snap(page)
    ids = page.eval_on_selector_all("#track-list li", "ls => ls.map(l => l.dataset.id)")
    assert s["a"] == ids[0] and s["b"] == ids[3]
    assert f"a={ids[0]}" in page.url and f"b={ids[3]}" in page.url
    assert not page.is_disabled("#render")

    page.select_option("#style", "s_curve")
    page.fill("#seconds", "2")
    page.fill("#context", "1.5")
    page.select_option("#compare", "linear")
    assert click_render(page).status == 200
    page.wait_for_function("() => window.__crossfade.snapshot().results.length === 2",
                           timeout=60000)
    s = snap(page)
    assert s["loaded"] and not s["rendering"]
    assert s["duration"] == pytest.approx(5.0, abs=0.05)        # 1.5 + 2 + 1.5 s
    assert [r["label"] for r in s["results"]] == ["s curve", "linear"]
    assert s["sidecar"]["timeline"]["overlap_start_s"] == pytest.approx(1.5, abs=1e-3)
    assert s["measures"]["roughness"] > 0
    assert "Overlap" in page.inner_text("#facts") and "LUFS" in page.inner_text("#facts")
    assert "/ 100" in page.inner_text("#measures")

    # the canvas: a waveform, the shaded overlap, orange (A) and green (B) curves
    px = wave_pixels(page)
    assert px.std() > 10, "the waveform canvas is blank"
    orange = (np.abs(px - [255, 159, 95]).sum(-1) < 60).sum()
    green = (np.abs(px - [111, 220, 140]).sum(-1) < 60).sum()
    assert orange > 200 and green > 200, (orange, green)

    # play: time advances; the playhead moves
    started = time.monotonic()
    page.click("#play")
    page.wait_for_function("() => window.__crossfade.snapshot().time > 0.4", timeout=20000)
    # (audio time is compared with the wall time since play was pressed: a busy machine's
    # audio thread may stall and catch up, but never runs ahead of the clock)
    t1 = snap(page)["time"]
    page.wait_for_function(f"() => window.__crossfade.snapshot().time > {t1}", timeout=20000)
    s = snap(page)
    assert s["playing"] and t1 < s["time"] < time.monotonic() - started + 0.3
    assert page.inner_text("#play").endswith("Pause")

    # A/B: the second style plays at the same position
    before, wall = snap(page)["time"], time.monotonic()
    page.click("#ab-1")
    page.wait_for_timeout(100)
    s = snap(page)
    assert s["current"] == 1 and s["playing"]
    assert 0 <= s["time"] - before < time.monotonic() - wall + 0.3
    assert page.inner_text("#result-title") == "linear"
    page.click("#ab-0")

    # seek by clicking the waveform, then pause for the screenshot at the overlap
    box = page.locator("#wave").bounding_box()
    wall = time.monotonic()
    page.mouse.click(box["x"] + box["width"] * 0.5, box["y"] + box["height"] / 2)
    page.wait_for_timeout(50)
    assert 2.3 < snap(page)["time"] < 2.5 + time.monotonic() - wall + 0.3
    page.click("#play")
    assert not snap(page)["playing"]
    page.screenshot(path=str(artifacts / "crossfade.png"))

    # the same request again is served from the cache
    assert click_render(page).json()["cached"] is True
    page.wait_for_function("() => !window.__crossfade.snapshot().rendering")
    assert "Keys" in page.inner_text("#facts")

    # match keys: the request asks for it; the facts give both keys and any shift
    page.select_option("#compare", "")
    page.check("#key-match")
    answer = click_render(page)
    assert answer.status == 200 and answer.json()["sidecar"]["keys"]["key_match"] is True
    assert answer.request.post_data_json["key_match"] is True
    page.wait_for_function("() => !window.__crossfade.snapshot().rendering")
    facts = page.inner_text("#facts")
    assert "Keys" in facts and "A " in facts and " B " in facts
    assert page.errors == [], "\n".join(page.errors)


def test_beat_sync_upload_and_errors_in_the_status_line(page, server, tmp_path):
    page.goto(f"{server}/crossfade.html")
    page.wait_for_selector("#track-list li")
    page.wait_for_selector("#style option[value=equal_power]", state="attached")
    ids = page.eval_on_selector_all("#track-list li", "ls => ls.map(l => l.dataset.id)")
    # beat sync on two drum tracks: a plan (beat_sync or cut) in the facts, or a clear message
    page.goto(f"{server}/crossfade.html?a={ids[1]}&b={ids[2]}")
    page.wait_for_function("() => window.__crossfade.snapshot().b !== null")
    page.check("#beat-sync")
    assert page.is_disabled("#seconds") and not page.is_disabled("#beats")
    page.select_option("#beats", "8")
    page.fill("#context", "1")
    page.click("#render")
    page.wait_for_function("() => window.__crossfade.snapshot().results.length === 1"
                           " || document.getElementById('status').classList.contains('error')",
                           timeout=60000)
    s = snap(page)
    if s["results"]:
        assert s["sidecar"]["mode"] in ("beat_sync", "cut")
        assert "bpm" in page.inner_text("#facts")
    else:
        assert page.inner_text("#status").strip()
    # an upload becomes B
    sr = 44100
    t = np.arange(3 * sr) / sr
    sf.write(tmp_path / "My tone.wav", 0.3 * np.sin(2 * np.pi * 330 * t), sr)
    page.set_input_files("#upload-b", str(tmp_path / "My tone.wav"))
    page.wait_for_function("() => document.querySelector('#slot-b').textContent"
                           ".includes('My tone')")
    assert snap(page)["a"] == ids[1] and snap(page)["b"] not in ids
    # a server error (an overlap longer than the songs) shows in the status line
    page.uncheck("#beat-sync")
    page.fill("#seconds", "25")
    page.click("#render")
    page.wait_for_function("() => document.getElementById('status').classList.contains('error')")
    assert "longer than a song" in page.inner_text("#status")
    errors = [e for e in page.errors if "422" not in e]       # the expected 4xx response
    assert errors == [], "\n".join(errors)


def test_neural_fade_with_the_imported_nsynth_checkpoint(browser, recording_page, sample_set,
                                                         tmp_path, make_app, serve, request,
                                                         artifacts):
    """NSynth's checkpoint (the tiny Magenta-format fixture, imported as a user imports the
    real one) is offered on the page; its fade renders as a job with a progress bar, then
    plays like any other transition."""
    from deepaudio.networks.nsynth import import_nsynth

    models = tmp_path / "models"
    import_nsynth(request.config.rootpath / "tests" / "fixtures" / "nsynth_tiny",
                  models / "nsynth")
    app = make_app(tmp_path / "data", sample_set, models)
    with serve(app) as url, recording_page(browser, viewport={"width": 1280,
                                                               "height": 820}) as page:
        page.goto(f"{url}/crossfade.html")
        page.wait_for_selector("#track-list li")
        option = page.locator("#style option[value='neural|nsynth|linear']")
        option.wait_for(state="attached")
        label = page.eval_on_selector("#style optgroup[label^='WaveNet']", "g => g.label")
        assert label == "WaveNet nsynth (NSynth checkpoint)"
        page.locator("#track-list li").nth(1).click()
        page.locator("#track-list li").nth(4).locator(".xfade-pick-b").click()
        page.select_option("#style", "neural|nsynth|linear")
        page.fill("#seconds", "0.3")
        page.fill("#context", "1")
        assert click_render(page).status == 202           # a job, not a render in the request
        page.wait_for_function("() => window.__crossfade.snapshot().results.length === 1",
                               timeout=120000)
        s = snap(page)
        assert s["sidecar"]["mode"] == "neural" and s["sidecar"]["run"] == "nsynth"
        assert s["sidecar"]["generation"]["samples_per_s"] > 0
        assert s["duration"] == pytest.approx(2 + 9 * 512 / 16000, abs=0.05)
        assert page.is_hidden("#render-job")                  # the progress bar is gone
        assert wave_pixels(page).std() > 10
        page.screenshot(path=str(artifacts / "crossfade-nsynth.png"))
        assert page.errors == [], "\n".join(page.errors)


def test_m4a_and_opus_uploads_crossfade(page, server, tmp_path, pyav_encode):
    """An M4A (AAC) as A and an Opus file as B: uploaded, rendered, played."""
    songs = {}
    for slot, name, codec, container, rate, f0 in (
            ("a", "Song A.m4a", "aac", "ipod", 44100, 220.0),
            ("b", "Song B.opus", "libopus", "ogg", 48000, 330.0)):
        t = np.arange(int(5 * rate)) / rate
        audio = (0.3 * np.sin(2 * np.pi * f0 * t) * (1 + 0.3 * np.sin(2 * np.pi * 2 * t)))
        songs[slot] = pyav_encode(tmp_path / name, np.stack([audio, audio]).astype(np.float32),
                                  rate, codec, container=container)
    page.goto(f"{server}/crossfade.html")
    page.wait_for_selector("#track-list li")
    page.wait_for_selector("#style option[value=equal_power]", state="attached")
    page.set_input_files("#upload-a", str(songs["a"]))
    page.wait_for_function("() => document.querySelector('#slot-a').textContent"
                           ".includes('Song A')", timeout=60000)
    page.set_input_files("#upload-b", str(songs["b"]))
    page.wait_for_function("() => document.querySelector('#slot-b').textContent"
                           ".includes('Song B')", timeout=60000)
    page.fill("#seconds", "2")
    page.fill("#context", "1")
    page.click("#render")
    page.wait_for_function("() => window.__crossfade.snapshot().results.length === 1",
                           timeout=60000)
    s = snap(page)
    assert s["duration"] == pytest.approx(4.0, abs=0.05) and s["loaded"]
    page.click("#play")
    page.wait_for_function("() => window.__crossfade.snapshot().time > 0.3", timeout=20000)
    assert page.errors == [], "\n".join(page.errors)


def test_stem_schedule_separates_then_draws_lanes_and_mix_points(page, server, tmp_path,
                                                                  artifacts):
    """Two uploaded 24 s Pop songs, beat sync with the vocal handoff: the page separates both
    through the stem mixer's jobs (their progress in the job box), renders, draws one lane per
    stem and the planner's candidates, and a click on a candidate renders and plays it."""
    from deepaudio.data.samples import render_track

    for tid in (8, 9):
        stems, _ = render_track("Pop", tid, seed=0, seconds=24.0, sr=22050)
        sf.write(tmp_path / f"Pop {tid}.flac", np.sum(list(stems.values()), axis=0).T, 22050)
    page.goto(f"{server}/crossfade.html")
    page.wait_for_selector("#track-list li")
    page.wait_for_selector("#schedule option[value=vocal_handoff]", state="attached")
    for slot, tid in (("a", 8), ("b", 9)):
        page.set_input_files(f"#upload-{slot}", str(tmp_path / f"Pop {tid}.flac"))
        page.wait_for_function(f"() => document.querySelector('#slot-{slot}').textContent"
                               f".includes('Pop {tid}')", timeout=60000)
    assert page.is_disabled("#schedule")
    page.check("#beat-sync")
    page.select_option("#schedule", "vocal_handoff")
    page.fill("#context", "2")
    assert click_render(page).status == 409                  # no stems yet: separate first
    page.wait_for_selector("#render-job:not([hidden])")
    page.wait_for_function("() => window.__crossfade.snapshot().results.length === 1",
                           timeout=180000)
    s = snap(page)
    assert s["sidecar"]["schedule"]["name"] == "vocal_handoff"
    assert s["lanes"] == 8 and s["points"] == len(s["sidecar"]["candidates"]) >= 2
    assert page.is_hidden("#render-job")
    facts = page.inner_text("#facts")
    assert "vocal handoff (one curve per stem)" in facts and "candidate 1 of" in facts
    # the lanes: orange (A) and green (B) areas
    png = page.locator("#lanes").screenshot()
    px = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.int16)
    assert px.shape[0] > 100 and px.std() > 10
    page.screenshot(path=str(artifacts / "crossfade-stems.png"), full_page=True)
    # a click on the second candidate renders it and plays from before its overlap
    page.locator("#points-line").get_by_role("button", name="2", exact=True).click()
    page.wait_for_function("() => window.__crossfade.snapshot().sidecar.candidate === 1 && "
                           "window.__crossfade.snapshot().playing", timeout=60000)
    errors = [e for e in page.errors if "409" not in e]       # the expected answer
    assert errors == [], "\n".join(errors)
