"""Ramps and silence trimming: every ramp's gain curves, trimming on crafted signals."""

from __future__ import annotations

import numpy as np
import pytest

from deepaudio.core.errors import ToolkitError
from deepaudio.crossfade.render import (
    NEURAL_RAMPS,
    equal_power_ramp,
    logarithmic_ramp,
    ramp,
    random_linear_ramp,
    trim_silence,
)

SR = 22050


@pytest.mark.parametrize("style", ["linear", "s_curve", "sigmoid"])
def test_equal_gain_ramps_sum_to_one(style):
    g_out, g_in = ramp(style, 1001)
    np.testing.assert_allclose(g_out + g_in, 1.0, atol=1e-12)
    assert np.all(np.diff(g_in) >= 0) and np.all(np.diff(g_out) <= 0)
    if style == "sigmoid":      # t = linspace(-6, 6, N), as DeepBass
        np.testing.assert_allclose([g_out[0], g_out[-1]], [0.99753, 0.00247], atol=1e-5)
    else:
        assert (g_in[0], g_in[-1], g_out[0], g_out[-1]) == (0.0, 1.0, 1.0, 0.0)
        np.testing.assert_allclose(g_in[500], 0.5, atol=1e-12)


def test_equal_power_ramp_keeps_power():
    g_out, g_in = equal_power_ramp(777)
    np.testing.assert_allclose(g_out ** 2 + g_in ** 2, 1.0, atol=1e-12)
    assert (g_in[0], g_out[-1]) == (0.0, pytest.approx(0.0, abs=1e-15))
    np.testing.assert_allclose(g_in[388], np.sqrt(0.5), atol=1e-12)     # -3 dB at x = 1/2


def test_logarithmic_ramp_is_linear_in_db():
    g_out, g_in = logarithmic_ramp(101, range_db=60.0)
    assert g_in[0] == 0.0 and g_in[-1] == 1.0 and g_out[-1] == 0.0 and g_out[0] == 1.0
    assert np.all(np.diff(g_in) > 0) and np.all(np.diff(g_out) < 0)
    db = 20 * np.log10(g_in[1:])
    np.testing.assert_allclose(np.diff(db), 60.0 / 100, atol=1e-9)       # equal dB steps
    np.testing.assert_allclose(db[0], -60.0 * 99 / 100, atol=1e-9)
    np.testing.assert_allclose(g_out, g_in[::-1])


def test_random_linear_expected_gains_and_seed():
    n, seeds = 11, 4000
    x = np.linspace(0, 1, n)
    outs = np.array([random_linear_ramp(n, seed=s) for s in range(seeds)])  # (S, 2, n)
    np.testing.assert_allclose(outs[:, 0].mean(axis=0), (1 - x) ** 2, atol=0.03)
    np.testing.assert_allclose(outs[:, 1].mean(axis=0), x ** 2, atol=0.03)
    # per sample exactly one song sounds, with its linear gain
    assert np.all((outs[:, 0] == 0) | (outs[:, 1] == 0))
    a, b = ramp("random_linear", 50, seed=7), ramp("random_linear", 50, seed=7)
    np.testing.assert_array_equal(a[0], b[0])
    assert not np.array_equal(a[0], ramp("random_linear", 50, seed=8)[0])


def test_neural_hann_reaches_one_and_unknown_style():
    g_out, g_in = NEURAL_RAMPS["hann"](125)
    assert g_in[-1] == 1.0 and g_out[-1] == 0.0 and g_in[0] == 0.0    # DeepBass: .99984
    with pytest.raises(ToolkitError, match="Foo"):
        ramp("Foo", 10)


@pytest.mark.parametrize("sr", [16000, 44100])
def test_trim_removes_edges_keeps_quiet_outro_passage(sr, tone_song):
    loud = tone_song(3, sr, channels=1)
    quiet = tone_song(1.5, sr, level_db=-40, channels=1)     # a break inside the outro
    tail = tone_song(1, sr, channels=1)
    sil = np.zeros((1, sr), np.float32)
    x = np.concatenate([sil, loud, quiet, tail, sil, sil], axis=1)
    y, cuts = trim_silence(x, sr)
    win = int(0.25 * sr)
    assert abs(cuts["start_cut_s"] - 1.0) <= 0.25 + 1e-9
    assert abs(cuts["end_cut_s"] - 2.0) <= 0.25 + 1e-9
    music = 5.5 * sr
    assert music - win <= y.shape[1] <= music + 2 * win      # the quiet break stayed
    # DeepBass' end rule (the first quiet window of the tail) would have cut here
    assert y.shape[1] > (1 + 3) * sr


def test_trim_absolute_threshold_and_all_silent(tone_song):
    x = np.concatenate([np.zeros((2, SR)), tone_song(2, level_db=-30)], axis=1)
    y, cuts = trim_silence(x, SR, threshold_db=-40)
    assert abs(cuts["start_cut_s"] - 1.0) <= 0.25
    with pytest.raises(ToolkitError, match="silent"):
        trim_silence(x, SR, threshold_db=-10)
    with pytest.raises(ToolkitError, match="silent"):
        trim_silence(np.zeros((2, 3 * SR), np.float32), SR)
