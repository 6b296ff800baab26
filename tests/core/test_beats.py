"""The beat tracker's dynamic programming and tempo estimate on a synthetic onset envelope."""

from __future__ import annotations

import numpy as np
import pytest

from deepaudio.core.beats import ANALYSIS_SR, HOP, _global_tempo, dp_beats


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
