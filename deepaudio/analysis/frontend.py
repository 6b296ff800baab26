"""The learned beat tracker's input: log-magnitude mel spectrogram frames at 50 fps.

22.05 kHz mono, 1024-point Hann frames, hop 441 samples (20 ms, 50 frames per second), 128
mel bands from 30 Hz to 11 kHz, ``log1p(1000 * magnitude)``: the input the recent beat and
downbeat networks use (Beat This!, Foscarin et al. 2024; madmom's trackers read log filterbank
frames at 100 fps). 50 fps keeps the decoder's state space small (:mod:`deepaudio.analysis.dbn`)
while mir_eval's +-70 ms tolerance is 3.5 frames; beat times are refined below the frame.

The same frames feed training (the corpus, :mod:`deepaudio.data.beatcorpus`) and inference,
and the onset features of :class:`~deepaudio.analysis.grid.OnsetFeatures` come from the same
STFT, so a song is transformed once.
"""

from __future__ import annotations

import functools

import numpy as np

from deepaudio.analysis.grid import OnsetFeatures
from deepaudio.core.audio import resample

SR = 22050
N_FFT = 1024
HOP = 441
FPS = SR / HOP                # 50.0
N_MELS = 128
FMIN, FMAX = 30.0, 11000.0
LOW_HZ = 200.0                # bands below this carry the kick drum (OnsetFeatures.low_env)


@functools.cache
def _filters() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    import librosa
    mel = librosa.filters.mel(sr=SR, n_fft=N_FFT, n_mels=N_MELS, fmin=FMIN, fmax=FMAX)
    chroma = librosa.filters.chroma(sr=SR, n_fft=N_FFT)
    low = librosa.mel_frequencies(n_mels=N_MELS + 2, fmin=FMIN, fmax=FMAX)[1:-1] < LOW_HZ
    return mel.astype(np.float32), chroma.astype(np.float32), low


def mono(audio: np.ndarray, sr: int) -> np.ndarray:
    """``audio`` ((C, N) or (N,)) as one channel at ``SR``, float32."""
    y = np.atleast_2d(np.asarray(audio, np.float32))
    return resample(y.mean(axis=0, keepdims=True), sr, SR)[0]


def spectrogram(y: np.ndarray) -> np.ndarray:
    """Magnitude STFT (bins, frames) of mono ``y`` at ``SR``; frame t is centred on
    ``t * HOP`` samples."""
    import librosa
    return np.abs(librosa.stft(y, n_fft=N_FFT, hop_length=HOP, center=True)).astype(np.float32)


def log_mel(mag: np.ndarray) -> np.ndarray:
    """(frames, N_MELS) network input from a magnitude STFT."""
    mel, _, _ = _filters()
    return np.log1p(1000.0 * (mel @ mag)).T.astype(np.float32)


def onset_features(mag: np.ndarray, frames: np.ndarray, *, start: float = 0.0) -> OnsetFeatures:
    """Onset envelopes (the half-wave rectified flux of the log-mel ``frames``, all bands and
    the bands under ``LOW_HZ``) and chroma from the same STFT, at ``FPS``."""
    _, chroma, low = _filters()
    flux = np.maximum(np.diff(frames, axis=0, prepend=frames[:1]), 0)
    return OnsetFeatures(fps=FPS, env=flux.mean(axis=1), low_env=flux[:, low].mean(axis=1),
                         chroma=chroma @ (mag ** 2), start=start)


def analyse(audio: np.ndarray, sr: int, *, start: float = 0.0) -> tuple[np.ndarray,
                                                                           OnsetFeatures]:
    """The network input (frames, N_MELS) and the onset features of ``audio``."""
    mag = spectrogram(mono(audio, sr))
    frames = log_mel(mag)
    return frames, onset_features(mag, frames, start=start)
