"""dB and linear gain: gains are in dB at every interface, ``linear = 10 ** (dB / 20)``."""

from __future__ import annotations

import numpy as np


def db_to_gain(db: float | np.ndarray) -> float | np.ndarray:
    """The one place dB becomes a linear factor."""
    return 10.0 ** (np.asarray(db, dtype=np.float64) / 20.0)
