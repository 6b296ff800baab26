"""Song → mapped feature timeline: seconds per request, cold and warm, against what the
deep-audioviz-experiments server did.

For a 30 s and a 4 min track (decode included), prints:
  * baseline   what that server did per request: rebuild the model and load its
               weights, decode and preprocess the whole track, encode, load the mapper, map
  * cold       our first request in a fresh process state: model and mapping loaded once
  * warm       later requests: the model and mapping are cached in the process
  (both at that server's hop: back-to-back segments)
  * warm 10 fps  warm, with overlapping segments every 0.1 s (smooth visuals)
The target is a 4 min track in under 2 s warm on 2 cores.

    python bench/encode.py [--run models/runs/playground/conv_ae]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from _timing import timed

from deepaudio.core.audio import load_audio, save_audio
from deepaudio.core.features import apply_scaler, mfcc_segments
from deepaudio.mapping.encode import _RUNS, get_run
from deepaudio.mapping.mappings import _MAPPINGS, Mapping, fit_mapping, mapping_path
from deepaudio.mapping.timeline import mapped_timeline
from deepaudio.networks.checkpoint import load_trained

ROOT = Path(__file__).resolve().parents[1]


def reference_request(song: Path, run: Path, mapping_file: Path) -> np.ndarray:
    model, info, scaler = load_trained(run)          # rebuilt and reloaded on every request
    c = info["config"]
    y, sr = load_audio(song, sr=c["sr"])
    segs = mfcc_segments(y[0], sr, num_mfcc=c["num_mfcc"], n_mels=c["n_mels"],
                         hop_length=c["mfcc_hops"], n_fft=c["n_fft"],
                         frames_per_segment=c["frames_per_segment"])
    with torch.no_grad():
        feats = model.encode(torch.from_numpy(apply_scaler(segs, scaler))).numpy()
    return Mapping.load(mapping_file).transform(feats)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--run", default=str(ROOT / "models/runs/playground/conv_ae"))
    args = ap.parse_args()
    run = Path(args.run)
    if not (run / "best.pt").is_file():
        sys.exit(f"error: no trained run at {run}; run `make playground` first or pass --run")
    info_cfg = load_trained(run)[1]["config"]
    songs = sorted(Path(info_cfg["fma_audio_dir"]).rglob("*.mp3"))[:8]
    if len(songs) < 8:
        sys.exit(f"error: need 8 sample tracks in {info_cfg['fma_audio_dir']}")
    tmp = Path(tempfile.mkdtemp(prefix="bench-encode-"))
    short = songs[0]
    long = tmp / "four_minutes.mp3"
    save_audio(long, np.concatenate([load_audio(s, mono=False)[0] for s in songs], 1), 44100)
    mapping = fit_mapping(run, "pca")
    mapping_file = mapping_path(run, "pca", mapping.layer, "standard", "features")
    print(f"run {run}, mapping pca; times in seconds (median of 3 where warm)")
    print(f"{'track':<10}{'baseline':>10}{'cold':>8}{'warm':>8}{'warm 10 fps':>13}"
          f"{'baseline/warm':>15}")
    for label, song in (("30 s", short), ("4 min", long)):
        base = min(timed(lambda s=song: reference_request(s, run, mapping_file))
                   for _ in range(2))
        hop = get_run(run).segment_length()      # that server's back-to-back segments
        _RUNS.clear()
        _MAPPINGS.clear()
        cold = timed(lambda s=song, h=hop: mapped_timeline(s, run, method="pca", fps=30,
                                                        hop_seconds=h))
        warm = sorted(timed(lambda s=song, h=hop: mapped_timeline(s, run, method="pca", fps=30,
                                                               hop_seconds=h))
                      for _ in range(3))[1]
        dense = sorted(timed(lambda s=song: mapped_timeline(s, run, method="pca", fps=30,
                                                                hop_seconds=0.1))
                       for _ in range(3))[1]
        print(f"{label:<10}{base:>10.2f}{cold:>8.2f}{warm:>8.2f}{dense:>13.2f}"
              f"{base / warm:>14.1f}x")


if __name__ == "__main__":
    main()
