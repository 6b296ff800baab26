"""How far below the per-position baseline can a 10-d code get on an MFCC dataset?

The figures behind "Quality on the sample set" in docs/training.md, for a dataset made by
``data_processor.py`` (64×96 MFCC segments). Test MSE as a multiple of the per-position
baseline (every position predicted by its train mean), for:

  * pca-K      the best linear code of K components, fitted on train (K = 10, 20, 50)
  * segment-mean  each segment's per-coefficient mean over its frames (64 numbers, an oracle):
               what is left is the frame-to-frame detail inside the segment
  * dense AE   a 6144-512-256-10 ReLU autoencoder with a tanh code on standard-scaled input
               (per position, train statistics), Adam 1e-3, batch 64; trained on the first
               ``--train-partitions`` train partitions, to show how the result scales with
               the number of training tracks

Then the PCA-10 and segment-mean references again for each ``scaler_axis`` (``position``,
``feature``, ``global``), computed from the unscaled MFCCs, to show how much the choice of
geometry moves the figure the bar is judged on, with the test-segment genre accuracy of a
logistic regression on each geometry's PCA-10 codes (chance is 1 / genres). The playground
conv AE's own figure comes from ``python train.py test -c CONFIG``. Prints figures; asserts
nothing.

    python bench/ae_quality.py [--dataset datasets/processed/sample/mfcc_ae_sample.h5]
                               [--epochs 20] [--train-partitions 1 2] [--seed 0]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from deepaudio.core.datasets import Partitions
from deepaudio.core.features import invert_scaler
from deepaudio.data.assembly import scaler_pool_axes
from deepaudio.training.fma import linear_probe_accuracy

ROOT = Path(__file__).resolve().parents[1]

CODE = 10


def pca_ratio(train: np.ndarray, test: np.ndarray, k: int, baseline: float) -> float:
    from sklearn.decomposition import PCA
    mean = train.mean(0)
    pca = PCA(k, svd_solver="randomized", random_state=0).fit(train - mean)
    resid = (test - mean) - pca.inverse_transform(pca.transform(test - mean))
    return float((resid ** 2).mean()) / baseline


def dense_ae_ratio(train: np.ndarray, test: np.ndarray, *, epochs: int, seed: int) -> tuple:
    """Train the dense AE on standard-scaled input; MSE measured in the dataset's own scale."""
    torch.manual_seed(seed)
    mean, std = train.mean(0), train.std(0) + 1e-3
    xtr = torch.from_numpy((train - mean) / std)
    xte = torch.from_numpy((test - mean) / std)
    weight = torch.from_numpy(std ** 2)          # back to the dataset's scale
    d = xtr.shape[1]
    model = nn.Sequential(nn.Linear(d, 512), nn.ReLU(), nn.Linear(512, 256), nn.ReLU(),
                          nn.Linear(256, CODE), nn.Tanh(),
                          nn.Linear(CODE, 256), nn.ReLU(), nn.Linear(256, 512), nn.ReLU(),
                          nn.Linear(512, d))
    opt = torch.optim.Adam(model.parameters(), 1e-3)

    def mse(x: torch.Tensor) -> float:
        model.eval()
        with torch.no_grad():
            return float(sum((((model(b) - b) ** 2) * weight).sum() for b in x.split(512))
                         / x.numel())

    gen = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        model.train()
        order = torch.randperm(len(xtr), generator=gen)
        for i in range(0, len(xtr) - 63, 64):
            b = xtr[order[i:i + 64]]
            loss = (((model(b) - b) ** 2) * weight).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
    return mse(xtr), mse(xte)


def geometry_table(train3: np.ndarray, test3: np.ndarray, scaler: dict,
                   train_labels: np.ndarray, test_labels: np.ndarray) -> None:
    """PCA-10 and segment-mean ratios with the data rescaled for each scaler_axis, and the
    genre accuracy of a linear probe on the PCA-10 codes; first, how the unscaled variance is
    spread over the MFCC coefficients."""
    from sklearn.decomposition import PCA


    raw_tr, raw_te = invert_scaler(train3, scaler), invert_scaler(test3, scaler)
    var = raw_tr.var(0).mean(-1)          # unscaled variance per MFCC coefficient
    print(f"coefficients 12-{len(var) - 1} hold {var[12:].sum() / var.sum():.1%} of the "
          "unscaled variance (of the log-mel variance the MFCCs carry: the DCT is orthonormal)")
    print("the same references per scaler_axis (standard scaling of the unscaled features):")
    for axis in ("position", "feature", "global"):
        pool = (0,) + tuple(a + 1 for a in scaler_pool_axes(axis, raw_tr.shape[1:]))
        mu = raw_tr.mean(pool, keepdims=True)
        sd = raw_tr.std(pool, keepdims=True) + 1e-9
        tr, te = (raw_tr - mu) / sd, (raw_te - mu) / sd
        trf, tef = tr.reshape(len(tr), -1), te.reshape(len(te), -1)
        base = float(((tef - trf.mean(0)) ** 2).mean())
        seg = float(((te - te.mean(-1, keepdims=True)) ** 2).mean()) / base
        pca = PCA(CODE, svd_solver="randomized", random_state=0).fit(trf)
        probe = linear_probe_accuracy(pca.transform(trf), train_labels, pca.transform(tef),
                                      test_labels)
        probe_text = "" if probe is None else f"   genre probe on its codes {probe:.3f}"
        print(f"  {axis:<9} pca-10 {pca_ratio(trf, tef, CODE, base):.3f}   "
              f"segment-mean {seg:.3f}{probe_text}")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", default="datasets/processed/sample/mfcc_ae_sample.h5")
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--train-partitions", type=int, nargs="+", default=None,
                   help="train the dense AE on the first N train partitions, for each N "
                        "(default: half of them, then all)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)

    data = Partitions(args.dataset)
    loaded = [data.load(t) for t in data.train]          # each partition read once
    parts, part_ids = [x for x, _, _ in loaded], [ids for _, _, ids in loaded]
    part_labels = np.concatenate([y for _, y, _ in loaded])
    del loaded
    test3, test_labels, test_ids = data.load("partition_test")
    flat = lambda a: a.reshape(len(a), -1).astype(np.float32)  # noqa: E731
    train, test = flat(np.concatenate(parts)), flat(test3)
    baseline = float(((test - train.mean(0)) ** 2).mean())
    tracks = lambda n: len(np.unique(np.concatenate(part_ids[:n])))  # noqa: E731
    print(f"{args.dataset}: {len(train)} train segments of {tracks(len(parts))} tracks, "
          f"{len(test)} test segments of {len(np.unique(test_ids))} tracks; "
          f"per-position baseline {baseline:.5f}")
    print("test MSE / baseline:")
    for k in (10, 20, 50):
        print(f"  pca-{k:<3}          {pca_ratio(train, test, k, baseline):.3f}")
    seg_mean = ((test3 - test3.mean(-1, keepdims=True)) ** 2).mean() / baseline
    print(f"  segment-mean     {seg_mean:.3f}  (64 numbers per segment, from the test data)")
    counts = args.train_partitions or sorted({max(1, len(parts) // 2), len(parts)})
    for n in counts:
        n = min(n, len(parts))
        t0 = time.perf_counter()
        sub = flat(np.concatenate(parts[:n]))
        tr_mse, te_mse = dense_ae_ratio(sub, test, epochs=args.epochs, seed=args.seed)
        sub_base = float(((sub - sub.mean(0)) ** 2).mean())
        print(f"  dense AE, {tracks(n):>3} train tracks: test {te_mse / baseline:.3f}, "
              f"train {tr_mse / sub_base:.3f}  ({args.epochs} epochs, "
              f"{time.perf_counter() - t0:.0f} s)")
    if test3.ndim == 3:
        geometry_table(np.concatenate(parts), test3, data.scaler, part_labels, test_labels)
    return 0


if __name__ == "__main__":
    sys.exit(main())
