"""Training throughput on CPU: samples/s of a training step, and the data-loading share of it.

Prints, for the default conv autoencoder (ConvAEConfig: 16 filters, 4 pools, 4 FC layers
scaled down by 4, kernel 5) and a full-width VGG-16 with batch norm (8 classes):
  * step     ms per training step (forward + backward + SGD step) on in-memory random data,
             the median of --steps timed steps after 2 warm-up steps
  * samples/s   batch size / step time
  * load     ms that ``deepaudio.training.fma.epoch_batches`` takes to produce one batch from
             a real HDF5 dataset (synthesized sample set, processed with ``data_processor``),
             per sample times the batch size
  * overhead    load / step, the share data loading adds to a step (target < 10 %)

    python bench/train_throughput.py [--steps 3] [--batch-size 64] [--threads N]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import torch

from deepaudio.core.config import load_config
from deepaudio.core.datasets import Partitions
from deepaudio.data.config import DatasetConfig
from deepaudio.data.process import process_dataset
from deepaudio.data.samples import write_sample_set
from deepaudio.networks.registry import build_model, count_parameters
from deepaudio.training.fma import TrainConfig, batch_loss, epoch_batches, make_optimizer

ROOT = Path(__file__).resolve().parents[1]

MODELS = [  # (label, registry name, model_params)
    ("conv AE 16f/4 pools/4 FC/k5", "conv_autoencoder", {}),
    ("VGG-16 BN, 8 classes", "cnn_classifier", {"arch": "vgg16", "batchnorm": True,
                                                "num_classes": 8}),
]


def step_seconds(model_name: str, params: dict, *, batch_size: int, steps: int,
                 warmup: int = 2) -> tuple[float, int]:
    """(median seconds per training step, parameters) on random (B, 64, 96) input."""
    torch.manual_seed(0)
    model = build_model(model_name, params)
    cfg = load_config(TrainConfig, {"name": "bench", "dataset_path": "-", "model": model_name,
                                    "batch_size": batch_size, "optimizer": "sgd", "lr": 1e-3,
                                    "momentum": 0.9})
    opt, _ = make_optimizer(model, cfg)
    model.train()
    x = torch.rand(batch_size, 64, 96)                     # (B, n_mfcc, frames), minmax range
    y = torch.randint(0, params.get("num_classes", 8), (batch_size,))
    times = []
    for i in range(warmup + steps):
        t = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = batch_loss(model, x, y, cfg)
        loss.backward()
        opt.step()
        if i >= warmup:
            times.append(time.perf_counter() - t)
    return statistics.median(times), count_parameters(model)


def build_dataset(work: Path) -> Path:
    write_sample_set(work / "fma", tracks_per_genre=1, seconds=10.0, seed=0, workers=1)
    cfg = load_config(DatasetConfig, {
        "name": "bench", "mode": "mfcc", "fma_audio_dir": str(work / "fma" / "fma_small"),
        "fma_meta_dir": str(work / "fma" / "fma_metadata"), "datasets_dir": str(work / "data"),
        "scaler": "minmax", "num_train_partitions": 2})
    process_dataset(cfg, workers=1)
    return cfg.h5_path


def load_seconds_per_sample(h5: Path, *, batch_size: int, epochs: int = 20) -> tuple[float, int]:
    """(seconds per sample, train samples) of epoch_batches over ``epochs`` epochs."""
    data = Partitions(h5)
    cfg = load_config(TrainConfig, {"name": "bench", "dataset_path": str(h5),
                                    "model": "conv_autoencoder", "batch_size": batch_size})
    for _ in epoch_batches(data, cfg, 0):                  # warm-up: h5py, page cache
        pass
    seen = 0
    t = time.perf_counter()
    for epoch in range(epochs):
        for x, _ in epoch_batches(data, cfg, epoch):
            seen += len(x)
    return (time.perf_counter() - t) / seen, data.n_train


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=3, help="timed steps per model")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads(),
                    help="torch intra-op threads (default: torch's choice)")
    args = ap.parse_args()
    if min(args.steps, args.batch_size, args.threads) < 1:
        ap.error("--steps, --batch-size and --threads must be >= 1")
    torch.set_num_threads(args.threads)
    b = args.batch_size
    t0 = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="bench-train-"))
    try:
        h5 = build_dataset(work)
        load_per_sample, n_train = load_seconds_per_sample(h5, batch_size=b)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    rows = []
    for label, name, params in MODELS:
        sec, n_params = step_seconds(name, params, batch_size=b, steps=args.steps)
        rows.append((label, n_params, sec))
    load = load_per_sample * b
    print(f"CPU, {torch.get_num_threads()} torch threads, {os.cpu_count()} cores, load average "
          f"{os.getloadavg()[0]:.1f} at the end; batch {b}, {args.steps} timed steps after 2 "
          f"warm-up, SGD momentum 0.9; input 64x96 MFCC")
    print(f"data: epoch_batches over a {n_train}-segment train set (2 HDF5 partitions), "
          f"{load_per_sample * 1e6:.0f} us/sample = {load * 1e3:.1f} ms per batch of {b}")
    print(f"{'model':<30}{'params':>13}{'step ms':>10}{'samples/s':>11}{'load ms':>9}"
          f"{'overhead':>10}")
    for label, n_params, sec in rows:
        print(f"{label:<30}{n_params:>13,d}{sec * 1e3:>10.1f}{b / sec:>11.1f}{load * 1e3:>9.1f}"
              f"{100 * load / sec:>9.2f}%")
    print(f"total {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
