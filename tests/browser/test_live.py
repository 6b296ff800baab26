"""Live input: the trained encoder exported to ONNX and run in Chromium by onnxruntime-web,
the features computed from the sound by the JS front end (test_live_capture.py drives it with a
fake capture device)."""

from __future__ import annotations

import numpy as np
import pytest

from deepaudio.core.audio import load_audio
from deepaudio.core.features import apply_scaler, mfcc_segments, spectrum_segments
from deepaudio.mapping.encode import get_run
from deepaudio.mapping.mappings import get_mapping


def server_values(run_dir, song, seconds: float, hop: int) -> np.ndarray:
    """What the server's timeline is made of: the mapped values of each segment."""
    run = get_run(run_dir)
    c = run.config
    y, sr = load_audio(song, sr=run.sr, mono=True)
    y = y.reshape(-1)[: int(seconds * sr)]
    if run.mode == "mfcc":
        feats = mfcc_segments(y, sr, num_mfcc=c["num_mfcc"], n_mels=c["n_mels"],
                              hop_length=c["mfcc_hops"], n_fft=c["n_fft"],
                              frames_per_segment=c["frames_per_segment"], segment_hop=hop)
    else:
        feats = spectrum_segments(y, window_size=c["window_size"], hop_length=hop)
    values = get_mapping(run_dir, "pca").transform(run.encode(apply_scaler(feats, run.scaler),
                                                              None))
    return y, values


@pytest.mark.parametrize("run_id, hop", [("sample/conv_ae", 24), ("sample/spectrum_ae", 4410)])
def test_in_browser_encoder_matches_the_server(browser, recording_page, server,
                                               playground_models, song, run_id, hop):
    y, want = server_values(playground_models / run_id, song, 3.0, hop)
    with recording_page(browser) as page:
        page.goto(f"{server}/?run={run_id}")
        page.wait_for_function("() => window.__playground && "
                               "window.__playground.state.models.length")
        got = np.array(page.evaluate(
            "([y, hop, run]) => window.__playground.encodeSamples(y, hop, {run, method: 'pca'})",
            [y.tolist(), hop, run_id]))
        assert page.errors == []
    assert got.shape == want.shape and len(want) >= 3
    # float64 front end and onnxruntime's kernels against float32 NumPy and torch
    assert np.abs(got - want).max() < 5e-3, np.abs(got - want).max()
    assert want.std() > 0.05


def test_no_microphone_gives_a_clear_message(browser, recording_page, server):
    with recording_page(browser, http_errors=False) as page:
        page.goto(f"{server}/?run=sample%2Fconv_ae")
        page.wait_for_function("() => window.__playground.state.models.length")
        page.select_option("#input", "microphone")
        page.wait_for_function("() => document.getElementById('live-status').textContent"
                               ".startsWith('live input:')", timeout=30000)
        msg = page.inner_text("#live-status")
        assert "microphone" in msg, msg
        assert page.input_value("#input") == "song"


def test_a_tab_shared_without_audio_gives_a_clear_message(browser, recording_page, server):
    """The tab picker answers with a video-only stream (the user left 'share tab audio'
    unticked; stubbed: headless Chromium has no picker): a message, and back to the file."""
    with recording_page(browser, http_errors=False) as page:
        page.add_init_script("""navigator.mediaDevices.getDisplayMedia = async () => {
            const c = document.createElement('canvas');
            c.getContext('2d').fillRect(0, 0, 4, 4);
            return c.captureStream(5); };""")
        page.goto(f"{server}/?run=sample%2Fconv_ae")
        page.wait_for_function("() => window.__playground.state.models.length")
        page.select_option("#input", "tab")
        page.wait_for_function("() => document.getElementById('live-status').textContent"
                               ".startsWith('live input:')", timeout=30000)
        assert "no audio" in page.inner_text("#live-status")
        assert page.input_value("#input") == "song"
        assert page.errors == []
