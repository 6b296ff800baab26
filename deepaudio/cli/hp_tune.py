"""``python hp_tune.py``: seeded random hyper-parameter search over the FMA models
(:mod:`deepaudio.training.search`).

    python hp_tune.py generate --space conv_ae --n 8 --seed 0 --out models/hp/conv_ae
    python hp_tune.py train --list models/hp/conv_ae/list.txt [--device cpu|cuda]
    python hp_tune.py report --list models/hp/conv_ae/list.txt [--out DIR]
"""

from __future__ import annotations

import argparse

from deepaudio.core.errors import user_errors_exit_2
from deepaudio.training.search import SPACES, generate, report, train_list


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description="Hyper-parameter search: generate seeded configs, train them, rank them.")
    sub = p.add_subparsers(dest="command", required=True)
    g = sub.add_parser("generate", help="write seeded random-search configs and list.txt")
    g.add_argument("--space", required=True, choices=list(SPACES))
    g.add_argument("--n", type=int, required=True, help="number of configs")
    g.add_argument("--seed", type=int, required=True, help="search seed (also the train seed)")
    g.add_argument("--out", required=True, help="folder for the configs, list.txt, space.json")
    g.add_argument("--dataset", help="processed HDF5 dataset (default: the space's sample set)")
    g.add_argument("--epochs", type=int, default=5)
    g.add_argument("--models-dir", help="where the runs go (default: models/runs/<out name>)")
    g.add_argument("--min-params", type=int, help="default: 20M for conv_ae, else 0")
    g.add_argument("--max-params", type=int, help="default: 30M for conv_ae, else no limit")
    g.add_argument("--max-draws", type=int, help="give up after this many draws "
                   "(default: max(500, 50 * n))")
    g.add_argument("--optimizer", default="sgd", choices=["sgd", "adam"],
                   help="sgd with the drawn momentum, as deep-audioviz-experiments (default)")
    g.add_argument("--tiny", action="store_true", help="minute models for smoke tests: conv_ae "
                   "filters {2, 4}; classifier width 1/16, fc 64; dense widths from {64, 32, 16}")
    g.add_argument("--overwrite", action="store_true", help="replace another search in --out")
    t = sub.add_parser("train", help="train every config of a list; skip finished, resume others")
    t.add_argument("--list", required=True, dest="list_path")
    t.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    r = sub.add_parser("report", help="leaderboard.csv, a table and learning_curves.png")
    r.add_argument("--list", required=True, dest="list_path")
    r.add_argument("--out", help="output folder (default: the list file's folder)")
    return p


@user_errors_exit_2
def main(argv: list[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    if args.command == "generate":
        generate(args.space, n=args.n, seed=args.seed, out=args.out, dataset=args.dataset,
                 epochs=args.epochs, models_dir=args.models_dir, min_params=args.min_params,
                 max_params=args.max_params, max_draws=args.max_draws, tiny=args.tiny,
                 optimizer=args.optimizer, overwrite=args.overwrite)
    elif args.command == "train":
        return 1 if train_list(args.list_path, device=args.device)["failed"] else 0
    else:
        report(args.list_path, args.out)
    return 0
