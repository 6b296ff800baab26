"""The visualizer page in a real browser: Debian's Chromium driven by Playwright, against the
real server (waitress) on the sample set and tiny trained models.

Screenshots go to ``test-artifacts/`` (one per visualization) so a human can look at them.
"""

from __future__ import annotations

import io
import time

import numpy as np
import pytest
from PIL import Image


@pytest.fixture
def page(browser, recording_page):
    # no HTTP-error recording: the upload test gets a 400 on purpose
    with recording_page(browser, http_errors=False,
                        viewport={"width": 1200, "height": 720}) as pg:
        yield pg


def canvas_pixels(page) -> np.ndarray:
    png = page.locator("#canvas").screenshot()
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.int16)


def sample(page) -> dict:
    """The frame on screen and the meter's numbers, read in one task (no frame in between)."""
    return page.evaluate("""() => {
        const s = window.__playground.sample();
        s.lastT = window.__playground.state.lastT;
        s.meter = [...document.querySelectorAll('#meter-bars .meter-bar')]
            .map(r => Number(r.dataset.value));
        return s; }""")


def open_track(page, server, query="smoothing=0&assign=random&seed=11"):
    page.goto(f"{server}/?{query}")
    page.wait_for_selector("#track-list li")
    page.locator("#track-list li").first.click()
    page.wait_for_function("() => !document.getElementById('play').disabled", timeout=60000)


def expected_at(timeline: dict, t: float) -> np.ndarray:
    frames = np.asarray(timeline["frames"])
    x = max(0.0, (t - timeline["start"]) * timeline["fps"])
    i = min(len(frames) - 1, int(np.floor(x)))
    if i >= len(frames) - 1:
        return frames[i]
    r = x - i
    return (1 - r) * frames[i] + r * frames[i + 1]


def test_play_moves_visuals_and_meter_follows_timeline(page, server):
    open_track(page, server)
    page.click("#play")
    page.wait_for_function("() => window.__playground.sample().t > 0.8", timeout=20000)
    t0 = sample(page)["t"]
    a = canvas_pixels(page)
    page.wait_for_function(
        "t0 => { const s = window.__playground.sample(); return s.playing && s.t > t0; }",
        arg=t0 + 0.5, timeout=20000)
    b = canvas_pixels(page)
    assert a.std() > 2, "canvas is blank"
    assert np.abs(a - b).mean() > 0.5, "canvas did not change while playing"
    timeline = page.evaluate("() => window.__playground.state.timeline")
    assert timeline["seed"] == 11 and timeline["assignment"] == "random"
    checked = 0
    for _ in range(5):
        s = sample(page)
        assert s["playing"] and s["timeline"]
        want = expected_at(timeline, s["lastT"])
        np.testing.assert_allclose(s["raw"], want, atol=2e-3)
        # smoothing 0: each parameter shows its assigned feature, and the meter shows it
        np.testing.assert_allclose(s["values"], [want[k] for k in s["perm"]], atol=2e-3)
        np.testing.assert_allclose(s["meter"], s["values"], atol=1e-4)
        checked += 1
        page.wait_for_timeout(150)
    # the sample tracks last 6 s: on a slow machine the checks above can reach the end
    # (and a track that has ended stays stopped after a seek: play it again)
    started = time.monotonic()
    page.evaluate("async () => { const p = window.__playground.player; await p.seek(0.5); "
                  "if (!p.playing) await p.play(); }")
    page.wait_for_function("() => window.__playground.sample().playing", timeout=10000)
    t1 = sample(page)["lastT"]
    # the visuals advance with the audio clock, and never run ahead of the time that passed
    # since the seek to 0.5 s (a busy machine's audio may stall and catch up, never lead)
    page.wait_for_function(f"() => window.__playground.state.lastT > {t1 + 0.3}",
                           timeout=10000)
    t2 = sample(page)["lastT"]
    assert t2 - 0.5 < time.monotonic() - started + 0.3, "visuals ahead of the audio clock"
    assert "seed=11" in page.url and checked == 5
    assert page.errors == []


def test_every_visualization_renders(page, server, artifacts):
    open_track(page, server, "smoothing=0.3")
    page.click("#play")
    ids = page.eval_on_selector_all("#viz option", "opts => opts.map(o => o.value)")
    assert len(ids) >= 7
    for viz in ids:
        # the sample tracks last 6 s and a stopped song freezes the picture (dt = 0): restart
        page.evaluate("async () => { const p = window.__playground.player; await p.seek(0);"
                      " if (!p.playing) await p.play(); }")
        page.select_option("#viz", viz)
        page.wait_for_function(f"() => window.__playground.sample().viz === '{viz}'")
        f0 = page.evaluate("() => window.__playground.sample().frames")
        page.wait_for_function(f"() => window.__playground.sample().frames > {f0 + 10}",
                               timeout=20000)
        t0 = page.evaluate("() => window.__playground.sample().t")
        a = canvas_pixels(page)
        # the picture follows the audio clock: wait until the song has moved on while playing
        page.wait_for_function(
            "t0 => { const s = window.__playground.sample(); return s.playing && s.t > t0; }",
            arg=t0 + 0.3, timeout=20000)
        b = canvas_pixels(page)
        page.locator(".stage").screenshot(path=str(artifacts / f"viz-{viz}.png"))
        assert a.std() > 1, f"{viz}: blank canvas"
        assert np.abs(a - b).mean() > 0.05, f"{viz}: the picture does not move"
        assert f"viz={viz}" in page.url
    assert page.errors == []


def tl_id(page) -> str:
    return page.evaluate("() => window.__playground.state.track.id")


def upload_and_play(page, server, path, title: str, *, seconds: float) -> None:
    """Upload ``path`` on the visualizer page: it becomes the current track, its timeline
    covers the song, and playing it moves the clock."""
    page.goto(server + "/")
    page.wait_for_selector("#track-list li")
    page.set_input_files("#upload", str(path))
    page.wait_for_function("() => !document.getElementById('play').disabled", timeout=60000)
    assert title in page.inner_text("#current-track")
    tl = page.evaluate("() => window.__playground.state.timeline")
    assert tl["duration"] == pytest.approx(seconds, abs=0.05) and len(tl["frames"]) > 100
    page.click("#play")
    page.wait_for_function("() => window.__playground.sample().t > 0.5", timeout=20000)


def test_upload_and_visualize(page, server, tmp_path):
    import soundfile as sf
    sr = 22050
    t = np.arange(int(4.0 * sr)) / sr
    song = 0.3 * np.sin(2 * np.pi * (220 + 60 * t) * t) * (1 + np.sin(2 * np.pi * 2 * t)) / 2
    path = tmp_path / "My upload.flac"
    sf.write(path, song, sr)
    upload_and_play(page, server, path, "My upload", seconds=4.0)
    # the upload is listed with a remove button; confirming takes it off the list
    row = f"#track-list li[data-id='{tl_id(page)}']"
    assert page.is_visible(f"{row} .track-remove")
    # only this user's upload has one, never a sample-set track
    assert page.eval_on_selector_all("#track-list li .track-remove", "els => els.length") == 1
    page.once("dialog", lambda d: d.accept())
    page.click(f"{row} .track-remove")
    page.wait_for_selector(row, state="detached")
    assert "removed My upload" in page.inner_text("#status")
    # a bad file gives a message, not a broken page
    bad = tmp_path / "notes.mp3"
    bad.write_bytes(b"definitely not audio" * 20)
    page.set_input_files("#upload", str(bad))
    page.wait_for_function("() => document.getElementById('status').textContent"
                           ".includes('not an audio file')")
    # Chromium logs the deliberate 400 answer as a console error; nothing else may be logged
    assert [e for e in page.errors if "status of 400" not in e] == []


def test_mapping_editor_reorder_and_shareable_url(page, server):
    open_track(page, server, "smoothing=0&assign=random&seed=5")
    before = page.evaluate("() => window.__playground.state.perm")
    page.drag_and_drop("#mapping-editor li:nth-child(1)", "#mapping-editor li:nth-child(4)")
    after = page.evaluate("() => window.__playground.state.perm")
    moved = before[:]
    moved.insert(3, moved.pop(0))
    assert after == moved
    assert "assign=custom" in page.url and "perm=" + "%2C".join(map(str, moved)) in page.url
    shared = page.url
    page.goto(shared)
    page.wait_for_function("() => !document.getElementById('play').disabled", timeout=60000)
    assert page.evaluate("() => window.__playground.state.perm") == moved
    assert page.errors == []


def test_record_webm(page, server):
    open_track(page, server)
    page.click("#play")
    page.click("#record")
    # stop once the recorder has delivered video (it hands data over every 250 ms)
    page.wait_for_function("() => window.__playground.state.recordedBytes > 1000",
                           timeout=30000)
    page.click("#record")
    page.wait_for_selector("#download:not([hidden])", timeout=10000)
    size = int(page.get_attribute("#download", "data-size"))
    assert size > 1000
    assert page.get_attribute("#download", "download").endswith(".webm")
    assert page.errors == []


@pytest.mark.parametrize("name, codec, container, sr", [
    ("Library song.m4a", "aac", "ipod", 44100), ("Library song.opus", "libopus", "ogg", 48000)])
def test_m4a_and_opus_uploads_play_and_visualize(page, server, tmp_path, pyav_encode, name,
                                                 codec, container, sr):
    """Songs as a music library holds them: an M4A (AAC) and an Opus file, decoded on the
    server for the features and by Chromium for playback."""
    t = np.arange(int(4.0 * sr)) / sr
    song = 0.3 * np.sin(2 * np.pi * (220 + 60 * t) * t) * (1 + np.sin(2 * np.pi * 2 * t)) / 2
    path = pyav_encode(tmp_path / name, np.stack([song, song]).astype(np.float32), sr, codec,
                       container=container)
    upload_and_play(page, server, path, "Library song", seconds=4.0)
    assert page.errors == [], "\n".join(page.errors)


def test_train_on_my_uploads_then_visualize_with_it(page, server, tmp_path):
    """Ten songs of the user's own, a click on 'train on my uploads': the job's progress under
    the button, then the new model selected in the Model list (labelled as the user's) with
    its test figure, and the features of a track computed with it."""
    from deepaudio.core.audio import save_audio
    from deepaudio.data.samples import STYLES, render_track
    page.goto(f"{server}/")
    page.wait_for_selector("#track-list li")
    page.click("#train")                                  # no uploads yet: the reason
    page.wait_for_function("() => document.getElementById('train-status').textContent"
                           ".includes('at least 10 uploaded songs')")
    for i, genre in enumerate((list(STYLES) * 2)[:10]):
        stems, _ = render_track(genre, 200 + i, seed=3, seconds=8.0, sr=22050)
        path = save_audio(tmp_path / f"mine{i}.ogg", sum(stems.values()), 22050)
        res = page.request.post(f"{server}/api/tracks", multipart={"file": {
            "name": path.name, "mimeType": "audio/ogg", "buffer": path.read_bytes()}})
        assert res.ok, res.text()
    page.fill("#train-name", "Game tunes")
    page.click("#train")
    page.wait_for_function("() => document.getElementById('train-status').textContent"
                           ".startsWith('training \"Game tunes\"')", timeout=30000)
    page.wait_for_function("() => document.getElementById('train-status').textContent"
                           ".startsWith('trained')", timeout=300000)
    assert "PCA-10's" in page.inner_text("#train-status")
    run = page.eval_on_selector("#run", "el => el.value")
    label = page.eval_on_selector("#run", "el => el.selectedOptions[0].textContent")
    assert run.startswith("users/") and label == "Game-tunes (yours, autoencoder)"
    page.locator("#track-list li").first.click()
    page.wait_for_function("() => !document.getElementById('play').disabled", timeout=60000)
    page.wait_for_function("() => window.__playground.state.timeline && "
                           f"window.__playground.state.timeline.run === {run!r}", timeout=60000)
    assert [e for e in page.errors if "status of 400" not in e] == []


def test_a_parameter_can_follow_the_beat_grid_or_a_stem(page, server, artifacts):
    """The editor offers the beat grid and, once the track is separated in the stem mixer,
    its stems; a parameter set to the beat pulse shows that source's value, and the choice is
    in the shareable address."""
    open_track(page, server, "smoothing=0")
    s = sample(page)
    assert s["pool"][10:15] == ["beat:tempo", "beat:beat_phase", "beat:beat_pulse",
                                "beat:bar_phase", "beat:downbeat_pulse"]
    assert "beat grid:" in page.inner_text("#sources-info")
    first = "#mapping-editor li:nth-child(1) select"
    page.select_option(first, "12")                           # beat pulse
    assert page.evaluate("() => window.__playground.state.perm")[0] == 12
    assert "assign=custom" in page.url and "perm=12" in page.url
    page.click("#play")
    page.wait_for_function("() => window.__playground.sample().t > 0.5", timeout=20000)
    for _ in range(3):
        s = sample(page)
        assert s["values"][0] == pytest.approx(s["poolRaw"][12], abs=1e-4)
        assert s["meter"][0] == pytest.approx(s["values"][0], abs=1e-4)
        page.wait_for_timeout(100)
    page.click("#play")
    # separate the track (the stem mixer's job), then the stems join the sources
    track = page.evaluate("() => window.__playground.state.track.id")
    page.evaluate("""async (id) => {
        let job = await (await fetch('/api/mixer/jobs', {method: 'POST',
            headers: {'Content-Type': 'application/json'},
            body: JSON.stringify({track_id: id, backend: 'dsp'})})).json();
        while (job.state !== 'done' && job.state !== 'failed') {
            await new Promise(r => setTimeout(r, 200));
            job = await (await fetch('/api/mixer/jobs/' + job.id)).json();
        }
        return job.state; }""", track)
    page.goto(page.url)                                       # the shared address restores
    page.wait_for_function("() => !document.getElementById('play').disabled", timeout=60000)
    assert page.evaluate("() => window.__playground.state.perm")[0] == 12
    pool = sample(page)["pool"]
    assert "stems:drums_onset" in pool and "stems:vocals_pitch" in pool
    assert pool[15:21] == ["dsp:bass", "dsp:mid", "dsp:treb", "dsp:bass_att", "dsp:mid_att",
                           "dsp:treb_att"]
    page.select_option("#mapping-editor li:nth-child(2) select",
                       str(pool.index("stems:drums_onset")))
    assert page.locator("#mapping-editor li:nth-child(2)").get_attribute("data-source") == "stems"
    page.locator("#mapping-editor").scroll_into_view_if_needed()
    page.screenshot(path=str(artifacts / "visualizer-sources.png"))
    assert page.errors == [], "\n".join(page.errors)


def test_ranked_over_all_sources_tempo_motion_and_scene_switches(page, server):
    """'ranked, all sources' puts the most varying columns of the learned features, the beat
    grid and the stems onto the parameters in order; 'motion follows the tempo' runs the
    visuals at bpm / 120; 'switch scene every bar' changes the visualization on downbeats."""
    open_track(page, server, "smoothing=0&assign=ranked-all")
    state = page.evaluate("() => ({tl: window.__playground.state.timeline, "
                          "src: window.__playground.state.sources, "
                          "perm: window.__playground.state.perm})")
    cols = [np.asarray(state["tl"]["frames"])[:, :10]]
    for part in ("beats", "dsp", "stems"):
        if state["src"][part]:
            cols.append(np.asarray(state["src"][part]["frames"]))
    var = np.concatenate([c.var(axis=0) for c in cols])
    assert state["perm"] == list(np.argsort(-var, kind="stable")[:10])
    bpm = state["src"]["beats"]["bpm"]
    page.check("#tempo-motion")
    page.select_option("#scene-switch", "1")
    assert "tempo=1" in page.url and "scenes=1" in page.url
    first_viz = sample(page)["viz"]
    page.click("#play")
    page.wait_for_function("() => window.__playground.sample().t > 0.3", timeout=20000)
    assert bpm and any(0.3 < d < 5.5 for d in state["src"]["beats"]["downbeat_times"])
    assert sample(page)["motionRate"] == pytest.approx(bpm / 120, rel=1e-6)
    page.wait_for_function("() => window.__playground.sample().scenes >= 1", timeout=20000)
    assert sample(page)["viz"] != first_viz
    assert page.errors == [], "\n".join(page.errors)


def test_scenes_blend_on_downbeats(page, server, artifacts):
    """'Change: blend over a beat': on the downbeat the next scene fades in over one beat while
    the outgoing one keeps moving; then only the new one is left."""
    open_track(page, server, "smoothing=0&scenes=1&blend=1&viz=bars")
    assert page.input_value("#scene-blend") == "1"
    bpm = page.evaluate("() => window.__playground.state.sources.beats.bpm")
    page.click("#play")
    # polled on every animation frame: paused in the middle of the blend, which holds it
    page.wait_for_function("""() => { const s = window.__playground.sample();
        const mid = s.blend !== null && s.blend > 0.25 && s.blend < 0.6;
        if (mid) window.__playground.player.pause();
        return mid; }""", timeout=30000)
    page.locator("#canvas").screenshot(path=str(artifacts / "visualizer-blend.png"))
    s = sample(page)
    # the first blend, bars into spheres (or, on a machine too busy to draw a frame in the
    # middle of it, a later one: each goes from one scene into the next)
    order = page.evaluate("() => window.__playground.vizIds")
    assert s["blends"] >= 1 and 0.25 < s["blend"] < 0.9
    assert order.index(s["viz"]) == (order.index(s["blendFrom"]) + 1) % len(order)
    assert s["blends"] > 1 or (s["blendFrom"], s["viz"]) == ("bars", "spheres")
    page.evaluate("() => window.__playground.player.play()")
    page.wait_for_function("() => window.__playground.sample().blend === null", timeout=20000)
    assert bpm and sample(page)["viz"] != "bars"
    page.select_option("#scene-blend", "0")
    assert "blend=" not in page.url
    assert page.errors == [], "\n".join(page.errors)


def test_lights_default_to_the_spectrum_model(page, server):
    """The lights chain was made for the spectrum model: it is the run until the user picks
    one; other visualizations go back to the server's default; a run in the address wins."""
    open_track(page, server, "viz=lights")
    page.wait_for_function("() => window.__playground.state.timeline"
                           " && window.__playground.state.timeline.run === 'sample/spectrum_ae'",
                           timeout=60000)
    assert "0.5 s spectra" in page.inner_text("#run option:checked")
    tl = page.evaluate("() => window.__playground.state.timeline")
    assert len(tl["frames"][0]) == 10 and tl["duration"] > 5
    default = page.evaluate("async () => (await (await fetch('/api/models')).json()).default")
    page.select_option("#viz", "bars")
    page.wait_for_function("d => window.__playground.state.timeline.run === d", arg=default,
                           timeout=60000)
    # picked in the Model list: switching scenes keeps it
    page.select_option("#run", "sample/spectrum_ae")
    page.select_option("#viz", "lights")
    page.select_option("#viz", "spheres")
    assert page.input_value("#run") == "sample/spectrum_ae"
    open_track(page, server, "viz=lights&run=sample%2Fconv_ae")
    page.wait_for_function("() => window.__playground.state.timeline"
                           " && window.__playground.state.timeline.run === 'sample/conv_ae'",
                           timeout=60000)
    assert page.errors == []
