"""Key estimation against the keys the sample generator drew.

Renders ``--per-genre`` tracks of each sample-set genre whose style has a key (major or minor
scales: Electronic, Folk, Hip-Hop, Instrumental, Pop, Rock; Experimental's whole-tone and
International's hijaz scales have no major/minor key), estimates each mix's key with
``deepaudio.analysis.key.estimate_key`` (Krumhansl-Kessler and Temperley profiles; and from the
true stems: all but the drums, and the "other" stem, the chords, alone), and counts
exact answers apart from the near misses a key finder typically makes: the relative key, a
fifth away (an adjacent Camelot key), the parallel key (same tonic, other mode). Prints the
table; asserts nothing.

    python bench/key.py [--per-genre 10] [--seconds 30]
"""

from __future__ import annotations

import argparse
import collections
import time

from deepaudio.analysis.key import Key, NoKeyError, estimate_key, key_relation
from deepaudio.data.samples import STYLES, render_track

SR = 22050
MODES = {"major": "major", "minor": "minor"}


def kind(truth: Key, found: Key) -> str:
    if (truth.tonic, truth.mode) == (found.tonic, found.mode):
        return "exact"
    if truth.tonic == found.tonic:
        return "parallel"
    rel, _ = key_relation(truth, found)
    return {"relative": "relative", "adjacent": "fifth"}.get(rel, "other")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--per-genre", type=int, default=10)
    p.add_argument("--seconds", type=float, default=30.0)
    args = p.parse_args()
    genres = [g for g, s in STYLES.items() if s.scale in MODES]
    rows = {"mix, krumhansl": ("mix", "krumhansl"), "mix, temperley": ("mix", "temperley"),
            "no drums (stems), krumhansl": ("harmonic", "krumhansl"),
            "other stem, krumhansl": ("other", "krumhansl")}
    counts = {row: collections.Counter() for row in rows}
    seconds = 0.0
    for genre in genres:
        for i in range(args.per_genre):
            stems, drawn = render_track(genre, 1000 + i, seed=0, seconds=args.seconds, sr=SR)
            parts = {"mix": sum(stems.values()), "other": stems["other"],
                     "harmonic": stems["bass"] + stems["other"] + stems["vocals"]}
            truth = Key(drawn["root_midi"] % 12, MODES[STYLES[genre].scale])
            for row, c in counts.items():
                part, prof = rows[row]
                t0 = time.perf_counter()
                try:
                    c[kind(truth, estimate_key(parts[part], SR, profiles=prof))] += 1
                except NoKeyError:
                    c["no key"] += 1
                seconds += time.perf_counter() - t0
    n = len(genres) * args.per_genre
    cols = ("exact", "relative", "fifth", "parallel", "other", "no key")
    print(f"{n} sample-generator tracks of {args.seconds:g} s ({', '.join(genres)}); "
          f"{seconds / (len(rows) * n):.2f} s per estimate")
    print(f"{'estimated from, profile':<30}" + "".join(f"{c:>10}" for c in cols))
    for row, c in counts.items():
        print(f"{row:<30}" + "".join(f"{c[k] / n:>9.0%} " for k in cols))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
