"""``python train.py``: train a model of :mod:`deepaudio.networks` from a JSON config; test it.

    python train.py -c models/test/conv_ae.json [--resume] [--device cpu|cuda]
    torchrun --nproc_per_node 2 train.py -c models/test/conv_ae.json     # DDP (gloo on CPU)
    python train.py test -c models/test/conv_ae.json
"""

from __future__ import annotations

import argparse
import json

import torch.distributed as dist

from deepaudio.core.config import load_config
from deepaudio.core.errors import user_errors_exit_2
from deepaudio.training.fma import TrainConfig, evaluate_run, train


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description="Train a model from a JSON config; evaluate it on the test partition.")
    p.add_argument("action", nargs="?", default="train", choices=["train", "test"])
    p.add_argument("-c", "--config", required=True)
    p.add_argument("--resume", action="store_true", help="continue from the last checkpoint")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    return p


@user_errors_exit_2
def main(argv: list[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    try:
        cfg = load_config(TrainConfig, args.config)
        if args.action == "test":
            out = evaluate_run(cfg, args.device)
            print(json.dumps({k: v for k, v in out.items() if k != "confusion_matrix"}))
        else:
            train(cfg, resume=args.resume, device=args.device)
    finally:
        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()
    return 0
