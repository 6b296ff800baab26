"""The beat-synchronous crossfade plan.

The plan follows the DJ recipe (djmix-analysis: transitions cluster at multiples of 32 beats,
tempo changes < 8 % in about 90 % of real mixes): the overlap is L = 8, 16 or 32 of A's beats
starting on the latest downbeat of A that leaves L beats before A's last sound; B's first
downbeat is aligned to it; B is time-stretched by r = tempo_A / tempo_B when |r - 1| <= 8 %.
Tempo octave errors (one song tracked at half or double speed) are undone first by doubling or
halving B's beat grid. Otherwise the plan is a short equal-power cut: A plays to the downbeat
L beats later, where B's first downbeat lands.
"""

from __future__ import annotations

import typing as tp

import numpy as np

from deepaudio.core.beats import BEATS_PER_BAR, BeatGrid, analyse_beats
from deepaudio.core.errors import ToolkitError


def _octave_match(a: BeatGrid, b: BeatGrid) -> tuple[BeatGrid, float]:
    """Undo a tempo octave error of B relative to A: factor 2 doubles B's beat grid (midpoints
    inserted), 0.5 keeps every other beat (the parity holding B's downbeats)."""
    factor = min((0.5, 1.0, 2.0), key=lambda m: abs(np.log(a.tempo / (m * b.tempo))))
    if factor == 2.0:
        t = b.times
        doubled = np.empty(2 * len(t) - 1)
        doubled[0::2], doubled[1::2] = t, (t[:-1] + t[1:]) / 2
        return b.with_times(doubled), factor
    if factor == 0.5:
        return b.with_times(b.times[b.downbeat_phase % 2::2]), factor
    return b, factor


def plan_beat_sync(a: BeatGrid, b: BeatGrid, *, a_duration: float, b_duration: float,
                   beats: int = 16, max_stretch: float = 0.08,
                   cut_seconds: float = 0.25) -> dict:
    """Where the overlap starts in A, where B's aligned downbeat is, and B's stretch rate.

    Returns a JSON-ready dict: ``mode`` (``beat_sync`` or ``cut``), tempi, ``octave_factor``,
    ``stretch_rate`` (B is played ``rate`` times faster), ``a_downbeat_s`` (the downbeat of A
    where B's downbeat ``b_downbeat_s``, in unstretched B, lands), ``overlap_start_s`` (in A),
    ``overlap_s`` (at A's tempo) and ``beats``.
    """
    if beats % BEATS_PER_BAR:
        raise ToolkitError(f"beats must be a whole number of 4-beat bars, got {beats}")
    b_adj, factor = _octave_match(a, b)
    ibi_a = 60.0 / a.tempo

    def beat_end(i: int) -> float:        # A's beat i + beats, extrapolated past the grid
        j = i + beats
        return float(a.times[j]) if j < len(a.times) else float(
            a.times[-1] + (j - len(a.times) + 1) * ibi_a)

    candidates = [i for i in range(a.downbeat_phase, len(a.times), BEATS_PER_BAR)
                  if beat_end(i) <= a_duration + 1e-6]
    if not candidates:
        raise ToolkitError(f"the first song has no downbeat followed by {beats} beats of music")
    k = candidates[-1]
    b_down = float(b_adj.times[b_adj.downbeat_phase])
    rate = a.tempo / b_adj.tempo
    plan: dict[str, tp.Any] = {"tempo_a": round(a.tempo, 3), "tempo_b": round(b.tempo, 3),
            "octave_factor": factor, "beats": beats, "b_downbeat_s": b_down,
            "downbeat_phase_a": a.downbeat_phase, "downbeat_phase_b": b_adj.downbeat_phase}
    if abs(rate - 1) <= max_stretch:
        overlap = beat_end(k) - float(a.times[k])
        if b_down + overlap * rate > b_duration:
            raise ToolkitError(f"the second song is shorter than a {beats}-beat overlap")
        plan.update(mode="beat_sync", stretch_rate=rate, a_downbeat_s=float(a.times[k]),
                    overlap_start_s=float(a.times[k]), overlap_s=overlap)
    else:
        # tempi too far apart to stretch: an equal-power cut that ends on A's downbeat L beats
        # later, where B's first downbeat lands
        cut = beat_end(k)
        plan.update(mode="cut", stretch_rate=1.0, a_downbeat_s=cut,
                    overlap_start_s=cut - cut_seconds, overlap_s=cut_seconds)
    return plan

EDGE_SECONDS = 60.0            # analysed end of A / start of B in beat-synchronous mode


def plan_pair(a: np.ndarray, b: np.ndarray, sr: int, *, beats: int) -> dict:
    """Beat grids of the last ``EDGE_SECONDS`` of A and the first of B, and the plan."""
    n = int(EDGE_SECONDS * sr)
    a_start = max(0, a.shape[1] - n)
    grid_a = analyse_beats(a[:, a_start:], sr, start=a_start / sr)
    grid_b = analyse_beats(b[:, :n], sr)
    return plan_beat_sync(grid_a, grid_b, a_duration=a.shape[1] / sr,
                          b_duration=b.shape[1] / sr, beats=beats)
