"""Feature sources beside the learned features: the beat grid and the stems.

Both give a :class:`~deepaudio.mapping.encode.FeatureTimeline` at the visualization's frame
rate, every column in [0, 1], so any visual parameter can take any of them.

The beat grid (:func:`deepaudio.analysis.beats.analyse_beats` on the whole song):

==================  ========================================================================
``tempo``           the song's tempo, 60 bpm -> 0 ... 180 bpm -> 1 (constant; ``meta.bpm``)
``beat_phase``      0 on each beat, rising linearly to 1 at the next
``beat_pulse``      1 on each beat, decaying with a 0.1 s time constant
``bar_phase``       0 on each downbeat, rising to 1 at the next (bars of 2, 3 or 4 beats)
``downbeat_pulse``  1 on each downbeat, decaying with a 0.25 s time constant
==================  ========================================================================

The grid is extended before the first and after the last beat at the tempo, so the phases
keep running through an intro or a fade; a song without a steady beat gives zeros and the
reason in ``meta.reason``.

The stems (whatever a separation returned; a missing stem's columns are absent):

======================  ====================================================================
``drums_onset``         the drum stem's spectral-flux onset strength (over its 99th
                        percentile)
``bass_energy``         the bass stem's RMS (over its 99th percentile)
``vocals_energy``       the vocal stem's RMS (over its 99th percentile)
``vocals_pitch``        the sung pitch (YIN, 65-1050 Hz), MIDI 36 -> 0 ... 84 -> 1; 0 where the
                        vocal is silent or unvoiced
``other_brightness``    the "other" stem's spectral centroid, log-scaled 200 Hz -> 0 ...
                        8 kHz -> 1; 0 where it is silent
======================  ====================================================================

Levels are relative to the stem's own loud level (the 99th percentile), so a quiet mix and a
loud one move the visuals alike.

The DSP baseline (:func:`dsp_timeline`): MilkDrop's bass / mid / treble relative loudness and
their attack-smoothed versions (:func:`deepaudio.mapping.timeline.dsp_band_timeline`, values
around 1), halved and clipped to [0, 1].
"""

from __future__ import annotations

import typing as tp

import numpy as np

from deepaudio.analysis.beats import analyse_beats
from deepaudio.core.audio import resample
from deepaudio.core.errors import ToolkitError
from deepaudio.mapping.encode import FeatureTimeline
from deepaudio.mapping.timeline import dsp_band_timeline

BEAT_NAMES = ("tempo", "beat_phase", "beat_pulse", "bar_phase", "downbeat_pulse")
BEAT_DECAY_S = 0.1
DOWNBEAT_DECAY_S = 0.25
TEMPO_RANGE = (60.0, 180.0)
STEM_SR = 22050
HOP = 256                     # analysis hop at STEM_SR (11.6 ms)
SILENT = 0.05                 # a stem under 5 % of its loud level is silent
PITCH_RANGE = (36.0, 84.0)    # MIDI notes mapped onto [0, 1]
BRIGHT_RANGE = (200.0, 8000.0)


def _frame_times(duration: float, fps: float) -> np.ndarray:
    if not 0 < fps <= 240:
        raise ToolkitError(f"fps must be in (0, 240], got {fps}")
    return np.arange(int(np.floor(duration * fps + 1e-9)) + 1) / fps


def _extend(times: np.ndarray, period: float, lo: float, hi: float) -> np.ndarray:
    """Beat times continued at ``period`` before the first and after the last, to cover
    [lo, hi]."""
    before = times[0] - period * np.arange(np.ceil((times[0] - lo) / period) + 1, 0, -1)
    after = times[-1] + period * np.arange(1, np.ceil((hi - times[-1]) / period) + 2)
    return np.concatenate([before, times, after])


def _phase_and_age(t: np.ndarray, marks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each time: the fraction of the way from the last mark to the next, and the seconds
    since the last mark (``marks`` sorted and covering every ``t``)."""
    i = np.clip(np.searchsorted(marks, t, side="right") - 1, 0, len(marks) - 2)
    span = marks[i + 1] - marks[i]
    age = t - marks[i]
    return np.clip(age / span, 0.0, 1.0), np.maximum(age, 0.0)


def beat_timeline(y: np.ndarray, sr: int, *, fps: float = 30.0) -> FeatureTimeline:
    """The beat-grid source of a song ``y`` ((C, N) or (N,)) at ``fps``."""
    y = np.atleast_2d(np.asarray(y, np.float32))
    duration = y.shape[1] / sr
    t = _frame_times(duration, fps)
    frames = np.zeros((len(t), len(BEAT_NAMES)), np.float32)
    try:
        grid = analyse_beats(y, sr)
    except ToolkitError as e:
        return FeatureTimeline(fps=fps, names=list(BEAT_NAMES), frames=frames,
                               meta={"source": "beats", "bpm": None, "beats": 0,
                                     "reason": str(e), "duration": duration})
    period = 60.0 / grid.tempo
    beats = _extend(grid.times, period, t[0], t[-1])
    downs = grid.downbeats
    if len(downs) < 2:
        downs = grid.times[::grid.beats_per_bar]
    bars = _extend(downs, grid.beats_per_bar * period, t[0], t[-1])
    beat_phase, beat_age = _phase_and_age(t, beats)
    bar_phase, bar_age = _phase_and_age(t, bars)
    lo, hi = TEMPO_RANGE
    frames[:, 0] = np.clip((grid.tempo - lo) / (hi - lo), 0, 1)
    frames[:, 1] = beat_phase
    frames[:, 2] = np.exp(-beat_age / BEAT_DECAY_S)
    frames[:, 3] = bar_phase
    frames[:, 4] = np.exp(-bar_age / DOWNBEAT_DECAY_S)
    return FeatureTimeline(fps=fps, names=list(BEAT_NAMES), frames=frames,
                           meta={"source": "beats", "bpm": round(grid.tempo, 2),
                                 "beats": int(len(grid.times)),
                                 "beat_times": np.round(grid.times, 4).tolist(),
                                 "downbeat_times": np.round(grid.downbeats, 4).tolist(),
                                 "beats_per_bar": grid.beats_per_bar,
                                 "backend": grid.backend,
                                 "backend_reason": grid.backend_reason,
                                 "reason": None, "duration": duration})


def _mono(x: np.ndarray, sr: int) -> np.ndarray:
    x = np.atleast_2d(np.asarray(x, np.float32))
    return resample(x.mean(axis=0, keepdims=True), sr, STEM_SR)[0]


def _rms(y: np.ndarray) -> np.ndarray:
    import librosa
    return librosa.feature.rms(y=y, frame_length=4 * HOP, hop_length=HOP)[0]


def _relative(x: np.ndarray) -> np.ndarray:
    ref = float(np.percentile(x, 99)) if len(x) else 0.0
    return np.clip(x / ref, 0, 1) if ref > 0 else np.zeros_like(x)


def _on_frames(values: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Analysis frames (hop ``HOP`` at ``STEM_SR``) sampled at the times ``t``."""
    at = np.arange(len(values)) * HOP / STEM_SR
    return np.interp(t, at, values).astype(np.float32) if len(values) else np.zeros(len(t))


def stem_timeline(stems: tp.Mapping[str, np.ndarray], sr: int, *,
                  fps: float = 30.0) -> FeatureTimeline:
    """The stem source of a song's ``stems`` ({name: (C, N) or (N,)}, at ``sr``) at ``fps``."""
    import librosa

    if not stems:
        raise ToolkitError("no stems to take features from")
    duration = max(np.atleast_2d(x).shape[-1] for x in stems.values()) / sr
    t = _frame_times(duration, fps)
    cols: dict[str, np.ndarray] = {}
    mono = {k: _mono(v, sr) for k, v in stems.items()}
    if "drums" in mono:
        onset = librosa.onset.onset_strength(y=mono["drums"], sr=STEM_SR, hop_length=HOP)
        cols["drums_onset"] = _on_frames(_relative(onset), t)
    if "bass" in mono:
        cols["bass_energy"] = _on_frames(_relative(_rms(mono["bass"])), t)
    if "vocals" in mono:
        level = _relative(_rms(mono["vocals"]))
        cols["vocals_energy"] = _on_frames(level, t)
        f0 = librosa.yin(mono["vocals"], fmin=65.0, fmax=1050.0, sr=STEM_SR,
                         frame_length=4 * HOP, hop_length=HOP)
        n = min(len(f0), len(level))
        midi = librosa.hz_to_midi(f0[:n])
        lo, hi = PITCH_RANGE
        pitch = np.where(level[:n] > SILENT, np.clip((midi - lo) / (hi - lo), 0, 1), 0.0)
        cols["vocals_pitch"] = _on_frames(pitch, t)
    if "other" in mono:
        centroid = librosa.feature.spectral_centroid(y=mono["other"], sr=STEM_SR,
                                                     n_fft=4 * HOP, hop_length=HOP)[0]
        level = _relative(_rms(mono["other"]))
        n = min(len(centroid), len(level))
        lo, hi = np.log(BRIGHT_RANGE[0]), np.log(BRIGHT_RANGE[1])
        bright = np.clip((np.log(np.maximum(centroid[:n], 1.0)) - lo) / (hi - lo), 0, 1)
        cols["other_brightness"] = _on_frames(np.where(level[:n] > SILENT, bright, 0.0), t)
    if not cols:
        raise ToolkitError(f"none of the stems {', '.join(stems)} gives a feature (drums, "
                           "bass, vocals, other)")
    return FeatureTimeline(fps=fps, names=list(cols), frames=np.stack(list(cols.values()),
                                                                      axis=1).astype(np.float32),
                           meta={"source": "stems", "stems": list(stems),
                                 "duration": duration})


def dsp_timeline(y: np.ndarray, sr: int, *, fps: float = 30.0) -> FeatureTimeline:
    """The DSP baseline of a song ``y`` ((C, N) or (N,)) as a source: MilkDrop's band levels
    (around 1.0) halved and clipped to [0, 1], on the same frames as the other sources."""
    y = np.atleast_2d(np.asarray(y, np.float32))
    duration = y.shape[1] / sr
    t = _frame_times(duration, fps)
    bands = dsp_band_timeline(y.mean(axis=0), sr, fps=fps)
    frames = np.zeros((len(t), len(bands.names)), np.float32)
    n = min(len(t), len(bands.frames))
    frames[:n] = np.clip(bands.frames[:n] / 2.0, 0.0, 1.0)
    if n < len(t):
        frames[n:] = frames[n - 1]
    return FeatureTimeline(fps=fps, names=list(bands.names), frames=frames,
                           meta={"source": "dsp", "duration": duration})
