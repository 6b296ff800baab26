"""Timing and memory helpers shared by the benchmark scripts (importable because Python puts a
script's own folder first on ``sys.path``)."""

from __future__ import annotations

import time


def timed(fn) -> float:
    """Seconds one call of ``fn()`` takes (wall clock)."""
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def _status_mb(key: str, pid: int | str = "self") -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    raise KeyError(key)


def rss_mb(pid: int | str = "self") -> float:
    """Resident memory now (MB)."""
    return _status_mb("VmRSS", pid)


def peak_rss_mb(pid: int | str = "self") -> float:
    """The process's resident high-water mark (MB), VmHWM: its own since its exec, unlike
    ``ru_maxrss``, which a child inherits from its parent."""
    return _status_mb("VmHWM", pid)


def reset_peak_rss(pid: int | str = "self") -> None:
    """Restart the high-water mark at the current resident memory (Linux ``clear_refs``)."""
    with open(f"/proc/{pid}/clear_refs", "w") as f:
        f.write("5")
