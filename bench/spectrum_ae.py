"""Why the spectrum model changed: the 0.5 s spectrum autoencoder of Deep-Audio-Visualization
as configured (sigmoid hidden layers) against the playground's (ReLU layers and a linear path
started at PCA), trained the same way on the sample spectrum dataset.

For each variant: training seconds and epochs (early stopping on cv, patience 5), the test
MSE as a multiple of the per-position baseline, the same for PCA with 10 components fitted on
the train spectra (the best linear 10-d code), and the test-segment genre accuracy of a
logistic regression on the 10 codes (PCA's beside it; chance 1/8). The playground config is
``models/playground/spectrum_ae.json``; the variants change only ``model_params``.
Prints figures; asserts nothing.

    python bench/spectrum_ae.py [--config models/playground/spectrum_ae.json] [--epochs 30]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from deepaudio.core.config import load_config
from deepaudio.training.fma import TrainConfig, evaluate_run, train

ROOT = Path(__file__).resolve().parents[1]

VARIANTS = {
    "original: sigmoid layers, linear code": {"activation": "sigmoid", "linear_path": False},
    "ReLU layers, linear code": {"activation": "relu", "linear_path": False},
    "ReLU layers + linear path at PCA (playground)": {"activation": "relu",
                                                      "linear_path": True},
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", default=str(ROOT / "models/playground/spectrum_ae.json"))
    ap.add_argument("--epochs", type=int, default=None, help="default: the config's")
    args = ap.parse_args()
    base = json.loads(Path(args.config).read_text())
    if not Path(base["dataset_path"]).is_absolute():
        base["dataset_path"] = str(ROOT / base["dataset_path"])
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, (label, change) in enumerate(VARIANTS.items()):
            raw = {**base, "name": f"v{i}", "models_dir": tmp,
                   "model_params": {**base["model_params"], **change}}
            if args.epochs:
                raw["num_epochs"] = args.epochs
            cfg = load_config(TrainConfig, raw)
            t0 = time.perf_counter()
            last = train(cfg)
            seconds = time.perf_counter() - t0
            res = evaluate_run(cfg)
            rows.append((label, last["epoch"], seconds, res))
    print(f"\nsample spectrum dataset, widths {base['model_params']['widths']}, "
          f"{base['optimizer']} lr {base['lr']}, batch {base['batch_size']}")
    print(f"{'variant':48s} {'epochs':>6s} {'train s':>8s} {'test/base':>9s} {'PCA-10':>7s} "
          f"{'vs PCA':>7s} {'probe':>6s} {'PCA probe':>9s}")
    for label, epochs, seconds, r in rows:
        ratio, pca = r["mse_ratio_to_baseline"], r["pca_mse_ratio_to_baseline"]
        print(f"{label:48s} {epochs:6d} {seconds:8.1f} {ratio:9.3f} {pca:7.3f} "
              f"{ratio / pca:6.2f}x {r.get('code_genre_probe_acc', float('nan')):6.2f} "
              f"{r.get('pca_genre_probe_acc', float('nan')):9.2f}")


if __name__ == "__main__":
    main()
