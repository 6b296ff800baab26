"""Song -> parameter timelines for the visualizations: interpolation to the frame rate, EWMA
smoothing, the spectrum model's box blur, and the assignment of features to visual parameters
(a seeded random permutation whose seed is returned, identity, or ranked by variance), plus
the MilkDrop-style DSP baseline.

Fixes from deep-audioviz-experiments: the random assignment is a seeded permutation (it
re-shuffled with a biased sort on every play), and scaling into a parameter's range is
monotonic (its two-sided scale jumped at 0.5).
"""

from __future__ import annotations

import secrets
import typing as tp
from pathlib import Path

import numpy as np

from deepaudio.core.errors import ToolkitError
from deepaudio.mapping.encode import FeatureTimeline, encode_track
from deepaudio.mapping.mappings import Per, Scaling, get_mapping

BLUR_SIZES = (1, 10, 50, 100, 300, 1000, 3000)   # frames, the spectrum model's blur levels


def interpolate_frames(times: np.ndarray, values: np.ndarray, fps: float,
                       duration: float) -> np.ndarray:
    """Linear interpolation between segment times onto frames at ``k / fps`` for
    ``0 <= k / fps <= duration``; held constant before the first and after the last segment."""
    t = np.arange(int(np.floor(duration * fps + 1e-9)) + 1) / fps
    return np.stack([np.interp(t, times, values[:, j]) for j in range(values.shape[1])],
                    axis=1).astype(np.float32)


def ewma(values: np.ndarray, alpha: float) -> np.ndarray:
    """v_t = alpha * p_t + (1 - alpha) * v_(t-1), v_0 = p_0, along axis 0."""
    from scipy.signal import lfilter
    if not 0 < alpha <= 1:
        raise ToolkitError(f"EWMA alpha must be in (0, 1], got {alpha}")
    x = np.asarray(values, np.float64)
    zi = (1 - alpha) * x[:1]
    return lfilter([alpha], [1, -(1 - alpha)], x, axis=0, zi=zi)[0].astype(np.float32)


def multiscale_blur(values: np.ndarray, sizes: tp.Sequence[int] = BLUR_SIZES) -> dict:
    """The spectrum model's blur levels: a centred box mean of b frames for each b, then
    min-max scaled per feature over the song (constant features become 0)."""
    from scipy.ndimage import uniform_filter1d
    out = {}
    for b in sizes:
        x = uniform_filter1d(np.asarray(values, np.float64), size=min(b, len(values)), axis=0,
                             mode="nearest")
        lo, hi = x.min(0), x.max(0)
        out[f"blur{b}"] = ((x - lo) / np.where(hi > lo, hi - lo, 1.0)).astype(np.float32)
    return out


def assign_parameters(n: int, mode: str, *, seed: int | None = None,
                      feature_variance: tp.Sequence[float] | None = None,
                      salience: tp.Sequence[int] | None = None) -> tuple[np.ndarray, int | None]:
    """Which feature drives each parameter: ``perm[k]`` is the feature of parameter k.

    ``random``: a seeded permutation (a seed is drawn and returned when none is given, so a
    mapping can be shared); ``deterministic``: identity; ``ranked``: features by decreasing
    variance onto parameters by decreasing visual ``salience`` (parameter indices, most
    salient first; default 0..n-1).
    """
    if mode == "deterministic":
        return np.arange(n), None
    if mode == "random":
        seed = secrets.randbelow(2 ** 31) if seed is None else int(seed)
        return np.random.default_rng(seed).permutation(n), seed
    if mode == "ranked":
        if feature_variance is None:
            raise ToolkitError("ranked assignment needs the features' variances")
        order = np.argsort(-np.asarray(feature_variance), kind="stable")
        params = np.asarray(salience if salience is not None else np.arange(n))
        perm = np.empty(n, np.int64)
        perm[params] = order[:n]
        return perm, None
    raise ToolkitError(f"assignment must be random, deterministic or ranked, got {mode!r}")


def scale_to_range(v: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Monotonic map of [0, 1] onto a parameter's [lo, hi]."""
    return lo + np.clip(v, 0, 1) * (hi - lo)


def mapped_timeline(source, run_dir: str | Path, *, method: str = "pca",
                    layer: str | None = None, scaling: Scaling = "standard",
                    per: Per = "features", fps: float = 30.0, smoothing: float = 0.0,
                    assign: str = "deterministic", seed: int | None = None,
                    hop_seconds: float | None = None, blur: int | None = None) -> FeatureTimeline:
    """Song → 10 parameter tracks in [0, 1] at ``fps``: the playground's timeline.

    ``blur`` (frames) applies the spectrum model's centred box mean and per-song min-max
    scaling after the EWMA, e.g. 50 frames for slow, sweeping parameters.
    """
    if fps <= 0 or fps > 240:
        raise ToolkitError(f"fps must be in (0, 240], got {fps}")
    if not 0 <= smoothing < 1:
        raise ToolkitError(f"smoothing must be in [0, 1), got {smoothing}")
    feats = encode_track(source, run_dir, layer, hop_seconds=hop_seconds)
    mapping = get_mapping(run_dir, method, layer=feats.meta["layer"], scaling=scaling, per=per)
    values = mapping.transform(feats.frames)
    frames = interpolate_frames(feats.times, values, fps, feats.meta["duration"])
    if smoothing:
        frames = ewma(frames, 1 - smoothing)
    if blur is not None:
        if blur < 1:
            raise ToolkitError(f"blur must be a number of frames >= 1, got {blur}")
        frames = multiscale_blur(frames, sizes=(blur,))[f"blur{blur}"]
    perm, used_seed = assign_parameters(values.shape[1], assign, seed=seed,
                                        feature_variance=mapping.feature_variance)
    frames = frames[:, perm]
    return FeatureTimeline(fps=fps, names=[f"p{k}" for k in range(frames.shape[1])],
                           frames=np.clip(frames, 0, 1), start=0.0,
                           meta={"method": method, "layer": feats.meta["layer"],
                                 "scaling": scaling, "per": per, "smoothing": smoothing,
                                 "assignment": assign, "seed": used_seed, "blur": blur,
                                 "permutation": perm.tolist(),
                                 "duration": feats.meta["duration"]})


def dsp_band_timeline(y: np.ndarray, sr: int, *, fps: float = 30.0,
                      fft_size: int = 1024) -> FeatureTimeline:
    """bass / mid / treb relative loudness as MilkDrop computes it (butterchurn's bands
    20-320, 320-2800, 2800-11025 Hz): ``imm / long`` and ``avg / long`` per band, with the
    fast-attack/slow-release averages compensated for ``fps``. Values hover around 1.0."""
    hop = sr / fps
    n = int(len(y) / hop) + 1
    window = np.hanning(fft_size)
    padded = np.pad(y, (fft_size, fft_size))
    starts = (np.arange(n) * hop).astype(int) + fft_size // 2
    frames = np.stack([padded[s:s + fft_size] for s in starts]) * window
    mag = np.abs(np.fft.rfft(frames, axis=1))
    f = np.fft.rfftfreq(fft_size, 1 / sr)
    bands = [(20, 320), (320, 2800), (2800, 11025)]
    imm = np.stack([mag[:, (f >= lo) & (f < hi)].sum(1) for lo, hi in bands], 1)
    out = np.zeros((n, 6), np.float32)
    avg = imm[0].copy()
    long = imm[0].copy()
    comp = 30.0 / np.clip(fps, 15, 144)
    for t in range(n):
        r = np.where(imm[t] > avg, 0.2, 0.5) ** comp
        avg = avg * r + imm[t] * (1 - r)
        rho = (0.9 if t < 50 else 0.992) ** comp
        long = long * rho + imm[t] * (1 - rho)
        safe = np.where(long < 1e-3, 1.0, long)
        out[t, :3] = np.where(long < 1e-3, 1.0, imm[t] / safe)
        out[t, 3:] = np.where(long < 1e-3, 1.0, avg / safe)
    return FeatureTimeline(fps=fps, names=["bass", "mid", "treb", "bass_att", "mid_att",
                                           "treb_att"], frames=out, start=0.0)
