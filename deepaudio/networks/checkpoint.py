"""Checkpoints and trained runs: the one place weights are written and read.

A checkpoint is a dict saved with ``torch.save`` and written atomically, so a run killed even
with SIGKILL leaves its previous checkpoint intact; it carries the RNG states so a resumed run
continues exactly as an uninterrupted one. Training (:mod:`deepaudio.training`) writes them;
the mapping and the crossfade load trained runs through :func:`load_trained` and
:func:`load_wavenet`.

An FMA run folder holds ``config.json``, ``last.pt``, ``best.pt``, ``dataset.json`` and
``scaler.npz``; a WaveNet run folder ``config.json`` (with a ``model`` section) and ``last.pt``.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import random
from pathlib import Path

import numpy as np
import torch

from deepaudio.core.config import load_config
from deepaudio.core.errors import ToolkitError
from deepaudio.core.files import atomic_write_bytes, atomic_write_json
from deepaudio.networks.registry import build_model
from deepaudio.networks.wavenet import HOP, SR, WaveNetAutoencoder, WaveNetConfig


def rng_state() -> dict:
    return {"torch": torch.get_rng_state(), "numpy": np.random.get_state(),
            "python": random.getstate()}


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])


def save_checkpoint(path: Path, **payload) -> None:
    buf = io.BytesIO()
    torch.save(payload, buf)
    atomic_write_bytes(path, buf.getvalue())


def load_checkpoint(path: Path) -> dict:
    if not path.is_file():
        raise ToolkitError(f"checkpoint {path} not found; train the run first "
                           "(python train.py -c CONFIG)")
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:
        raise ToolkitError(f"{path}: unreadable checkpoint ({e})") from None


def load_trained(run_dir: str | os.PathLike, *, which: str = "best", device: str = "cpu"):
    """(model in eval mode, dataset info dict, scaler params) of a trained run folder."""
    run = Path(run_dir)
    ck = load_checkpoint(run / f"{which}.pt")
    model = build_model(ck["model_name"], ck["model_params"])
    model.load_state_dict(ck["model"])
    model.to(device).eval()
    info = json.loads((run / "dataset.json").read_text())
    with np.load(run / "scaler.npz") as z:
        scaler = {k: z[k] for k in z.files}
    return model, info, scaler


def torch_device(device: str) -> torch.device:
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ToolkitError(f"unknown device {device!r}; use 'cpu' or 'cuda'") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ToolkitError(f"device {device!r}: no CUDA device is available")
    return dev


def load_wavenet(run_dir: str | os.PathLike, *, device: str = "cpu") -> WaveNetAutoencoder:
    """The trained autoencoder of a run folder (``config.json`` + ``last.pt``), in eval mode."""
    run = Path(run_dir)
    for name in ("config.json", "last.pt"):
        if not (run / name).is_file():
            raise ToolkitError(f"WaveNet weights missing: {run / name} not found; train a run "
                               "first (crossfade.py train) or point to its folder")
    try:
        settings = json.loads((run / "config.json").read_text())
    except json.JSONDecodeError as e:
        raise ToolkitError(f"{run / 'config.json'}: not valid JSON ({e})") from None
    if not isinstance(settings, dict) or not isinstance(settings.get("model"), dict):
        raise ToolkitError(f"{run / 'config.json'}: no 'model' section; not a WaveNet run")
    cfg = load_config(WaveNetConfig, settings["model"], where=f"{run / 'config.json'} model")
    ck = load_checkpoint(run / "last.pt")
    model = WaveNetAutoencoder(cfg)
    try:
        model.load_state_dict(ck["model"])
    except (KeyError, RuntimeError) as e:
        raise ToolkitError(f"{run / 'last.pt'}: weights do not fit its config.json "
                           f"({str(e).splitlines()[0]})") from None
    return model.to(torch_device(device)).eval()


def save_weights(model: WaveNetAutoencoder, run_dir: str | os.PathLike, **settings) -> Path:
    """Write an untrained or externally trained (imported) model as a loadable run folder;
    ``settings`` go into its ``config.json`` beside the model's config."""
    run = Path(run_dir)
    atomic_write_json(run / "config.json", {"model": dataclasses.asdict(model.cfg), "sr": SR,
                                            "hop": HOP, **settings})
    save_checkpoint(run / "last.pt", model=model.state_dict(), step=0,
                    config=dataclasses.asdict(model.cfg))
    return run
