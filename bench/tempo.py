"""Tempo accuracy of the crossfade's beat tracker on the sample set, against the drawn tempo.

The sample generator draws every track's tempo, so the truth is known. For each sample track
``deepaudio.core.beats.analyse_beats`` runs on the whole 30 s clip, and its tempo is compared with
the drawn one:

  * right      within 4 %
  * octave     twice or half the tempo, within 4 % (the beat-synced crossfade undoes these
               by matching octaves between A and B)
  * other      anything else (e.g. 4:3 or 3:4, a dotted-eighth pulse taken for the beat)

Prints the counts per genre and every "other" track; asserts nothing.

    python bench/tempo.py [--fma datasets/fma] [--limit N]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

from deepaudio.core.audio import load_audio
from deepaudio.core.beats import analyse_beats
from deepaudio.data.fma import fma_audio_path
from deepaudio.data.samples import render_track

ROOT = Path(__file__).resolve().parents[1]


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
    args = p.parse_args()
    import json

    import pandas as pd
    meta = Path(args.fma) / "fma_metadata"
    params = json.loads((meta / "sample_params.json").read_text())
    tracks = pd.read_csv(meta / "tracks.csv", header=[0, 1], index_col=0)
    genres = tracks[("track", "genre_top")].iloc[:args.limit]
    counts: dict[str, Counter] = {}
    others = []
    t0 = time.perf_counter()
    for tid, genre in genres.items():
        # the tempo is drawn before anything that depends on the length: render a sliver
        truth = render_track(genre, int(tid), seed=params["seed"], seconds=0.05)[1]["bpm"]
        audio, sr = load_audio(fma_audio_path(Path(args.fma) / "fma_small", int(tid)))
        estimate = analyse_beats(audio, sr).tempo
        cat = category(estimate, truth)
        counts.setdefault(genre, Counter())[cat] += 1
        if cat == "other":
            others.append((int(tid), genre, truth, estimate))
    total = sum(counts.values(), Counter())
    n = sum(total.values())
    print(f"{n} sample tracks, {time.perf_counter() - t0:.0f} s")
    print(f"{'genre':<14} {'right':>6} {'octave':>7} {'other':>6}")
    for genre in sorted(counts) + ["all"]:
        c = total if genre == "all" else counts[genre]
        print(f"{genre:<14} {c['right']:>6} {c['octave']:>7} {c['other']:>6}")
    print(f"right {total['right'] / n:.1%}, right or octave "
          f"{(total['right'] + total['octave']) / n:.1%}")
    for tid, genre, truth, estimate in others:
        print(f"  other: track {tid} ({genre}) drawn {truth:.1f} bpm, "
              f"estimated {estimate:.1f} ({estimate / truth:.2f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
