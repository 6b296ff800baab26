"""An autoencoder learned from a plain folder of about 100 real songs, against PCA-10.

The real-folder recipe (docs/training.md, "Training on your own folder of songs"): the
folder is segmented into 64x96 MFCC segments (``datasets/processed/real/mfcc_ae_debian.json``:
100 segments per song, standard-scaled per position, songs split 80/10/10), then the dense
autoencoder of ``models/real/dense_ae_folder.json`` (6144-512-256-10, ReLU, tanh code, Adam,
early stopping on cv) trains and its best-cv checkpoint is tested. For comparison, the
playground's conv AE config (``models/playground/conv_ae.json``) on the same segments, for
``--conv-epochs`` epochs (with early stopping too). Prints, for the test songs, each model's
MSE as a multiple of the per-position baseline (every position predicted by its train mean)
and of PCA with 10 components fitted on the train songs (the target: within 1.1x).

Without ``--folder``, the folder is assembled from Debian's game-music packages
(``data_processor.py corpus``; needs apt and a Debian mirror), the project's own check on
real recordings.

    python bench/real_folder.py [--folder DIR] [--work DIR] [--conv-epochs 5]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from pathlib import Path

from deepaudio.core.config import load_config
from deepaudio.data.config import DatasetConfig
from deepaudio.data.corpus import build_corpus
from deepaudio.data.process import process_dataset
from deepaudio.training.fma import TrainConfig, evaluate_run, train

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--folder", help="a folder of songs (default: the Debian corpus)")
    p.add_argument("--work", default="/tmp/deepaudio-real-folder",
                   help="where the corpus, the dataset and the runs go")
    p.add_argument("--songs", type=int, default=100)
    p.add_argument("--conv-epochs", type=int, default=5)
    args = p.parse_args()
    work = Path(args.work)
    folder = Path(args.folder) if args.folder else work / "corpus"
    if not args.folder:
        t0 = time.perf_counter()
        rep = build_corpus(folder, songs=args.songs)
        print(f"corpus: {len(rep['songs'])} songs, {rep['minutes']} minutes from "
              f"{', '.join(rep['packages'])} ({time.perf_counter() - t0:.0f} s)")
    raw = json.loads((ROOT / "datasets/processed/real/mfcc_ae_debian.json").read_text())
    raw.update(fma_audio_dir=str(folder), datasets_dir=str(work / "processed"))
    dcfg = load_config(DatasetConfig, raw)
    t0 = time.perf_counter()
    report = process_dataset(dcfg, workers=os.cpu_count() or 1)
    print(f"dataset: {report.get('tracks_processed', 'stored')} songs -> {dcfg.h5_path} "
          f"({time.perf_counter() - t0:.0f} s)")
    rows = []
    for label, config, extra in (
            ("dense AE, the recipe", "models/real/dense_ae_folder.json", {}),
            ("conv AE, the playground's config", "models/playground/conv_ae.json",
             {"num_epochs": args.conv_epochs, "early_stopping_patience": 3})):
        # (the conv AE's sigmoid output suits min-max data; on standard-scaled segments its
        # output is linear: out_activation none)
        raw = json.loads((ROOT / config).read_text())
        raw.update(dataset_path=str(dcfg.h5_path), models_dir=str(work / "runs"), **extra)
        if raw["model"] == "conv_autoencoder":
            raw["model_params"] = {**raw["model_params"], "out_activation": "none"}
        raw["name"] = f"{raw['name']}_folder"
        cfg = load_config(TrainConfig, raw)
        last = train(cfg, resume=True)          # a finished run is reused
        with open(cfg.run_dir / "metrics.csv") as f:     # training seconds, all epochs
            seconds = sum(float(r["epoch_seconds"]) for r in csv.DictReader(f))
        res = evaluate_run(cfg)
        rows.append((label, res, last.get("epoch"), seconds))
    print(f"\ntest songs of {folder} (MSE in the dataset's scale: standard per position)")
    print(f"{'model':<34}{'epochs':>7}{'seconds':>9}{'vs baseline':>13}{'vs PCA-10':>11}")
    pca = rows[0][1]["pca_mse_ratio_to_baseline"]
    print(f"{'PCA, 10 components':<34}{'':>7}{'':>9}{pca:>12.3f}x{1.0:>10.3f}x")
    for label, res, epochs, seconds in rows:
        r = res["mse_ratio_to_baseline"]
        print(f"{label:<34}{epochs:>7}{seconds:>9.0f}{r:>12.3f}x{r / pca:>10.3f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
