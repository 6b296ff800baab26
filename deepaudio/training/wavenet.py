"""Training the WaveNet autoencoder on the begin/end clips that ``crossfade.py prep`` writes.

Adam, cross-entropy over 8-bit mu-law labels under teacher forcing, gradient-norm clipping at
``GRAD_CLIP``; random crops drawn from (seed, step), so a resumed run continues exactly as an
uninterrupted one would. The model is :mod:`deepaudio.networks.wavenet`.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from pathlib import Path

import h5py
import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from deepaudio.core.config import load_config
from deepaudio.core.errors import ToolkitError
from deepaudio.core.files import atomic_write_json
from deepaudio.networks.checkpoint import (
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
    torch_device,
)
from deepaudio.networks.registry import count_parameters
from deepaudio.networks.wavenet import HOP, SR, WaveNetAutoencoder, WaveNetConfig, make_config
from deepaudio.training.loop import run_steps
from deepaudio.training.metrics import write_metrics

GRAD_CLIP = 1.0          # max global grad norm per step (NSynth trained without; cheap insurance)
METRIC_FIELDS = ["step", "loss", "wall_seconds"]


# settings of a run that must match for --resume to continue it exactly
RESUME_KEYS = ("model", "batch_size", "crop", "lr", "seed")


def _open_clips(data_path: Path, crop: int):
    """The HDF5 file of training clips (dataset ``clips`` (N, T) at 16 kHz), checked."""
    if not data_path.is_file():
        raise ToolkitError(f"WaveNet training data {data_path} not found; build it with "
                           "crossfade.py's prep command")
    try:
        f = h5py.File(data_path, "r")
    except OSError as e:
        raise ToolkitError(f"{data_path}: not a readable HDF5 file ({e})") from None
    problem = None
    if "clips" not in f or f["clips"].ndim != 2 or f["clips"].shape[0] == 0:
        problem = ("no non-empty 2-d dataset 'clips' (N, samples); is it a file made by "
                   "crossfade.py prep?")
    elif int(f.attrs.get("sr", SR)) != SR:
        problem = f"clips are at {int(f.attrs['sr'])} Hz; the WaveNet needs {SR} Hz"
    elif f["clips"].shape[1] < crop:
        problem = (f"clips of {f['clips'].shape[1]} samples are shorter than the "
                   f"{crop}-sample crop")
    if problem:
        f.close()
        raise ToolkitError(f"{data_path}: {problem}")
    return f


def train_wavenet(data_path: str | os.PathLike, run_dir: str | os.PathLike, *,
                  preset: str | None = None, steps: int, batch_size: int = 8, crop: int = 6144,
                  lr: float = 2e-4, seed: int = 0, resume: bool = False, device: str = "cpu",
                  config_overrides: dict | None = None, progress: bool = True,
                  checkpoint_every: int = 100) -> dict:
    """Train the autoencoder on random ``crop``-sample crops of the clips up to ``steps`` steps
    in all (like ``num_epochs`` in train.py: re-running a killed run's command with ``--resume``
    finishes it, and a larger ``steps`` extends a finished one).

    Adam, cross-entropy over mu-law labels, grad-norm clipping at GRAD_CLIP. Crops are drawn
    from (seed, step), so ``resume=True`` continues exactly as an uninterrupted run would.
    ``last.pt`` is written atomically every ``checkpoint_every`` steps and at the end. Returns
    a summary dict.

    ``preset`` (default ``small``) and ``config_overrides`` shape a new run; a resumed run keeps
    the model its folder holds. A folder holding weights only (an imported checkpoint such as
    NSynth's, ``crossfade.py import-nsynth``, or :func:`save_weights`) is fine-tuned with
    ``resume=True``: training starts from those weights with a fresh optimizer, as DeepBass
    fine-tuned Magenta's checkpoint on song beginnings and endings.
    """
    for key, value in (("steps", steps), ("batch_size", batch_size),
                       ("checkpoint_every", checkpoint_every)):
        if not isinstance(value, int) or value < 1:
            raise ToolkitError(f"{key} must be a positive integer, got {value!r}")
    if crop < HOP or crop % HOP:
        raise ToolkitError(f"crop must be a positive multiple of {HOP} samples, got {crop}")
    if not lr > 0:
        raise ToolkitError(f"lr must be positive, got {lr}")
    dev = torch_device(device)
    data_path, run = Path(data_path), Path(run_dir)
    existing = (run / "last.pt").is_file()
    if existing and not resume:
        raise ToolkitError(f"{run} already holds a WaveNet run; pass resume=True "
                           "(--resume) to continue it or choose another folder")
    stored: dict = {}
    if existing:
        stored_path = run / "config.json"
        stored = json.loads(stored_path.read_text()) if stored_path.is_file() else {}
    if existing and isinstance(stored.get("model"), dict):
        cfg = load_config(WaveNetConfig, stored["model"],                # the run's own model
                          where=f"{run / 'config.json'} model")
        if preset is not None and stored.get("preset", preset) != preset:
            raise ToolkitError(f"{run} holds a {stored.get('preset')!r} run; --preset "
                               f"{preset!r} does not apply to it (leave it out to resume)")
        preset = stored.get("preset", preset)
    else:
        preset = preset or "small"
        cfg = make_config(preset, config_overrides)
    settings = {"model": dataclasses.asdict(cfg), "preset": preset, "data_path": str(data_path),
                "batch_size": batch_size, "crop": crop, "lr": lr, "seed": seed, "sr": SR,
                "hop": HOP}

    _open_clips(data_path, crop).close()                              # fail before writing

    torch.manual_seed(seed)
    model = WaveNetAutoencoder(cfg).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    done, history, wall = 0, [], 0.0                                  # steps done so far
    if existing:
        ck = load_checkpoint(run / "last.pt")
        if "optimizer" not in ck:           # weights only (imported): fine-tune from them
            model.load_state_dict(ck["model"])
            settings["fine_tuned_from"] = stored.get("imported_from", "weights")
        else:
            diff = [k for k in RESUME_KEYS if stored.get(k) != settings[k]]
            if diff:
                raise ToolkitError(f"{run} holds a run with other settings (differs in "
                                   f"{', '.join(map(repr, diff))}); use another folder")
            model.load_state_dict(ck["model"])
            opt.load_state_dict(ck["optimizer"])
            done, history = ck["step"], [tuple(h) for h in ck["history"]]
            wall = ck["wall_seconds"]
            set_rng_state(ck["rng"])
            if "fine_tuned_from" in stored:
                settings["fine_tuned_from"] = stored["fine_tuned_from"]
    run.mkdir(parents=True, exist_ok=True)
    atomic_write_json(run / "config.json", settings)

    model.train()
    first, last = done, max(done, steps)
    bar = None
    if progress:
        bar = tqdm(total=last - first, desc="train wavenet", unit="step", disable=None)
    with _open_clips(data_path, crop) as f:
        clips = f["clips"]
        n_clips, length = clips.shape

        def crops():
            for step in range(first, last):
                rng = np.random.default_rng([seed, step])
                rows = rng.integers(n_clips, size=batch_size)
                starts = rng.integers(0, length - crop + 1, size=batch_size)
                x = np.stack([clips[i, s:s + crop] for i, s in zip(rows, starts)])
                yield (torch.from_numpy(np.clip(x, -1, 1).astype(np.float32)).to(dev),)

        def loss_fn(x: torch.Tensor) -> torch.Tensor:           # x (B, crop)
            return F.cross_entropy(model(x), cfg.labels(x))    # logits (B, 256, crop)

        clock = {"t": time.perf_counter()}

        def on_step(loss: float) -> None:
            nonlocal done, wall
            wall += time.perf_counter() - clock["t"]
            done += 1
            history.append((done, loss, wall))
            if bar is not None:
                bar.set_postfix(loss=f"{loss:.3f}")
                bar.update()
            if (done - first) % checkpoint_every == 0 or done == last:
                save_checkpoint(run / "last.pt", model=model.state_dict(),
                                optimizer=opt.state_dict(), step=done, history=history,
                                wall_seconds=wall, rng=rng_state(),
                                config=dataclasses.asdict(cfg))
                write_metrics(run, [{"step": s, "loss": f"{loss:.6g}", "wall_seconds": f"{w:.3f}"}
                                    for s, loss, w in history], METRIC_FIELDS)
            clock["t"] = time.perf_counter()    # checkpoints are not training time

        run_steps(model, opt, crops(), loss_fn, grad_clip=GRAD_CLIP, on_step=on_step)
    if bar is not None:
        bar.close()
    return {"run_dir": str(run), "steps": done, "steps_this_call": last - first,
            "final_loss": history[-1][1], "first_loss": history[0][1],
            "wall_seconds": round(wall, 3), "parameters": count_parameters(model),
            "seed": seed}
