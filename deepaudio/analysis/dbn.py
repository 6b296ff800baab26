"""A dynamic Bayesian network that decodes frame-wise beat and downbeat activations into a beat
grid: beat times, each beat's place in its bar, and the metre.

The model is the bar-pointer HMM of Krebs, Böck & Widmer (2015, "An efficient state-space model
for joint tempo and meter tracking", ISMIR) with its tempo-dependent discretisation: for each
beat interval ``tau`` (whole frames, from ``max_bpm`` down to ``min_bpm``) one block of
``B * tau`` states, one per frame of a bar of ``B`` beats at that tempo. The pointer advances one
state a frame; the tempo may change only where a beat starts, from the last state of beat
``k - 1`` of block ``tau`` to the first state of beat ``k`` of block ``tau'``, with probability
proportional to ``exp(-transition_lambda * |tau' / tau - 1|)``. The observation model is that of
Böck, Krebs & Widmer (2016, "Joint beat and downbeat tracking with recurrent neural networks",
ISMIR): the first ``ceil(tau / observation_lambda)`` states of a beat are beat states (of the
first beat, downbeat states), the rest no-beat states. Each bar length is decoded separately
and the most probable path wins, which picks the metre.

Because a beat's states are visited in a fixed order with no choice until the next beat starts,
Viterbi needs the best score only at beat starts: ``D[t, k, tau]``, the best path that starts
beat ``k`` at tempo ``tau`` at frame ``t``, is a max over the source tempo of
``D[t - tau_src, k - 1, tau_src]`` plus the (cumulative-sum) log-likelihood of that whole beat.
This is the exact Viterbi of the state-level HMM, costs ``O(frames * B * n_tempi**2)`` instead of
touching every state each frame, and since every source lies at least ``tau_min`` frames back,
``tau_min`` frames are computed at once. Backpointers are one small int per (frame, beat, tempo).

Two departures from the papers, both for the coarse tempo grid at 50 fps (adjacent beat
intervals differ by ~7% at 190 bpm, twice the step at the papers' 100 fps): ``transition_lambda``
defaults to 25, not 100, since at 100 a fast tempo whose interval is not a whole number of frames
costs so much to follow (alternating between neighbouring intervals) that half or a third of it
wins; and a beat may sit one frame outside its run of beat states, where the path drifts a frame
off the activation peak between tempo switches.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from deepaudio.core.errors import ToolkitError

_EPS = 1e-6          # floor for every observation probability before its log
_SNAP_FRAMES = 1     # a beat may sit this far outside its run of beat states (coarse tempo grid)


@dataclasses.dataclass(frozen=True)
class DecodedBeats:
    """The decoded beat grid, times in the coordinates of the full input."""

    times: np.ndarray        # beat times in seconds (float64), sub-frame
    positions: np.ndarray    # int, the beat's place in its bar, 1..beats_per_bar (1 = downbeat)
    beats_per_bar: int
    log_prob: float          # Viterbi path log-probability per decoded frame
    activation: float        # mean beat activation at the decoded beat frames (a confidence)


def _validate(beat_act: np.ndarray, downbeat_act: np.ndarray, fps: float,
              beats_per_bar: tuple[int, ...], min_bpm: float, max_bpm: float,
              transition_lambda: float, observation_lambda: int,
              threshold: float) -> tuple[np.ndarray, np.ndarray]:
    beat = np.asarray(beat_act, dtype=np.float64)
    down = np.asarray(downbeat_act, dtype=np.float64)
    if beat.ndim != 1 or down.ndim != 1:
        raise ToolkitError(f"beat and downbeat activations must be 1-d, got shapes "
                           f"{beat.shape} and {down.shape}")
    if beat.shape != down.shape:
        raise ToolkitError(f"beat and downbeat activations differ in length: "
                           f"{beat.size} and {down.size} frames")
    if not (np.isfinite(beat).all() and np.isfinite(down).all()):
        raise ToolkitError("beat and downbeat activations must be finite (found NaN or inf)")
    if not (math.isfinite(fps) and fps > 0):
        raise ToolkitError(f"fps must be positive, got {fps}")
    if not (math.isfinite(min_bpm) and math.isfinite(max_bpm) and 0 < min_bpm < max_bpm):
        raise ToolkitError(f"need 0 < min_bpm < max_bpm, got {min_bpm} and {max_bpm}")
    if not beats_per_bar or any(isinstance(b, bool) or not isinstance(b, int | np.integer)
                                or b < 1 for b in beats_per_bar):
        raise ToolkitError(f"beats_per_bar must be a non-empty tuple of integers >= 1, "
                           f"got {beats_per_bar!r}")
    if not (math.isfinite(transition_lambda) and transition_lambda >= 0):
        raise ToolkitError(f"transition_lambda must be >= 0, got {transition_lambda}")
    if (isinstance(observation_lambda, bool) or not isinstance(observation_lambda, int | np.integer)
            or observation_lambda < 2):
        raise ToolkitError(f"observation_lambda must be an integer >= 2, "
                           f"got {observation_lambda!r}")
    if not (math.isfinite(threshold) and 0 <= threshold < 1):
        raise ToolkitError(f"threshold must be in [0, 1), got {threshold}")
    if round(60.0 * fps / max_bpm) < 1:
        raise ToolkitError(f"max_bpm {max_bpm} is too fast for {fps} frames per second "
                           f"(a beat must last at least one frame)")
    if beat.size < 2 * 60.0 * fps / min_bpm:
        raise ToolkitError(f"activations too short: {beat.size} frames, need at least two beat "
                           f"intervals at {min_bpm} bpm ({2 * 60.0 * fps / min_bpm:.0f} frames)")
    return np.clip(beat, 0.0, 1.0), np.clip(down, 0.0, 1.0)


def _viterbi_bar(seg: np.ndarray, taus: np.ndarray, n_beat: np.ndarray, cum: np.ndarray,
                 log_trans_t: np.ndarray, n_frames: int, bar: int
                 ) -> tuple[float, list[tuple[int, int, int]]]:
    """Viterbi for bars of ``bar`` beats. Returns the path's log-probability and its beats as
    ``(start frame, beat index k, tempo index)``, in time order; the first may start before
    frame 0 (the path entered mid-beat)."""
    n_tempi, pad = taus.size, int(taus[-1])
    n_states = bar * int(taus.sum())
    log_init = -math.log(n_states)
    kind = np.where(np.arange(bar) == 0, 0, 1)             # observation kind of each beat
    ar = np.arange(n_tempi)
    # D[s + pad, k, i]: best log-prob of a path that starts beat k at tempo i at frame s,
    # excluding frame s's observation; frames s <= 0 are the uniform initial distribution.
    dpad = np.empty((n_frames + pad, bar, n_tempi))
    dpad[:pad + 1] = log_init
    bp = np.zeros((n_frames, bar, n_tempi), dtype=np.min_scalar_type(n_tempi))
    # what beat k is reached from: beat k - 1, whose frames score as its own kind
    before = (np.arange(bar) - 1) % bar
    seg_before = np.ascontiguousarray(seg[:, :, kind[before]].transpose(0, 2, 1))  # (t, k, i)
    chunk = int(taus[0])
    buf = np.empty((chunk, bar, n_tempi, n_tempi))
    for t0 in range(1, n_frames, chunk):
        tt = np.arange(t0, min(t0 + chunk, n_frames))
        c = tt.size
        # the beat k - 1 that ends at frame t - 1, per source tempo: start score plus its frames
        rows = (tt[:, None] - taus[None, :] + pad)[:, None, :]
        done = dpad[rows, before[None, :, None], ar[None, None, :]] + seg_before[tt]
        scores = np.add(done[:, :, None, :], log_trans_t, out=buf[:c])  # (c, k, dst, src)
        arg = scores.argmax(axis=3)
        bp[tt] = arg
        dpad[tt + pad] = np.take_along_axis(scores, arg[..., None], axis=3)[..., 0]
    # the path ends at the last frame anywhere in a beat started at s = n_frames - 1 - j
    j = np.arange(pad)
    starts = n_frames - 1 - j
    end = _segment(starts[:, None], taus[None, :], n_beat[None, :], cum, n_frames)  # (pad, n, 2)
    final = dpad[starts[:, None] + pad, :, ar[None, :]] + end[:, :, kind]         # (pad, n, bar)
    final[j[:, None] >= taus[None, :]] = -np.inf
    jj, ii, kk = (int(x) for x in np.unravel_index(int(np.argmax(final)), final.shape))
    best = float(final[jj, ii, kk])
    s = int(starts[jj])
    beats = [(s, kk, ii)]
    while s > 0:                                 # back through the beat starts to frame 0
        ii = int(bp[s, kk, ii])
        kk = (kk - 1) % bar
        s -= int(taus[ii])
        beats.append((s, kk, ii))
    beats.reverse()
    return best, beats


def _segment(starts: np.ndarray, taus: np.ndarray, n_beat: np.ndarray, cum: np.ndarray,
             n_frames: int) -> np.ndarray:
    """Log-likelihood of a beat of ``taus`` frames starting at ``starts`` (broadcast), clipped
    to the frames ``0..n_frames - 1``, for both observation kinds (downbeat, beat): last axis."""
    lo = np.clip(starts, 0, n_frames)
    mid = np.clip(starts + n_beat, 0, n_frames)
    hi = np.clip(starts + taus, 0, n_frames)
    no_beat = cum[2][hi] - cum[2][mid]
    return np.stack([cum[0][mid] - cum[0][lo] + no_beat,
                     cum[1][mid] - cum[1][lo] + no_beat], axis=-1)


def _refine(beat: np.ndarray, frame: int) -> float:
    """Sub-frame peak position: the vertex of the parabola through the frame and its two
    neighbours, offset clipped to half a frame."""
    if frame <= 0 or frame >= beat.size - 1:
        return float(frame)
    a, b, c = beat[frame - 1], beat[frame], beat[frame + 1]
    curve = a - 2.0 * b + c
    if curve >= 0:
        return float(frame)
    return frame + float(np.clip(0.5 * (a - c) / curve, -0.5, 0.5))


def decode_beats(beat_act: np.ndarray, downbeat_act: np.ndarray, fps: float, *,
                 beats_per_bar: tuple[int, ...] = (2, 3, 4), min_bpm: float = 55.0,
                 max_bpm: float = 215.0, transition_lambda: float = 25.0,
                 observation_lambda: int = 16, threshold: float = 0.05) -> DecodedBeats:
    """Decode beat and downbeat activations (per frame, in [0, 1]; ``beat_act`` counts
    downbeats too) into beats with their bar positions and the metre.

    Only the frames from the first to the last with ``beat_act > threshold`` are decoded, so no
    beats are invented in leading or trailing silence. Each bar length in ``beats_per_bar`` is
    decoded and the most probable path kept (as madmom does). A beat is placed in each run of
    beat states on the path, at its frame of highest beat activation, refined to sub-frame
    precision by parabolic interpolation. Raises ToolkitError on bad input, on input shorter
    than two beat intervals at ``min_bpm``, or when no frame passes the threshold.
    """
    beat, down = _validate(beat_act, downbeat_act, fps, beats_per_bar, min_bpm, max_bpm,
                           transition_lambda, observation_lambda, threshold)
    active = np.flatnonzero(beat > threshold)
    if active.size == 0:
        raise ToolkitError(f"no beat activation above the threshold {threshold}: nothing to "
                           f"decode (silence?)")
    first, n_frames = int(active[0]), int(active[-1] - active[0] + 1)
    b, d = beat[first:first + n_frames], down[first:first + n_frames]

    taus = np.arange(round(60.0 * fps / max_bpm), round(60.0 * fps / min_bpm) + 1)
    n_beat = -(-taus // observation_lambda)                # ceil(tau / lambda) beat states
    ratio = taus[None, :] / taus[:, None]                  # [src, dst]
    log_trans = -transition_lambda * np.abs(ratio - 1.0)
    log_trans -= np.logaddexp.reduce(log_trans, axis=1, keepdims=True)
    log_trans_t = np.ascontiguousarray(log_trans.T)        # [dst, src]

    logs = np.log(np.clip(np.stack([d, b - d, (1.0 - b) / (observation_lambda - 1)]), _EPS, 1.0))
    cum = np.zeros((3, n_frames + 1))
    np.cumsum(logs, axis=1, out=cum[:, 1:])
    # seg[t, i, kind]: log-likelihood of a beat at tempo i that ends at frame t - 1
    tt = np.arange(n_frames + 1)
    seg = _segment(tt[:, None] - taus[None, :], taus[None, :], n_beat[None, :], cum, n_frames)

    best: tuple[float, int, list[tuple[int, int, int]]] | None = None
    for bar in beats_per_bar:
        score, path = _viterbi_bar(seg, taus, n_beat, cum, log_trans_t, n_frames, int(bar))
        if best is None or score > best[0]:
            best = (score, int(bar), path)
    assert best is not None
    score, bar, path = best

    frames, positions = [], []
    for start, k, i in path:
        lo, hi = max(start, 0), min(start + int(n_beat[i]), n_frames)
        if lo >= hi:
            continue
        lo, hi = max(lo - _SNAP_FRAMES, 0), min(hi + _SNAP_FRAMES, n_frames)
        frames.append(first + lo + int(np.argmax(b[lo:hi])))
        positions.append(k + 1)
    times = np.array([_refine(beat, f) for f in frames], dtype=np.float64) / fps
    act = float(beat[frames].mean()) if frames else 0.0
    return DecodedBeats(times=times, positions=np.array(positions, dtype=np.int64),
                        beats_per_bar=bar, log_prob=score / n_frames, activation=act)
