"""``crossfade.py evaluate``: every style rendered on one song pair, measured and plotted.

The table has, per style, the mean Vassilakis roughness (raw and on the timbral 0..100 scale)
and the Sethares dissonance (min and product models) over the overlap, and the loudness dip at
the overlap's midpoint (:mod:`crossfade_measures`). It is printed and written as
``measures.csv`` and ``measures.json``; ``transitions.png`` draws each transition's waveform
with its two gain curves over it, and ``encodings.png`` the WaveNet encodings (end of A, start
of B, the faded mix) when neural styles were rendered.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from config import atomic_write_bytes, atomic_write_json, save_figure

COLUMNS = ("style", "roughness", "roughness_0_100", "dissonance_min", "dissonance_product",
           "loudness_dip_db")


def measure_transition(out: dict) -> dict:
    """Measures of a rendered transition dict (``audio``, ``part_a``, ``part_b``,
    ``overlap_start``, ``overlap``, ``sr``)."""
    from crossfade_measures import loudness_dip_db, transition_measures
    sr, i0, n = out["sr"], out["overlap_start"], out["overlap"]
    row = transition_measures(out["audio"][:, i0:i0 + n], sr)
    try:
        row["loudness_dip_db"] = loudness_dip_db(out["audio"], out["part_a"], out["part_b"], sr,
                                                 center=i0 + n // 2)
    except ValueError:          # overlap and context shorter than one 400 ms block
        row["loudness_dip_db"] = float("nan")
    return {k: float(f"{v:.5g}") for k, v in row.items()}


def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def plot_transitions(outs: dict[str, dict], path: str | os.PathLike) -> Path:
    """One row per style: the mix's waveform (mono sum) and g_out / g_in drawn over it."""
    plt = _plt()
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
    plt = _plt()
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


def evaluate(a_path, b_path, out_dir, *, sr: int = 44100, seconds: float = 4.0,
             context: float | None = 5.0, seed: int = 0, threshold: float = 0.15,
             weights=None, device: str = "cpu", log=print) -> dict:
    """Render every simple style (and the neural ones with ``weights``), measure, plot."""
    import crossfade_render as cr
    from crossfade import crossfade_neural, prepare_pair
    out_dir = Path(os.path.expanduser(out_dir))
    out_dir.mkdir(parents=True, exist_ok=True)
    edge = None if context is None else seconds + context + 30.0
    pair = prepare_pair(a_path, b_path, sr, edge_seconds=edge, threshold=threshold)
    outs, rows = {}, []
    for style in cr.RAMPS:
        out = cr.render_simple(pair["a"], pair["b"], sr, style=style, seconds=seconds,
                               context=context, seed=seed)
        out["sr"] = sr
        outs[style] = out
        rows.append({"style": style, **measure_transition(out)})
    figures = [plot_transitions(outs, out_dir / "transitions.png")]
    if weights is not None:
        import wavenet
        model = wavenet.load_wavenet(Path(os.path.expanduser(weights)), device=device)
        pair16 = prepare_pair(a_path, b_path, wavenet.SR, threshold=threshold, mono=True)
        neural_outs = {}
        for style in cr.NEURAL_RAMPS:
            neural = crossfade_neural(a_path, b_path, weights, style=style, seconds=seconds,
                                      context=context, seed=seed, threshold=threshold,
                                      model=model, pair=pair16)
            i0, n = neural["overlap_start"], neural["overlap"]
            pa, pb = np.zeros_like(neural["audio"]), np.zeros_like(neural["audio"])
            pa[:, :i0 + n], pb[:, i0:] = neural["audio"][:, :i0 + n], neural["audio"][:, i0:]
            pa[:, i0:i0 + n], pb[:, i0:i0 + n] = neural["x1"], neural["x2"]
            neural.update(part_a=pa, part_b=pb)
            neural_outs[f"neural_{style}"] = neural
            rows.append({"style": f"neural_{style}", **measure_transition(neural)})
        figures.append(plot_transitions(neural_outs, out_dir / "transitions_neural.png"))
        figures.append(plot_encodings(next(iter(neural_outs.values())),
                                      out_dir / "encodings.png"))
    meta = {"first_song": str(a_path), "second_song": str(b_path), "sr": sr,
            "seconds": seconds, "seed": seed, "context_s": context if context is not None
            else "full", "trims": pair["trims"], "loudness": pair["loudness"],
            "weights": None if weights is None else str(weights)}
    csv_path, json_path = write_table(rows, out_dir, meta)
    log(format_table(rows))
    for p in (csv_path, json_path, *figures):
        log(f"wrote {p}")
    return {"rows": rows, "files": [csv_path, json_path, *figures]}
