"""DeepBass' NSynth path: crossfading two songs through a WaveNet autoencoder's embedding.

The end of A and the start of B (16 kHz mono, trimmed and loudness-matched as the simple
fades) are encoded to 16-d codes per 512 samples, the codes are faded per frame with one of
our ramps, and the faded codes are decoded sample by sample (the fast generation path); the
decoded part replaces the overlap between the rest of A and of B, with short equal-power joins.
DeepBass trimmed the songs for this path and then used the untrimmed ones; here it uses the
trimmed songs.
"""

from __future__ import annotations

import os
import typing as tp
from pathlib import Path

import numpy as np

from deepaudio.core.errors import ToolkitError
from deepaudio.crossfade import render as cr
from deepaudio.crossfade.songs import prepare_pair
from deepaudio.networks.checkpoint import load_wavenet
from deepaudio.networks.wavenet import HOP, SR, WaveNetAutoencoder

NEURAL_STYLES = tuple(cr.NEURAL_RAMPS)
Sampling = tp.Literal["greedy", "sample"]
JOIN_SECONDS = 0.05            # equal-power joins around the decoded neural part


def embedding_crossfade(model: WaveNetAutoencoder, a: np.ndarray, b: np.ndarray,
                        g_out: np.ndarray, g_in: np.ndarray, *,
                        sampling: tp.Literal["greedy", "sample"] = "greedy", seed: int = 0,
                        method: tp.Literal["fast", "naive"] = "fast",
                        batch: bool = True) -> dict:
    """Mix the codes of two equal-length 16 kHz clips per frame and decode the mix.

    ``a`` is the end of the outgoing song, ``b`` the start of the incoming one, both (T,).
    With F = T // HOP, ``enc_mix = g_out * enc_a + g_in * enc_b`` per code frame (g_* are (F,)
    gains, linear), and the mix is decoded to T samples (samples past F * HOP hold the last
    frame). ``batch`` encodes a and b in one batched pass (False: one at a time, less memory;
    the codes are the same). Returns audio (T,) float32 and enc_a, enc_b, enc_mix
    (bottleneck, F), with the seed.
    """
    a = np.asarray(a, dtype=np.float32)
    b = np.asarray(b, dtype=np.float32)
    if a.ndim != 1 or b.shape != a.shape:
        raise ToolkitError(f"embedding_crossfade needs two mono clips of equal length, got "
                           f"shapes {a.shape} and {b.shape}")
    t = a.shape[0]
    n_frames = t // HOP
    if n_frames < 1:
        raise ToolkitError(f"clips of {t} samples are shorter than one code frame ({HOP} "
                           f"samples at {SR} Hz)")
    g_out = np.asarray(g_out, dtype=np.float32)
    g_in = np.asarray(g_in, dtype=np.float32)
    for name, g in (("g_out", g_out), ("g_in", g_in)):
        if g.shape != (n_frames,):
            raise ToolkitError(f"{name} must hold one gain per code frame, shape ({n_frames},) "
                               f"for {t} samples; got {g.shape}")
    clips = np.stack([a[:n_frames * HOP], b[:n_frames * HOP]])
    if batch:
        enc = model.encode(clips).cpu().numpy()
    else:
        enc = np.concatenate([model.encode(c[None]).cpu().numpy() for c in clips])
    enc_a, enc_b = enc[0], enc[1]                                       # (bottleneck, F)
    enc_mix = g_out[None, :] * enc_a + g_in[None, :] * enc_b
    audio = model.generate(enc_mix[None], t, method=method, sampling=sampling, seed=seed)[0]
    return {"audio": audio, "enc_a": enc_a, "enc_b": enc_b, "enc_mix": enc_mix, "seed": seed}


def embedding_fade(model: WaveNetAutoencoder, x1: np.ndarray, x2: np.ndarray, *,
                   style: str = "linear", sampling: Sampling = "greedy", seed: int = 0,
                   method: tp.Literal["fast", "naive"] = "fast") -> dict:
    """Decode the encodings of ``x1`` (end of A) and ``x2`` (start of B), both (T,) at 16 kHz,
    faded by our ramp evaluated at the code frame rate (F = T // 512 frames)."""
    if style not in cr.NEURAL_RAMPS:
        raise ToolkitError(f"unknown neural style {style!r} (styles: {', '.join(NEURAL_STYLES)})")
    frames = x1.shape[-1] // HOP
    if frames < 1:
        raise ToolkitError(f"the neural fade needs at least {HOP} samples")
    g_out, g_in = cr.NEURAL_RAMPS[style](frames)
    return embedding_crossfade(model, x1, x2, g_out.astype(np.float32),
                               g_in.astype(np.float32), sampling=sampling, seed=seed,
                               method=method, batch=True)


def splice_decoded(a: np.ndarray, b: np.ndarray, decoded: np.ndarray, sr: int, *,
                   context: float | None) -> dict:
    """Put the decoded transition (replacing A's last T and B's first T samples) between the
    rest of A and of B, with short equal-power joins inside its first and last samples."""
    t = decoded.shape[-1]
    j = max(1, min(int(JOIN_SECONDS * sr), t // 4))
    g_out, g_in = cr.equal_power_ramp(j)
    mid = np.asarray(decoded, np.float32).reshape(1, -1).repeat(a.shape[0], axis=0)
    x1, x2 = a[:, -t:], b[:, :t]
    mid[:, :j] = x1[:, :j] * g_out + mid[:, :j] * g_in
    mid[:, -j:] = mid[:, -j:] * g_out + x2[:, -j:] * g_in
    ctx_a = a.shape[1] - t if context is None else min(a.shape[1] - t, int(context * sr))
    ctx_b = b.shape[1] - t if context is None else min(b.shape[1] - t, int(context * sr))
    audio = np.concatenate([a[:, a.shape[1] - t - ctx_a:a.shape[1] - t], mid,
                            b[:, t:t + ctx_b]], axis=1).astype(np.float32)
    return {"audio": audio, "overlap_start": ctx_a, "overlap": t, "sr": sr}


def crossfade_neural(a_path, b_path, weights, *, style: str = "linear", seconds: float = 4.0,
                     context: float | None = 5.0, seed: int = 0, sampling: Sampling = "greedy",
                     device: str = "cpu", threshold: float = 0.15,
                     max_trim: float | None = None, model=None, pair: dict | None = None
                     ) -> dict:
    """The NSynth-style fade at 16 kHz mono: trimmed songs, x1 = last ``seconds`` of A,
    x2 = first ``seconds`` of B, decoded from faded encodings, spliced into context.
    ``model`` and ``pair`` (:func:`prepare_pair` at 16 kHz mono) may be passed to reuse them."""
    sr = SR
    if pair is None:
        pair = prepare_pair(a_path, b_path, sr, threshold=threshold, max_trim=max_trim,
                            mono=True)
    a, b = pair["a"], pair["b"]
    t = (int(round(seconds * sr)) // HOP) * HOP
    if t < HOP or t > min(a.shape[1], b.shape[1]):
        raise ToolkitError(f"a {seconds:g} s neural fade needs both songs at least that long "
                           f"after trimming ({a.shape[1] / sr:.2f} s, {b.shape[1] / sr:.2f} s)")
    if model is None:
        model = load_wavenet(Path(os.path.expanduser(weights)), device=device)
    x1, x2 = a[0, -t:], b[0, :t]
    res = embedding_fade(model, x1, x2, style=style, sampling=sampling, seed=seed)
    out = splice_decoded(a, b, np.asarray(res["audio"]), sr, context=context)
    out.update(x1=x1, x2=x2, decoded=np.asarray(res["audio"], np.float32), enc_a=res["enc_a"],
               enc_b=res["enc_b"], enc_mix=res["enc_mix"])
    out["sidecar"] = {"first_song": str(a_path), "second_song": str(b_path), "sr": sr,
                      "mode": "neural", "style": style, "seconds": t / sr, "seed": seed,
                      "sampling": sampling, "weights": str(weights), "trims": pair["trims"],
                      "loudness": pair["loudness"], "frames": int(res["enc_mix"].shape[-1]),
                      "overlap_start_in_output_s": out["overlap_start"] / sr,
                      "context_s": context if context is not None else "full"}
    return out
