"""Tempo accuracy of the crossfade's beat tracker on the sample set, against the drawn tempo.

The sample generator draws every track's tempo, so the truth is known. For each sample track
``deepaudio.analysis.beats.analyse_beats`` runs on the whole 30 s clip, and its tempo is compared
with the drawn one:

  * right      within 4 %
  * octave     twice or half the tempo, within 4 % (the beat-synced crossfade undoes these
               by matching octaves between A and B)
  * other      anything else (e.g. 4:3 or 3:4, a dotted-eighth pulse taken for the beat)

A right tempo may still put the beats between the drawn ones: for tracks at the right tempo the
beats are scored against the drawn grid (every beat at k x 60/bpm from the clip's start, bars of
four from 0) with mir_eval's F-measure (+-70 ms): "on the beat" when F >= 0.5, "off-beat" when
the grid shifted by half a beat scores so; and the downbeats of the on-beat ones likewise.

The sample set (seed 0) is never trained on; the beat corpus mixes in pieces of the same
synthesis with other seeds, so this is the same generator's unseen songs, not unseen music.
``--backend dsp`` runs the fallback tracker instead of the learned one.

Prints the counts per genre and every "other" track; asserts nothing.

    python bench/tempo.py [--fma datasets/fma] [--limit N] [--backend model|dsp]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

from deepaudio.analysis.beats import analyse_beats
from deepaudio.core.audio import load_audio
from deepaudio.core.errors import ToolkitError
from deepaudio.data.fma import fma_audio_path
from deepaudio.data.samples import render_track

ROOT = Path(__file__).resolve().parents[1]


def f_measure(reference: np.ndarray, estimate: np.ndarray) -> float:
    import mir_eval
    return float(mir_eval.beat.f_measure(mir_eval.beat.trim_beats(reference),
                                         mir_eval.beat.trim_beats(np.asarray(estimate))))


def category(estimate: float, truth: float) -> str:
    ratio = estimate / truth
    for name, target in (("right", 1.0), ("octave", 2.0), ("octave", 0.5)):
        if abs(ratio / target - 1) < 0.04:
            return name
    return "other"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--fma", default="datasets/fma", help="a sample set made by "
                   "'data_processor.py sample' (its sample_params.json gives the seed)")
    p.add_argument("--limit", type=int, default=None, help="only the first N tracks")
    p.add_argument("--backend", default="model", choices=["model", "dsp"])
    args = p.parse_args()
    import json

    import pandas as pd
    meta = Path(args.fma) / "fma_metadata"
    params = json.loads((meta / "sample_params.json").read_text())
    tracks = pd.read_csv(meta / "tracks.csv", header=[0, 1], index_col=0)
    genres = tracks[("track", "genre_top")].iloc[:args.limit]
    counts: dict[str, Counter] = {}
    others = []
    downs: list[float] = []
    t0 = time.perf_counter()
    for tid, genre in genres.items():
        # the tempo is drawn before anything that depends on the length: render a sliver
        truth = render_track(genre, int(tid), seed=params["seed"], seconds=0.05)[1]["bpm"]
        audio, sr = load_audio(fma_audio_path(Path(args.fma) / "fma_small", int(tid)))
        c = counts.setdefault(genre, Counter())
        try:
            grid = analyse_beats(audio, sr, backend=args.backend)
        except ToolkitError:
            c["no beat"] += 1
            continue
        cat = category(grid.tempo, truth)
        c[cat] += 1
        if cat == "other":
            others.append((int(tid), genre, truth, grid.tempo))
        if cat == "right":
            period = 60.0 / truth
            drawn = np.arange(0.0, audio.shape[1] / sr, period)
            if f_measure(drawn, grid.times) >= 0.5:
                c["on the beat"] += 1
                downs.append(f_measure(drawn[::4], grid.downbeats))
            elif f_measure(drawn + period / 2, grid.times) >= 0.5:
                c["off-beat"] += 1
    total = sum(counts.values(), Counter())
    n = sum(total[k] for k in ("right", "octave", "other", "no beat"))
    print(f"{n} sample tracks, {time.perf_counter() - t0:.0f} s")
    print(f"{'genre':<14} {'right':>6} {'octave':>7} {'other':>6} {'no beat':>8} | "
          f"{'right, on the beat':>19} {'off-beat':>9}")
    for genre in sorted(counts) + ["all"]:
        c = total if genre == "all" else counts[genre]
        print(f"{genre:<14} {c['right']:>6} {c['octave']:>7} {c['other']:>6} "
              f"{c['no beat']:>8} | {c['on the beat']:>19} {c['off-beat']:>9}")
    print(f"right {total['right'] / n:.1%}, right or octave "
          f"{(total['right'] + total['octave']) / n:.1%}; of the right ones on the beat "
          f"{total['on the beat'] / max(1, total['right']):.1%}, off-beat "
          f"{total['off-beat'] / max(1, total['right']):.1%}; downbeat F of the on-beat ones "
          f"{np.mean(downs) if downs else float('nan'):.3f}")
    for tid, genre, truth, estimate in others:
        print(f"  other: track {tid} ({genre}) drawn {truth:.1f} bpm, "
              f"estimated {estimate:.1f} ({estimate / truth:.2f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
