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
import time
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
Progress = tp.Callable[[float], None]      # fraction of the decoding done, in [0, 1]
JOIN_SECONDS = 0.05            # equal-power joins around the decoded neural part


def embedding_crossfade(model: WaveNetAutoencoder, a: np.ndarray, b: np.ndarray,
                        g_out: np.ndarray, g_in: np.ndarray, *,
                        sampling: tp.Literal["greedy", "sample"] = "greedy", seed: int = 0,
                        method: tp.Literal["fast", "naive"] = "fast",
                        batch: bool = True, progress: Progress | None = None) -> dict:
    """Mix the codes of two equal-length 16 kHz clips per frame and decode the mix.

    ``a`` is the end of the outgoing song, ``b`` the start of the incoming one, both (T,).
    With F = T // HOP, ``enc_mix = g_out * enc_a + g_in * enc_b`` per code frame (g_* are (F,)
    gains, linear), and the mix is decoded to T samples (samples past F * HOP hold the last
    frame). Gains shaped (K, F) give K fades of the same pair, decoded in one batch (one
    sample step serves all K: a batch costs far less than K decodes). ``batch`` encodes a and
    b in one batched pass (False: one at a time, less memory; the codes are the same).
    Returns audio (T,) float32 ((K, T) for K fades), enc_a, enc_b (bottleneck, F), enc_mix
    (bottleneck, F) (or (K, bottleneck, F)), the seed, and ``generation``: samples decoded,
    seconds and samples/s.
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
    single = g_out.ndim == 1
    for name, g in (("g_out", g_out), ("g_in", g_in)):
        if g.shape[-1:] != (n_frames,) or g.ndim not in (1, 2) or g.shape != g_out.shape:
            raise ToolkitError(f"{name} must hold one gain per code frame, shape ({n_frames},) "
                               f"or (fades, {n_frames}) for {t} samples; got {g.shape}")
    clips = np.stack([a[:n_frames * HOP], b[:n_frames * HOP]])
    if batch:
        enc = model.encode(clips).cpu().numpy()
    else:
        enc = np.concatenate([model.encode(c[None]).cpu().numpy() for c in clips])
    enc_a, enc_b = enc[0], enc[1]                                       # (bottleneck, F)
    g_out2, g_in2 = np.atleast_2d(g_out), np.atleast_2d(g_in)
    enc_mix = g_out2[:, None, :] * enc_a + g_in2[:, None, :] * enc_b   # (K, bottleneck, F)
    t0 = time.perf_counter()
    audio = model.generate(enc_mix, t, method=method, sampling=sampling, seed=seed,
                           progress=(lambda done, total: progress(done / total))
                           if progress else None)
    seconds = time.perf_counter() - t0
    generation = {"samples": int(audio.size), "seconds": round(seconds, 3),
                  "samples_per_s": round(audio.size / max(seconds, 1e-9), 1),
                  "batch": int(audio.shape[0])}
    if single:
        audio, enc_mix = audio[0], enc_mix[0]
    return {"audio": audio, "enc_a": enc_a, "enc_b": enc_b, "enc_mix": enc_mix, "seed": seed,
            "generation": generation}


def embedding_fade(model: WaveNetAutoencoder, x1: np.ndarray, x2: np.ndarray, *,
                   style: str | tp.Sequence[str] = "linear", sampling: Sampling = "greedy",
                   seed: int = 0, method: tp.Literal["fast", "naive"] = "fast",
                   progress: Progress | None = None) -> dict:
    """Decode the encodings of ``x1`` (end of A) and ``x2`` (start of B), both (T,) at 16 kHz,
    faded by our ramp evaluated at the code frame rate (F = T // 512 frames). A list of
    styles decodes them all in one batch (``audio`` (K, T))."""
    styles = [style] if isinstance(style, str) else list(style)
    for name in styles:
        if name not in cr.NEURAL_RAMPS:
            raise ToolkitError(f"unknown neural style {name!r} "
                               f"(styles: {', '.join(NEURAL_STYLES)})")
    frames = x1.shape[-1] // HOP
    if frames < 1:
        raise ToolkitError(f"the neural fade needs at least {HOP} samples")
    ramps = [cr.NEURAL_RAMPS[name](frames) for name in styles]
    g_out = np.stack([r[0] for r in ramps]).astype(np.float32)
    g_in = np.stack([r[1] for r in ramps]).astype(np.float32)
    if isinstance(style, str):
        g_out, g_in = g_out[0], g_in[0]
    return embedding_crossfade(model, x1, x2, g_out, g_in, sampling=sampling, seed=seed,
                               method=method, batch=True, progress=progress)


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
                     max_trim: float | None = None, model=None, pair: dict | None = None,
                     progress: Progress | None = None) -> dict:
    """The NSynth-style fade at 16 kHz mono: trimmed songs, x1 = last ``seconds`` of A,
    x2 = first ``seconds`` of B, decoded from faded encodings, spliced into context.
    ``model`` and ``pair`` (:func:`prepare_pair` at 16 kHz mono) may be passed to reuse them;
    ``progress(fraction)`` follows the decoding."""
    return crossfade_neural_styles(a_path, b_path, weights, styles=[style], seconds=seconds,
                                   context=context, seed=seed, sampling=sampling,
                                   device=device, threshold=threshold, max_trim=max_trim,
                                   model=model, pair=pair, progress=progress)[style]


def crossfade_neural_styles(a_path, b_path, weights, *, styles: tp.Sequence[str],
                            seconds: float = 4.0, context: float | None = 5.0, seed: int = 0,
                            sampling: Sampling = "greedy", device: str = "cpu",
                            threshold: float = 0.15, max_trim: float | None = None,
                            model=None, pair: dict | None = None,
                            progress: Progress | None = None) -> dict[str, dict]:
    """:func:`crossfade_neural` for several styles of one pair, decoded in one batch:
    style → output dict."""
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
    styles = list(dict.fromkeys(styles))
    res = embedding_fade(model, x1, x2, style=styles, sampling=sampling, seed=seed,
                         progress=progress)
    outs = {}
    for k, style in enumerate(styles):
        decoded = np.asarray(res["audio"][k], np.float32)
        out = splice_decoded(a, b, decoded, sr, context=context)
        out.update(x1=x1, x2=x2, decoded=decoded, enc_a=res["enc_a"], enc_b=res["enc_b"],
                   enc_mix=res["enc_mix"][k])
        out["sidecar"] = {"first_song": str(a_path), "second_song": str(b_path), "sr": sr,
                          "mode": "neural", "style": style, "seconds": t / sr, "seed": seed,
                          "sampling": sampling, "weights": str(weights),
                          "trims": pair["trims"], "loudness": pair["loudness"],
                          "frames": int(res["enc_mix"].shape[-1]),
                          "overlap_start_in_output_s": out["overlap_start"] / sr,
                          "context_s": context if context is not None else "full",
                          "generation": {**res["generation"], "method": "fast",
                                         "device": str(next(model.parameters()).device)}}
        outs[style] = out
    return outs
