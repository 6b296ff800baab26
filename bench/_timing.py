"""Timing helper shared by the benchmark scripts (importable because Python puts a script's
own folder first on ``sys.path``)."""

from __future__ import annotations

import time


def timed(fn) -> float:
    """Seconds one call of ``fn()`` takes (wall clock)."""
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t
