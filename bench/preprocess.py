"""Preprocessing throughput: `data_processor.py process` (mfcc mode) against the original way.

Prints tracks/s for
  * baseline   deep-audioviz-experiments' way: sequential librosa.load + librosa.feature.mfcc
  * decode     the floor: decoding alone (soundfile, mono), sequential
  * process/1  our pipeline with one worker (decode, MFCC, segment, cache, scaler, HDF5)
  * process/2  the same with two worker processes
and the ratios against the baseline, all measured in this run on this machine.

    python bench/preprocess.py [--tracks-per-genre 4] [--data bench/results/fma]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

import librosa
import numpy as np
from _timing import timed

from deepaudio.core.audio import load_audio
from deepaudio.core.config import load_config
from deepaudio.data.config import DatasetConfig
from deepaudio.data.process import process_dataset
from deepaudio.data.samples import write_sample_set

ROOT = Path(__file__).resolve().parents[1]


def reference_mfcc(path: Path) -> np.ndarray:
    y, sr = librosa.load(path, sr=44100, mono=True)
    m = librosa.feature.mfcc(y=y, sr=sr, n_mfcc=64, n_fft=1102, hop_length=441)
    n = m.shape[1] // 96
    return np.stack(np.split(m[:, :n * 96], n, axis=1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tracks-per-genre", type=int, default=4)
    ap.add_argument("--data", default=str(ROOT / "bench/results/fma"))
    args = ap.parse_args()
    data = Path(args.data)
    write_sample_set(data, tracks_per_genre=args.tracks_per_genre, seconds=30.0, seed=0,
                     workers=2)
    files = sorted((data / "fma_small").rglob("*.mp3"))
    n = len(files)
    reference_mfcc(files[0])                 # warm-up: imports and numba JIT, not timed
    base = timed(lambda: [reference_mfcc(f) for f in files])
    decode = timed(lambda: [load_audio(f, sr=44100) for f in files])
    rows = [("baseline (original)", base), ("decode only (floor)", decode)]
    for workers in (1, 2):
        out = Path(tempfile.mkdtemp(prefix="bench-pre-"))
        cfg = load_config(DatasetConfig, {
            "name": "bench", "mode": "mfcc", "fma_audio_dir": str(data / "fma_small"),
            "fma_meta_dir": str(data / "fma_metadata"), "datasets_dir": str(out),
            "scaler": "standard", "num_train_partitions": 2})
        rows.append((f"process, {workers} worker(s)",
                     timed(lambda cfg=cfg, w=workers: process_dataset(cfg, workers=w))))
        shutil.rmtree(out)
    print(f"{n} tracks of 30 s, mfcc 64x96 segments, {len(files) and 'mp3 44.1 kHz'}")
    print(f"{'pipeline':<24}{'seconds':>9}{'tracks/s':>10}{'vs baseline':>13}")
    for name, sec in rows:
        print(f"{name:<24}{sec:>9.2f}{n / sec:>10.1f}{base / sec:>12.2f}x")


if __name__ == "__main__":
    main()
