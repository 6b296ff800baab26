"""The loudness toolbox of the core: a look-ahead true-peak limiter computed without a
per-sample loop, checked against the per-sample recursion it unrolls. (Loudness against
pyloudnorm and LUFS exports are tested through the mixer, tests/mixer/test_render.py.)"""

from __future__ import annotations

import numpy as np

from deepaudio.core.loudness import (
    _tp_filter,
    integrated_loudness,
    loudness_plan,
    true_peak,
    true_peak_limiter,
)

SR = 44100


def _reference_limiter(audio, ceiling, lookahead, release):
    """The limiter as a per-sample loop over the 4x-oversampled peaks (slow, obvious)."""
    H = _tp_filter(4)
    n = audio.shape[1]
    peak = np.abs(audio).max(axis=0).astype(np.float64)
    for ch in audio:
        x = np.concatenate([np.zeros(11, np.float32), ch, np.zeros(11, np.float32)])
        for e in range(n + 11):                  # y[4e + r] lies between x[e - 6], x[e - 5]
            p = np.abs(x[e + 11 - np.arange(12)] @ H).max()
            for m in (e - 6, e - 5):
                if 0 <= m < n:
                    peak[m] = max(peak[m], p)
    need = np.minimum(1.0, ceiling / np.maximum(peak, 1e-12))
    L = int(round(lookahead * SR))
    g1 = np.array([need[i:i + L].min() for i in range(n)])
    g2 = np.array([np.concatenate([np.full(max(0, L - 1 - i), g1[0]),   # as at sample 0
                                   g1[max(0, i - L + 1):i + 1]]).mean() for i in range(n)])
    a, d = np.exp(-1 / (release * SR)), 0.0
    out = np.empty(n)
    for i in range(n):
        d = max(1 - g2[i], a * d)
        out[i] = 1 - d
    return out


def test_true_peak_limiter_equals_the_per_sample_loop():
    rng = np.random.default_rng(2)
    x = (0.1 * rng.standard_normal((2, 3000))).astype(np.float32)
    x[:, [500, 1400, 1450, 2600]] = [[1.5, -1.2, 0.9, 2.0], [0.2, 0.3, -1.1, 0.1]]
    ceiling = 0.8
    curve = true_peak_limiter(x, SR, ceiling, lookahead=0.002, release=0.005)
    expected = _reference_limiter(x, ceiling, 0.002, 0.005)
    np.testing.assert_allclose(curve, expected, atol=1e-4)  # tails cut below 1e-4
    assert true_peak(x * curve) <= ceiling * 10 ** (0.1 / 20)
    L = int(round(0.002 * SR))
    first = np.flatnonzero(curve < 1)[0]
    assert 500 - 8 - L < first < 500                # the attack starts within the look-ahead
    x[:, 0] = 3.0                                   # a peak on the first sample is held too
    curve = true_peak_limiter(x, SR, ceiling, lookahead=0.002, release=0.005)
    np.testing.assert_allclose(curve, _reference_limiter(x, ceiling, 0.002, 0.005), atol=1e-4)
    assert true_peak(x * curve) <= ceiling * 10 ** (0.1 / 20)


def test_a_very_quiet_mix_is_brought_to_a_loud_target_with_finite_gain():
    """A mix just above the absolute -70 LUFS gate, normalized to -5 LUFS, lands where the
    same mix 50 dB louder lands: the gains the limiter loop tries are judged by the loudness
    after the gain (gating the un-gained level dropped every block below -70 LUFS, gave -inf
    and a NaN gain, and the export failed). Found by the API fuzzer."""
    rng = np.random.default_rng(3)
    t = np.arange(4 * SR) / SR
    beats = (np.sin(2 * np.pi * 2 * t) > 0.95).astype(np.float32)        # peaky: clicks
    loud = np.stack([0.3 * rng.standard_normal(t.size).astype(np.float32) * (0.2 + beats)] * 2)
    loud *= np.float32(10 ** ((-19.0 - integrated_loudness(loud, SR)) / 20))
    quiet = loud * np.float32(10 ** (-50 / 20))
    assert -70 < integrated_loudness(quiet, SR) < -68
    results = []
    for mix in (loud, quiet):
        plan, report = loudness_plan(mix, SR, target_lufs=-5.0, ceiling_dbtp=-1.0)
        out = plan.apply(mix)
        assert np.isfinite(plan.gain) and np.isfinite(out).all()
        assert report["limiter_max_reduction_db"] > 1.0                # the limiter worked
        assert abs(integrated_loudness(out, SR) - report["output_lufs"]) < 0.1
        assert true_peak(out) <= 10 ** (-1.0 / 20) * 1.001
        results.append(report["output_lufs"])
    assert -8.0 < results[0] < -4.9 and abs(results[1] - results[0]) < 0.5
