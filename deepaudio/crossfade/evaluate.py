"""``crossfade.py evaluate``: every style rendered on one song pair, measured and plotted.

The table has, per style, the mean Vassilakis roughness (raw and on the timbral 0..100 scale)
and the Sethares dissonance (min and product models) over the overlap, and the loudness dip at
the overlap's midpoint (:mod:`deepaudio.crossfade.measures`). It is printed and written as
``measures.csv`` and ``measures.json``; ``transitions.png`` draws each transition's waveform
with its two gain curves over it, and ``encodings.png`` the WaveNet encodings (end of A, start
of B, the faded mix) when neural styles were rendered.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from deepaudio.crossfade import render as cr
from deepaudio.crossfade.measures import loudness_dip_db, transition_measures
from deepaudio.crossfade.neural import crossfade_neural_styles
from deepaudio.crossfade.plots import format_table, plot_encodings, plot_transitions, write_table
from deepaudio.crossfade.songs import prepare_pair
from deepaudio.networks.checkpoint import load_wavenet
from deepaudio.networks.wavenet import SR


def measure_transition(out: dict) -> dict:
    """Measures of a rendered transition dict (``audio``, ``part_a``, ``part_b``,
    ``overlap_start``, ``overlap``, ``sr``)."""
    sr, i0, n = out["sr"], out["overlap_start"], out["overlap"]
    row = transition_measures(out["audio"][:, i0:i0 + n], sr)
    try:
        row["loudness_dip_db"] = loudness_dip_db(out["audio"], out["part_a"], out["part_b"], sr,
                                                 center=i0 + n // 2)
    except ValueError:          # overlap and context shorter than one 400 ms block
        row["loudness_dip_db"] = float("nan")
    return {k: float(f"{v:.5g}") for k, v in row.items()}


def evaluate(a_path, b_path, out_dir, *, sr: int = 44100, seconds: float = 4.0,
             context: float | None = 5.0, seed: int = 0, threshold: float = 0.15,
             weights=None, device: str = "cpu", log=print) -> dict:
    """Render every simple style (and the neural ones with ``weights``), measure, plot."""
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
        model = load_wavenet(Path(os.path.expanduser(weights)), device=device)
        pair16 = prepare_pair(a_path, b_path, SR, threshold=threshold, mono=True)
        neural_outs = {}
        decoded = crossfade_neural_styles(a_path, b_path, weights, styles=list(cr.NEURAL_RAMPS),
                                          seconds=seconds, context=context, seed=seed,
                                          threshold=threshold, model=model, pair=pair16)
        gen = next(iter(decoded.values()))["sidecar"]["generation"]
        log(f"decoded {len(decoded)} neural fades in one batch: {gen['samples']} samples in "
            f"{gen['seconds']:.1f} s ({gen['samples_per_s']:.0f} samples/s)")
        for style, neural in decoded.items():
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
