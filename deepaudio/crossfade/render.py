"""Crossfade DSP: gain ramps, silence trimming, loudness matching and transition rendering.

Every ramp is a function ``n -> (g_out, g_in)`` of float64 gain curves over the overlap, with
x = k / (n - 1) the position in it (so both ends are reached exactly):

==============  =====================================  =========================================
style           g_in(x)                                 property
==============  =====================================  =========================================
linear          x                                       g_in + g_out = 1 (equal gain: -3 dB
                                                        power dip at x = 1/2 for uncorrelated
                                                        songs)
sigmoid         1 / (1 + e^-t), t = linspace(-6, 6, n)  g_in + g_out = 1; ends .00247 / .99753
                                                        (DeepBass)
random_linear   (1 - s) x, s = [U > x], U ~ U(0, 1)     per-sample switch; E[g_in] = x^2,
                                                        E[g_out] = (1 - x)^2 (DeepBass), seeded
equal_power     sin(pi x / 2); g_out = cos(pi x / 2)    g_in^2 + g_out^2 = 1 (uncorrelated songs)
logarithmic     10^(-D (1 - x) / 20), D = 60 dB         linear in dB; snapped to 0 at x = 0
s_curve         (1 - cos(pi x)) / 2                     g_in + g_out = 1; raised cosine, reaches
                                                        exactly 1 (DeepBass' HannFade: .99984)
==============  =====================================  =========================================

and g_out(x) = g_in(1 - x) where the table does not say otherwise.

Silence is found from the song's edges inward: the first and the last 0.25 s window (0.125 s
step) whose RMS reaches the threshold bound the music, so a quiet passage inside an outro is
kept. DeepBass instead cut the end at the *first* quiet window of the last 30 s, which truncated
up to 30 s of music after a break, hard-coded 16 kHz, and dropped one sample when nothing was
silent. The threshold is relative to the RMS of the audio examined (DeepBass: 15 %) or absolute
in dBFS.

A transition is rendered in context: the end of A, the overlap, the start of B. B is gained to A's
integrated loudness (BS.1770-4, the pyloudnorm filters; the gain is lowered if B's sample peak would
pass -1 dBFS). Beat-synchronous transitions follow :mod:`deepaudio.crossfade.plan`'s plan: B is
time-stretched (phase vocoder) to A's tempo and its downbeat placed on A's downbeat; only the part
of B that is heard is stretched.
"""

from __future__ import annotations

import typing as tp

import numpy as np

from deepaudio.core.audio import to_channels
from deepaudio.core.errors import ToolkitError
from deepaudio.core.gain import db_to_gain
from deepaudio.core.loudness import integrated_loudness

WINDOW_SECONDS = 0.25
STEP_SECONDS = 0.125
PEAK_CEILING_DB = -1.0
# Phase-vocoder frames of ~12 ms (512 samples at 44.1 kHz, hop 1/4): measured on click
# tracks stretched by 3-6 %, beats move by at most ~4 ms; 23 ms frames move them by up to
# 10 ms and librosa's default 46 ms by up to 13 ms. The price is more phasiness in the bass,
# small at the <= 8 % rates the plan allows.
STRETCH_FRAME_SECONDS = 0.0116
STRETCH_MARGIN_S = 0.5        # extra audio on both sides of the stretched part (no edge effects)


# --------------------------------------------------------------------------------------------
# Ramps

def _position(n: int) -> np.ndarray:
    if n < 1:
        raise ToolkitError(f"a crossfade needs at least one sample, got {n}")
    return np.linspace(0.0, 1.0, n)


def linear_ramp(n: int) -> tuple[np.ndarray, np.ndarray]:
    x = _position(n)
    return 1.0 - x, x


def sigmoid_ramp(n: int) -> tuple[np.ndarray, np.ndarray]:
    t = np.linspace(-6.0, 6.0, n)
    return 1.0 / (1.0 + np.exp(t)), 1.0 / (1.0 + np.exp(-t))


def random_linear_ramp(n: int, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    x = _position(n)
    s = np.random.default_rng(seed).uniform(size=n) > x
    return s * (1.0 - x), ~s * x


def equal_power_ramp(n: int) -> tuple[np.ndarray, np.ndarray]:
    x = _position(n)
    return np.cos(np.pi / 2 * x), np.sin(np.pi / 2 * x)


def logarithmic_ramp(n: int, *, range_db: float = 60.0) -> tuple[np.ndarray, np.ndarray]:
    x = _position(n)
    g_in = np.asarray(db_to_gain(-range_db * (1.0 - x)))
    g_in[0] = 0.0                       # -range_db would leave the song audible at the edge
    return g_in[::-1].copy(), g_in


def s_curve_ramp(n: int) -> tuple[np.ndarray, np.ndarray]:
    g_in = (1.0 - np.cos(np.pi * _position(n))) / 2
    return 1.0 - g_in, g_in


RAMPS: dict[str, tp.Callable[..., tuple[np.ndarray, np.ndarray]]] = {
    "linear": linear_ramp, "sigmoid": sigmoid_ramp, "random_linear": random_linear_ramp,
    "equal_power": equal_power_ramp, "logarithmic": logarithmic_ramp, "s_curve": s_curve_ramp,
}
# the embedding fades of the neural path; "hann" is the raised cosine
NEURAL_RAMPS = {"linear": linear_ramp, "hann": s_curve_ramp, "equal_power": equal_power_ramp}


def ramp(style: str, n: int, *, seed: int = 0, range_db: float = 60.0):
    """``(g_out, g_in)`` of a named style; ``seed`` and ``range_db`` go where they apply."""
    if style not in RAMPS:
        raise ToolkitError(f"unknown crossfade style {style!r} (styles: {', '.join(RAMPS)})")
    if style == "random_linear":
        return random_linear_ramp(n, seed=seed)
    if style == "logarithmic":
        return logarithmic_ramp(n, range_db=range_db)
    return RAMPS[style](n)


# --------------------------------------------------------------------------------------------
# Silence

def window_rms(audio: np.ndarray, sr: int, *, window: float = WINDOW_SECONDS,
               step: float = STEP_SECONDS) -> tuple[np.ndarray, int, int]:
    """RMS (over channels) of each window; returns (rms, window, step) in samples."""
    win, hop = max(1, int(round(window * sr))), max(1, int(round(step * sr)))
    power = np.square(np.atleast_2d(audio), dtype=np.float64).mean(axis=0)
    n = power.shape[0]
    if n < win:
        return np.sqrt(np.array([power.mean()])) if n else np.zeros(0), n, hop
    csum = np.r_[0.0, np.cumsum(power)]
    starts = np.arange(0, n - win + 1, hop)
    return np.sqrt(np.maximum(csum[starts + win] - csum[starts], 0) / win), win, hop


def find_sound(audio: np.ndarray, sr: int, *, threshold: float = 0.15,
               threshold_db: float | None = None, max_seconds: float | None = None,
               window: float = WINDOW_SECONDS, step: float = STEP_SECONDS,
               what: str = "audio") -> tuple[int, int]:
    """``(start, end)`` samples of the music in ``audio`` (C, N): leading and trailing silence
    searched from the edges inward, to within one window.

    ``threshold`` is relative to the RMS of the whole ``audio``; ``threshold_db`` (dBFS),
    when given, replaces it. ``max_seconds`` limits the search at each edge (DeepBass' "SR
    window duration"): no sound within it cuts all of it.
    """
    audio = np.atleast_2d(audio)
    n = audio.shape[1]
    rms, win, hop = window_rms(audio, sr, window=window, step=step)
    total = float(np.sqrt(np.square(audio, dtype=np.float64).mean())) if n else 0.0
    level = float(db_to_gain(threshold_db)) if threshold_db is not None else threshold * total
    loud = np.flatnonzero(rms >= level) if total > 0 else np.zeros(0, int)
    if len(loud) == 0:
        raise ToolkitError(f"{what} is silent (no {window:g} s window reaches the silence "
                           f"threshold)")
    start, end = int(loud[0] * hop), min(n, int(loud[-1] * hop + win))
    if max_seconds is not None:
        limit = int(round(max_seconds * sr))
        start, end = min(start, limit), max(end, n - limit)
    return start, end


def trim_silence(audio: np.ndarray, sr: int, *, leading: bool = True, trailing: bool = True,
                 **kwargs) -> tuple[np.ndarray, dict]:
    """``audio`` without its leading and/or trailing silence, and the samples cut at each end."""
    start, end = find_sound(audio, sr, **kwargs)
    start, end = (start if leading else 0), (end if trailing else audio.shape[1])
    return audio[:, start:end], {"start_cut_s": start / sr,
                                 "end_cut_s": (audio.shape[1] - end) / sr}


# --------------------------------------------------------------------------------------------
# Loudness

def loudness_match_gain_db(a: np.ndarray, b: np.ndarray, sr: int, *,
                           ceiling_db: float = PEAK_CEILING_DB) -> dict:
    """The gain (dB) that brings B to A's integrated loudness, lowered so B's sample peak stays
    under ``ceiling_db``. Songs too short to measure keep 0 dB."""
    try:
        la, lb = integrated_loudness(a, sr), integrated_loudness(b, sr)
    except ToolkitError:
        return {"gain_db": 0.0, "lufs_a": None, "lufs_b": None, "peak_limited": False}
    gain = la - lb if np.isfinite(la) and np.isfinite(lb) else 0.0
    peak = float(np.abs(b).max()) if b.size else 0.0
    limited = False
    if peak > 0 and 20 * np.log10(peak) + gain > ceiling_db:
        gain, limited = ceiling_db - 20 * np.log10(peak), True
    return {"gain_db": round(float(gain), 3), "lufs_a": round(la, 2), "lufs_b": round(lb, 2),
            "peak_limited": limited}


def match_channels(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    c = max(a.shape[0], b.shape[0])
    return to_channels(a, c), to_channels(b, c)


# --------------------------------------------------------------------------------------------
# Rendering

def _take(x: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """x[:, lo:hi] with zeros where the range leaves the array."""
    out = np.zeros((x.shape[0], hi - lo), np.float32)
    a, b = max(lo, 0), min(hi, x.shape[1])
    if b > a:
        out[:, a - lo:b - lo] = x[:, a:b]
    return out


def place(a: np.ndarray, b: np.ndarray, *, overlap_start: int, overlap: int, b_offset: int,
          g_out: np.ndarray, g_in: np.ndarray, context: int | None) -> dict:
    """Mix A and B on A's timeline: B's sample j sounds at A's sample ``j + b_offset``; the
    overlap is A's samples [overlap_start, overlap_start + overlap).

    Returns the mix and, on the same timeline, the unfaded parts and the gains (for
    measures and plots). The renderers add ``b_map`` (``offset``, ``seg0``, ``rate``): the
    timeline's sample ``t`` plays B's sample ``seg0 + (t - offset) * rate`` (B stretched by
    ``rate`` from its sample ``seg0``), so a player can go on with B where the output ends.
    ``context`` samples of A before and of B after the overlap are kept
    (None: all of both).
    """
    lo = 0 if context is None else max(0, overlap_start - context)
    ov_end = overlap_start + overlap
    hi = (b.shape[1] + b_offset) if context is None else ov_end + context
    hi = max(hi, ov_end)
    part_a, part_b = _take(a, lo, hi), _take(b, lo - b_offset, hi - b_offset)
    ga, gb = np.zeros(hi - lo), np.zeros(hi - lo)
    i0 = overlap_start - lo
    ga[:i0], gb[i0 + overlap:] = 1.0, 1.0
    ga[i0:i0 + overlap], gb[i0:i0 + overlap] = g_out, g_in
    mix = (part_a * ga.astype(np.float32) + part_b * gb.astype(np.float32)).astype(np.float32)
    return {"audio": mix, "part_a": part_a, "part_b": part_b, "g_out": ga, "g_in": gb,
            "overlap_start": i0, "overlap": overlap, "timeline_start": lo}


def render_simple(a: np.ndarray, b: np.ndarray, sr: int, *, style: str = "equal_power",
                  seconds: float = 4.0, context: float | None = 5.0, seed: int = 0,
                  range_db: float = 60.0) -> dict:
    """Overlap the last ``seconds`` of A with the first of B (both already trimmed and
    loudness-matched) and return :func:`place`'s dict plus ``report``."""
    n = int(round(seconds * sr))
    if n < 1:
        raise ToolkitError(f"crossfade time must be positive, got {seconds} s")
    if n > min(a.shape[1], b.shape[1]):
        raise ToolkitError(f"a {seconds:g} s crossfade is longer than a song "
                           f"({a.shape[1] / sr:.2f} s and {b.shape[1] / sr:.2f} s)")
    g_out, g_in = ramp(style, n, seed=seed, range_db=range_db)
    start = a.shape[1] - n
    ctx = None if context is None else int(round(context * sr))
    out = place(a, b, overlap_start=start, overlap=n, b_offset=start, g_out=g_out, g_in=g_in,
                context=ctx)
    out["b_map"] = {"offset": start, "seg0": 0, "rate": 1.0}
    out["report"] = {"mode": "simple", "style": style, "seconds": n / sr, "seed": seed,
                     "overlap_start_in_output_s": out["overlap_start"] / sr}
    return out


def time_stretch(audio: np.ndarray, sr: int, rate: float) -> np.ndarray:
    """Play ``audio`` (C, N) ``rate`` times faster at the same pitch: a phase vocoder.

    The same algorithm and time mapping as ``librosa.effects.time_stretch`` (output frame t
    reads input frame t * rate, magnitudes interpolated, phases advanced by the measured
    per-bin frequency), vectorised: the phases are one float64 cumulative sum over frames
    (librosa adds them up frame by frame in float32, which drifts over the thousands of
    ~12 ms frames used here). Same speed as librosa's; frames of ``STRETCH_FRAME_SECONDS``.
    """
    import librosa
    if abs(rate - 1.0) < 1e-9:
        return audio
    n_fft = 1 << int(round(np.log2(STRETCH_FRAME_SECONDS * sr)))
    hop = n_fft // 4
    spec = librosa.stft(np.ascontiguousarray(audio), n_fft=n_fft, hop_length=hop)  # (C, K, T)
    steps = np.arange(0, spec.shape[-1], rate)
    spec = np.pad(spec, [(0, 0), (0, 0), (0, 2)])
    angle, mags = np.angle(spec), np.abs(spec)                 # float32, once per frame
    i = steps.astype(int)
    frac = (steps - i).astype(np.float32)
    mag = (1 - frac) * mags[..., i] + frac * mags[..., i + 1]
    advance = np.linspace(0, np.pi * hop, spec.shape[1], dtype=np.float32)[:, None]  # (K, 1)
    dphase = angle[..., i + 1] - angle[..., i] - advance
    dphase -= np.float32(2 * np.pi) * np.round(dphase / np.float32(2 * np.pi))
    # accumulate in float64 (thousands of frames), then wrap back to float32
    phase = np.cumsum(dphase + advance, axis=-1, dtype=np.float64)
    phase = np.concatenate([np.zeros_like(phase[..., :1]), phase[..., :-1]], axis=-1)
    phase = np.mod(phase + angle[..., :1], 2 * np.pi).astype(np.float32)
    stretched = np.empty(mag.shape, np.complex64)
    stretched.real, stretched.imag = mag * np.cos(phase), mag * np.sin(phase)
    y = librosa.istft(stretched, hop_length=hop, n_fft=n_fft,
                      length=int(round(audio.shape[-1] / rate)))
    return np.asarray(y, dtype=np.float32)


def render_beat_sync(a: np.ndarray, b: np.ndarray, sr: int, plan: dict, *,
                     style: str = "equal_power", context: float | None = 5.0, seed: int = 0,
                     a_offset: float = 0.0, parts_a: dict[str, np.ndarray] | None = None,
                     parts_b: dict[str, np.ndarray] | None = None) -> dict:
    """Render :func:`deepaudio.crossfade.plan.plan_beat_sync`'s plan. ``a`` is (the end of) A with
    ``a_offset`` seconds of A before it, in the coordinates the plan uses; ``b`` starts where
    the plan's B starts. Returns :func:`place`'s dict plus ``report``.

    ``parts_a`` / ``parts_b`` (e.g. stems, each shaped like its song; B's must add up to B)
    are placed on the same timeline, B's stretched as B is (B is then the sum of its stretched
    parts), and returned unfaded as ``parts_a`` / ``parts_b``."""
    rate = float(plan["stretch_rate"]) if plan["mode"] == "beat_sync" else 1.0
    ov_start = int(round((plan["overlap_start_s"] - a_offset) * sr))
    overlap = max(1, int(round(plan["overlap_s"] * sr)))
    anchor_a = int(round((plan["a_downbeat_s"] - a_offset) * sr))
    b_down = float(plan["b_downbeat_s"])
    ctx = None if context is None else int(round(context * sr))
    # B audible from overlap start to the end of the output, in A's (= stretched B's) seconds
    pre = (anchor_a - ov_start) / sr + STRETCH_MARGIN_S
    post = ((b.shape[1] / sr - b_down) / rate if ctx is None
            else (ov_start + overlap + ctx - anchor_a) / sr + STRETCH_MARGIN_S)
    seg0 = max(0, int(round((b_down - pre * rate) * sr)))
    seg1 = min(b.shape[1], int(np.ceil((b_down + post * rate) * sr)))
    if parts_b:         # B is the sum of its parts: stretch those alone
        stretched_parts = {k: time_stretch(v[:, seg0:seg1], sr, rate)
                           for k, v in parts_b.items()}
        stretched = np.sum(list(stretched_parts.values()), axis=0)
    else:
        stretched_parts, stretched = {}, time_stretch(b[:, seg0:seg1], sr, rate)
    anchor_b = int(round((b_down * sr - seg0) / rate))     # B's downbeat in the stretched part
    if plan["mode"] != "beat_sync":
        style = "equal_power"           # tempi too far apart: a short equal-power cut
    g_out, g_in = ramp(style, overlap, seed=seed)
    out = place(a, stretched, overlap_start=ov_start, overlap=overlap,
                b_offset=anchor_a - anchor_b, g_out=g_out, g_in=g_in, context=ctx)
    lo, hi = out["timeline_start"], out["timeline_start"] + out["audio"].shape[1]
    b_offset = anchor_a - anchor_b
    out["parts_a"] = {k: _take(v, lo, hi) for k, v in (parts_a or {}).items()}
    out["parts_b"] = {k: _take(v, lo - b_offset, hi - b_offset)
                      for k, v in stretched_parts.items()}
    out["b_map"] = {"offset": b_offset, "seg0": seg0, "rate": rate}
    out["report"] = {
        "mode": plan["mode"], "style": style, "seed": seed, "stretch_rate": rate,
        "seconds": overlap / sr, "overlap_start_in_output_s": out["overlap_start"] / sr,
        "b_downbeat_in_output_s": (anchor_a - lo) / sr,
        "a_downbeat_in_output_s": (anchor_a - lo) / sr,
        "beat_period_s": 60.0 / float(plan["tempo_a"]),
    }
    return out
