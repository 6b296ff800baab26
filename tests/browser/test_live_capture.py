"""Live input through a fake capture device: Chromium plays a WAV file as its microphone
(``--use-file-for-fake-audio-capture``), the page computes the features in the browser and
the visuals move. A browser of its own (the flags apply to the whole browser)."""

from __future__ import annotations

import io

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from deepaudio.core.audio import load_audio


def test_microphone_drives_the_visuals(chromium, recording_page, server, song, tmp_path, artifacts):
    y, sr = load_audio(song, sr=44100, mono=True)
    wav = tmp_path / "mic.wav"
    sf.write(wav, y.reshape(-1), sr, subtype="PCM_16")
    flags = ("--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
             f"--use-file-for-fake-audio-capture={wav}")
    with chromium(flags) as b, recording_page(b, viewport={"width": 1200, "height": 720}) as page:
        page.goto(f"{server}/?run=sample%2Fconv_ae&viz=bars&smoothing=0&input=microphone")
        page.wait_for_function("() => { const l = window.__playground.live();"
                               " return l && l.segments >= 8; }", timeout=60000)
        assert page.input_value("#input") == "microphone"
        seen = []
        for _ in range(6):
            seen.append(page.evaluate("() => window.__playground.live().values"))
            n = page.evaluate("() => window.__playground.live().segments")
            page.wait_for_function("n => window.__playground.live().segments > n + 2", arg=n,
                                   timeout=20000)
        live = page.evaluate("() => window.__playground.live()")
        seen = np.array(seen)
        assert seen.min() >= 0 and seen.max() <= 1
        assert seen.std(0).max() > 0.02, "the features do not follow the sound"
        assert live["level"] > -60, "no sound came in"
        assert 0 < live["latency"] < 2.0 and live["msPerSegment"] < 100
        assert "latency" in page.inner_text("#live-status")
        # the picture moves with the live clock
        png = lambda: np.asarray(Image.open(io.BytesIO(page.locator("#canvas").screenshot()))  # noqa: E731
                                 .convert("RGB"), dtype=np.int16)
        a = png()
        t = page.evaluate("() => window.__playground.state.lastT")
        page.wait_for_function("t => window.__playground.state.lastT > t + 0.3", arg=t)
        assert np.abs(a - png()).mean() > 0.05
        page.locator(".stage").screenshot(path=str(artifacts / "live-microphone.png"))
        # another model while listening: the same capture goes through its encoder
        page.select_option("#run", "sample/spectrum_ae")
        page.wait_for_function("() => { const l = window.__playground.live();"
                               " return l && l.run === 'sample/spectrum_ae' && l.segments >= 4; }",
                               timeout=60000)
        assert page.evaluate("() => window.__playground.live().mode") == "spectrum"
        # back to the file: the live input stops
        page.select_option("#input", "song")
        page.wait_for_function("() => window.__playground.live() === null")
        assert page.errors == [], "\n".join(page.errors)


def test_live_beat_grid_and_dsp_bands_from_a_click_track(chromium, recording_page, server,
                                                         tmp_path, click_track):
    """A 120 bpm click track as the microphone: the live beat grid finds its tempo, the DSP
    bands move, both are sources in the mapping editor, and scenes change (blended) on the
    live downbeats."""
    wav = tmp_path / "clicks.wav"
    sf.write(wav, click_track(120.0, 20.0, sr=44100), 44100, subtype="PCM_16")
    flags = ("--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
             f"--use-file-for-fake-audio-capture={wav}")
    with chromium(flags) as b, recording_page(b, viewport={"width": 1000, "height": 640}) as page:
        page.goto(f"{server}/?run=sample%2Fspectrum_ae&viz=bars&smoothing=0&input=microphone"
                  "&scenes=1&blend=1")
        page.wait_for_function("() => { const l = window.__playground.live();"
                               " return l && l.bpm; }", timeout=60000)
        live = page.evaluate("() => window.__playground.live()")
        assert live["bpm"] == pytest.approx(120, rel=0.03)
        page.wait_for_function("() => document.getElementById('live-status').textContent"
                               ".includes(' bpm')")
        pool = page.evaluate("() => window.__playground.sample().pool")
        assert "beat:beat_pulse" in pool and "dsp:bass" in pool and len(pool) == 21
        # a parameter driven by the live beat pulse
        page.select_option("#mapping-editor li:first-child select", str(pool.index(
            "beat:beat_pulse")))
        # polled on every animation frame until the pulse has fired and fallen and a band moved
        page.wait_for_function("""() => {
            const v = window.__playground.sample().values[0];
            const d = window.__playground.live().dsp;
            const s = window.__seen = window.__seen
                || {hi: 0, lo: 1, dhi: d.slice(), dlo: d.slice()};
            s.hi = Math.max(s.hi, v); s.lo = Math.min(s.lo, v);
            d.forEach((x, i) => {
                s.dhi[i] = Math.max(s.dhi[i], x); s.dlo[i] = Math.min(s.dlo[i], x); });
            return s.hi > 0.5 && s.lo < 0.2 && s.dhi.some((x, i) => x - s.dlo[i] > 0.05);
        }""", timeout=30000)
        # scene changes on the live downbeats, blended over one beat
        page.wait_for_function("() => window.__playground.sample().blends >= 1", timeout=30000)
        page.wait_for_function("() => window.__playground.sample().scenes >= 2", timeout=30000)
        assert page.errors == [], "\n".join(page.errors)
