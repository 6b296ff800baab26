"""The beat-synchronous crossfade plan.

The plan follows the DJ recipe (djmix-analysis: transitions cluster at multiples of 32 beats,
tempo changes < 8 % in about 90 % of real mixes): the overlap is L = 8, 16 or 32 of A's beats
starting on the latest downbeat of A that leaves L beats before A's last sound; B's first
downbeat is aligned to it; B is time-stretched by r = tempo_A / tempo_B when |r - 1| <= 8 %.
Tempo octave errors (one song tracked at half or double speed) are undone first by doubling or
halving B's beat grid. Otherwise the plan is a short equal-power cut: A plays to the downbeat
L beats later, where B's first downbeat lands.

The planner (:mod:`deepaudio.crossfade.planner`) chooses among :func:`candidate_plans`: A's
overlap may start on any phrase boundary (phrases of ``PHRASE_BEATS`` beats, their phase the
bar offset whose bars change most in harmony and energy) in its last minute, and B may enter on
its first downbeat or a later phrase boundary.
"""

from __future__ import annotations

import typing as tp

import numpy as np

from deepaudio.analysis.beats import analyse_beats
from deepaudio.analysis.grid import BEATS_PER_BAR, BeatGrid
from deepaudio.core.errors import ToolkitError

PHRASE_BEATS = 16              # phrases of 4 bars: transitions start on their first downbeat
MAX_A_CANDIDATES = 6           # phrase starts of A considered (the latest ones)
MAX_B_CANDIDATES = 3           # B's first downbeat and its next phrase starts


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


def _beat_time(grid: BeatGrid, i: float) -> float:
    """Time of (fractional) beat ``i`` of a grid, extrapolated past its ends at its tempo."""
    t, ibi = grid.times, 60.0 / grid.tempo
    if i < 0:
        return float(t[0] + i * ibi)
    if i > len(t) - 1:
        return float(t[-1] + (i - len(t) + 1) * ibi)
    return float(np.interp(i, np.arange(len(t)), t))


def bar_novelty(grid: BeatGrid) -> np.ndarray:
    """How much each bar (from each downbeat) differs from the one before: the change of its
    mean chroma (1 - cosine) and of its onset strength (|log ratio|), each z-scored; bar 0,
    with nothing before it in the analysed audio, gets 0."""
    feats = grid.features
    f = feats.frames(grid.downbeats)
    if len(f) < 3:
        return np.zeros(len(f))
    ends = np.r_[f[1:], min(len(feats.env), f[-1] + (f[-1] - f[-2]))]
    chroma = np.stack([feats.chroma[:, a:max(b, a + 1)].mean(axis=1) for a, b in zip(f, ends)])
    chroma /= np.linalg.norm(chroma, axis=1, keepdims=True) + 1e-9
    energy = np.array([feats.env[a:max(b, a + 1)].mean() for a, b in zip(f, ends)]) + 1e-9
    harm = 1 - (chroma[1:] * chroma[:-1]).sum(axis=1)
    dyn = np.abs(np.log(energy[1:] / energy[:-1]))

    def z(x):
        return (x - x.mean()) / x.std() if x.std() > 0 else np.zeros_like(x)
    return np.r_[0.0, z(harm) + z(dyn)]


def phrase_bars(grid: BeatGrid, phrase_beats: int = PHRASE_BEATS) -> tuple[np.ndarray, int]:
    """Bar indices (into ``grid.downbeats``) where phrases of ``phrase_beats`` start, and the
    phase: the bar offset (mod phrase length) whose bars change the most (:func:`bar_novelty`).
    A phrase is counted in bars (``phrase_beats`` / 4: four bars by default) in any metre.
    """
    per = max(1, phrase_beats // BEATS_PER_BAR)
    nov = bar_novelty(grid)
    n = len(nov)
    if n == 0:
        return np.zeros(0, int), 0
    scores = [nov[p::per][1 if p == 0 else 0:].mean() if len(nov[p::per]) > (p == 0) else -1e9
              for p in range(per)]
    phase = int(np.argmax(scores)) if n > per else 0
    return np.arange(phase, n, per), phase


def candidate_plans(a: BeatGrid, b: BeatGrid, *, a_duration: float, b_duration: float,
                    beats: int = 16, max_stretch: float = 0.08, cut_seconds: float = 0.25,
                    phrase_beats: int = PHRASE_BEATS, max_a: int = MAX_A_CANDIDATES,
                    max_b: int = MAX_B_CANDIDATES) -> list[dict]:
    """Every transition the planner considers, as plans (the dict :func:`plan_beat_sync`
    returns): A's overlap starts on a phrase boundary of A (or its latest downbeat with
    ``beats`` beats of music after it: today's plan, always a candidate) among the last
    ``max_a``; B enters on its first downbeat or one of its next phrase boundaries (``max_b``
    in all). Tempi too far apart to stretch give the one ``cut`` plan."""
    if beats % BEATS_PER_BAR:
        raise ToolkitError(f"beats must be a whole number of 4-beat bars, got {beats}")
    b_adj, factor = _octave_match(a, b)
    rate = a.tempo / b_adj.tempo
    base: dict[str, tp.Any] = {
        "tempo_a": round(a.tempo, 3), "tempo_b": round(b.tempo, 3), "octave_factor": factor,
        "beats": beats, "downbeat_phase_a": a.downbeat_phase,
        "downbeat_phase_b": b_adj.downbeat_phase, "beats_per_bar_a": a.beats_per_bar,
        "beats_per_bar_b": b_adj.beats_per_bar,
        "tracker_a": a.backend, "tracker_b": b.backend,
        "tracker_reason": a.backend_reason or b.backend_reason,
        "b_first_downbeat_s": float(b_adj.times[b_adj.downbeat_phase])}
    downs = np.arange(a.downbeat_phase, len(a.times), a.beats_per_bar)
    fits = [int(i) for i in downs if _beat_time(a, float(i + beats)) <= a_duration + 1e-6]
    if not fits:
        raise ToolkitError(f"the first song has no downbeat followed by {beats} beats of music")
    latest = fits[-1]
    b_first = float(b_adj.times[b_adj.downbeat_phase])
    if abs(rate - 1) > max_stretch:
        # tempi too far apart to stretch: an equal-power cut that ends on A's downbeat L beats
        # later, where B's first downbeat lands
        cut = _beat_time(a, latest + beats)
        return [{**base, "mode": "cut", "stretch_rate": 1.0, "a_downbeat_s": cut,
                 "b_downbeat_s": b_first, "overlap_start_s": cut - cut_seconds,
                 "overlap_s": cut_seconds, "a_beat": latest, "a_phrase": False,
                 "b_bar": 0, "overlap_beat_times_s": None}]
    bars_a, _ = phrase_bars(a, phrase_beats)
    phrase_beats_a = {int(a.downbeat_phase + a.beats_per_bar * k) for k in bars_a}
    a_starts = sorted({i for i in fits if i in phrase_beats_a}, reverse=True)[:max_a - 1]
    a_starts = sorted(set(a_starts) | {latest})
    bars_b, _ = phrase_bars(b_adj, phrase_beats)
    b_bars = [0] + [int(k) for k in bars_b if k > 0]
    plans = []
    for i in a_starts:
        times = [_beat_time(a, i + k) for k in range(beats + 1)]
        overlap = times[-1] - times[0]
        for bar in b_bars[:max_b]:
            j = b_adj.downbeat_phase + b_adj.beats_per_bar * bar
            if j >= len(b_adj.times):
                break
            b_down = float(b_adj.times[j])
            if b_down + overlap * rate > b_duration:
                continue
            plans.append({**base, "mode": "beat_sync", "stretch_rate": rate,
                          "a_downbeat_s": times[0], "b_downbeat_s": b_down,
                          "overlap_start_s": times[0], "overlap_s": overlap, "a_beat": i,
                          "a_phrase": i in phrase_beats_a, "b_bar": bar,
                          "overlap_beat_times_s": times})
    if not plans:
        raise ToolkitError(f"the second song is shorter than a {beats}-beat overlap")
    return plans


def plan_beat_sync(a: BeatGrid, b: BeatGrid, *, a_duration: float, b_duration: float,
                   beats: int = 16, max_stretch: float = 0.08,
                   cut_seconds: float = 0.25) -> dict:
    """Where the overlap starts in A, where B's aligned downbeat is, and B's stretch rate:
    the latest downbeat of A with ``beats`` beats of music after it, B's first downbeat.

    Returns a JSON-ready dict: ``mode`` (``beat_sync`` or ``cut``), tempi, ``octave_factor``,
    ``stretch_rate`` (B is played ``rate`` times faster), ``a_downbeat_s`` (the downbeat of A
    where B's downbeat ``b_downbeat_s``, in unstretched B, lands), ``overlap_start_s`` (in A),
    ``overlap_s`` (at A's tempo), ``beats`` and ``overlap_beat_times_s`` (A's beats 0..L of
    the overlap; None for a cut).
    """
    plans = candidate_plans(a, b, a_duration=a_duration, b_duration=b_duration, beats=beats,
                            max_stretch=max_stretch, cut_seconds=cut_seconds)
    latest = max(p["a_beat"] for p in plans)
    plan = next((p for p in plans if p["a_beat"] == latest and p["b_bar"] == 0), None)
    if plan is None:
        raise ToolkitError(f"the second song is shorter than a {beats}-beat overlap")
    return plan


EDGE_SECONDS = 60.0            # analysed end of A / start of B in beat-synchronous mode


def analyse_pair(a: np.ndarray, b: np.ndarray, sr: int) -> tuple[BeatGrid, BeatGrid]:
    """Beat grids of the last ``EDGE_SECONDS`` of A (in A's coordinates) and the first of B."""
    n = int(EDGE_SECONDS * sr)
    a_start = max(0, a.shape[1] - n)
    return analyse_beats(a[:, a_start:], sr, start=a_start / sr), analyse_beats(b[:, :n], sr)


def plan_pair(a: np.ndarray, b: np.ndarray, sr: int, *, beats: int) -> dict:
    """Beat grids of the last ``EDGE_SECONDS`` of A and the first of B, and the plan."""
    grid_a, grid_b = analyse_pair(a, b, sr)
    return plan_beat_sync(grid_a, grid_b, a_duration=a.shape[1] / sr,
                          b_duration=b.shape[1] / sr, beats=beats)
