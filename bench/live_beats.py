"""The live beat grid and DSP bands (demo/js/live/beats.js, dsp.js) against the server's beat
tracker: on the sample songs, the tempo the online tracker holds at the end of each song
against the tempo of the toolkit's offline tracker (deepaudio.analysis.beats, the baseline,
measured in the same run), and what each costs per second of sound. The songs are spread
evenly over the sorted list.

The JavaScript runs in Node (the V8 engine Chromium runs it in), fed 128-sample blocks at
22.05 kHz as the capture worklet hands them over; the DSP bands are computed 30 times a second
alongside, as on the page. Prints figures; asserts nothing.

    python bench/live_beats.py [--fma datasets/fma] [--songs 8]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from deepaudio.analysis.beats import analyse_beats
from deepaudio.core.audio import load_audio

ROOT = Path(__file__).resolve().parents[1]
SR = 22050
SCRIPT = """
import { readFileSync } from 'node:fs';
import { OnlineBeats } from '%s';
import { DspBands } from '%s';
const b = readFileSync(process.argv[2]);
const y = new Float32Array(b.buffer, b.byteOffset, b.length / 4);
const sr = %d;
const beats = new OnlineBeats(sr);
const dsp = new DspBands(sr, 30, 1024);
const ring = new Float32Array(1024);
let w = 0, since = 0;
const frame = new Float32Array(1024);
const t0 = performance.now();
for (let at = 0; at < y.length; at += 128) {
  const blk = y.subarray(at, at + 128);
  beats.push(blk, (at + blk.length - 1) / sr);
  for (let i = 0; i < blk.length; i++) {
    ring[w] = blk[i]; w = (w + 1) %% 1024; since += 1;
    if (since >= sr / 30) {
      since -= sr / 30;
      for (let j = 0; j < 1024; j++) frame[j] = ring[(w + j) %% 1024];
      dsp.push(frame, 0);
    }
  }
}
const ms = performance.now() - t0;
console.log(JSON.stringify({ bpm: beats.bpm, confidence: beats.confidence, ms }));
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--fma", default=str(ROOT / "datasets" / "fma"))
    ap.add_argument("--songs", type=int, default=8)
    args = ap.parse_args()
    node = shutil.which("node")
    if node is None:
        print("node is not installed (make playground installs npm and node)", file=sys.stderr)
        return 1
    songs = sorted(Path(args.fma).rglob("*.mp3"))
    picked = songs[:: max(1, len(songs) // max(1, args.songs))][: args.songs]  # spread out
    if not picked:
        print("no sample tracks: run 'make playground' first", file=sys.stderr)
        return 1
    print(f"{len(picked)} sample songs at {SR} Hz; live: Node {subprocess.run([node, '-v'], capture_output=True, text=True).stdout.strip()}")  # noqa: E501
    print(f"{'song':14s} {'seconds':>7s} {'server bpm':>10s} {'live bpm':>8s} {'ratio':>6s} "
          f"{'conf':>5s} {'server ms/s':>11s} {'live ms/s':>9s}")
    agree = 0
    live_cost, server_cost = [], []
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "live.mjs"
        script.write_text(SCRIPT % ((ROOT / "demo/js/live/beats.js").as_uri(),
                                    (ROOT / "demo/js/live/dsp.js").as_uri(), SR))
        for song in picked:
            y, sr = load_audio(song, sr=SR, mono=True)
            y = y.reshape(-1).astype(np.float32)
            seconds = len(y) / sr
            t = time.perf_counter()
            try:
                server = analyse_beats(y[None], sr).tempo
            except Exception:           # no beat: the tracker says why; here only the tempo
                server = float("nan")
            server_ms = (time.perf_counter() - t) * 1000
            y.tofile(Path(tmp) / "y.f32")
            out = json.loads(subprocess.run([node, str(script), str(Path(tmp) / "y.f32")],
                                            capture_output=True, text=True, check=True).stdout)
            live = out["bpm"] or float("nan")
            ratio = live / server
            agree += bool(abs(ratio - 1) < 0.04)
            live_cost.append(out["ms"] / seconds)
            server_cost.append(server_ms / seconds)
            print(f"{song.name:14s} {seconds:7.1f} {server:10.1f} {live:8.1f} {ratio:6.2f} "
                  f"{out['confidence']:5.2f} {server_ms / seconds:11.1f} "
                  f"{out['ms'] / seconds:9.1f}")
    print(f"same tempo (within 4 %): {agree} of {len(picked)}; live beat grid + DSP bands "
          f"{np.median(live_cost):.1f} ms per second of sound "
          f"({np.median(live_cost) / 10:.2f} % of one core), the offline tracker "
          f"{np.median(server_cost):.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
