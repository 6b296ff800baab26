"""Crossfade speed: a beat-synced crossfade of two 4-minute MP3s, and WaveNet generation.

Prints seconds for ``crossfade.py simple A B -o OUT --beat-sync`` done in-process, decode and
the output write included:
  * ours cold   the first call in this process (imports included)
  * ours warm   median of 3 later calls: decode only the last/first ~95 s, analyse 60 s of
                each, stretch only the part of B that is heard
  * whole-song  the same steps on the whole songs (decode, trim, analyse and stretch all of
                B): the baseline, measured in the same run
Target: ours warm < 3 s on 2 cores. Then the WaveNet autoencoder's small preset's
decoder in samples/s, fast (per-layer FIFO queues) against naive recomputation over the
receptive field (target >= 20x). Naive is timed over 1536 samples, most of them past the
receptive field (1025 samples) where it pays its steady-state cost; the first ones have a
shorter context, so the ratio is still a slight underestimate.

    python bench/crossfade.py [--naive-samples 1536] [--fast-samples 4096]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
from _timing import timed

from deepaudio.analysis.beats import analyse_beats
from deepaudio.core.audio import load_audio, save_audio
from deepaudio.crossfade.plan import plan_beat_sync
from deepaudio.crossfade.render import (
    loudness_match_gain_db,
    render_beat_sync,
    time_stretch,
    trim_silence,
)
from deepaudio.crossfade.songs import crossfade_songs, write_output
from deepaudio.data.samples import render_track
from deepaudio.networks.wavenet import WaveNetAutoencoder, generation_speed, preset

ROOT = Path(__file__).resolve().parents[1]

SR = 44100
MINUTES = 4


def four_minute_song(track_id: int, out: Path) -> float:
    """An Electronic sample-music track of 30 s tiled to 4 minutes, as MP3; returns its bpm."""
    stems, drawn = render_track("Electronic", track_id, seed=0, seconds=30.0, sr=SR)
    mix = sum(stems.values())
    save_audio(out, np.tile(mix, (1, MINUTES * 2)), SR)
    return drawn["bpm"]


def pick_tracks() -> tuple[int, int]:
    """Two Electronic track ids whose tempi differ by 1.5-7 % (so B is stretched)."""
    bpm = {i: render_track("Electronic", i, seed=0, seconds=0.1, sr=8000)[1]["bpm"]
           for i in range(1, 40)}
    for i in bpm:
        for j in bpm:
            if 0.015 < abs(bpm[i] / bpm[j] - 1) < 0.07:
                return i, j
    raise SystemExit("error: no Electronic pair with close tempi")


def ours(a: Path, b: Path, out: Path) -> dict:
    res = crossfade_songs(a, b, sr=SR, beat_sync=True, beats=16, context=5.0)
    write_output(out, res)
    return res["sidecar"]


def whole_song(a: Path, b: Path, out: Path) -> None:
    """The baseline: whole songs decoded and analysed, all of B stretched."""
    x, _ = load_audio(a, mono=False)
    y, _ = load_audio(b, mono=False)
    x, _ = trim_silence(x, SR)
    y, _ = trim_silence(y, SR)
    gain = loudness_match_gain_db(x, y, SR)["gain_db"]
    y = y * np.float32(10 ** (gain / 20))
    plan = plan_beat_sync(analyse_beats(x, SR), analyse_beats(y, SR),
                          a_duration=x.shape[1] / SR, b_duration=y.shape[1] / SR, beats=16)
    rate = plan["stretch_rate"] if plan["mode"] == "beat_sync" else 1.0
    y = time_stretch(y, SR, rate)
    plan = {**plan, "b_downbeat_s": plan["b_downbeat_s"] / rate, "stretch_rate": 1.0}
    res = render_beat_sync(x, y, SR, plan, context=5.0)
    save_audio(out, res["audio"], SR, sample_format="float")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--naive-samples", type=int, default=1536,
                    help="past the receptive field (1025 samples), so most of them are timed at "
                         "naive's steady-state cost")
    ap.add_argument("--fast-samples", type=int, default=4096)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-crossfade-"))
    ia, ib = pick_tracks()
    a, b = tmp / "a.mp3", tmp / "b.mp3"
    bpm_a, bpm_b = four_minute_song(ia, a), four_minute_song(ib, b)
    out = tmp / "mix.wav"
    print(f"two {MINUTES} min MP3s at {SR} Hz stereo (Electronic #{ia} {bpm_a} bpm, "
          f"#{ib} {bpm_b} bpm); times in seconds")
    cold = timed(lambda: ours(a, b, out))
    warm = sorted(timed(lambda: ours(a, b, out)) for _ in range(3))[1]
    side = ours(a, b, out)
    base = timed(lambda: whole_song(a, b, tmp / "whole.wav"))
    print(f"plan: {side['mode']}, tempo {side['plan']['tempo_a']} / {side['plan']['tempo_b']} "
          f"bpm, stretch {side['stretch_rate']:.4f}, overlap {side['seconds']:.2f} s")
    print(f"{'':<24}{'seconds':>9}{'whole/this':>12}")
    print(f"{'ours cold (JIT incl.)':<24}{cold:>9.2f}{base / cold:>11.1f}x")
    print(f"{'ours warm (median of 3)':<24}{warm:>9.2f}{base / warm:>11.1f}x")
    print(f"{'whole-song baseline':<24}{base:>9.2f}{1.0:>11.1f}x")
    print(f"target: ours warm < 3 s -> {'met' if warm < 3 else 'NOT met'}")

    import torch

    torch.manual_seed(0)
    model = WaveNetAutoencoder(preset("small"))
    # one intra-op thread for both: batch-1 generation is a stream of tiny ops, and threads
    # that wait on each other slow both methods unevenly on a busy 2-core machine
    generation_speed(model, 512, method="fast", threads=1)        # warm-up
    fast = generation_speed(model, args.fast_samples, method="fast", threads=1)
    naive = generation_speed(model, args.naive_samples, method="naive", threads=1)
    print("\nWaveNet decoder, small preset, batch 1, 1 thread")
    print(f"{'method':<10}{'samples':>9}{'samples/s':>12}{'vs naive':>10}")
    print(f"{'naive':<10}{args.naive_samples:>9}{naive:>12.1f}{1.0:>9.1f}x")
    print(f"{'fast':<10}{args.fast_samples:>9}{fast:>12.1f}{fast / naive:>9.1f}x")
    print(f"target: fast >= 20x naive -> {'met' if fast / naive >= 20 else 'NOT met'}")


if __name__ == "__main__":
    main()
