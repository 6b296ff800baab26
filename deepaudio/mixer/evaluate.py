"""Separation quality against true stems: the MDX challenge's SDR and the framewise median
(SiSEC/MUSDB aggregation), per stem and track."""

from __future__ import annotations

import math
import os
import shutil
import tempfile
import time
import typing as tp
from pathlib import Path

import numpy as np

from deepaudio.core.audio import resample, save_audio
from deepaudio.mixer.separate import separate
from deepaudio.mixer.stems import STEMS, SeparationError, load_stems, stems_sum


def new_sdr(reference: np.ndarray, estimate: np.ndarray, eps: float = 1e-7) -> float:
    """The MDX challenge's SDR over the whole track and all channels (no distortion filter):
    10 log10((sum s^2 + eps) / (sum (s - s_hat)^2 + eps))."""
    ref = reference.astype(np.float64)
    err = ref - estimate.astype(np.float64)
    return float(10 * np.log10((np.sum(ref ** 2) + eps) / (np.sum(err ** 2) + eps)))


def framewise_sdr(reference: np.ndarray, estimate: np.ndarray, sr: int, *,
                  window: float = 1.0, eps: float = 1e-7) -> float:
    """Median over 1 s frames of the same SDR (the SiSEC/MUSDB aggregation, without BSSEval's
    distortion filter); frames where the reference is silent are skipped, as museval does.
    NaN if every frame is silent."""
    w = int(window * sr)
    n = reference.shape[-1] // w
    if n == 0:
        return float("nan")
    ref = reference[..., :n * w].astype(np.float64).reshape(reference.shape[0], n, w)
    err = ref - estimate[..., :n * w].astype(np.float64).reshape(reference.shape[0], n, w)
    num = (ref ** 2).sum(axis=(0, 2))
    den = (err ** 2).sum(axis=(0, 2))
    voiced = num > 1e-10 * w
    if not voiced.any():
        return float("nan")
    return float(np.median(10 * np.log10((num[voiced] + eps) / (den[voiced] + eps))))


def find_stem_folders(root: str | os.PathLike) -> list[Path]:
    """Folders under ``root`` that hold all four true stems (any audio extension)."""
    root = Path(root)
    if not root.is_dir():
        raise SeparationError(f"{root}: stems root folder not found")
    found = []
    for d in sorted({p.parent for p in root.rglob("*")
                     if p.is_file() and p.stem in STEMS and not p.name.startswith(".")}):
        names = {p.stem for p in d.iterdir() if p.is_file()}
        if all(s in names for s in STEMS):
            found.append(d)
    return found


def evaluate(stems_root: str | os.PathLike, *, backend: str = "dsp", model: str = "htdemucs",
             repo: str | os.PathLike | None = None, max_tracks: int | None = None,
             work_dir: str | os.PathLike | None = None,
             on_track: tp.Callable[[dict], None] | None = None) -> dict:
    """Separate the mix (the sum of the true stems) of every stem folder under ``stems_root``
    and score each estimated stem: new SDR and framewise median SDR, in dB.

    Returns ``{"tracks": [{track, seconds, sdr: {stem: x}, sdr_median: {stem: x}}],
    "mean": {stem: x, "all": x}, "mean_median": {...}}``.
    """
    folders = find_stem_folders(stems_root)[:max_tracks]
    if not folders:
        raise SeparationError(f"{stems_root}: no folder with {', '.join(STEMS)} stems")
    rows = []
    with tempfile.TemporaryDirectory(dir=work_dir) as tmp:
        for folder in folders:
            truth, sr = load_stems(folder, sources=STEMS)
            mix = stems_sum(truth)
            mix_path = Path(tmp) / "mix.wav"
            save_audio(mix_path, mix, sr, sample_format="float")
            out = Path(tmp) / "est"
            t0 = time.time()
            separate(mix_path, out, backend=backend, model=model, repo=repo)
            seconds = time.time() - t0
            est, est_sr = load_stems(out, sources=STEMS)
            if est_sr != sr:
                est = {s: resample(a, est_sr, sr) for s, a in est.items()}
            n = min(mix.shape[1], *(a.shape[1] for a in est.values()))
            row = {"track": str(folder.relative_to(stems_root)), "seconds": round(seconds, 3),
                   "duration": mix.shape[1] / sr,
                   "sdr": {s: new_sdr(truth[s][:, :n], est[s][:, :n]) for s in STEMS},
                   "sdr_median": {s: framewise_sdr(truth[s][:, :n], est[s][:, :n], sr)
                                  for s in STEMS}}
            rows.append(row)
            if on_track is not None:
                on_track(row)
            shutil.rmtree(out, ignore_errors=True)

    def means(key: str) -> dict:
        out = {s: float(np.nanmean([r[key][s] for r in rows])) for s in STEMS}
        out["all"] = float(np.nanmean([out[s] for s in STEMS]))
        return out
    total = sum(r["duration"] for r in rows)
    return {"backend": backend, "model": model if backend == "demucs" else "dsp-v1",
            "tracks": rows, "mean": means("sdr"), "mean_median": means("sdr_median"),
            "real_time_factor": sum(r["seconds"] for r in rows) / total if total else math.nan}
