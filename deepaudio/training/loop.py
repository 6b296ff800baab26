"""The one optimisation loop, shared by the FMA models and the WaveNet autoencoder, and the
torchrun helpers.

:func:`run_steps` is the inner loop (loss, backward, optional gradient clipping, step) over
whatever batches a trainer yields; the trainers decide what a batch is and when to evaluate.
:func:`save_epoch` writes an epoch's checkpoints (:mod:`deepaudio.networks.checkpoint`), metrics
and learning curve (:mod:`deepaudio.training.metrics`), :func:`restore` reads a checkpoint back
for ``--resume``, and :func:`check_same_config` refuses to continue a run of another config.
"""

from __future__ import annotations

import json
import os
import typing as tp
from pathlib import Path

import torch
import torch.distributed as dist

from deepaudio.core.config import config_to_dict
from deepaudio.core.errors import ToolkitError
from deepaudio.networks.checkpoint import (
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from deepaudio.networks.tracing import TRACING
from deepaudio.training.metrics import plot_learning_curve, write_metrics


def world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def setup_distributed(device: str) -> None:
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device == "cuda" else "gloo")


def run_steps(model: torch.nn.Module, optimizer: torch.optim.Optimizer,
              batches: tp.Iterable[tuple[torch.Tensor, ...]],
              loss_fn: tp.Callable[..., torch.Tensor], *, grad_clip: float | None = None,
              on_step: tp.Callable[[float], None] | None = None) -> tuple[list[float], int]:
    """One optimiser step per batch: ``loss_fn(*batch)``, backward, clip the global gradient
    norm to ``grad_clip`` (None: no clipping), step. ``on_step(loss)`` runs after each step
    (a trainer's per-step bookkeeping: history, checkpoints). Returns the losses and the
    number of examples seen (the first dimension of each batch's first tensor).
    """
    losses: list[float] = []
    seen = 0
    for batch in batches:
        with TRACING:           # not while another thread exports a graph (networks.tracing)
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(*batch)
            loss.backward()
            if grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
            optimizer.step()
        value = loss.item()
        losses.append(value)
        seen += len(batch[0])
        if on_step is not None:
            on_step(value)
    return losses, seen


def check_same_config(cfg: tp.Any, run: Path, resumable: frozenset[str]) -> None:
    """Raise if the run folder ``run`` holds a run of another config than ``cfg`` (a
    dataclass): any key outside ``resumable`` differs. Continuing it would silently train a
    different model on the old weights."""
    stored = run / "config.json"
    if not stored.is_file():
        return
    before, now = json.loads(stored.read_text()), config_to_dict(cfg)
    diff = sorted(k for k in set(before) | set(now)
                  if k not in resumable and before.get(k) != now.get(k))
    if diff:
        raise ToolkitError(f"{run} holds a run of another config (differs in "
                           f"{', '.join(map(repr, diff))}); use another name or models_dir")


def restore(path: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
            scheduler: tp.Any | None) -> dict:
    """Load a trainer's checkpoint into its model, optimizer and scheduler, and set the RNG
    states it saved, so the run continues exactly as an uninterrupted one; returns the
    checkpoint (epoch, history, the trainer's own keys)."""
    ck = load_checkpoint(path)
    model.load_state_dict(ck["model"])
    optimizer.load_state_dict(ck["optimizer"])
    if scheduler is not None and ck.get("scheduler"):
        scheduler.load_state_dict(ck["scheduler"])
    set_rng_state(ck["rng"])
    return ck


def save_epoch(run: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
               scheduler: tp.Any | None, *, epoch: int, history: list[dict], improved: bool,
               fields: tp.Sequence[str], **extra: tp.Any) -> None:
    """The end of an epoch on disk: ``last.pt`` (and ``best.pt`` when it ``improved``) with
    everything :func:`restore` reads back and the trainer's ``extra`` keys, the metrics CSV
    and the learning curve."""
    payload = dict(model=model.state_dict(), optimizer=optimizer.state_dict(),
                   scheduler=scheduler.state_dict() if scheduler else None, epoch=epoch,
                   history=history, rng=rng_state(), **extra)
    if improved:
        save_checkpoint(run / "best.pt", **payload)
    save_checkpoint(run / "last.pt", **payload)
    write_metrics(run, history, fields)
    plot_learning_curve(run, history)
