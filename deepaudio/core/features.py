"""The model inputs every pipeline shares: MFCC segments, 0.5 s log spectra, raw frames, and the
stored scalers applied to them. NumPy in, NumPy out.

The dataset builder (:mod:`deepaudio.data`) writes them into HDF5 files; the mapping
(:mod:`deepaudio.mapping`) computes the same features for a user's song so a trained encoder
sees what it was trained on.
"""

from __future__ import annotations

import itertools
import typing as tp

import numpy as np

FRAME_BATCH = 1024      # frames per batch out of :func:`frame_stream`


def frame_stream(blocks: tp.Iterable[np.ndarray], frame_length: int, hop: int, *,
                 pad: tuple[int, int] = (0, 0), batch: int = FRAME_BATCH
                 ) -> tp.Iterator[np.ndarray]:
    """Frames of a mono signal given as 1-d blocks (or (1, n) blocks), ``frame_length``
    samples every ``hop``, as (k, frame_length) float32 batches of at most ``batch`` frames.

    ``pad`` zeros are added before and after the signal (``(n_fft // 2, n_fft // 2)`` is
    librosa's ``center=True``). The frames are those of the whole signal; memory holds one
    block and one batch."""
    buf = np.zeros(pad[0], np.float32)
    tail = np.zeros(pad[1], np.float32)
    for block in itertools.chain(blocks, [tail]):
        buf = np.concatenate([buf, np.asarray(block, np.float32).reshape(-1)])
        n = 0 if len(buf) < frame_length else (len(buf) - frame_length) // hop + 1
        for i in range(0, n, batch):
            k = min(batch, n - i)
            view = np.lib.stride_tricks.sliding_window_view(
                buf[i * hop:(i + k - 1) * hop + frame_length], frame_length)[::hop]
            yield np.array(view, np.float32)
        buf = buf[n * hop:]


def log_mel_stream(blocks: tp.Iterable[np.ndarray], sr: int, *, n_mels: int = 128,
                   hop_length: int = 441, n_fft: int = 1102) -> list[np.ndarray]:
    """The power mel spectrogram in dB (ref 1.0, amin 1e-10, no top_db yet) of a mono signal
    given as blocks, as a list of (frames, n_mels) float32 parts: the frames of
    ``librosa.feature.melspectrogram`` (centred, zero padded, periodic Hann window, Slaney mel
    filters) computed a batch at a time, so memory holds the spectrogram, never the audio."""
    import librosa
    window = librosa.filters.get_window("hann", n_fft, fftbins=True).astype(np.float32)
    mel = librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels).astype(np.float32).T
    parts = []
    for frames in frame_stream(blocks, n_fft, hop_length, pad=(n_fft // 2, n_fft // 2)):
        power = np.square(np.abs(np.fft.rfft(frames * window, axis=1)), dtype=np.float32)
        parts.append(np.log10(np.maximum(power @ mel, 1e-10)) * np.float32(10))
    return parts


def mfcc_stream(blocks: tp.Iterable[np.ndarray], sr: int, *, num_mfcc: int = 64,
                n_mels: int = 128, hop_length: int = 441, n_fft: int = 1102) -> np.ndarray:
    """(num_mfcc, frames) float32 MFCCs of a mono signal given as blocks, as
    ``librosa.feature.mfcc`` computes them (dB mel with top_db 80 over the whole song,
    orthonormal DCT-II; agreement tested). Memory holds the song's mel spectrogram (25.6 kB
    per second at the defaults, turned into MFCCs part by part), never its audio."""
    import scipy.fft
    parts = log_mel_stream(blocks, sr, n_mels=n_mels, hop_length=hop_length, n_fft=n_fft)
    floor = max((float(p.max()) for p in parts if len(p)), default=0.0) - 80.0
    out = np.empty((num_mfcc, sum(len(p) for p in parts)), np.float32)
    at = 0
    while parts:
        db = np.maximum(parts.pop(0), np.float32(floor))
        out[:, at:at + len(db)] = scipy.fft.dct(db, type=2, norm="ortho", axis=1)[:, :num_mfcc].T
        at += len(db)
    return out


def segment_view(m: np.ndarray, frames_per_segment: int, hop: int) -> np.ndarray:
    """(N, rows, frames_per_segment) segments of a (rows, T) feature matrix starting every
    ``hop`` columns, as a strided view (no copy): slice it in batches."""
    if m.shape[1] < frames_per_segment:
        return np.zeros((0, m.shape[0], frames_per_segment), m.dtype)
    return np.lib.stride_tricks.sliding_window_view(m, frames_per_segment, axis=1)[
        :, ::hop].transpose(1, 0, 2)


def mfcc_segments(y: np.ndarray, sr: int, *, num_mfcc: int = 64, n_mels: int = 128,
                  hop_length: int = 441, n_fft: int = 1102, frames_per_segment: int = 96,
                  segment_hop: int | None = None) -> np.ndarray:
    """MFCCs of mono ``y`` cut into segments, shape (N, num_mfcc, frames_per_segment).

    Segments start every ``segment_hop`` MFCC frames (default: back to back, as the
    original projects cut them); a smaller hop gives overlapping segments.
    """
    m = mfcc_stream([y], sr, num_mfcc=num_mfcc, n_mels=n_mels, hop_length=hop_length,
                    n_fft=n_fft)
    return np.ascontiguousarray(segment_view(m, frames_per_segment,
                                             segment_hop or frames_per_segment))


def log_spectra(frames: np.ndarray) -> np.ndarray:
    """Hann-windowed (``np.hanning``) log-magnitude (dB, ref 1, amin 1e-5) rfft of each
    (k, window_size) frame, shape (k, window_size // 2 + 1)."""
    import librosa
    mag = np.abs(np.fft.rfft(frames * np.hanning(frames.shape[1]).astype(np.float32), axis=1))
    return librosa.amplitude_to_db(mag, ref=1.0, amin=1e-5, top_db=None).astype(np.float32)


def spectrum_segments(y: np.ndarray, *, window_size: int = 11025,
                      hop_length: int = 11025) -> np.ndarray:
    """Hann-windowed log-magnitude (dB) rfft of each window, shape (N, window_size // 2 + 1).

    Deep-Audio-Visualization took ``|fft|`` of unwindowed frames with no log, so half its 11,025
    inputs were mirror images; the one-sided spectrum holds the same information.
    """
    parts = [log_spectra(f) for f in frame_stream([y], window_size, hop_length)]
    return np.concatenate(parts) if parts else np.zeros((0, window_size // 2 + 1), np.float32)


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
