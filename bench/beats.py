"""Beats, downbeats, metre and tempo against exact annotations, with the field's trackers beside
ours in the same run.

Sets (none of them trained on; see docs/analysis.md):

- ``eval``: the beat corpus' evaluation split (``data_processor.py beat-corpus --split eval``,
  2 h by default): other seeds, pieces and soundfonts (TimGM6mb, csound's) than the training
  split, augmented alike;
- ``midi``: the nine hand-written MIDI pieces of ``deepaudio/data/beatset.py`` (4/4, 3/4,
  6/8), rendered by FluidSynth;
- ``real`` (when ``datasets/debian`` exists: ``data_processor.py corpus``): real recordings,
  scored against madmom's beats (agreement, not truth).

Trackers: ours (the learned model, ``analyse_beats(backend="model")``), ours (the DSP
fallback), librosa's ``beat_track``, essentia's ``BeatTrackerMultiFeature`` and madmom's RNN +
DBN beat and downbeat trackers (both run by ``bench/anchors.py`` in ``.venv-anchors``: ``make
bench-anchors``; their answers are cached in ``<corpus>/anchors.jsonl``, so a rerun computes
only ours). Measures (mir_eval, first 5 s not scored): beat F-measure (+-70 ms), CMLt, AMLt,
downbeat F, tempo Acc1 (within 4 %) and Acc2 (also at x2, x3, /2, /3), metre accuracy (bars of
2, 3 or 4 beats as annotated), and seconds of computing per minute of audio. Prints the tables;
asserts nothing.

    python bench/beats.py [--corpus datasets/beats] [--pieces N] [--real N]
    python bench/beats.py --weights models/runs/beats/beat_tcn --only-model    # a retrain
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

from deepaudio.analysis.beats import NoBeatError, analyse_beats
from deepaudio.core.audio import load_audio
from deepaudio.core.datasets import find_shards, read_shards
from deepaudio.core.errors import ToolkitError
from deepaudio.data.beatset import load_truth, write_beat_set

ROOT = Path(__file__).resolve().parents[1]
ANCHOR_PY = ROOT / ".venv-anchors" / "bin" / "python"
TRACKERS = ("model", "dsp", "librosa", "essentia", "madmom")


def tempo_of(beats: np.ndarray) -> float:
    ibi = np.diff(beats)
    return float(60 / np.median(ibi)) if len(ibi) else 0.0


def score(truth: dict, est: dict) -> dict:
    import mir_eval
    ref = mir_eval.beat.trim_beats(np.asarray(truth["beats"], float))
    beats = mir_eval.beat.trim_beats(np.asarray(est.get("beats", []), float))
    out = {"F": mir_eval.beat.f_measure(ref, beats)}
    _, out["CMLt"], _, out["AMLt"] = mir_eval.beat.continuity(ref, beats) if len(beats) > 1 \
        else (0, 0.0, 0, 0.0)
    if "downbeats" in est:
        out["down F"] = mir_eval.beat.f_measure(
            mir_eval.beat.trim_beats(np.asarray(truth["downbeats"], float)),
            mir_eval.beat.trim_beats(np.asarray(est["downbeats"], float)))
    if "beats_per_bar" in est:
        out["metre"] = float(est["beats_per_bar"] == truth["beats_per_bar"])
    t_true, t_est = tempo_of(np.asarray(truth["beats"])), tempo_of(np.asarray(
        est.get("beats", [])))
    ok = lambda f: t_est > 0 and abs(t_est / (f * t_true) - 1) <= 0.04  # noqa: E731
    out["Acc1"] = float(ok(1))
    out["Acc2"] = float(any(ok(f) for f in (1, 2, 3, 1 / 2, 1 / 3)))
    return out


WEIGHTS: str | None = None          # --weights: another beat model than the shipped one


def ours(y: np.ndarray, sr: int, backend: str) -> dict:
    t0 = time.perf_counter()
    try:
        grid = analyse_beats(y, sr, backend=backend, weights=WEIGHTS)  # type: ignore[arg-type]
        out = {"beats": grid.times.tolist(), "downbeats": grid.downbeats.tolist(),
               "beats_per_bar": grid.beats_per_bar}
    except NoBeatError:                  # missing or bad weights stop the run instead
        out = {"beats": [], "downbeats": [], "beats_per_bar": 0}
    out["time"] = time.perf_counter() - t0
    return out


def librosa_beats(y: np.ndarray, sr: int) -> dict:
    import librosa
    t0 = time.perf_counter()
    _, beats = librosa.beat.beat_track(y=y[0], sr=sr, units="time")
    return {"beats": np.asarray(beats).tolist(), "time": time.perf_counter() - t0}


def anchors(paths: list[Path], cache: Path, *, keys: bool = False) -> dict[str, dict]:
    """madmom's and essentia's answers for ``paths`` (beats, or ``keys``), from the cache or
    computed now."""
    known: dict[str, dict] = {}
    if cache.is_file():
        for line in cache.read_text().splitlines():
            rec = json.loads(line)
            known[rec["key"]] = rec
    key = lambda p: f"{p.resolve()}:{p.stat().st_size}:{int(p.stat().st_mtime)}"  # noqa: E731
    todo = [p for p in paths if key(p) not in known]
    if todo and not ANCHOR_PY.is_file():
        print(f"  ({len(todo)} files lack madmom/essentia answers: make bench-anchors)")
        return {str(p): known[key(p)] for p in paths if key(p) in known}
    if todo:
        workers = min(len(todo), os.cpu_count() or 1)
        print(f"  madmom and essentia on {len(todo)} files, {workers} processes (cached in "
              f"{cache}) ...", flush=True)
        procs = []
        for w in range(workers):            # one single-threaded process per core
            proc = subprocess.Popen([str(ANCHOR_PY), str(ROOT / "bench" / "anchors.py")]
                                    + (["--keys"] if keys else []),
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                    env={**os.environ, "OMP_NUM_THREADS": "1"})
            assert proc.stdin
            proc.stdin.write(json.dumps([str(p) for p in todo[w::workers]]))
            proc.stdin.close()
            procs.append((proc, todo[w::workers]))
        lock = threading.Lock()

        def read(proc, mine, f) -> None:      # each process' answers, as they come
            for line, p in zip(proc.stdout, mine):
                rec = {**json.loads(line), "key": key(p)}
                with lock:
                    known[rec["key"]] = rec
                    f.write(json.dumps(rec) + "\n")
                    f.flush()
            proc.wait()
        with cache.open("a") as f:
            threads = [threading.Thread(target=read, args=(proc, mine, f))
                       for proc, mine in procs]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
    return {str(p): known[key(p)] for p in paths if key(p) in known}


def anchor_keys(paths: list[Path], cache: Path) -> dict[str, list[str | None]]:
    """essentia's (edma, bgate) and madmom's keys for ``paths``, as "C minor" names."""
    found = anchors(paths, cache, keys=True)
    if len(found) < len(paths):
        return {}
    return {f"essentia, {k}" if k != "madmom" else "madmom CNN":
            [found[str(p)]["keys"][k] for p in paths] for k in ("edma", "bgate", "madmom")}


def run_set(name: str, items: list[tuple[Path, dict]], cache: Path,
            only_model: bool = False) -> None:
    """Every tracker on every (audio file, truth) of a set; prints its table."""
    found = {} if only_model else anchors([p for p, _ in items], cache)
    rows: dict[str, list[dict]] = {t: [] for t in TRACKERS}
    seconds = {t: 0.0 for t in TRACKERS}
    minutes = 0.0
    for path, truth in items:
        y, sr = load_audio(path, mono=True)
        minutes += y.shape[1] / sr / 60
        ests = {"model": ours(y, sr, "model")}
        if not only_model:
            ests.update(dsp=ours(y, sr, "dsp"), librosa=librosa_beats(y, sr))
        a = found.get(str(path))
        if a is not None:
            ests["essentia"] = a["essentia"]
            ests["madmom"] = {**a["madmom"], "time": a["madmom"]["time"]
                              + a["madmom"]["downbeat_time"]}
        for t, est in ests.items():
            rows[t].append(score(truth, est))
            seconds[t] += est["time"]
    measures = ("F", "CMLt", "AMLt", "down F", "Acc1", "Acc2", "metre")
    print(f"\n{name}: {len(items)} pieces, {minutes:.0f} min of audio")
    print(f"{'tracker':<14}" + "".join(f"{m:>8}" for m in measures) + f"{'s/min':>8}")
    for t in TRACKERS:
        if not rows[t]:
            print(f"{t:<14}  (not run)")
            continue
        cells = []
        for m in measures:
            vals = [r[m] for r in rows[t] if m in r]
            cells.append(f"{np.mean(vals):>8.3f}" if vals else f"{'-':>8}")
        print(f"{t:<14}" + "".join(cells) + f"{seconds[t] / minutes:>8.2f}")


def eval_items(corpus: Path, limit: int | None) -> list[tuple[Path, dict]]:
    items = []
    for piece in read_shards(find_shards(corpus, "eval")):
        if "audio" not in piece.meta:
            raise ToolkitError(f"{corpus}: the eval shards keep no audio; rebuild them")
        items.append((corpus / "eval-audio" / piece.meta["audio"],
                      {"beats": piece.beats, "downbeats": piece.downbeats,
                       "beats_per_bar": piece.meta["beats_per_bar"]}))
    return items[:limit]


def midi_items(out: Path) -> list[tuple[Path, dict]]:
    return [(w, load_truth(w)) for w in write_beat_set(out, seconds=30.0)]


def real_items(folder: Path, limit: int, out: Path) -> list[tuple[Path, dict]]:
    """The first minute of the first ``limit`` songs, with madmom's beats as the reference."""
    from deepaudio.core.audio import find_audio_files, save_audio
    out.mkdir(parents=True, exist_ok=True)
    clips = []
    for song in find_audio_files(folder)[:limit]:
        clip = out / f"{song.stem}.flac"
        if not clip.is_file():
            y, sr = load_audio(song, mono=True, duration=60.0)
            save_audio(clip, y, sr)
        clips.append(clip)
    found = anchors(clips, out / "anchors.jsonl")
    return [(c, {"beats": found[str(c)]["madmom"]["beats"],
                 "downbeats": found[str(c)]["madmom"]["downbeats"],
                 "beats_per_bar": found[str(c)]["madmom"]["beats_per_bar"]})
            for c in clips if str(c) in found]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--corpus", default="datasets/beats")
    p.add_argument("--pieces", type=int, default=None, help="only the first N eval pieces")
    p.add_argument("--real", type=int, default=20, help="real songs (datasets/debian)")
    p.add_argument("--out", default="/tmp/deepaudio-beatset")
    p.add_argument("--weights", help="a beat run folder or weights file (default: shipped)")
    p.add_argument("--only-model", action="store_true", help="only ours (the learned model)")
    args = p.parse_args()
    global WEIGHTS
    WEIGHTS = args.weights
    corpus = Path(args.corpus)
    run_set("eval corpus (TimGM6mb, csound; unseen seeds)", eval_items(corpus, args.pieces),
            corpus / "anchors.jsonl", args.only_model)
    midi = Path(args.out)
    run_set("hand-written MIDI pieces", midi_items(midi), midi / "anchors.jsonl",
            args.only_model)
    if args.only_model:
        return 0
    debian = ROOT / "datasets" / "debian"
    if debian.is_dir() and args.real:
        items = real_items(debian, args.real, Path(args.out) / "real")
        if items:
            run_set("real recordings, against madmom's beats (agreement)", items,
                    Path(args.out) / "real" / "anchors.jsonl")
    else:
        print("\n(real recordings: python data_processor.py corpus --to datasets/debian)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
