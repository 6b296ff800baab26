"""The model inputs every pipeline shares: MFCC segments, 0.5 s log spectra, raw frames, and the
stored scalers applied to them. NumPy in, NumPy out.

The dataset builder (:mod:`deepaudio.data`) writes them into HDF5 files; the mapping
(:mod:`deepaudio.mapping`) computes the same features for a user's song so a trained encoder
sees what it was trained on.
"""

from __future__ import annotations

import numpy as np


def mfcc_segments(y: np.ndarray, sr: int, *, num_mfcc: int = 64, n_mels: int = 128,
                  hop_length: int = 441, n_fft: int = 1102, frames_per_segment: int = 96,
                  segment_hop: int | None = None) -> np.ndarray:
    """MFCCs of mono ``y`` cut into segments, shape (N, num_mfcc, frames_per_segment).

    Segments start every ``segment_hop`` MFCC frames (default: back to back, as the
    reference); a smaller hop gives overlapping segments.
    """
    import librosa
    m = librosa.feature.mfcc(y=y, sr=sr, n_mfcc=num_mfcc, n_fft=n_fft, hop_length=hop_length,
                             n_mels=n_mels)
    hop = segment_hop or frames_per_segment
    if m.shape[1] < frames_per_segment:
        return np.zeros((0, num_mfcc, frames_per_segment), np.float32)
    segs = librosa.util.frame(m, frame_length=frames_per_segment, hop_length=hop, axis=-1)
    return np.ascontiguousarray(segs.transpose(2, 0, 1), dtype=np.float32)  # (N, mfcc, frames)


def spectrum_segments(y: np.ndarray, *, window_size: int = 11025,
                      hop_length: int = 11025) -> np.ndarray:
    """Hann-windowed log-magnitude (dB) rfft of each window, shape (N, window_size // 2 + 1).

    Deep-Audio-Visualization took ``|fft|`` of unwindowed frames with no log, so half its 11,025
    inputs were mirror images; the one-sided spectrum holds the same information.
    """
    import librosa
    if len(y) < window_size:
        return np.zeros((0, window_size // 2 + 1), np.float32)
    frames = librosa.util.frame(y, frame_length=window_size, hop_length=hop_length, axis=0)
    mag = np.abs(np.fft.rfft(frames * np.hanning(window_size).astype(np.float32), axis=1))
    return librosa.amplitude_to_db(mag, ref=1.0, amin=1e-5, top_db=None).astype(np.float32)


def raw_frame_segments(y: np.ndarray, *, segment_samples: int = 16000) -> np.ndarray:
    """Non-overlapping raw-audio segments, shape (N, segment_samples)."""
    n = len(y) // segment_samples
    return np.ascontiguousarray(y[:n * segment_samples].reshape(n, segment_samples))


def apply_scaler(x: np.ndarray, params: dict[str, np.ndarray]) -> np.ndarray:
    """Apply stored scaler params (as read from the HDF5 ``scaler`` group) to segments."""
    if "mean" in params:
        return ((x - params["mean"]) / params["std"]).astype(np.float32)
    if "min" in params:
        return ((x - params["min"]) / params["scale"]).astype(np.float32)
    return x.astype(np.float32)


def invert_scaler(x: np.ndarray, params: dict[str, np.ndarray]) -> np.ndarray:
    """The features before :func:`apply_scaler` (float64), from scaled segments."""
    x = x.astype(np.float64)
    if "mean" in params:
        return x * params["std"] + params["mean"]
    if "min" in params:
        return x * params["scale"] + params["min"]
    return x
