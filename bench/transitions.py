"""DJ transitions with stems: planned stem schedules against today's whole-mix fade, the
planner's speed, and playlist mixes.

1. Quality, on pairs of sample-generator songs (60 s, 22.05 kHz, with their true stems):
   pairs of one genre 1.5-7 % apart in tempo. For each pair, today's beat-synchronous
   equal-power fade of the whole mixes (the latest downbeat of A with 16 beats after it, B
   from its first downbeat: the plan before the planner), the planner's best whole-mix fade,
   and the ``vocal_handoff`` and ``bass_swap`` schedules both at today's mix point (the
   schedule's effect alone) and at the planner's best point for them. Printed per pair and as
   means: Vassilakis roughness of the rendered overlap and its ratio to the two songs' own
   roughness there ("x alone": what mixing adds, the planner's measure; the absolute figure
   also depends on where in the songs the overlap is), Sethares dissonance, seconds in
   which both songs' vocals sound (each vocal stem at its gain above -20 dB of its loud
   level), and the planner's score.
2. Speed: planning and rendering one ``vocal_handoff`` transition of two 4-minute songs
   (44.1 kHz FLAC) with their stems cached as FLAC folders: cold (first call in the process)
   and warm (median of 3). Target < 3 s warm on 2 cores.
3. Playlists: ``crossfade.py mix`` of 5, 10 and 20 four-minute songs to MP3, each in its own
   process: real-time factor (mix duration / wall time) and peak resident memory, which must
   stay flat in the number of songs.

Key accuracy against the keys the generator drew is ``bench/key.py``'s table. Prints the
tables; asserts nothing.

    python bench/transitions.py [--pairs 6] [--playlist 10]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _timing import peak_rss_mb

from deepaudio.core.audio import save_audio
from deepaudio.crossfade.measures import transition_measures
from deepaudio.crossfade.songs import crossfade_songs
from deepaudio.data.samples import render_track
from deepaudio.mixer.stems import stem_source

GENRES = ("Pop", "Rock", "Hip-Hop", "Folk", "Electronic", "Instrumental")
QUALITY_SR = 22050
SPEED_SR = 44100
LABELS = ("today", "planned", "vocal_handoff @today", "vocal_handoff planned",
          "bass_swap @today", "bass_swap planned")


def write_song(folder: Path, genre: str, tid: int, *, seconds: float, sr: int,
               tile: int = 1) -> tuple[Path, Path]:
    """A sample-generator song and its stem folder (FLAC), ``tile`` times its length."""
    stems, _ = render_track(genre, tid, seed=0, seconds=seconds, sr=sr)
    name = f"{genre}-{tid}"
    stem_dir = folder / f"{name}_stems"
    stem_dir.mkdir(parents=True, exist_ok=True)
    for s, x in stems.items():
        save_audio(stem_dir / f"{s}.flac", np.tile(x, (1, tile)), sr, sample_format="pcm24")
    mix = np.tile(np.sum(list(stems.values()), axis=0), (1, tile))
    return save_audio(folder / f"{name}.flac", mix, sr, sample_format="pcm24"), stem_dir


def drawn_bpm(genre: str, tid: int) -> float:
    return render_track(genre, tid, seed=0, seconds=0.1, sr=8000)[1]["bpm"]


def close_tempo_pairs(n: int) -> list[tuple[str, int, str, int]]:
    """``n`` pairs of songs of one genre whose tempi differ by 1.5-7 % (a beat-synchronous
    transition stretches B a little), genres in turn, each song used once."""
    pairs: list[tuple[str, int, str, int]] = []
    used: set[tuple[str, int]] = set()
    bpm = {g: {i: drawn_bpm(g, i) for i in range(1, 40)} for g in GENRES}
    while len(pairs) < n:
        before = len(pairs)
        for g in GENRES:
            pair = next(((i, j) for i in bpm[g] for j in bpm[g] if i < j
                         and (g, i) not in used and (g, j) not in used
                         and 0.015 < abs(bpm[g][i] / bpm[g][j] - 1) < 0.07), None)
            if pair and len(pairs) < n:
                pairs.append((g, pair[0], g, pair[1]))
                used |= {(g, pair[0]), (g, pair[1])}
        if len(pairs) == before:
            break
    return pairs


def measure(out: dict) -> dict:
    s = out["sidecar"]
    sr = out["sr"]
    i0 = int(round(s["overlap_start_in_output_s"] * sr))
    n = int(round(s["seconds"] * sr))
    m = transition_measures(out["audio"][:, i0:i0 + n], sr, models=("min",))
    lo = out["overlap_start"]
    alone = [transition_measures(out[k][:, lo:lo + n], sr, models=("min",))["roughness"]
             for k in ("part_a", "part_b")]
    cand = s["candidates"][s["candidate"]] if s["candidates"] else None
    return {"roughness": m["roughness"], "dissonance": m["dissonance_min"],
            "ratio": m["roughness"] / max(np.mean(alone), 1e-12),
            "vocal_overlap_s": cand["parts"]["vocal_overlap_s"] if cand else float("nan"),
            "score": cand["score"] if cand else float("nan"), "mode": s["mode"]}


def quality(folder: Path, pairs: int) -> None:
    print(f"1. planned stem transitions against today's whole-mix fade ({QUALITY_SR} Hz, "
          "60 s songs, 16 beats)")
    head = (f"{'pair':<31} {'transition':<22} {'roughness':>9} {'x alone':>7} "
            f"{'dissonance':>10} {'vocals both':>11} {'score':>6}")
    print(head)
    print("-" * len(head))
    rows: dict[str, list[dict]] = {k: [] for k in LABELS}
    for ga, ia, gb, ib in close_tempo_pairs(pairs):
        a, sa = write_song(folder, ga, ia, seconds=60.0, sr=QUALITY_SR)
        b, sb = write_song(folder, gb, ib, seconds=60.0, sr=QUALITY_SR)
        kw = {"sr": QUALITY_SR, "beat_sync": True, "context": 2.0,
              "stems_a": stem_source(sa), "stems_b": stem_source(sb)}
        first = crossfade_songs(a, b, **kw)
        cands = first["sidecar"]["candidates"]
        if not cands:
            print(f"{a.stem + ' > ' + b.stem:<31} {first['sidecar']['mode']}: skipped "
                  f"({first['sidecar']['fallback_reason'] or 'tempi too far apart'})")
            continue
        # today's plan: A's latest downbeat with 16 beats after it, B from its first downbeat
        today = max((c for c in cands if c["b_bar"] == 0), key=lambda c: c["a_start_in_song_s"])
        point = (today["a_start_in_song_s"], today["b_entry_in_song_s"])

        def rank_of(side: dict, point: tuple = point) -> int:
            return next(c["rank"] for c in side["candidates"]
                        if (c["a_start_in_song_s"], c["b_entry_in_song_s"]) == point)

        results = {"today": measure(crossfade_songs(a, b, candidate=today["rank"], **kw)),
                   "planned": measure(first)}
        for name in ("vocal_handoff", "bass_swap"):
            best = crossfade_songs(a, b, schedule=name, **kw)
            same = crossfade_songs(a, b, schedule=name, candidate=rank_of(best["sidecar"]),
                                   **kw)
            results[f"{name} @today"] = measure(same)
            results[f"{name} planned"] = measure(best)
        for name, r in results.items():
            rows[name].append(r)
            label = f"{a.stem} > {b.stem}" if name == "today" else ""
            print(f"{label:<31} {name:<22} {r['roughness']:>9.4f} {r['ratio']:>7.3f} "
                  f"{r['dissonance']:>10.4f} {r['vocal_overlap_s']:>9.2f} s {r['score']:>6.3f}")
    print("-" * len(head))
    for name, rs in rows.items():
        if rs:
            mean = {k: statistics.fmean(r[k] for r in rs)
                    for k in ("roughness", "ratio", "dissonance", "vocal_overlap_s", "score")}
            print(f"{'mean of ' + str(len(rs)) + ' pairs':<31} {name:<22} "
                  f"{mean['roughness']:>9.4f} {mean['ratio']:>7.3f} {mean['dissonance']:>10.4f} "
                  f"{mean['vocal_overlap_s']:>9.2f} s {mean['score']:>6.3f}")
    print()


def speed(folder: Path) -> None:
    a, sa = write_song(folder, "Pop", 8, seconds=30.0, sr=SPEED_SR, tile=8)
    b, sb = write_song(folder, "Pop", 9, seconds=30.0, sr=SPEED_SR, tile=8)

    def once() -> float:
        t = time.perf_counter()
        crossfade_songs(a, b, sr=SPEED_SR, beat_sync=True, schedule="vocal_handoff",
                        stems_a=stem_source(sa), stems_b=stem_source(sb))
        return time.perf_counter() - t

    cold = once()
    warm = statistics.median(once() for _ in range(3))
    print("2. planning and rendering one vocal_handoff transition of two 4-minute songs, "
          "stems cached")
    print(f"   cold {cold:.2f} s, warm {warm:.2f} s (target < 3 s warm)")
    print()


CHILD = """
import json, sys, time
sys.path.insert(0, {bench!r})
from _timing import peak_rss_mb
from deepaudio.crossfade.playlist import render_mix
songs, out = json.loads(sys.argv[1]), sys.argv[2]
t = time.perf_counter()
rep = render_mix(songs, out, sr={sr})
print(json.dumps({{"wall": time.perf_counter() - t, "duration": rep["duration_s"],
                   "peak_mb": peak_rss_mb(), "fallbacks": sum(
                       1 for tr in rep["transitions"] if tr["fallback_reason"]),
                   "modes": [tr["mode"] for tr in rep["transitions"]]}}))
"""


def playlists(folder: Path, longest: int) -> None:
    # five Pop songs within 8 % of one another's tempo: every transition beat-synchronous
    bpm = {i: drawn_bpm("Pop", i) for i in range(1, 60)}
    ids = sorted(bpm, key=lambda i: abs(bpm[i] - 112.0))[:5]
    songs = [write_song(folder, "Pop", i, seconds=30.0, sr=SPEED_SR, tile=8)[0] for i in ids]
    print("3. playlist mixes of 4-minute songs to MP3 (one process each)")
    print(f"   {'songs':>5} {'mix':>8} {'wall':>8} {'x real time':>11} {'peak memory':>12}")
    for n in sorted({5, longest, 2 * longest}):
        playlist = [str(songs[k % len(songs)]) for k in range(n)]
        code = CHILD.format(bench=str(Path(__file__).parent), sr=SPEED_SR)
        res = subprocess.run([sys.executable, "-c", code, json.dumps(playlist),
                              str(folder / f"mix{n}.mp3")], capture_output=True, text=True)
        if res.returncode:
            print(res.stderr[-2000:])
            raise SystemExit(1)
        r = json.loads(res.stdout.strip().splitlines()[-1])
        print(f"   {n:>5} {r['duration'] / 60:>6.1f} m {r['wall']:>6.1f} s "
              f"{r['duration'] / r['wall']:>10.1f}x {r['peak_mb']:>9.0f} MB   "
              f"({', '.join(sorted(set(r['modes'])))})")
    print(f"   (this process, for scale: {peak_rss_mb():.0f} MB)")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--pairs", type=int, default=6)
    p.add_argument("--playlist", type=int, default=10, help="songs in the long playlist")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        quality(folder / "pairs", args.pairs)
        speed(folder / "speed")
        playlists(folder / "playlist", args.playlist)
    return 0


if __name__ == "__main__":
    sys.exit(main())
