"""Live input in the browser: how long the in-browser encoder (the run exported to ONNX, run by
onnxruntime-web's WebAssembly build) takes per segment, and how far the live features lag
the sound.

Starts ``api.py`` on the sample set and the playground models, then for each autoencoder run
opens the visualizer in Debian's Chromium (software GL) with a fake microphone that plays a
sample track (``--use-file-for-fake-audio-capture``) and reads the page's own figures for
``--seconds``:

* encoder ms per segment in the browser (front end excluded), against the hop (a new segment
  every 0.1 s) and against the same run's torch encoder on the server's CPU, one segment per
  call (the baseline, measured in the same run);
* end-to-end latency: how far the centre of the segment whose values are on screen lies behind
  the audio clock when they arrive (median and p95; half a segment of it is the segment
  itself);
* segments encoded and skipped (a busy encoder skips to the newest segment).

Prints figures; asserts nothing.

    python bench/live.py [--seconds 15] [--models models/runs] [--fma datasets/fma]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from deepaudio.core.audio import load_audio
from deepaudio.mapping.encode import get_run

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "browser"))
from conftest import ARGS, CHROMIUM  # noqa: E402  (the test suite's Chromium flags)


def free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torch_ms_per_segment(run_dir: Path, reps: int = 50) -> float:
    run = get_run(run_dir)
    x = torch.zeros((1, *run.info["input_shape"]))
    run.model.encode(x)
    t = time.perf_counter()
    for _ in range(reps):
        run.model.encode(x)
    return (time.perf_counter() - t) / reps * 1000


def measure(port: int, run_id: str, wav: Path, seconds: float) -> dict:
    from playwright.sync_api import sync_playwright
    flags = ARGS + ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                    f"--use-file-for-fake-audio-capture={wav}"]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=flags)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 720})
            page.goto(f"http://127.0.0.1:{port}/?run={run_id}&viz=bars&input=microphone")
            page.wait_for_function("() => { const l = window.__playground.live();"
                                   " return l && l.segments >= 10; }", timeout=120000)
            start = page.evaluate("() => window.__playground.live()")
            lat = []
            t_end = time.monotonic() + seconds
            while time.monotonic() < t_end:
                lat.append(page.evaluate("() => window.__playground.live().latency"))
                page.wait_for_timeout(200)
            end = page.evaluate("() => window.__playground.live()")
        finally:
            browser.close()
    return {"ms": end["msPerSegment"], "latency": np.array(lat, float),
            "segments": end["segments"] - start["segments"],
            "dropped": end["dropped"] - start["dropped"], "mode": end["mode"]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=15.0)
    ap.add_argument("--models", default=str(ROOT / "models" / "runs"))
    ap.add_argument("--fma", default=str(ROOT / "datasets" / "fma"))
    args = ap.parse_args()
    songs = sorted(Path(args.fma).rglob("*.mp3"))
    if not songs:
        print("no sample tracks: run 'make playground' first", file=sys.stderr)
        return 1
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        y, sr = load_audio(songs[0], sr=44100, mono=True)
        wav = Path(tmp) / "mic.wav"
        sf.write(wav, y.reshape(-1), sr, subtype="PCM_16")
        server = subprocess.Popen(
            [sys.executable, str(ROOT / "api.py"), "--port", str(port), "--data", tmp + "/data",
             "--fma", args.fma, "--models", args.models],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            for _ in range(600):
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/models") as r:
                        models = json.loads(r.read())
                    break
                except OSError:
                    time.sleep(0.2)
            else:
                print("server did not start", file=sys.stderr)
                return 1
            runs = [m for m in models["models"] if m["kind"] == "autoencoder"
                    and not m["id"].startswith("users/")]
            if not runs:
                print("no autoencoder runs: run 'make playground' first", file=sys.stderr)
                return 1
            print(f"fake microphone: {songs[0].name} (44.1 kHz), {args.seconds:g} s per run, "
                  f"Chromium {CHROMIUM}, software GL; a new segment every 0.1 s")
            print(f"{'run':28s} {'mode':9s} {'seg s':>5s} {'browser ms/seg':>14s} "
                  f"{'torch ms/seg':>12s} {'ratio':>6s} {'latency p50':>11s} {'p95':>6s} "
                  f"{'segments':>8s} {'skipped':>7s}")
            for m in runs:
                r = measure(port, m["id"], wav, args.seconds)
                base = torch_ms_per_segment(Path(args.models) / m["id"])
                lat = r["latency"][np.isfinite(r["latency"])]
                print(f"{m['id']:28s} {r['mode']:9s} {m['segment_seconds']:5.2f} "
                      f"{r['ms']:14.1f} {base:12.1f} {r['ms'] / base:5.1f}x "
                      f"{np.median(lat):10.2f}s {np.quantile(lat, 0.95):5.2f}s "
                      f"{r['segments']:8d} {r['dropped']:7d}")
        finally:
            server.terminate()
            server.wait(10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
