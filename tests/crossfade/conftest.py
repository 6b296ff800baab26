"""What the crossfade tests share: synthetic songs and click tracks, and a tiny untrained
WaveNet run."""

from __future__ import annotations

import numpy as np
import pytest

from deepaudio.core.audio import save_audio
from deepaudio.networks.checkpoint import save_weights
from deepaudio.networks.wavenet import WaveNetAutoencoder, make_config

SR = 22050


def _tone_song(seconds: float, sr: int = SR, *, f0: float = 220.0, level_db: float = -12.0,
              seed: int = 0, channels: int = 2) -> np.ndarray:
    """A few detuned partials with amplitude modulation plus a little noise: music-like,
    steady loudness."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    y = sum(np.sin(2 * np.pi * f0 * k * t + rng.uniform(0, 6)) / k for k in (1, 2, 3, 5))
    y = y * (1 + 0.3 * np.sin(2 * np.pi * 2 * t)) + 0.05 * rng.standard_normal(len(t))
    y *= 10 ** (level_db / 20) / np.sqrt(np.mean(y ** 2))
    return np.repeat(y[None], channels, axis=0).astype(np.float32)


def _click(sr: int, freq: float, amp: float, kick: bool) -> np.ndarray:
    t = np.arange(int(0.03 * sr)) / sr
    y = amp * np.sin(2 * np.pi * freq * t) * np.exp(-t / 0.004)
    if kick:   # a low thump on the downbeat: bar-start evidence for the downbeat tracker
        tk = np.arange(int(0.15 * sr)) / sr
        k = 0.8 * np.sin(2 * np.pi * np.cumsum(60 + 90 * np.exp(-tk / 0.02)) / sr)
        k *= np.exp(-tk / 0.05)
        y = np.pad(y, (0, len(k) - len(y))) + k
    return y


def _click_track(bpm: float, seconds: float, sr: int, *, down_hz: float, beat_hz: float,
                first: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Clicks on every beat, accented downbeats (every 4th, louder, other pitch, kick);
    returns the audio (1, N) and the downbeat times."""
    n = int(seconds * sr)
    y = np.zeros(n + sr)
    times = np.arange(first, seconds, 60.0 / bpm)
    for i, t in enumerate(times):
        c = _click(sr, down_hz, 0.9, True) if i % 4 == 0 else _click(sr, beat_hz, 0.5, False)
        k = int(round(t * sr))
        y[k:k + len(c)] += c
    return y[None, :n].astype(np.float32), times[::4]


def _band_onsets(y: np.ndarray, sr: int, freq: float, *, rel: float = 0.25) -> np.ndarray:
    """Times of the energy peaks of bursts near ``freq``: zero-phase FFT band-pass (+-120 Hz),
    squared, 2 ms box-smoothed, local maxima above ``rel`` of the largest, 0.2 s apart."""
    spec = np.fft.rfft(y)
    f = np.fft.rfftfreq(len(y), 1 / sr)
    band = np.fft.irfft(spec * (np.abs(f - freq) < 120), len(y))
    w = max(1, int(0.002 * sr))
    env = np.convolve(band ** 2, np.ones(w) / w, mode="same")
    thr = rel * env.max()
    peaks, last = [], -np.inf
    hop = int(0.1 * sr)
    for k in np.flatnonzero((env[1:-1] > env[:-2]) & (env[1:-1] >= env[2:]) &
                            (env[1:-1] > thr)) + 1:
        lo, hi = max(0, k - hop), k + hop
        if env[k] < env[lo:hi].max() or k / sr - last < 0.2:
            continue
        peaks.append(k / sr)
        last = k / sr
    return np.array(peaks)


@pytest.fixture(scope="module")
def songs(tmp_path_factory):
    """Two 12 s stereo songs (FLAC), B 12 dB quieter than A, each with silence at both ends."""
    d = tmp_path_factory.mktemp("songs")
    pad = np.zeros((2, SR // 2), np.float32)
    a = np.concatenate([pad, _tone_song(12, f0=220, level_db=-14, seed=1), pad], axis=1)
    b = np.concatenate([pad, _tone_song(12, f0=330, level_db=-26, seed=2), pad], axis=1)
    save_audio(d / "a.flac", a, SR, sample_format="pcm24")
    save_audio(d / "b.flac", b, SR, sample_format="pcm24")
    return d / "a.flac", d / "b.flac"


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    import torch
    torch.manual_seed(0)
    cfg = make_config("small", {"enc_layers": 2, "enc_channels": 8, "dec_layers": 3,
                                        "residual_channels": 8, "skip_channels": 8})
    return save_weights(WaveNetAutoencoder(cfg),
                                tmp_path_factory.mktemp("wavenet") / "run")


@pytest.fixture(scope="session")
def tone_song():
    """``tone_song(seconds, sr=22050, *, f0, level_db, seed, channels)``: a music-like tone."""
    return _tone_song


@pytest.fixture(scope="session")
def click_track():
    """``click_track(bpm, seconds, sr, *, down_hz, beat_hz, first)``: clicks, accented bars."""
    return _click_track


@pytest.fixture(scope="session")
def band_onsets():
    """``band_onsets(y, sr, freq, *, rel)``: times of the bursts near ``freq``."""
    return _band_onsets
