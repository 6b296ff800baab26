"""The offline separation backend: no weights, HPSS + REPET-SIM + band splitting, in blocks.

Quality is far below Demucs (``python mixer_api.py evaluate`` measures both); it keeps the
mixer usable with no network and no weights.
"""

from __future__ import annotations

import time
import typing as tp
from pathlib import Path

import numpy as np

from deepaudio.core.audio import decode_in_blocks, to_channels
from deepaudio.mixer.stems import STEMS, ProgressFn

DSP_SAMPLE_RATE = 44100
DECODE_SHARE = 0.05              # progress given to decoding (the rest: separating, writing)


def repeating_spectrum(S: np.ndarray, *, min_distance: int, k: int = 12,
                       batch: int = 256) -> np.ndarray:
    """REPET-SIM's model of the repeating accompaniment: for each frame of the magnitude
    spectrogram ``S`` (F, T), the element-wise median of its ``k`` most similar frames
    (cosine similarity) at least ``min_distance`` frames away, capped by ``S``.

    Vectorised in batches of frames (librosa's ``nn_filter`` builds a sparse recurrence matrix
    element by element and took ~80 % of the time). Short blocks fall back to the nearest
    allowed distance; blocks too short for any neighbour get an empty model (no vocals).
    """
    n = S.shape[1]
    min_distance = min(min_distance, max(1, n // 3))
    k = min(k, n - 2 * min_distance - 1)
    if k < 2:
        return np.zeros_like(S)
    unit = S / (np.linalg.norm(S, axis=0, keepdims=True) + 1e-10)
    out = np.empty_like(S)
    t = np.arange(n)
    for a in range(0, n, batch):
        b = min(a + batch, n)
        sim = unit[:, a:b].T @ unit                                  # (batch, T)
        sim[np.abs(t[a:b, None] - t[None, :]) < min_distance] = -np.inf
        nearest = np.argpartition(-sim, k - 1, axis=1)[:, :k]        # (batch, k)
        out[:, a:b] = np.median(S[:, nearest], axis=2)               # (F, batch)
    return np.minimum(S, out)


def dsp_separate_block(y: np.ndarray, sr: int, *,
                       on_step: tp.Callable[[float], None] | None = None) -> np.ndarray:
    """Separate a (2, N) block into (4, 2, N) drums, bass, other, vocals without weights.

    Masks come from the mono magnitude and are applied to each channel, so the stereo image
    survives and the four masks sum to one:
      - drums: the percussive part of harmonic/percussive median filtering (HPSS);
      - bass: the harmonic part below ~120 Hz, fading out by 250 Hz;
      - vocals: in the harmonic part from 150 Hz to 8 kHz, what is *not* repeating: a
        REPET-SIM filter (median of the most similar frames, cosine similarity, at least 2 s
        away) models the repeating accompaniment, a soft mask keeps the remainder;
      - other: the residual, so the stems add up to the input exactly.
    Quality is far below Demucs (docs/mixer.md; ``mixer_api.py evaluate`` measures it); it keeps the
    mixer usable offline. ``on_step(fraction)`` reports the share of the block done after each step
    (weights measured on a 30 s block: HPSS and REPET-SIM take three quarters).
    """
    import librosa
    step = on_step or (lambda f: None)
    n_fft = 2048 if sr > 32000 else 1024
    hop = n_fft // 4
    n = y.shape[-1]
    X = librosa.stft(y, n_fft=n_fft, hop_length=hop)             # (2, F, T)
    S = np.abs(X).mean(axis=0)                                     # (F, T)
    step(0.05)
    mask_h, mask_p = librosa.decompose.hpss(S, kernel_size=(31, 17), mask=True, margin=1.0)
    step(0.45)
    freqs = librosa.fft_frequencies(sr=sr, n_fft=n_fft)[:, None]
    low = np.clip((250.0 - freqs) / (250.0 - 120.0), 0, 1)
    low = 0.5 - 0.5 * np.cos(np.pi * low)                          # raised-cosine crossover
    band = ((freqs >= 150) & (freqs <= 8000)).astype(np.float32)
    harm = S * mask_h * (1 - low)
    rep = repeating_spectrum(harm, min_distance=int(round(2.0 * sr / hop)))
    step(0.75)
    mask_v = librosa.util.softmask(harm - rep, 2.0 * rep, power=2)
    m_drums = mask_p
    m_bass = mask_h * low
    m_vocals = mask_h * (1 - low) * mask_v * band
    out = np.empty((4, y.shape[0], n), np.float32)
    for k, m in enumerate((m_drums, m_bass, m_vocals)):
        out[k if k < 2 else 3] = librosa.istft(X * m[None], hop_length=hop, n_fft=n_fft,
                                               length=n)
        step(0.75 + 0.25 * (k + 1) / 3)
    out[2] = y - out[0] - out[1] - out[3]
    return out


def dsp_separate(song: Path, writer_factory, *, block_seconds: float = 30.0,
                  fade_seconds: float = 1.0, progress: ProgressFn) -> dict:
    """Blocks of ``block_seconds`` overlapping by ``fade_seconds`` with complementary linear
    fades: memory stays bounded and, as each block's stems sum to its input, so do the
    crossfaded ones.

    Progress: decoding takes the first ``DECODE_SHARE``, separation runs to 0.95, reported
    within each block too (a 6 s song is one block, and its first one also pays for
    importing librosa, several seconds on a cold process).
    """
    sr = DSP_SAMPLE_RATE
    progress(0.0, "decoding")
    audio = decode_in_blocks(song, sr, progress)
    audio = audio[:2] if audio.shape[0] > 2 else to_channels(audio, 2)
    n = audio.shape[1]
    writer = writer_factory(sr, list(STEMS))
    block, fade = int(block_seconds * sr), int(fade_seconds * sr)
    stride = block - fade
    starts = list(range(0, max(n - fade, 1), stride))
    ramp = np.linspace(0, 1, fade, endpoint=False, dtype=np.float32)
    tail = None
    t0 = time.time()
    share = 0.95 - DECODE_SHARE
    progress(DECODE_SHARE, "separating")
    try:
        for k, s in enumerate(starts):
            def on_step(f: float, k: int = k) -> None:
                progress(DECODE_SHARE + share * (k + f) / len(starts), "separating")
            stems = dsp_separate_block(audio[:, s:s + block], sr, on_step=on_step)
            if tail is not None:
                m = min(fade, stems.shape[-1])
                stems[..., :m] = stems[..., :m] * ramp[:m] + tail[..., :m] * (1 - ramp[:m])
            last = k == len(starts) - 1
            keep = stems.shape[-1] if last else stems.shape[-1] - fade
            writer.write(stems[..., :keep])
            tail = None if last else stems[..., keep:]
            progress(DECODE_SHARE + share * (k + 1) / len(starts), "separating")
    except BaseException:
        writer.abort()
        raise
    return {"writer": writer, "separation_seconds": time.time() - t0,
            "block_seconds": block_seconds}
