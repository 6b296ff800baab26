"""Figures and tables of crossfades: waveforms with their gain curves, WaveNet encodings, and
the measures table of ``crossfade.py evaluate``."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from deepaudio.core.figures import pyplot, save_figure
from deepaudio.core.files import atomic_write_bytes, atomic_write_json

COLUMNS = ("style", "roughness", "roughness_0_100", "dissonance_min", "dissonance_product",
           "loudness_dip_db")


def plot_transitions(outs: dict[str, dict], path: str | os.PathLike) -> Path:
    """One row per style: the mix's waveform (mono sum) and g_out / g_in drawn over it."""
    plt = pyplot()
    fig, axes = plt.subplots(len(outs), 1, figsize=(10, 1.8 * len(outs) + 0.6), squeeze=False,
                             sharex=False)
    for ax, (style, out) in zip(axes[:, 0], outs.items()):
        sr = out["sr"]
        y = out["audio"].mean(axis=0)
        t = np.arange(y.shape[0]) / sr
        # min/max per pixel column keeps the waveform's look at a fraction of the points
        cols = min(2000, y.shape[0])
        edges = np.linspace(0, y.shape[0], cols + 1).astype(int)
        lo, hi = np.minimum.reduceat(y, edges[:-1]), np.maximum.reduceat(y, edges[:-1])
        peak = float(max(np.abs(lo).max(), np.abs(hi).max())) or 1.0
        ax.fill_between(t[edges[:-1]], lo / peak, hi / peak, color="0.6", lw=0,
                        label="mix (peak-normalised)")
        if "g_out" in out:
            step = max(1, y.shape[0] // cols)
            ax.plot(t[::step], out["g_out"][::step], color="tab:blue", lw=1.5, label="g_out (A)")
            ax.plot(t[::step], out["g_in"][::step], color="tab:orange", lw=1.5, label="g_in (B)")
        i0, n = out["overlap_start"], out["overlap"]
        ax.axvspan(i0 / sr, (i0 + n) / sr, color="tab:green", alpha=0.08)
        ax.set_ylim(-1.05, 1.05)
        ax.set_ylabel(style)
        ax.set_xlim(0, t[-1] if len(t) else 1)
    axes[0, 0].legend(loc="lower left", fontsize=7, ncol=3)
    axes[-1, 0].set_xlabel("seconds")
    fig.subplots_adjust(left=0.08, right=0.98, top=0.97, bottom=0.12 / len(outs) + 0.05,
                        hspace=0.25)
    save_figure(fig, path)
    return Path(path)


def plot_encodings(neural: dict, path: str | os.PathLike) -> Path:
    """Heatmaps of the (16, F) encodings: end of A, start of B and their fade."""
    plt = pyplot()
    fig, axes = plt.subplots(3, 1, figsize=(9, 6), sharex=True)
    for ax, key, title in zip(axes, ("enc_a", "enc_b", "enc_mix"),
                              ("end of A", "start of B", "faded (decoded)")):
        enc = np.asarray(neural[key])
        im = ax.imshow(enc, aspect="auto", origin="lower", cmap="magma", interpolation="nearest")
        ax.set_ylabel(f"{title}\nchannel")
        fig.colorbar(im, ax=ax, pad=0.01)
    axes[-1].set_xlabel("code frame (512 samples at 16 kHz)")
    fig.tight_layout()
    save_figure(fig, path)
    return Path(path)


def write_table(rows: list[dict], out_dir: Path, meta: dict) -> tuple[Path, Path]:
    lines = [",".join(COLUMNS)]
    lines += [",".join(str(r.get(c, "")) for c in COLUMNS) for r in rows]
    csv_path, json_path = out_dir / "measures.csv", out_dir / "measures.json"
    atomic_write_bytes(csv_path, ("\n".join(lines) + "\n").encode())
    atomic_write_json(json_path, {**meta, "rows": rows})
    return csv_path, json_path


def format_table(rows: list[dict]) -> str:
    head = (f"{'style':<20}{'rough':>9}{'rough100':>10}{'diss min':>10}{'diss prod':>11}"
            f"{'dip dB':>9}")
    body = [f"{r['style']:<20}{r['roughness']:>9.4f}{r['roughness_0_100']:>10.2f}"
            f"{r['dissonance_min']:>10.4f}{r['dissonance_product']:>11.5f}"
            f"{r['loudness_dip_db']:>9.2f}" for r in rows]
    return "\n".join([head, *body])
