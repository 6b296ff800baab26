"""Keys against known keys: ours beside essentia's and madmom's key finders, MIREX-scored.

Sets:

- ``sample``: ``--per-genre`` tracks of each sample-set genre whose style has a key (major or
  minor scales: Electronic, Folk, Hip-Hop, Instrumental, Pop, Rock), the key drawn being the
  root and the style's scale; ours also from the true stems (all but the drums);
- ``corpus``: the beat corpus' evaluation pieces (``data_processor.py beat-corpus --split
  eval``) without a pitch shift: drums, bass, melodies with chromatic passing notes, borrowed
  chords, harmonic minor's raised seventh, through two soundfonts (TimGM6mb, csound's), with
  EQ, reverb, noise and lossy coding; harder than chord loops.

Estimators: ours (``deepaudio.analysis.key.estimate_key``, Krumhansl-Kessler and Temperley
profiles), essentia's ``KeyExtractor`` with the edma and bgate profiles, and madmom's CNN key
model (both run by ``bench/anchors.py --keys`` in ``.venv-anchors``: ``make bench-anchors``;
cached). Scores: exact accuracy and the MIREX weighted score (``mir_eval.key``: exact 1, a
fifth above 0.5, relative 0.3, parallel 0.2); a song where no key is found scores 0. Prints the
tables; asserts nothing.

    python bench/key.py [--per-genre 10] [--seconds 30] [--corpus datasets/beats]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from deepaudio.analysis.key import MAJOR_NAMES, MINOR_NAMES, Key, NoKeyError, estimate_key
from deepaudio.core.audio import load_audio, save_audio
from deepaudio.core.datasets import find_shards, read_shards
from deepaudio.data.samples import STYLES, render_track

sys.path.insert(0, str(Path(__file__).resolve().parent))
from beats import anchor_keys  # noqa: E402

SR = 22050
MODES = {"major": "major", "minor": "minor"}


def name(k: Key) -> str:
    return f"{(MAJOR_NAMES if k.mode == 'major' else MINOR_NAMES)[k.tonic]} {k.mode}"


def mirex(ref: str, est: str | None) -> float:
    import mir_eval
    return 0.0 if est is None else float(mir_eval.key.weighted_score(ref, est))


def ours(y: np.ndarray, profiles: str) -> tuple[str | None, float]:
    t0 = time.perf_counter()
    try:
        return name(estimate_key(y, SR, profiles=profiles)), time.perf_counter() - t0
    except NoKeyError:
        return None, time.perf_counter() - t0


def table(title: str, truths: list[str], answers: dict[str, list[str | None]]) -> None:
    print(f"\n{title}: {len(truths)} pieces")
    print(f"{'estimator':<30}{'exact':>8}{'MIREX':>8}{'no key':>8}")
    for est, found in answers.items():
        exact = np.mean([f is not None and mirex(t, f) == 1.0 for t, f in zip(truths, found)])
        score = np.mean([mirex(t, f) for t, f in zip(truths, found)])
        none = np.mean([f is None for f in found])
        print(f"{est:<30}{exact:>8.3f}{score:>8.3f}{none:>8.3f}")


def sample_set(per_genre: int, seconds: float, out: Path) -> None:
    genres = [g for g, s in STYLES.items() if s.scale in MODES]
    truths, paths = [], []
    answers: dict[str, list[str | None]] = {"ours, krumhansl": [], "ours, temperley": [],
                                            "ours, no-drum stems, krumhansl": []}
    out.mkdir(parents=True, exist_ok=True)
    for genre in genres:
        for i in range(per_genre):
            stems, drawn = render_track(genre, 1000 + i, seed=0, seconds=seconds, sr=SR)
            mix = sum(stems.values())
            truths.append(name(Key(drawn["root_midi"] % 12, MODES[STYLES[genre].scale])))
            answers["ours, krumhansl"].append(ours(mix, "krumhansl")[0])
            answers["ours, temperley"].append(ours(mix, "temperley")[0])
            answers["ours, no-drum stems, krumhansl"].append(
                ours(stems["bass"] + stems["other"] + stems["vocals"], "krumhansl")[0])
            path = out / f"{genre}-{i}.flac"
            if not path.is_file():
                save_audio(path, mix, SR)
            paths.append(path)
    answers.update(anchor_keys(paths, out / "anchors-keys.jsonl"))
    table(f"sample set ({', '.join(genres)}; {seconds:g} s)", truths, answers)


def corpus_set(corpus: Path) -> None:
    truths, paths = [], []
    answers: dict[str, list[str | None]] = {"ours, krumhansl": [], "ours, temperley": []}
    for piece in read_shards(find_shards(corpus, "eval")):
        meta = piece.meta
        if "key" not in meta or "audio" not in meta or any(
                "st" in a.split() for a in meta["augment"] if not a.endswith("+0.00 st")):
            continue
        path = corpus / "eval-audio" / meta["audio"]
        y, _ = load_audio(path, sr=SR)
        truths.append(name(Key(int(meta["key"]), meta["mode"])))
        for prof in ("krumhansl", "temperley"):
            answers[f"ours, {prof}"].append(ours(y, prof)[0])
        paths.append(path)
    answers.update(anchor_keys(paths, corpus / "anchors-keys.jsonl"))
    table("beat corpus, evaluation pieces without a pitch shift", truths, answers)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--per-genre", type=int, default=10)
    p.add_argument("--seconds", type=float, default=30.0)
    p.add_argument("--corpus", default="datasets/beats")
    p.add_argument("--out", default="/tmp/deepaudio-keyset")
    args = p.parse_args()
    sample_set(args.per_genre, args.seconds, Path(args.out))
    if Path(args.corpus).is_dir():
        corpus_set(Path(args.corpus))
    else:
        print(f"\n({args.corpus} not found: make beat-corpus for the harder key set)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
