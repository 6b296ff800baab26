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


@pytest.fixture(scope="module")
def server(sample_set, playground_models, tmp_path_factory, make_app, serve):
    with serve(make_app(tmp_path_factory.mktemp("data"), sample_set, playground_models)) as url:
        yield url


@pytest.fixture(scope="module")
def song(sample_set):
    return sorted((sample_set / "fma_small").rglob("*.mp3"))[0]


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
        # back to the file: the live input stops
        page.select_option("#input", "song")
        page.wait_for_function("() => window.__playground.live() === null")
        assert page.errors == [], "\n".join(page.errors)
