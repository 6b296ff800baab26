"""Loudness and peaks: ITU-R BS.1770-4 integrated loudness, the 4x-oversampled true peak, and
a look-ahead true-peak limiter, vectorised (no per-sample Python loop anywhere).

The K-weighting filters are pyloudnorm's; the gating runs on 100 ms sub-block sums; the true
peak is only interpolated next to samples that could reach the ceiling; the limiter runs only
on the stretches it reduces. The mixer's export (``lufs`` normalisation) and the crossfade's
loudness matching and loudness dip use these functions and no other meter.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from deepaudio.core.config import ConfigError
from deepaudio.core.gain import db_to_gain

_K_SOS: dict[int, np.ndarray] = {}


def _k_weighting(sr: int) -> np.ndarray:
    """pyloudnorm's BS.1770-4 K-weighting (high shelf + high pass) as second-order sections."""
    if sr not in _K_SOS:
        import pyloudnorm as pyln
        meter = pyln.Meter(sr)
        _K_SOS[sr] = np.array([np.concatenate([f.b, f.a]) for f in meter._filters.values()])
    return _K_SOS[sr]


K_BLOCK = 1 << 18         # samples K-filtered at a time: bounds the float32 temporaries


def _k_energy(audio: np.ndarray, sr: int) -> np.ndarray:
    """(N,) float32 channel sum of the squared K-weighted audio, filtered ``K_BLOCK`` samples
    at a time with the filter state carried over (the same numbers as one pass, without a
    K-weighted copy of the audio); raises ConfigError below one 400 ms block."""
    from scipy.signal import sosfilt
    audio = np.atleast_2d(audio)
    if audio.shape[1] < 0.4 * sr:
        raise ConfigError(f"loudness needs at least 0.4 s of audio, got "
                          f"{audio.shape[1] / sr:.3f} s")
    sos = _k_weighting(sr).astype(np.float32)
    zi = np.zeros((sos.shape[0], audio.shape[0], 2), np.float32)
    energy = np.empty(audio.shape[1], np.float32)
    for a in range(0, audio.shape[1], K_BLOCK):
        k, zi = sosfilt(sos, audio[:, a:a + K_BLOCK].astype(np.float32, copy=False), axis=1,
                        zi=zi)
        energy[a:a + K_BLOCK] = np.einsum("cn,cn->n", k, k)
    return energy


def _subblock_energy(power: np.ndarray, sr: int) -> np.ndarray:
    """(C, n_sub) float64 sums over 100 ms sub-blocks of (C, N) squared K-weighted audio."""
    hop = int(round(0.1 * sr))
    n_sub = power.shape[1] // hop
    return power[:, :n_sub * hop].reshape(power.shape[0], n_sub, hop).sum(axis=2,
                                                                          dtype=np.float64)


def _gated_loudness(sub: np.ndarray, n: int, sr: int) -> float:
    """BS.1770-4 gated loudness in LUFS from the (C, n_sub) sub-block energies of ``n``
    K-weighted samples; -inf for silence. Stereo channels weigh 1, so channel-summed
    energies (1, n_sub) give the same result."""
    block, step = 0.4, 0.25                                   # 400 ms, 75 % overlap
    hop = int(round(block * step * sr))                       # 100 ms sub-blocks
    n_blocks = int(np.round((n / sr - block) / (block * step))) + 1
    n_blocks = min(n_blocks, sub.shape[1] - 3)
    csum = np.concatenate([np.zeros((sub.shape[0], 1)), np.cumsum(sub, axis=1)], axis=1)
    z = (csum[:, 4:4 + n_blocks] - csum[:, :n_blocks]) / (4 * hop)   # (C, blocks) mean squares
    zsum = z.sum(axis=0)
    with np.errstate(divide="ignore"):
        lj = -0.691 + 10 * np.log10(zsum)
    gated = lj >= -70.0
    if not gated.any():
        return float("-inf")
    rel = -0.691 + 10 * np.log10(z[:, gated].mean(axis=1).sum()) - 10.0
    gated = (lj > rel) & (lj > -70.0)
    if not gated.any():
        return float("-inf")
    return float(-0.691 + 10 * np.log10(z[:, gated].mean(axis=1).sum()))


def integrated_loudness(audio: np.ndarray, sr: int) -> float:
    """BS.1770-4 integrated loudness in LUFS of (C, N) audio; -inf for silence.

    The same filters, 400 ms blocks with 75 % overlap and -70 LUFS / -10 LU gates as
    ``pyloudnorm.Meter.integrated_loudness`` (agreement within 0.01 LU is tested), with the
    gating vectorised.
    """
    audio = np.atleast_2d(audio)
    return _gated_loudness(_subblock_energy(_k_energy(audio, sr)[None], sr), audio.shape[1], sr)

_TP_FILTERS: dict[int, np.ndarray] = {}
_TP_TAPS = 12                   # per phase: BS.1770-4 Annex 2's 48-tap interpolator at 4x
_TP_CHUNK = 1 << 18             # windows interpolated at once: bounds the (M, 12) gathers


def _tp_filter(oversample: int) -> np.ndarray:
    """(12, oversample) polyphase interpolator, ``[k, phase] = h[oversample * k + phase]``."""
    if oversample not in _TP_FILTERS:
        from scipy.signal import firwin
        h = firwin(_TP_TAPS * oversample, 1.0 / oversample, window=("kaiser", 8.0)) * oversample
        _TP_FILTERS[oversample] = h.reshape(_TP_TAPS, oversample).astype(np.float32)
    return _TP_FILTERS[oversample]


def _span_bounds(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``starts`` and ``stops`` (exclusive) of the union of the closed ranges [lo, hi],
    ``lo`` sorted; vectorised, without a mask over the whole signal."""
    reach = np.maximum.accumulate(hi)
    breaks = np.flatnonzero(lo[1:] > reach[:-1] + 1) + 1
    return lo[np.r_[0, breaks]], reach[np.r_[breaks - 1, lo.size - 1]] + 1


def _span_index(starts: np.ndarray, stops: np.ndarray) -> np.ndarray:
    """The sorted indices covered by the spans ``[starts, stops)``."""
    lengths = stops - starts
    offsets = np.cumsum(lengths) - lengths
    return np.arange(lengths.sum()) + np.repeat(starts - offsets, lengths)


def _spans(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Sorted indices of the union of the closed ranges [lo, hi], ``lo`` sorted."""
    return _span_index(*_span_bounds(lo, hi))


def _interpolated_peaks(ch: np.ndarray, hot: np.ndarray, H: np.ndarray
                        ) -> tuple[np.ndarray, np.ndarray]:
    """Interpolate one channel next to the samples ``hot`` (sorted indices).

    Returns ``ends`` and ``peaks``: for each base index n with a hot sample among
    x[n - 11 .. n], the largest magnitude of the interpolated values y[4n + r], r = 0..3
    (y[4n + r] = sum_k h[4k + r] x[n - k]). With the filter's group delay of 5.875 samples
    these lie between x[n - 6] and x[n - 5].

    The runs of consecutive ends, each with the 11 samples before it, are concatenated and
    filtered with one ``np.convolve`` per phase; outputs that would reach into the previous
    run are not used.
    """
    taps = H.shape[0]
    if hot.size == 0:
        return hot, np.zeros(0, np.float32)
    ends = _spans(hot, hot + taps - 1)                    # windows [n - 11, n] holding a hot one
    first = np.r_[True, np.diff(ends) > 1]
    lead = np.repeat(np.arange(ends.size)[first], taps - 1)   # (runs * 11,) rank of run start
    src = np.empty(ends.size + lead.size, np.int64)           # input index per filter slot
    slot = np.arange(ends.size) + (taps - 1) * np.cumsum(first)   # each end's slot
    src[slot] = ends
    lead_slot = (slot[first][:, None] - np.arange(taps - 1, 0, -1)[None, :]).ravel()
    src[lead_slot] = (ends[first][:, None] - np.arange(taps - 1, 0, -1)[None, :]).ravel()
    valid = (src >= 0) & (src < ch.shape[0])
    x = np.where(valid, ch[np.clip(src, 0, ch.shape[0] - 1)], np.float32(0))
    peaks = np.zeros(ends.size, np.float32)
    for r in range(H.shape[1]):
        y = np.convolve(x, H[:, r])[slot]                 # y[j] = sum_k h[k] x[j - k]
        np.maximum(peaks, np.abs(y), out=peaks)
    return ends, peaks


SCAN_BLOCK = 1 << 20       # samples scanned at a time for peaks: no full-length temporaries


def sample_peak(audio: np.ndarray) -> float:
    """The largest magnitude of ``audio`` (any shape, samples last), scanned in blocks."""
    audio = np.atleast_2d(audio)
    return max((float(np.abs(audio[:, a:a + SCAN_BLOCK]).max())
                for a in range(0, audio.shape[1], SCAN_BLOCK)), default=0.0)


def _indices_above(ch: np.ndarray, floor: float) -> np.ndarray:
    """Sorted indices where ``|ch| >= floor``, scanned in blocks."""
    parts = [np.flatnonzero(np.abs(ch[a:a + SCAN_BLOCK]) >= floor) + a
             for a in range(0, ch.shape[0], SCAN_BLOCK)]
    return np.concatenate(parts) if parts else np.zeros(0, np.int64)


def true_peak(audio: np.ndarray, oversample: int = 4, *, above: float = 0.0) -> float:
    """Linear true peak of (C, N) audio: the largest magnitude of the 4x-oversampled signal
    (BS.1770-4 Annex 2: 4x oversampling, 48-tap interpolator).

    Interpolated values are weighted sums of 12 neighbours, bounded by sum|h| times their
    largest magnitude, so only samples near the loudest ones are interpolated. Peaks below
    ``above`` are not searched for (the answer is then only known to be below it): a ceiling
    check needs no more.
    """
    H = _tp_filter(oversample)
    bound = np.abs(H).sum(axis=0).max()
    audio = np.atleast_2d(audio)
    peak = sample_peak(audio) if audio.size else 0.0
    if peak == 0.0:
        return 0.0
    threshold = max(peak, above) / bound
    best = peak
    for ch in audio:
        _, peaks = _interpolated_peaks(ch, _indices_above(ch, threshold), H)
        if peaks.size:
            best = max(best, float(peaks.max()))
    return best

LIMITER_LOOKAHEAD_S = 0.003     # attack ramp; true-peak limiters use 1.5-5 ms
LIMITER_RELEASE_S = 0.06        # one-pole release time constant: slow enough not to ripple bass
LIMITED_DB = 0.1                # a sample counts as limited past this much gain reduction
MAKEUP_MAX_DB = 6.0             # the most gain added to win back what limiting took


def _local_peaks(audio: np.ndarray, floor: float) -> tuple[np.ndarray, np.ndarray]:
    """Sorted sample indices where a sample or the 4x-interpolated values next to it exceed
    ``floor`` in any channel, and the largest such magnitude at each."""
    H = _tp_filter(4)
    bound = np.abs(H).sum(axis=0).max()
    n = audio.shape[1]
    positions, peaks = [], []
    for ch in audio:
        near = _indices_above(ch, floor / bound)          # only these can make an over
        if near.size == 0:
            continue
        mag = np.abs(ch[near])
        over = mag > floor
        positions.append(near[over])
        peaks.append(mag[over])
        ends, inter = _interpolated_peaks(ch, near, H)
        over = inter > floor
        for shift in (6, 5):                    # between x[n - 6] and x[n - 5]
            positions.append(ends[over] - shift)
            peaks.append(inter[over])
    if not positions:
        return np.zeros(0, np.int64), np.zeros(0, np.float32)
    pos, peak = np.concatenate(positions), np.concatenate(peaks).astype(np.float32)
    keep = (pos >= 0) & (pos < n)
    order = np.argsort(pos[keep], kind="stable")
    pos, peak = pos[keep][order], peak[keep][order]
    if pos.size == 0:
        return pos, peak
    first = np.flatnonzero(np.r_[True, np.diff(pos) > 0])
    return pos[first], np.maximum.reduceat(peak, first)


def _limiter_gain(pos: np.ndarray, need: np.ndarray, n: int, sr: int, *,
                  lookahead: float, release: float) -> tuple[tuple, np.ndarray]:
    """The limiter's gain where it is below 1, given the gain ``need`` (< 1) of the samples
    ``pos``: spans ``(starts, stops)`` and the gains over them, concatenated; see
    :func:`true_peak_limiter`."""
    from scipy.ndimage import minimum_filter1d
    # stretches from L before a needy sample to the end of its release tail (reduction
    # below 1e-4, -0.001 dB), merged and concatenated: each keeps at least L samples of
    # unit gain on both sides, so the attack filters see what they would on the whole signal
    L = max(1, int(round(lookahead * sr)))
    tail = L + int(np.ceil(release * sr * np.log(1e4)))
    spans = _span_bounds(np.maximum(pos - L, 0), np.minimum(pos + tail, n - 1))
    idx = _span_index(*spans)
    g = np.ones(idx.shape[0], np.float32)
    g[np.searchsorted(idx, pos)] = need
    g = minimum_filter1d(g, L, origin=-(L // 2), mode="constant", cval=1.0)  # min(next L)
    csum = np.concatenate([[0.0], np.cumsum(1.0 - g, dtype=np.float64)])
    # mean(prev L); before sample 0 the gain is taken as at sample 0, so a peak there is held
    before = (1.0 - float(g[0])) * np.arange(L - 1, 0, -1) if idx[0] == 0 else 0.0
    d = np.concatenate([csum[1:L] + before, csum[L:] - csum[:-L]]) / L
    c = -1.0 / (release * sr)                   # log of the per-sample release factor
    with np.errstate(divide="ignore"):
        logd = np.log(np.maximum(d, 0.0)) - c * idx                        # -inf: no reduction
    np.maximum.accumulate(logd, out=logd)
    logd += c * idx
    return spans, 1.0 - np.exp(logd.astype(np.float32))


def _apply_spans(curve: np.ndarray, spans: tuple, g: np.ndarray) -> None:
    """``curve[idx] *= g`` for the sample indices of ``spans``, one slice per span (far
    faster than fancy indexing over millions of samples)."""
    o = 0
    for a, b in zip(*spans):
        curve[a:b] *= g[o:o + b - a]
        o += b - a


def _gather_spans(x: np.ndarray, spans: tuple) -> np.ndarray:
    return np.concatenate([x[a:b] for a, b in zip(*spans)])


def true_peak_limiter(audio: np.ndarray, sr: int, ceiling: float, *,
                      lookahead: float = LIMITER_LOOKAHEAD_S,
                      release: float = LIMITER_RELEASE_S) -> np.ndarray | None:
    """(N,) float32 gain curve <= 1 that holds the 4x-oversampled peak of (C, N) ``audio``
    at ``ceiling`` (linear); one curve for all channels, so the stereo image stays. None when
    the audio is already below the ceiling.

    A look-ahead limiter computed offline, without a per-sample loop:

    1. the gain each sample needs, ``ceiling / peak``, where ``peak`` is the sample and the
       interpolated values next to it (only around loud samples, as in :func:`true_peak`);
    2. attack: the minimum of that over the next ``lookahead`` (``minimum_filter1d``), then
       its mean over the previous ``lookahead``, so the gain ramps down linearly and reaches
       each sample's need at that sample, never later;
    3. release: the reduction ``d = 1 - g`` decays by ``a = exp(-1 / (release * sr))`` per
       sample unless the attack asks for more, ``d[n] = max(d2[n], a d[n - 1])``. Unrolled,
       ``log d[n] = c n + max_{m <= n} (log d2[m] - c m)`` with ``c = log a``: one cumulative
       maximum (``np.maximum.accumulate``), exact also across the gaps left out below.

    All of it runs only on the stretches that need reduction (plus attack and release).
    """
    audio = np.atleast_2d(audio)
    pos, peak = _local_peaks(audio, ceiling)
    if pos.size == 0:
        return None
    spans, g = _limiter_gain(pos, ceiling / peak, audio.shape[1], sr, lookahead=lookahead,
                             release=release)
    curve = np.ones(audio.shape[1], np.float32)
    _apply_spans(curve, spans, g)
    return curve


def _limit_to_target(mix: np.ndarray, energy: np.ndarray, sr: int, loudness: float, *,
                    target_lufs: float, ceiling_dbtp: float
                    ) -> tuple[float, tuple | None, float]:
    """Gain to ``target_lufs``, then the true-peak limiter; when limiting lowered the
    loudness, raise the gain and limit again (at most 3 passes, secant steps in dB, at most
    ``MAKEUP_MAX_DB`` above the plain loudness gain). ``energy`` is the (N,) channel sum of
    the squared K-weighted mix. Returns the gain in dB, the limiter's ``(spans, gain)`` (None
    if it had nothing to do) and the output loudness.

    Each pass's output loudness comes from ``K(mix) * gain`` instead of K-filtering the
    output again (the gain moves slowly next to the K filter's response), and only the
    sub-blocks the limiter touched are summed again: within 0.01 LU of pyloudnorm on the
    sample music.
    """
    target, n = target_lufs, mix.shape[1]
    ceiling = float(db_to_gain(ceiling_dbtp))
    hop = int(round(0.1 * sr))
    sub = _subblock_energy(energy[None], sr)[0]
    gain_db = base_db = target - loudness
    floor_db = -np.inf
    tried: list[tuple[float, float]] = []
    while True:
        if gain_db > floor_db:      # peaks for this pass and, with 2 dB to spare, the next
            floor_db = gain_db + 2.0
            pos, peak = _local_peaks(mix, ceiling / float(db_to_gain(floor_db)))
        limit = ceiling / float(db_to_gain(gain_db))
        over = peak > limit
        if not over.any():
            return gain_db, None, loudness + gain_db
        spans, g = _limiter_gain(pos[over], limit / peak[over], n, sr,
                                 lookahead=LIMITER_LOOKAHEAD_S, release=LIMITER_RELEASE_S)
        block = _span_index(*spans) // hop                    # sub-block of each sample
        inside = block < sub.size
        lost = np.bincount(block[inside], minlength=sub.size,
                           weights=(_gather_spans(energy, spans) * (1 - np.square(g)))[inside])
        # gate the output (the absolute -70 LUFS gate is on the level heard, after the gain)
        out_lufs = _gated_loudness((np.maximum(sub - lost, 0.0) * 10 ** (gain_db / 10))[None],
                                   n, sr)
        tried.append((gain_db, out_lufs))
        if abs(out_lufs - target) <= 0.1 or len(tried) == 3:
            return gain_db, (spans, g), out_lufs
        slope = 0.8         # LU of output per dB of gain: louder input, more limiting
        if len(tried) > 1:
            (g0, l0), (g1, l1) = tried[-2:]
            slope = float(np.clip((l1 - l0) / (g1 - g0), 0.25, 1.0))
        step = float(np.clip(gain_db + (target - out_lufs) / slope,
                             base_db, base_db + MAKEUP_MAX_DB)) - gain_db
        if abs(step) < 0.01:
            return gain_db, (spans, g), out_lufs
        gain_db += step


@dataclasses.dataclass
class GainPlan:
    """A gain for a whole signal: a constant ``gain`` times the limiter's gain ``limited``
    (``(spans, g)`` where it is below 1, or None). :meth:`block` applies it to any slice, so
    an export can be written block by block without a second copy of the audio."""
    gain: float = 1.0
    limited: tuple | None = None

    def block(self, audio: np.ndarray, start: int, stop: int) -> np.ndarray:
        """``audio[:, start:stop]`` with the gain applied (a new float32 array)."""
        out = audio[:, start:stop] * np.float32(self.gain)
        if self.limited is not None:
            (starts, stops), g = self.limited
            offsets = np.cumsum(stops - starts) - (stops - starts)
            for k in range(np.searchsorted(stops, start, side="right"), len(starts)):
                a, b = max(int(starts[k]), start), min(int(stops[k]), stop)
                if a >= b:
                    break
                o = int(offsets[k]) + a - int(starts[k])
                out[:, a - start:b - start] *= g[o:o + b - a]
        return out

    def apply(self, audio: np.ndarray) -> np.ndarray:
        if self.gain == 1.0 and self.limited is None:
            return audio
        return self.block(audio, 0, audio.shape[1])


def normalize_loudness(mix: np.ndarray, sr: int, *, target_lufs: float, ceiling_dbtp: float,
                       limiter: bool = True) -> tuple[np.ndarray, dict]:
    """``mix`` (C, N) brought to ``target_lufs`` under a true-peak ceiling of ``ceiling_dbtp``:
    :func:`loudness_plan` applied. Returns the audio and the plan's report."""
    plan, report = loudness_plan(mix, sr, target_lufs=target_lufs, ceiling_dbtp=ceiling_dbtp,
                                 limiter=limiter)
    return plan.apply(mix), report


def loudness_plan(mix: np.ndarray, sr: int, *, target_lufs: float, ceiling_dbtp: float,
                  limiter: bool = True) -> tuple[GainPlan, dict]:
    """The gain that brings ``mix`` (C, N) to ``target_lufs`` under a true-peak ceiling of
    ``ceiling_dbtp``.

    With ``limiter`` a look-ahead true-peak limiter (:func:`true_peak_limiter`'s algorithm, one
    gain curve for every channel) holds the peaks at the ceiling and the gain is raised again
    for the loudness the limiting took, so the output lands on the target; without it the
    whole gain is lowered until the peak meets the ceiling (dynamics untouched, but peaky
    material ends below the target). Silence gets unit gain.

    Returns the plan and a report: ``input_lufs``, ``output_lufs``, ``gain_db``, and what the
    limiter did (``limiter_max_reduction_db``, ``limiter_limited_percent``: the share of
    samples reduced by more than ``LIMITED_DB``) or ``limited_by_true_peak``. Memory: the mix
    and one float32 value per sample frame (its K-weighted energy).
    """
    energy = _k_energy(mix, sr)                                   # (N,) channel sum
    loudness = _gated_loudness(_subblock_energy(energy[None], sr), mix.shape[1], sr)
    report: dict = {"input_lufs": round(loudness, 2)}
    gain, limited = 1.0, None
    if np.isfinite(loudness) and limiter:
        gain_db, limited, out_lufs = _limit_to_target(mix, energy, sr, loudness,
                                                      target_lufs=target_lufs,
                                                      ceiling_dbtp=ceiling_dbtp)
        gain = float(db_to_gain(gain_db))
        report["output_lufs"] = round(out_lufs, 2)
        g = limited[1] if limited else np.ones(1, np.float32)
        report["limiter_max_reduction_db"] = round(max(0.0, float(-20 * np.log10(g.min()))), 2)
        report["limiter_limited_percent"] = round(
            100 * float(np.count_nonzero(g < db_to_gain(-LIMITED_DB))) / mix.shape[1], 2)
    elif np.isfinite(loudness):
        gain = float(db_to_gain(target_lufs - loudness))
        ceiling = float(db_to_gain(ceiling_dbtp))
        tp_ = true_peak(mix, above=ceiling / gain) * gain
        if tp_ > ceiling:
            gain *= ceiling / tp_
            report["limited_by_true_peak"] = True
        report["output_lufs"] = round(loudness + float(20 * np.log10(gain)), 2)
    report["gain_db"] = round(float(20 * np.log10(gain)), 2)
    return GainPlan(gain, limited), report
