"""Music video export speed: frames rendered per second by headless Chromium (software GL,
SwiftShader, here) and encoded by PyAV, at 1280x720 and 1920x1080, against the video's own
frame rate (1.0x would render in real time), and, as the baseline measured in the same run,
the same renders carrying the exact pixels out of the browser (``lossless``) instead of JPEG.

Renders the first ``--seconds`` of a sample track through two visualizations with the
playground's MFCC autoencoder. Prints figures; asserts nothing.

    python bench/video.py [--seconds 4] [--fps 30] [--run models/runs/playground/conv_ae]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from deepaudio.mapping.video import render_video

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--fps", type=int, default=30)
    ap.add_argument("--run", default=str(ROOT / "models/runs/playground/conv_ae"))
    ap.add_argument("--fma", default=str(ROOT / "datasets/fma"))
    args = ap.parse_args()
    songs = sorted(Path(args.fma).rglob("*.mp3"))
    if not songs or not Path(args.run).is_dir():
        print("no sample tracks or run: run 'make playground' first", file=sys.stderr)
        return 1
    print(f"{songs[0].name}, first {args.seconds:g} s at {args.fps} fps, run {args.run}")
    print(f"{'viz':10s} {'size':>9s} {'frames out':12s} {'frames':>6s} {'seconds':>8s} "
          f"{'frames/s':>8s} {'x real time':>11s} {'MB':>6s}")
    with tempfile.TemporaryDirectory() as tmp:
        for viz in ("bars", "spheres"):
            for size in ((1280, 720), (1920, 1080)):
                fps = {}
                for lossless in (True, False):
                    out = Path(tmp) / f"{viz}-{size[0]}.mp4"
                    t = time.perf_counter()
                    res = render_video(songs[0], args.run, out, viz=viz, size=size,
                                       fps=args.fps, max_seconds=args.seconds, seed=1,
                                       lossless=lossless)
                    dt = time.perf_counter() - t
                    fps[lossless] = res["frames"] / dt
                    how = "exact pixels" if lossless else "JPEG 0.98"
                    print(f"{viz:10s} {size[0]:4d}x{size[1]:<4d} {how:12s} {res['frames']:6d} "
                          f"{dt:8.1f} {fps[lossless]:8.1f} {fps[lossless] / args.fps:10.2f}x "
                          f"{out.stat().st_size / 1e6:6.2f}")
                print(f"{'':10s} {'':9s} JPEG / exact pixels: {fps[False] / fps[True]:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
