"""NSynth's full-size WaveNet autoencoder: generation speed and a neural crossfade end to end.

The ``nsynth`` preset at Magenta's size (h512_bo16: 30 + 30 layers, 512 residual and 256 skip
channels, 3-tap convolutions, 61.8 M parameters), randomly initialised (the speed does not
depend on the weights; no machine here can fetch Magenta's checkpoint). Prints:

* fast generation in samples/s (all batch items counted) at batch 1 and 2, with one intra-op
  thread and with all of them, and each figure against batch 1 on one thread (the baseline,
  measured in the same run). DeepBass reported ~100 samples/s for Magenta's TensorFlow fastgen
  (PR #669); that figure is quoted, not measured here;
* the seconds a neural crossfade of ``--seconds`` (default 4) takes end to end
  (``crossfade_neural``: decode, trim and loudness-match both songs, encode, decode the faded
  codes sample by sample, splice), and its decoding share.

    python bench/nsynth.py [--samples 1024] [--seconds 4] [--device cpu|cuda]

On a GPU (``--device cuda``) the same figures come from the CUDA path.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import numpy as np
import torch
from _timing import timed

from deepaudio.core.audio import save_audio
from deepaudio.crossfade.neural import crossfade_neural
from deepaudio.data.samples import render_track
from deepaudio.networks.checkpoint import save_weights, torch_device
from deepaudio.networks.wavenet import WaveNetAutoencoder, generation_speed, preset


def songs(folder: Path) -> tuple[Path, Path]:
    """Two 20 s sample-music songs (stereo WAV at 44.1 kHz)."""
    out = []
    for genre, track in (("Electronic", 3), ("Folk", 5)):
        stems, _ = render_track(genre, track, seed=0, seconds=20.0, sr=44100)
        path = folder / f"{genre.lower()}.wav"
        save_audio(path, sum(stems.values()), 44100)
        out.append(path)
    return out[0], out[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--samples", type=int, default=1024, help="samples per speed figure")
    ap.add_argument("--seconds", type=float, default=4.0, help="neural crossfade length")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    dev = torch_device(args.device)
    torch.manual_seed(0)
    model = WaveNetAutoencoder(preset("nsynth")).to(dev).eval()
    n_params = sum(p.numel() for p in model.parameters())
    all_threads = torch.get_num_threads()
    print(f"nsynth preset (Magenta's h512_bo16 graph): {n_params / 1e6:.1f} M parameters, "
          f"device {dev}, {os.cpu_count()} CPUs")
    generation_speed(model, 128, threads=1)                       # warm-up
    rows = []
    for threads in sorted({1, all_threads}):
        for batch in (1, 2):
            rows.append((threads, batch, generation_speed(model, args.samples, threads=threads,
                                                          batch_size=batch)))
    base = rows[0][2]
    print(f"\nfast generation, {args.samples} samples per stream")
    print(f"{'threads':>8}{'batch':>7}{'samples/s':>11}{'per stream':>12}{'vs 1x1':>8}")
    for threads, batch, speed in rows:
        print(f"{threads:>8}{batch:>7}{speed:>11.1f}{speed / batch:>12.1f}{speed / base:>7.2f}x")
    best = max(r[2] for r in rows if r[1] == 1)
    print(f"a 4 s fade (64,000 samples) at batch 1: ~{64000 / best / 60:.1f} min of decoding; "
          "DeepBass quoted ~100 samples/s for Magenta's fastgen")

    with tempfile.TemporaryDirectory(prefix="bench-nsynth-") as tmp:
        a, b = songs(Path(tmp))
        run = save_weights(model.cpu(), Path(tmp) / "run")
        model.to(dev)
        box: dict = {}
        total = timed(lambda: box.update(out=crossfade_neural(a, b, run, seconds=args.seconds,
                                                              context=2.0, device=args.device,
                                                              model=model)))
        gen = box["out"]["sidecar"]["generation"]
        audio = box["out"]["audio"]
    print(f"\nneural crossfade of {args.seconds:g} s, end to end: {total:.1f} s "
          f"(decoding {gen['seconds']:.1f} s at {gen['samples_per_s']:.0f} samples/s, "
          f"{100 * gen['seconds'] / total:.0f} %; everything else {total - gen['seconds']:.1f} s)")
    print(f"output {audio.shape[1] / 16000:.2f} s, finite: {bool(np.isfinite(audio).all())}")


if __name__ == "__main__":
    main()
