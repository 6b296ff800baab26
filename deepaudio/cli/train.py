"""``python train.py``: train a model of :mod:`deepaudio.networks` from a JSON config; test it.

    python train.py -c models/test/conv_ae.json [--resume] [--device cpu|cuda]
    torchrun --nproc_per_node 2 train.py -c models/test/conv_ae.json     # DDP (gloo on CPU)
    python train.py test -c models/test/conv_ae.json
    python train.py -c models/beats/tcn.json --resume       # the beat and downbeat network
    python train.py export -c models/beats/tcn.json --to deepaudio/analysis/weights/beat_tcn.pt
"""

from __future__ import annotations

import argparse
import json

import torch.distributed as dist

from deepaudio.core.config import ConfigError, load_config
from deepaudio.core.errors import user_errors_exit_2
from deepaudio.training.beats import BeatTrainConfig, export_weights, train_beats
from deepaudio.training.fma import TrainConfig, evaluate_run, train

BEAT_MODELS = ("beat_tcn",)


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description="Train a model from a JSON config; evaluate it on the test partition.")
    p.add_argument("action", nargs="?", default="train", choices=["train", "test", "export"],
                   help="export: a beat run's best weights as the small file the tracker "
                   "loads (--to)")
    p.add_argument("-c", "--config", required=True)
    p.add_argument("--resume", action="store_true", help="continue from the last checkpoint")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--to", help="export: the weights file to write")
    return p


def _model_of(path: str) -> str | None:
    try:
        with open(path) as f:
            data = json.load(f)
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: not valid JSON ({e})") from None
    return data.get("model") if isinstance(data, dict) else None


def _beats(args) -> int:
    cfg = load_config(BeatTrainConfig, args.config)
    if args.action == "export":
        if not args.to:
            raise ConfigError("export needs --to FILE")
        print(export_weights(cfg, args.to))
    elif args.action == "test":
        raise ConfigError("beat models are scored by bench/beats.py on the evaluation set")
    else:
        train_beats(cfg, resume=args.resume, device=args.device)
    return 0


@user_errors_exit_2
def main(argv: list[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    try:
        if _model_of(args.config) in BEAT_MODELS:
            return _beats(args)
        if args.action == "export":
            raise ConfigError("export is for beat models (model 'beat_tcn')")
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
