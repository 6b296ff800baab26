"""The DSP beat tracker's dynamic programming and tempo estimate on a synthetic onset envelope."""

from __future__ import annotations

import numpy as np
import pytest

from deepaudio.analysis.dsp import (
    ANALYSIS_SR,
    HOP,
    _global_tempo,
    dp_beats,
    pulse_clarity,
    track_beats,
)
from deepaudio.core.errors import ToolkitError


def test_dp_beats_finds_a_pulse_train_and_its_tempo():
    rng = np.random.default_rng(0)
    fps = ANALYSIS_SR / HOP
    period = fps * 60 / 128.0                      # 128 bpm in envelope frames (about 40.4)
    env = 0.05 * rng.random(int(30 * fps))
    clicks = np.round(np.arange(3 * period, len(env) - 2, period)).astype(int)
    env[clicks] += 1.0
    assert _global_tempo(env) == pytest.approx(128.0, rel=0.02)
    beats = dp_beats(env, _global_tempo(env))
    assert len(beats) >= len(clicks) - 2
    # every beat sits on a click, and no click in the middle is missed
    assert np.abs(beats[:, None] - clicks[None, :]).min(axis=1).max() <= 1
    assert set(clicks[2:-2]) <= set(beats)
    assert len(dp_beats(np.zeros(500), 120.0)) == 0


def test_no_steady_beat_in_a_drone_noise_or_speech_like_bursts():
    """The tracker finds a 'beat' in anything; the pulse clarity refuses what has none, and
    passes a click track with its tempo."""
    rng = np.random.default_rng(1)
    sr = 22050
    t = np.arange(15 * sr) / sr
    drone = 0.2 * np.sin(2 * np.pi * 110 * t) + 0.01 * rng.standard_normal(len(t))
    bursts = np.zeros(len(t))
    pos = 0
    while pos < len(t):                            # syllables at an irregular rate
        n = int(rng.uniform(0.08, 0.3) * sr)
        bursts[pos:pos + n] = np.hanning(len(bursts[pos:pos + n]))
        pos += n + int(rng.uniform(0.02, 0.4) * sr)
    speech = bursts * np.sin(2 * np.pi * 150 * t) * (1 + 0.5 * rng.standard_normal(len(t)))
    for signal in (drone, 0.1 * rng.standard_normal(len(t)), speech):
        with pytest.raises(ToolkitError, match="no steady beat found .pulse clarity 0"):
            track_beats(signal[None].astype(np.float32), sr)
    clicks = np.zeros(len(t))
    for start in np.arange(0.25, 14.5, 0.5):       # 120 bpm
        i = int(start * sr)
        clicks[i:i + 200] = np.hanning(200) * rng.standard_normal(200)
    grid = track_beats(clicks[None].astype(np.float32), sr)
    assert grid.tempo == pytest.approx(120.0, rel=0.01)
    env = grid.features.env
    assert pulse_clarity(env, grid.tempo) > 0.5 > pulse_clarity(env, 120.0 * 1.37)
