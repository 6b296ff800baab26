"""Separation quality measures: the SDR definitions and ``mixer_api.py evaluate``."""

from __future__ import annotations

import numpy as np
import pytest

from deepaudio.cli import mixer as mixer_cli
from deepaudio.mixer.evaluate import framewise_sdr, new_sdr

SR = 44100


def test_sdr_definitions():
    rng = np.random.default_rng(0)
    ref = rng.standard_normal((2, SR * 3)).astype(np.float32)
    assert new_sdr(ref, 0.5 * ref) == pytest.approx(20 * np.log10(2), abs=1e-6)
    assert new_sdr(ref, ref) > 60
    ref[:, :SR] = 0                                          # a silent first second is skipped
    assert framewise_sdr(ref, 0.5 * ref, SR) == pytest.approx(6.0206, abs=1e-3)
    assert np.isnan(framewise_sdr(np.zeros((2, SR)), np.zeros((2, SR)), SR))


def test_evaluate_cli_on_true_stems(sample_set, capsys):
    assert mixer_cli.main(["evaluate", "--stems-root", str(sample_set / "fma_stems"),
                           "--max-tracks", "1"]) == 0
    out = capsys.readouterr().out
    mean = next(line for line in out.splitlines() if line.startswith("mean"))
    values = [float(v) for v in mean.split()[1:]]
    assert len(values) == 8 and all(np.isfinite(values))
    assert "real-time factor" in out
