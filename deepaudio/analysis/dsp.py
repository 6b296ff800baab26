"""The DSP beat tracker: the fallback of :func:`deepaudio.analysis.beats.analyse_beats` where
the learned tracker cannot run (no weights), and the global tempo estimate.

Beats come from Ellis' (2007) dynamic-programming tracker (librosa's, redone in NumPy) run on
our own log-mel spectral-flux envelope (22.05 kHz, 1024-point frames, hop 256 = 11.6 ms), and
each beat is then moved to the envelope peak within two frames, with parabolic interpolation,
so beat times are not quantised to the hop. librosa has no downbeat tracker. Each beat gets an
accent, the evidence of a bar start: a strong onset, a strong low-frequency onset (kick
drums) and a harmonic change (beat-synchronous chroma novelty). The metre is the bar length,
3 or 4 beats, by which the accents group best (the share of their variance the bar position
explains, less what chance gives); the downbeats are the bar position with the most accent.
Bars of two (6/8 counted in dotted quarters) are not told apart from bars of four.

It was tuned on the project's own renders; on music it never saw it is no better than librosa
(docs/benchmarks.md), which is why it is the fallback and not the default.
"""

from __future__ import annotations

import numpy as np

from deepaudio.analysis.grid import BEATS_PER_BAR, BeatGrid, OnsetFeatures, tempo_of
from deepaudio.core.audio import resample
from deepaudio.core.errors import ToolkitError

ANALYSIS_SR = 22050
N_FFT = 1024
HOP = 256
TRIPLE_MIN = 0.15         # bars of 3 need their grouping to explain this much more of the
                          # accents' variance than chance, and 0.1 more than bars of 4 do:
                          # 0.28-0.54 on 3/4 pieces, <= 0.09 on every 4/4 piece and sample song
LOW_HZ = 200.0            # bands below this carry the kick drum
TRIM = 0.25               # beats before the first / after the last frame this strong (x the
                          # RMS of the beats' smoothed score) are dropped; librosa's 0.5 cut
                          # real final beats of FluidSynth-rendered pieces (bench/beats.py)
MIN_CLARITY = 0.2         # a steady beat: the onset envelope's autocorrelation at one or two
                          # beat periods; 0.35-0.78 on the sample songs and the MIDI beat set,
                          # under 0.12 on drones, pads, noise and speech-like bursts


def _flux(s_db: np.ndarray) -> np.ndarray:
    """Half-wave rectified log-spectral flux averaged over bands; frame t compares t-1 to t."""
    return np.r_[0.0, np.maximum(np.diff(s_db, axis=1), 0).mean(axis=0)]


def _zscore(x: np.ndarray) -> np.ndarray:
    sd = x.std()
    return (x - x.mean()) / sd if sd > 0 else np.zeros_like(x)


def _cues(grid: BeatGrid) -> np.ndarray:
    """Each beat's evidence of a bar start, (3, beats): onset, low onset and chroma novelty,
    each z-scored."""
    feats = grid.features
    f = feats.frames(grid.times)
    # chroma of each inter-beat segment; novelty = 1 - cosine similarity to the previous one
    segs = np.stack([feats.chroma[:, a:max(b, a + 1)].mean(axis=1)
                     for a, b in zip(f, np.r_[f[1:], len(feats.env)])])
    segs /= np.linalg.norm(segs, axis=1, keepdims=True) + 1e-9
    novelty = np.r_[0.0, 1 - (segs[1:] * segs[:-1]).sum(axis=1)]
    return np.stack([_zscore(feats.env[f]), _zscore(feats.low_env[f]), _zscore(novelty)])


def _accents(grid: BeatGrid) -> np.ndarray:
    """Each beat's accent: the sum of its cues."""
    return _cues(grid).sum(axis=0)


def bar_grouping(accents: np.ndarray, m: int) -> float:
    """How well bars of ``m`` beats explain the accents: the share of their variance between
    the ``m`` bar positions (whole bars only), less the share chance gives ((m-1)/(n-1))."""
    n = (len(accents) // m) * m
    if n < 3 * m:
        return 0.0
    a = accents[:n]
    total = a.var()
    if total <= 0:
        return 0.0
    return float(a.reshape(-1, m).mean(axis=0).var() / total - (m - 1) / (n - 1))


def _beats_per_bar(grid: BeatGrid) -> int:
    """3 when the accents group into bars of three clearly better than into bars of four."""
    if len(grid.times) < 4 * BEATS_PER_BAR:
        return BEATS_PER_BAR
    acc = _accents(grid)
    three, four = bar_grouping(acc, 3), bar_grouping(acc, 4)
    return 3 if three >= TRIPLE_MIN and three > four + 0.1 else BEATS_PER_BAR


def _downbeat_phase(grid: BeatGrid) -> int:
    """The bar position (mod the grid's bar length) with the most bar-start evidence. Each cue
    counts by how much it varies with the bar position (the variance of its means per
    position): a cue that follows the bar outweighs one that barely does (a snare on the
    third beat of a 3/4 bar lifts the low onsets there, but the onsets follow the bar more)."""
    m = grid.beats_per_bar
    n = (len(grid.times) // m) * m
    if n < m:
        return 0
    means = _cues(grid)[:, :n].reshape(3, -1, m).mean(axis=1)        # (cue, position)
    weights = means.var(axis=1)
    return int(np.argmax(weights @ means))


def _global_tempo(env: np.ndarray, *, start_bpm: float = 120.0, std_octaves: float = 1.0,
                  max_bpm: float = 320.0) -> float:
    """librosa's tempo estimate, computed once for the whole envelope: its 8 s autocorrelation,
    scored as ``log1p(1e6 ac) + log-normal prior`` (mean 120 bpm, one octave deviation), not
    the mean of a per-frame tempogram (that was most of ``beat_track``'s time on 60 s)."""
    win = min(len(env), int(round(8.0 * ANALYSIS_SR / HOP)))
    n_fft = 1 << int(np.ceil(np.log2(2 * len(env) - 1)))
    spec = np.fft.rfft(env, n_fft)
    ac = np.fft.irfft(spec.real ** 2 + spec.imag ** 2, n_fft)[:win]
    ac = ac / ac[0] if ac[0] > 0 else ac
    lags = np.arange(1, win)
    bpm = 60.0 * ANALYSIS_SR / (HOP * lags)
    score = np.log1p(1e6 * np.maximum(ac[1:], 0))
    score = score - 0.5 * ((np.log2(bpm) - np.log2(start_bpm)) / std_octaves) ** 2
    score[bpm > max_bpm] = -np.inf
    return float(bpm[int(np.argmax(score))])


def dp_beats(env: np.ndarray, bpm: float, *, tightness: float = 100.0) -> np.ndarray:
    """Beat frames by Ellis' (2007) dynamic programming, as librosa's ``beat_track`` does it,
    in NumPy: librosa's version is a numba gufunc whose compilation cost ~5 s on every cold
    start of the command line, four times the whole warm crossfade.

    The local score is the onset envelope smoothed by a Gaussian of width period/32; each
    frame's best predecessor lies 0.5-2 periods back, with a transition cost
    ``tightness * log(lag / period)^2``; the last beat is the last local maximum of the
    cumulative score above half their median; beats in the weak frames before the music and
    after it are dropped.
    """
    n = len(env)
    period = max(1, int(round(60.0 * ANALYSIS_SR / (HOP * bpm))))
    sd = env.std(ddof=1) if n > 1 else 0.0
    if sd <= 0:
        return np.zeros(0, dtype=int)
    g = np.exp(-0.5 * (np.arange(-period, period + 1) * 32.0 / period) ** 2)
    local = np.convolve(env / sd, g, mode="same")
    lags = np.arange(-2 * period, -int(np.round(period / 2)) + 1)     # predecessor offsets
    txcost = -tightness * np.log(-lags / period) ** 2
    cum = np.zeros(n)
    back = np.full(n, -1, dtype=int)
    small = 0.01 * local.max()
    first = True
    for i in range(n):
        cand = i + lags
        ok = cand >= 0
        best = -1
        if ok.any():
            scores = cum[cand[ok]] + txcost[ok]
            k = int(np.argmax(scores))
            best = int(cand[ok][k])
            cum[i] = local[i] + scores[k]
        else:
            cum[i] = local[i]
        if first and local[i] < small:
            back[i] = -1
        else:
            back[i] = best
            first = False
    # the last beat: the last local maximum of the cumulative score above half their median
    peaks = np.flatnonzero((cum[1:-1] > cum[:-2]) & (cum[1:-1] >= cum[2:])) + 1
    if len(peaks) == 0:
        return np.zeros(0, dtype=int)
    strong = peaks[cum[peaks] > 0.5 * np.median(cum[peaks])]
    chain = [int(strong[-1])]
    while back[chain[-1]] >= 0:
        chain.append(int(back[chain[-1]]))
    beats = np.array(chain[::-1])
    # drop beats in the weak frames before the music starts and after it ends (a beat
    # extrapolated into a reverb tail or a fade-out): frames whose local score is under TRIM
    # times the RMS of the beats' smoothed score (librosa's rule, with a lower cut)
    smooth = np.convolve(local[beats], np.hanning(5), mode="same")   # [0, .5, 1, .5, 0]
    strong_frames = np.flatnonzero(local > TRIM * np.sqrt(np.mean(smooth ** 2)))
    if not len(strong_frames):
        return np.zeros(0, dtype=int)
    return beats[(beats >= strong_frames[0]) & (beats <= strong_frames[-1])]


def _spectrograms(audio: np.ndarray, sr: int) -> tuple[np.ndarray, np.ndarray]:
    """Power spectrogram (F, T) and 64-band log-mel spectrogram in dB (64, T) of the mono mix
    of ``audio`` (C, N), at ``ANALYSIS_SR`` with hop ``HOP``."""
    import librosa

    y = resample(np.asarray(audio, dtype=np.float32).reshape(-1, np.shape(audio)[-1])
                 .mean(axis=0, keepdims=True), sr, ANALYSIS_SR)[0]
    spec = np.abs(librosa.stft(y, n_fft=N_FFT, hop_length=HOP, center=True)) ** 2
    mel_fb = librosa.filters.mel(sr=ANALYSIS_SR, n_fft=N_FFT, n_mels=64, fmax=8000)
    return spec, librosa.power_to_db(mel_fb @ spec, ref=1.0, top_db=80.0)


def estimate_tempo(audio: np.ndarray, sr: int) -> float:
    """The global tempo in bpm of ``audio`` (C, N) or (N,): the beat tracker's estimate (one
    autocorrelation of the spectral-flux envelope with a log-normal prior around 120 bpm),
    without tracking the beats. NumPy only (librosa's ``beat_track`` compiles numba code)."""
    return _global_tempo(_flux(_spectrograms(audio, sr)[1]))


def pulse_clarity(env: np.ndarray, bpm: float) -> float:
    """How periodic the onset envelope ``env`` is at ``bpm``: the larger of its normalised
    autocorrelation (mean removed) at one and at two beat periods, in [-1, 1]. The beat tracker
    finds a "beat" in anything; a drone, a pad or speech has no pulse to follow."""
    e = np.asarray(env, dtype=np.float64) - np.mean(env)
    energy = float(e @ e)
    if energy <= 0 or bpm <= 0:
        return 0.0
    lag = 60.0 * ANALYSIS_SR / (HOP * bpm)
    vals = [float(e[:-k] @ e[k:]) / energy for k in (int(round(lag)), int(round(2 * lag)))
            if 0 < k < len(e)]
    return max(vals, default=0.0)


def onset_features(audio: np.ndarray, sr: int, *, start: float = 0.0) -> OnsetFeatures:
    """The onset envelopes (all bands, below ``LOW_HZ``) and chroma of ``audio`` (C, N) at
    ``ANALYSIS_SR / HOP`` frames per second."""
    import librosa

    spec, mel_db = _spectrograms(audio, sr)
    low = librosa.mel_frequencies(n_mels=66, fmax=8000)[1:-1] < LOW_HZ
    return OnsetFeatures(fps=ANALYSIS_SR / HOP, env=_flux(mel_db), low_env=_flux(mel_db[low]),
                         chroma=librosa.filters.chroma(sr=ANALYSIS_SR, n_fft=N_FFT) @ spec,
                         start=start)


def track_beats(audio: np.ndarray, sr: int, *, start: float = 0.0) -> BeatGrid:
    """Beat grid of ``audio`` (C, N) by the DSP tracker; ``start`` is its offset in seconds
    within the song."""
    feats = onset_features(audio, sr, start=start)
    env = feats.env
    bpm = _global_tempo(env)
    clarity = pulse_clarity(env, bpm)
    if clarity < MIN_CLARITY:
        raise ToolkitError(f"no steady beat found (pulse clarity {clarity:.2f}, "
                           f"below {MIN_CLARITY})")
    frames = dp_beats(env, bpm)
    if len(frames) < 2 * BEATS_PER_BAR:
        raise ToolkitError("no steady beat found")
    # move each beat to the envelope peak within +-2 frames, then interpolate the peak
    refined = np.empty(len(frames))
    for i, f in enumerate(frames):
        lo, hi = max(1, f - 2), min(len(env) - 1, f + 3)
        m = lo + int(np.argmax(env[lo:hi])) if hi > lo else f
        a, b, c = env[m - 1], env[m], env[min(m + 1, len(env) - 1)]
        den = a - 2 * b + c
        refined[i] = m + (0.5 * (a - c) / den if den < 0 else 0.0)
    times = start + refined * HOP / ANALYSIS_SR
    grid = BeatGrid(times=times, tempo=tempo_of(times), downbeat_phase=0, features=feats)
    grid.beats_per_bar = _beats_per_bar(grid)
    grid.downbeat_phase = _downbeat_phase(grid)
    return grid
