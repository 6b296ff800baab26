"""Time stretching and pitch shifting with Rubber Band (through Spotify's pedalboard).

One function for both, :func:`stretch`: ``rate`` > 1 plays faster (shorter), ``semitones``
shifts the pitch, independently of each other, with formants preserved (a voice moved two
semitones keeps its timbre). Rubber Band's high-quality mode with crisp transients, the
settings DJ software uses for key shifts and tempo matching beyond a few per cent.
"""

from __future__ import annotations

import numpy as np

from deepaudio.core.errors import ToolkitError

MAX_SEMITONES = 12.0
RATE_RANGE = (0.5, 2.0)


def stretch(audio: np.ndarray, sr: int, *, rate: float = 1.0,
            semitones: float = 0.0) -> np.ndarray:
    """``audio`` ((C, N) or (N,), float32) ``rate`` times faster and ``semitones`` higher;
    the output has ``round(N / rate)`` samples and the input's shape otherwise."""
    if not (np.isfinite(rate) and RATE_RANGE[0] <= rate <= RATE_RANGE[1]):
        raise ToolkitError(f"stretch rate must be in [{RATE_RANGE[0]}, {RATE_RANGE[1]}], "
                           f"got {rate}")
    if not (np.isfinite(semitones) and abs(semitones) <= MAX_SEMITONES):
        raise ToolkitError(f"pitch shift must be within +-{MAX_SEMITONES:g} semitones, "
                           f"got {semitones}")
    x = np.asarray(audio, np.float32)
    mono = x.ndim == 1
    x2 = np.ascontiguousarray(x[None] if mono else x)
    n_out = int(round(x2.shape[1] / rate))
    if rate == 1.0 and semitones == 0.0 or not x2.shape[1]:
        y = x2.copy()
    else:
        from pedalboard import time_stretch
        y = time_stretch(x2, float(sr), stretch_factor=float(rate),
                         pitch_shift_in_semitones=float(semitones), high_quality=True,
                         transient_mode="crisp", preserve_formants=True)
    if y.shape[1] < n_out:                    # Rubber Band may end a few samples short
        y = np.pad(y, ((0, 0), (0, n_out - y.shape[1])))
    y = np.asarray(y[:, :n_out], np.float32)
    return y[0] if mono else y
