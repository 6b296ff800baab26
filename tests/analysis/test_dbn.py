"""The bar-pointer DBN beat decoder on synthetic activations of known beats: Gaussian bumps at
the beats (downbeat bumps every bar) plus noise. Metres 4/4, 3/4 and 2, tempo steps and ramps, a
fast tempo off the frame grid, off-beat distractors, leading and trailing silence, sub-frame
times, bad input, and agreement with a plain state-by-state Viterbi on a small model."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from deepaudio.analysis.dbn import DecodedBeats, decode_beats
from deepaudio.core.errors import ToolkitError

FPS = 50.0


def _beat_times(bpm_at: Callable[[float], float], start: float = 0.5,
                end: float = 59.5) -> np.ndarray:
    """Beat times from a tempo curve (bpm as a function of time), from start to end."""
    times = [start]
    while times[-1] + 60.0 / bpm_at(times[-1]) <= end:
        times.append(times[-1] + 60.0 / bpm_at(times[-1]))
    return np.array(times)


def _activations(times: np.ndarray, bar: int, n_frames: int, *, height: float = 0.8,
                 noise: float = 0.03, offbeat: float = 0.0,
                 seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Beat and downbeat activations: a Gaussian bump (sigma one frame) at each beat, every
    bar-th one (from the first) a downbeat too; ``offbeat`` adds bumps of that relative height
    halfway between beats."""
    rng = np.random.default_rng(seed)
    frames = np.arange(n_frames)
    beat = noise * rng.random(n_frames)
    down = 0.5 * noise * rng.random(n_frames)
    for j, centre in enumerate(times * FPS):
        bump = height * np.exp(-0.5 * (frames - centre) ** 2)
        beat += bump
        if j % bar == 0:
            down += bump
    for centre in (times[:-1] + np.diff(times) / 2) * FPS:
        beat += offbeat * height * np.exp(-0.5 * (frames - centre) ** 2)
    beat = np.clip(beat, 0.0, 1.0)
    return beat, np.minimum(down, beat)


def _assert_beats(res: DecodedBeats, truth: np.ndarray, tol_frames: float) -> None:
    assert res.times.size == truth.size, f"{res.times.size} beats decoded, {truth.size} true"
    err = np.abs(res.times - truth).max() * FPS
    assert err <= tol_frames, f"worst beat {err:.2f} frames off"


def _decode(bpm_at: Callable[[float], float], bar: int, **kw) -> tuple[DecodedBeats, np.ndarray]:
    truth = _beat_times(bpm_at)
    beat, down = _activations(truth, bar, int(60 * FPS), **kw)
    return decode_beats(beat, down, FPS), truth


@pytest.mark.parametrize(("bpm", "bar"), [(120.0, 4), (96.0, 3), (70.0, 2)])
def test_metre_beats_and_downbeats(bpm: float, bar: int) -> None:
    # 4/4 at 120, 3/4 at 96, and 6/8 counted in dotted quarters (bars of 2) at 70
    res, truth = _decode(lambda t: bpm, bar)
    assert res.beats_per_bar == bar
    _assert_beats(res, truth, 1.0)
    np.testing.assert_array_equal(res.positions, np.arange(truth.size) % bar + 1)
    assert res.times.dtype == np.float64 and np.issubdtype(res.positions.dtype, np.integer)
    assert 0.7 < res.activation <= 0.85              # bumps of 0.8 plus noise
    assert np.isfinite(res.log_prob) and res.log_prob < 0


@pytest.mark.parametrize("bpm_at", [lambda t: 100.0 if t < 30 else 130.0,
                                    lambda t: 110.0 + 15.0 * t / 60.0],
                         ids=["step-100-130", "ramp-110-125"])
def test_follows_tempo_changes(bpm_at: Callable[[float], float]) -> None:
    res, truth = _decode(bpm_at, 4)
    _assert_beats(res, truth, 1.5)
    assert res.beats_per_bar == 4


def test_fast_tempo_off_the_frame_grid() -> None:
    # 190 bpm: 15.79 frames a beat, so the path has to alternate between 15 and 16
    assert abs(60 * FPS / 190 - round(60 * FPS / 190)) > 0.2
    res, truth = _decode(lambda t: 190.0, 4)
    _assert_beats(res, truth, 1.0)
    assert res.beats_per_bar == 4


def test_off_beat_distractors_do_not_win() -> None:
    res, truth = _decode(lambda t: 120.0, 4, offbeat=0.5)
    _assert_beats(res, truth, 1.0)
    np.testing.assert_array_equal(res.positions, np.arange(truth.size) % 4 + 1)


def test_no_beats_in_leading_and_trailing_silence() -> None:
    pad = int(10 * FPS)
    truth = _beat_times(lambda t: 120.0, 0.5, 39.5)
    beat, down = _activations(truth, 4, int(40 * FPS))
    zeros = np.zeros(pad)
    res = decode_beats(np.concatenate([zeros, beat, zeros]),
                       np.concatenate([zeros, down, zeros]), FPS)
    truth = truth + pad / FPS                            # times are in the full input's frames
    assert res.times.min() >= truth[0] - 0.5 and res.times.max() <= truth[-1] + 0.5
    _assert_beats(res, truth, 1.0)


def test_sub_frame_times() -> None:
    # bumps 0.35 frame off the grid: the parabolic refinement gets within 5 ms
    truth = _beat_times(lambda t: 120.0) + 0.007
    beat, down = _activations(truth, 4, int(60 * FPS), noise=0.01)
    res = decode_beats(beat, down, FPS)
    assert res.times.size == truth.size
    assert np.abs(res.times - truth).max() < 0.005
    assert np.abs(res.times - truth - 0.007).max() > 0.005      # it is not just the frame grid


@pytest.mark.parametrize(("beat", "down", "kw", "match"), [
    (np.full(3000, 0.5), np.full(2999, 0.1), {}, "differ in length"),
    (np.r_[np.full(2999, 0.5), np.nan], np.full(3000, 0.1), {}, "finite"),
    (np.full((2, 3000), 0.5), np.full((2, 3000), 0.1), {}, "1-d"),
    (np.full(100, 0.5), np.full(100, 0.1), {}, "too short"),
    (np.zeros(3000), np.zeros(3000), {}, "no beat activation"),
    (np.full(3000, 0.5), np.full(3000, 0.1), {"fps": 0.0}, "fps"),
    (np.full(3000, 0.5), np.full(3000, 0.1), {"min_bpm": 200.0, "max_bpm": 100.0}, "min_bpm"),
    (np.full(3000, 0.5), np.full(3000, 0.1), {"beats_per_bar": (4, 0)}, "beats_per_bar"),
], ids=["lengths", "nan", "2d", "short", "silent", "fps", "bpm", "bar"])
def test_bad_input(beat: np.ndarray, down: np.ndarray, kw: dict, match: str) -> None:
    kw = {"fps": FPS, **kw}
    fps = kw.pop("fps")
    with pytest.raises(ToolkitError, match=match):
        decode_beats(beat, down, fps, **kw)


def _state_viterbi(beat: np.ndarray, down: np.ndarray, taus: np.ndarray, bar: int, lam: float,
                   obs_lambda: int) -> tuple[float, list[tuple[int, int]]]:
    """The textbook Viterbi over every (tempo, bar position) state with a dense transition
    matrix; returns the best log-probability and the path's beat runs as (first frame, k)."""
    states = [(i, p) for i, tau in enumerate(taus) for p in range(bar * tau)]
    index = {s: n for n, s in enumerate(states)}
    ratio = taus[None, :] / taus[:, None]
    tempo = -lam * np.abs(ratio - 1)
    tempo -= np.logaddexp.reduce(tempo, axis=1, keepdims=True)
    trans = np.full((len(states), len(states)), -np.inf)
    for (i, p), n in index.items():
        tau = taus[i]
        if (p + 1) % tau:
            trans[n, index[(i, p + 1)]] = 0.0
        else:
            k = (p + 1) // tau % bar
            for j, tau2 in enumerate(taus):
                trans[n, index[(j, k * tau2)]] = tempo[i, j]
    kind = np.array([0 if p // taus[i] == 0 and p % taus[i] < -(-taus[i] // obs_lambda)
                     else 1 if p % taus[i] < -(-taus[i] // obs_lambda) else 2
                     for i, p in states])
    logs = np.log(np.clip(np.stack([down, beat - down, (1 - beat) / (obs_lambda - 1)]),
                          1e-6, 1))
    delta = -np.log(len(states)) + logs[kind, 0]
    back = []
    for t in range(1, beat.size):
        cand = delta[:, None] + trans
        back.append(cand.argmax(axis=0))
        delta = cand.max(axis=0) + logs[kind, t]
    path = [int(delta.argmax())]
    for ptr in reversed(back):
        path.append(int(ptr[path[-1]]))
    path.reverse()
    runs, prev = [], None
    for t, n in enumerate(path):
        i, p = states[n]
        is_beat = kind[n] < 2
        if is_beat and not (prev is not None and prev[0] == i and prev[1] == p - 1 and prev[2]):
            runs.append((t, p // taus[i] + 1))
        prev = (i, p, is_beat)
    return float(delta.max()), runs


@pytest.mark.parametrize("seed", [1, 2])
def test_matches_state_level_viterbi(seed: int) -> None:
    # a small model (10 fps, 4..10 frames a beat, bars of 3) on random activations
    rng = np.random.default_rng(seed)
    beat = rng.uniform(0.01, 1.0, 80)
    down = beat * rng.uniform(0.0, 1.0, 80)
    fps, lam, obs = 10.0, 5.0, 3
    res = decode_beats(beat, down, fps, beats_per_bar=(3,), min_bpm=60.0, max_bpm=150.0,
                       transition_lambda=lam, observation_lambda=obs, threshold=0.0)
    best, runs = _state_viterbi(beat, down, np.arange(4, 11), 3, lam, obs)
    assert res.log_prob * beat.size == pytest.approx(best, rel=1e-9)
    assert [k for _, k in runs] == res.positions.tolist()
    starts = np.array([t for t, _ in runs])
    offset = res.times * fps - starts                # runs of <= 4 frames, 1 frame of snap
    assert np.all((offset >= -1.5) & (offset <= 4.5))
