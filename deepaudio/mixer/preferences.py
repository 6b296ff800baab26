"""Personalised gain suggestions: a song's 23-d feature vector -> a small per-user network ->
relative stem gains in dB.

The layout of the Human Audio Mixer's vector is kept (13 audio scalars, then 10 genre slots), but
every value now comes from real analysis and is scaled so it does not saturate (the original's rms,
zcr, flux, rolloff and tempo were 1.0 for almost every song, and its "genre" was a rule on those
same saturated values):

====  ===================  ==============================================================
 #    feature              computation (librosa, mono, 22.05 kHz, at most 3 minutes)
====  ===================  ==============================================================
 0    duration             min(seconds / 600, 1)
 1    sample rate          file's rate / 48000
 2    rms                  mean frame RMS in dBFS, (dB + 60) / 60, clipped to [0, 1]
 3    zero-crossing rate   mean ZCR / 0.25
 4    spectral centroid    mean centroid / 8 kHz
 5    spectral rolloff     mean 85 % rolloff / 11.025 kHz
 6    spectral flux        mean onset strength / (1 + mean onset strength)
 7    tempo                the beat tracker's global tempo in BPM, (bpm - 60) / 140,
                           clipped (:func:`deepaudio.analysis.beats.estimate_tempo`)
 8-12 band energies        share of spectral energy below 60 Hz, 60-250 Hz, 250 Hz-2 kHz,
                           2-6 kHz and above 6 kHz (they sum to 1)
13-22 genre                the trained classifier's probabilities (its genres in sorted
                           order, padded with zeros to 10); all zeros without a classifier
====  ===================  ==============================================================

The network is the original's 23 -> 64 -> 32 -> 16 -> 4 (ReLU, tanh output), in torch, one
per user (stored by the server). Differences that matter:

- It predicts *relative* gains: targets are the saved gains minus their mean, because
  loudness normalisation makes the common offset meaningless. Output x 24 dB.
- Untrained means neutral: a user without saved mixes gets 0 dB everywhere (the original
  auto-applied gains from random weights, -16 to +5 dB), and the output layer starts at zero
  so a freshly reset network is neutral too.
- Saving a mix trains 5 epochs on that mix (online update, as the original). Deleting one
  retrains *from scratch* on the remaining mixes (10 epochs, batches of at most 8; the
  original continued from the current weights); none left resets the user to neutral.
"""

from __future__ import annotations

import hashlib
import io
import typing as tp

import numpy as np
import torch
from torch import nn

from deepaudio.analysis.beats import estimate_tempo
from deepaudio.core.audio import audio_info, load_audio
from deepaudio.mixer.stems import STEMS
from deepaudio.networks.preference import N_FEATURES, PreferenceNet

GENRE_SLOTS = 10
GAIN_SCALE_DB = 24.0        # tanh output x 24 dB: relative gains up to +-24 dB
LR = 3e-3


def track_features(path, *, genre_probabilities: dict[str, float] | None = None,
                   max_seconds: float = 180.0) -> np.ndarray:
    """The 23-d float32 feature vector of a song (see the module docstring)."""
    import librosa
    info = audio_info(path)
    duration = info.frames / info.samplerate
    offset = max(0.0, (duration - max_seconds) / 2)       # the middle of long songs
    sr = 22050
    y = load_audio(path, sr=sr, mono=True, offset=offset,
                   duration=min(duration, max_seconds))[0][0]
    S = np.abs(librosa.stft(y, n_fft=2048, hop_length=512))
    rms = librosa.feature.rms(S=S, frame_length=2048)[0]
    rms_db = 20 * np.log10(max(float(np.mean(rms)), 1e-6))
    zcr = float(librosa.feature.zero_crossing_rate(y, frame_length=2048, hop_length=512).mean())
    centroid = float(librosa.feature.spectral_centroid(S=S, sr=sr).mean())
    rolloff = float(librosa.feature.spectral_rolloff(S=S, sr=sr, roll_percent=0.85).mean())
    onset = librosa.onset.onset_strength(S=librosa.amplitude_to_db(S, ref=np.max), sr=sr)
    flux = float(onset.mean())
    tempo = estimate_tempo(y, sr)
    freqs = librosa.fft_frequencies(sr=sr, n_fft=2048)
    power = (S ** 2).sum(axis=1)
    edges = [0, 60, 250, 2000, 6000, sr / 2 + 1]
    bands = np.array([power[(freqs >= lo) & (freqs < hi)].sum()
                      for lo, hi in zip(edges[:-1], edges[1:])])
    bands = bands / bands.sum() if bands.sum() > 0 else np.zeros(5)
    genre = np.zeros(GENRE_SLOTS)
    if genre_probabilities:
        for k, name in enumerate(sorted(genre_probabilities)[:GENRE_SLOTS]):
            genre[k] = genre_probabilities[name]
    scalars = [min(duration / 600, 1.0), info.samplerate / 48000, (rms_db + 60) / 60,
               zcr / 0.25, centroid / 8000, rolloff / (sr / 2), flux / (1 + flux),
               (tempo - 60) / 140]
    v = np.concatenate([np.clip(scalars, 0, 1), bands, genre]).astype(np.float32)
    assert v.shape == (N_FEATURES,)
    return v


def relative_gains(gains_db: dict[str, float], muted: tp.Iterable[str] = ()) -> np.ndarray:
    """Training target: the 4 gains (muted stems at -60 dB) minus their mean, in dB."""
    muted = set(muted)
    g = np.array([-60.0 if s in muted else float(gains_db.get(s, 0.0)) for s in STEMS])
    return g - g.mean()


def _seed(user: str) -> int:
    return int(hashlib.sha256(user.encode()).hexdigest()[:8], 16)


def new_model(user: str) -> PreferenceNet:
    torch.manual_seed(_seed(user))
    return PreferenceNet()


def fit(model: PreferenceNet, features: np.ndarray, targets_db: np.ndarray, *, epochs: int,
        batch_size: int, seed: int = 0) -> float:
    """Adam on MSE of (relative dB / 24); returns the last epoch's mean loss."""
    x = torch.as_tensor(np.asarray(features, np.float32).reshape(-1, N_FEATURES))
    y = torch.as_tensor(np.clip(np.asarray(targets_db, np.float32).reshape(-1, 4)
                                / GAIN_SCALE_DB, -0.99, 0.99))
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    gen = torch.Generator().manual_seed(seed)
    model.train()
    loss_sum = 0.0
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=gen)
        loss_sum = 0.0
        for i in range(0, len(x), batch_size):
            idx = order[i:i + batch_size]
            loss = nn.functional.mse_loss(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            loss_sum += loss.item() * len(idx)
    model.eval()
    return loss_sum / len(x)


def to_bytes(model: PreferenceNet) -> bytes:
    """A network as the bytes of its ``state_dict`` (how the server stores it per user)."""
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    return buf.getvalue()


def from_bytes(state: bytes) -> PreferenceNet:
    model = PreferenceNet()
    model.load_state_dict(torch.load(io.BytesIO(state), weights_only=True))
    return model.eval()


def suggest(model: PreferenceNet | None, features: np.ndarray, n_examples: int = 0, *,
            stems: tp.Sequence[str] = STEMS) -> dict:
    """``{"gains": {stem: dB}, "trained": bool, "n_examples": n}`` for the job's ``stems``:
    the network's gains for the four stems it learns (drums, bass, other, vocals), 0 dB
    (neutral) for any other stem (a six-stem model's guitar and piano, a two-stem split) and
    for all of them when untrained."""
    gains = {s: 0.0 for s in stems}
    if model is None:
        return {"gains": gains, "trained": False, "n_examples": 0}
    with torch.no_grad():
        y = model(torch.as_tensor(features, dtype=torch.float32)[None])[0].numpy()
    learned = {s: round(float(v) * GAIN_SCALE_DB, 1) for s, v in zip(STEMS, y)}
    return {"gains": {s: learned.get(s, 0.0) for s in stems}, "trained": True,
            "n_examples": n_examples}


def learns_from(stems: tp.Iterable[str]) -> bool:
    """Whether a mix of these stems teaches the network: it learns the four standard stems'
    balance, so a mix of another stem set is saved but not learned from."""
    return set(stems) == set(STEMS)


def update_on_save(model: PreferenceNet | None, user: str, n_examples: int,
                   features: np.ndarray, target_db: np.ndarray) -> PreferenceNet:
    """Online update: 5 epochs on the newly saved mix (batch 1), from the current weights (a
    new network for a user's first mix); ``n_examples`` mixes were learned before."""
    model = model if model is not None else new_model(user)
    fit(model, features, target_db, epochs=5, batch_size=1, seed=_seed(user) + n_examples)
    return model


def retrain(user: str, features: np.ndarray, targets_db: np.ndarray) -> PreferenceNet | None:
    """Full retrain from a fresh initialisation on all remaining mixes (10 epochs, batches of
    at most 8); None when no mixes are left (the user is neutral again)."""
    if len(features) == 0:
        return None
    model = new_model(user)
    fit(model, features, targets_db, epochs=10, batch_size=min(len(features), 8),
        seed=_seed(user))
    return model
