"""How rough, how dissonant and how loud a transition is: the numbers behind ``evaluate``.

* **Vassilakis roughness** (2001/2005; SRA 2007) summed over every pair of spectral peaks in
  each 50 ms frame and averaged over frames, with A_min/A_max as Vassilakis defines them. The
  AudioCommons ``timbral_models`` code this replaces takes the level of the lower-*frequency*
  peak instead of the smaller amplitude, so its Y term can exceed 1 (up to 8.6x per pair).
* the same mean on the ``timbral_models`` v0.4 listener scale,
  ``13.98779569 log10(r) + 48.976`` clipped to 0..100 (0 below r = 0.01), for comparison with
  numbers people have published with that package (it peak-normalises the audio and uses raw
  FFT magnitudes of 50 ms Hamming frames at 44.1 kHz; so do we).
* **Sethares dissonance** (JASA 1993; ``dissmeasure.m``) with b1 3.51, b2 5.75, s1 0.0207,
  s2 18.96 and x* 0.24, the 5 / -5 weights of Sethares' own code, and either the ``min``
  amplitude of a pair (the book's model) or the ``product`` (the 1993 paper's).
* the **loudness dip** at the midpoint of a crossfade: the mix's loudness over a 1 s window
  against the energy mean of the two unfaded songs in that window; a linear (equal-gain) fade of
  uncorrelated songs dips about -3 dB, an equal-power one about 0 dB.

NumPy in, NumPy out. Audio is float32 ``(channels, samples)``.
"""

from __future__ import annotations

import numpy as np

from deepaudio.core.audio import resample
from deepaudio.core.loudness import integrated_loudness

# Plomp-Levelt curve as parameterised by Sethares (s1, s2, x*) with Vassilakis' rounded b1.
X_STAR, S1, S2 = 0.24, 0.0207, 18.96
VASSILAKIS_B1, VASSILAKIS_B2 = 3.5, 5.75
SETHARES_B1, SETHARES_B2 = 3.51, 5.75
SETHARES_WEIGHT = 5.0          # dissmeasure.m: C1 = 5, C2 = -5
MEASURE_SR = 44100             # timbral_models' scale is fitted on 44.1 kHz FFT magnitudes
FRAME_SECONDS = 0.05


def _plomp(f_min: np.ndarray, df: np.ndarray, b1: float, b2: float) -> np.ndarray:
    s = X_STAR / (S1 * f_min + S2)
    return np.exp(-b1 * s * df) - np.exp(-b2 * s * df)


def _pairs(freqs, amps) -> tuple[np.ndarray, ...]:
    f = np.asarray(freqs, dtype=np.float64).ravel()
    a = np.asarray(amps, dtype=np.float64).ravel()
    if f.shape != a.shape:
        raise ValueError(f"freqs {f.shape} and amps {a.shape} differ in length")
    i, j = np.triu_indices(len(f), k=1)
    return f[i], a[i], f[j], a[j]


def vassilakis_pair_roughness(f1, a1, f2, a2) -> np.ndarray:
    """R = X^0.1 * 0.5 * Y^3.11 * Z for sine pairs (arrays broadcast).

    X = A_min * A_max, Y = 2 A_min / (A_min + A_max), Z = e^(-b1 s df) - e^(-b2 s df),
    s = 0.24 / (0.0207 f_min + 18.96), b1 = 3.5, b2 = 5.75 (Vassilakis 2005).
    """
    f1, a1, f2, a2 = (np.asarray(v, dtype=np.float64) for v in (f1, a1, f2, a2))
    a_min, a_max = np.minimum(a1, a2), np.maximum(a1, a2)
    total = a_min + a_max
    y = np.divide(2 * a_min, total, out=np.zeros_like(total), where=total > 0)
    z = _plomp(np.minimum(f1, f2), np.abs(f2 - f1), VASSILAKIS_B1, VASSILAKIS_B2)
    return (a_min * a_max) ** 0.1 * 0.5 * y ** 3.11 * z


def vassilakis_roughness(freqs, amps) -> float:
    """Total roughness of a set of sinusoidal components: the sum over every pair."""
    return float(vassilakis_pair_roughness(*_pairs(freqs, amps)).sum())


def sethares_dissonance(freqs, amps, *, model: str = "min") -> float:
    """Sethares' sensory dissonance of a spectrum: sum over pairs of
    a12 * 5 * (e^(-3.51 s df) - e^(-5.75 s df)); a12 = min(a1, a2) or a1 * a2."""
    f1, a1, f2, a2 = _pairs(freqs, amps)
    if model == "min":
        a12 = np.minimum(a1, a2)
    elif model == "product":
        a12 = a1 * a2
    else:
        raise ValueError(f"model must be 'min' or 'product', got {model!r}")
    d = _plomp(np.minimum(f1, f2), np.abs(f2 - f1), SETHARES_B1, SETHARES_B2)
    return float(SETHARES_WEIGHT * (a12 * d).sum())


def timbral_scale(mean_roughness: float) -> float:
    """``timbral_models`` v0.4's regression onto listener ratings, clipped to 0..100."""
    if not mean_roughness >= 0.01:
        return 0.0
    return float(np.clip(13.98779569 * np.log10(mean_roughness) + 48.97606571545886, 0, 100))


def _peaks_in_frame(norm: np.ndarray, contrast: float) -> np.ndarray:
    """Bins that are local maxima standing ``contrast`` above the valleys on both sides
    (MIRtoolbox ``mirpeaks`` 'Contrast'), on a spectrum normalised to 0..1."""
    d = np.diff(norm)
    is_max = np.flatnonzero((np.r_[1.0, d] > 0) & (np.r_[d, -1.0] <= 0))
    is_min = np.flatnonzero((np.r_[-1.0, d] < 0) & (np.r_[d, 1.0] >= 0))
    if len(is_max) == 0:
        return is_max
    left = np.searchsorted(is_min, is_max) - 1
    right = np.minimum(left + 1, len(is_min) - 1)
    left_v = np.where(left >= 0, norm[is_min[np.maximum(left, 0)]], 0.0)
    right_v = np.where(is_min[right] > is_max, norm[is_min[right]], 0.0)
    return is_max[norm[is_max] - np.maximum(left_v, right_v) >= contrast]


def _raw_peaks(audio: np.ndarray, sr: int, contrast: float
               ) -> tuple[list[tuple[np.ndarray, np.ndarray]], float]:
    """:func:`spectral_peaks` uncalibrated, and the factor that calibrates their levels."""
    x = np.asarray(audio, dtype=np.float64)
    x = x.mean(axis=0) if x.ndim == 2 else x
    scale = 1.0
    if sr != MEASURE_SR:
        x = resample(x[None].astype(np.float32), sr, MEASURE_SR)[0].astype(np.float64)
    peak = np.abs(x).max() if len(x) else 0.0
    if peak > 0:
        x, scale = x / peak, peak
    n = int(round(FRAME_SECONDS * MEASURE_SR))
    hop = n // 2
    if len(x) < n:
        x = np.pad(x, (0, n - len(x)))
    nfft = 1 << (n - 1).bit_length()
    window = np.hamming(n)
    starts = np.arange(0, len(x) - n + 1, hop)
    frames = np.lib.stride_tricks.sliding_window_view(x, n)[starts] * window
    mag = np.abs(np.fft.rfft(frames, nfft, axis=1))
    lo, hi = mag.min(), mag.max()
    norm = (mag - lo) / (hi - lo) if hi > lo else np.zeros_like(mag)
    out = []
    bin_hz = MEASURE_SR / nfft
    for row, nrow in zip(mag, norm):
        k = _peaks_in_frame(nrow, contrast)
        k = k[(k > 0) & (k < len(row) - 1)]
        a, b, c = row[k - 1], row[k], row[k + 1]
        den = a - 2 * b + c
        delta = np.divide(0.5 * (a - c), den, out=np.zeros_like(den), where=den != 0)
        out.append(((k + delta) * bin_hz, b - 0.25 * (a - c) * delta))
    return out, 2 * scale / window.sum()


def spectral_peaks(audio: np.ndarray, sr: int, *, contrast: float = 0.01,
                   calibrated: bool = False) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per 50 ms Hamming frame (50 % overlap, zero-padded to a power of two), the spectral
    peaks as ``(freqs_hz, amps)``.

    The audio is mixed to mono, resampled to 44.1 kHz and peak-normalised (as
    ``timbral_models`` does). Peaks are picked on the min-max normalised spectrogram with a
    contrast threshold; their frequency and level come from a parabola through the peak bin
    and its neighbours. ``calibrated`` scales levels so a sine of amplitude a reads a (before
    the peak normalisation is undone); otherwise they are raw FFT magnitudes (timbral scale).
    """
    peaks, calibration = _raw_peaks(audio, sr, contrast)
    if calibrated:
        peaks = [(f, a * calibration) for f, a in peaks]
    return peaks


def roughness(audio: np.ndarray, sr: int) -> dict:
    """Mean Vassilakis roughness over 50 ms frames, raw and on the timbral 0..100 scale."""
    per_frame = [vassilakis_roughness(f, a) for f, a in spectral_peaks(audio, sr)]
    mean = float(np.mean(per_frame)) if per_frame else 0.0
    return {"roughness": mean, "roughness_0_100": timbral_scale(mean)}


def dissonance(audio: np.ndarray, sr: int) -> dict:
    """Mean Sethares dissonance over 50 ms frames, both amplitude models, with peak levels
    calibrated to sine amplitudes."""
    peaks = spectral_peaks(audio, sr, calibrated=True)
    return {f"dissonance_{m}": float(np.mean([sethares_dissonance(f, a, model=m)
                                              for f, a in peaks])) if peaks else 0.0
            for m in ("min", "product")}


def loudness_dip_db(mix: np.ndarray, part_a: np.ndarray, part_b: np.ndarray, sr: int, *,
                    center: int, window_seconds: float = 1.0) -> float:
    """Loudness of ``mix`` in a window around sample ``center`` minus the energy mean of the
    unfaded ``part_a`` and ``part_b`` there (all aligned on the same timeline), in dB."""
    half = max(int(window_seconds * sr) // 2, int(0.21 * sr))
    lo, hi = max(0, center - half), center + half
    seg = [np.asarray(p)[:, lo:hi] for p in (mix, part_a, part_b)]
    if min(s.shape[1] for s in seg) < int(0.4 * sr):
        raise ValueError("the transition is shorter than one 400 ms loudness block")
    lm, la, lb = (integrated_loudness(s, sr) for s in seg)
    ref = 10 * np.log10((10 ** (la / 10) + 10 ** (lb / 10)) / 2)
    return float(lm - ref)


def transition_measures(audio: np.ndarray, sr: int, *,
                        models: tuple[str, ...] = ("min", "product")) -> dict:
    """Roughness and dissonance of one rendered transition (the overlap region): the same
    numbers as :func:`roughness` and :func:`dissonance` (for the dissonance ``models``), from
    one peak analysis (calibration scales every level by one factor)."""
    peaks, calibration = _raw_peaks(audio, sr, 0.01)
    per_frame = [vassilakis_roughness(f, a) for f, a in peaks]
    mean = float(np.mean(per_frame)) if per_frame else 0.0
    return {"roughness": mean, "roughness_0_100": timbral_scale(mean),
            **{f"dissonance_{m}": float(np.mean([sethares_dissonance(f, a * calibration,
                                                                     model=m)
                                                 for f, a in peaks])) if peaks else 0.0
               for m in models}}
