"""Beats and downbeats against exact annotations: ours against librosa's, with mir_eval.

The material is the MIDI beat set (``deepaudio/data/beatset.py``): nine General MIDI pieces
in rock, house, hip-hop (swung), ballad, funk, waltz, folk, jig and blues styles, at 68-150
bpm, in 4/4, 3/4 and 6/8, rendered by FluidSynth, with beat and bar times from the MIDI. For
each piece, ``deepaudio.core.beats.analyse_beats`` (ours) and ``librosa.beat.beat_track``
(the baseline, in the same run) are scored with mir_eval's F-measure (+-70 ms), CMLt and AMLt
(continuity, the latter allowing double/half tempo and off-beat); ours also with the metre
found (beats per bar) and the downbeat F-measure (librosa has no downbeats), and the median
distance (ms) of the beats found to the true ones. mir_eval's convention: the first 5 s are
not scored.
Prints the table and the means; asserts nothing.

    python bench/beats.py [--seconds 30] [--out /tmp/deepaudio-beatset]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from deepaudio.core.audio import load_audio
from deepaudio.core.beats import analyse_beats
from deepaudio.data.beatset import load_truth, write_beat_set


def scores(ref: np.ndarray, est: np.ndarray) -> dict:
    import mir_eval
    ref, est = mir_eval.beat.trim_beats(ref), mir_eval.beat.trim_beats(est)
    _, cmlt, _, amlt = mir_eval.beat.continuity(ref, est)
    # how far the beats found within 70 ms of a true beat are from it (median, ms)
    err = np.abs(ref[:, None] - est[None]).min(0) if len(ref) and len(est) else np.zeros(0)
    err = err[err <= 0.07]
    return {"F": mir_eval.beat.f_measure(ref, est), "CMLt": cmlt, "AMLt": amlt,
            "ms": 1000 * float(np.median(err)) if len(err) else float("nan")}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=30.0)
    p.add_argument("--out", default="/tmp/deepaudio-beatset")
    args = p.parse_args()
    import librosa
    import mir_eval
    t0 = time.perf_counter()
    wavs = write_beat_set(args.out, seconds=args.seconds)
    print(f"{len(wavs)} pieces of {args.seconds:g} s rendered by FluidSynth in "
          f"{time.perf_counter() - t0:.1f} s ({args.out})")
    head = (f"{'piece':<18}{'metre':>6}{'bpm':>5} | {'ours F':>7}{'CMLt':>6}{'AMLt':>6}"
            f"{'ms':>5}{'bar':>4}{'down F':>8} | {'librosa F':>10}{'CMLt':>6}{'AMLt':>6}"
            f"{'ms':>5}")
    print(head)
    rows = []
    for wav in wavs:
        truth = load_truth(wav)
        ref = np.asarray(truth["beats"])
        y, sr = load_audio(wav, mono=True)
        grid = analyse_beats(y, sr)
        ours = scores(ref, grid.times)
        down = grid.downbeats
        ref_down = np.asarray(truth["downbeats"])
        down_f = mir_eval.beat.f_measure(mir_eval.beat.trim_beats(ref_down),
                                         mir_eval.beat.trim_beats(down))
        _, lb = librosa.beat.beat_track(y=y[0], sr=sr, units="time")
        theirs = scores(ref, np.asarray(lb))
        rows.append((ours, down_f, theirs, truth["metre"]))
        print(f"{wav.stem:<18}{truth['metre']:>6}{truth['bpm']:>5.0f} | {ours['F']:>7.3f}"
              f"{ours['CMLt']:>6.3f}{ours['AMLt']:>6.3f}{ours['ms']:>5.1f}"
              f"{grid.beats_per_bar:>4}{down_f:>8.3f} | "
              f"{theirs['F']:>10.3f}{theirs['CMLt']:>6.3f}{theirs['AMLt']:>6.3f}"
              f"{theirs['ms']:>5.1f}")

    def mean(metres: tuple[str, ...]) -> str:
        sel = [r for r in rows if r[3] in metres]
        m = {k: np.mean([r[0][k] for r in sel]) for k in ("F", "CMLt", "AMLt", "ms")}
        t = {k: np.mean([r[2][k] for r in sel]) for k in ("F", "CMLt", "AMLt", "ms")}
        d = np.mean([r[1] for r in sel])
        return (f"{m['F']:>7.3f}{m['CMLt']:>6.3f}{m['AMLt']:>6.3f}{m['ms']:>5.1f}{'':>4}"
                f"{d:>8.3f} | "
                f"{t['F']:>10.3f}{t['CMLt']:>6.3f}{t['AMLt']:>6.3f}{t['ms']:>5.1f}")

    print(f"{'mean, all':<29} | {mean(('4/4', '3/4', '6/8'))}")
    print(f"{'mean, 4/4':<29} | {mean(('4/4',))}")
    print(f"{'mean, 3/4 and 6/8':<29} | {mean(('3/4', '6/8'))}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
