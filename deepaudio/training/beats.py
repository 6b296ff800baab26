"""Training the beat and downbeat network on the beat corpus (:mod:`deepaudio.data.beatcorpus`).

    python train.py -c models/beats/tcn.json [--resume] [--device cpu|cuda]
    torchrun --nproc_per_node 2 train.py -c models/beats/tcn.json
    python train.py export -c models/beats/tcn.json --to deepaudio/analysis/weights/beat_tcn.pt

Each step takes ``batch_size`` pieces of the corpus' train shards, a random crop of
``crop_frames`` frames of each (shorter pieces padded and masked), and the binary cross-entropy
of the two outputs against targets made from the exact beat and downbeat times: 1 on the frame
nearest each beat, ``widen`` on its two neighbours (Böck & Davies 2020: a target one frame wide
punishes a beat found 10 ms off as hard as one missed). The same loop as every other model
(:func:`deepaudio.training.loop.run_steps`), Adam, optional cosine schedule.

A share ``cv_share`` of the train pieces (drawn from the seed) is held out: after every epoch
the run reports their loss and the beat and downbeat F-measures of the whole tracker (network
and decoder, :mod:`deepaudio.analysis.dbn`), and keeps the checkpoint with the best beat F as
``best.pt``. The run folder holds ``config.json``, ``last.pt``, ``best.pt`` (model, optimizer,
scheduler, epoch, history, RNG states), ``metrics.csv`` and the learning curve; a run killed
even with SIGKILL resumes with ``--resume`` from its last finished epoch exactly as an
uninterrupted run would continue. The evaluation set (other seeds and soundfonts) is never
read here: ``bench/beats.py`` scores it.
"""

from __future__ import annotations

import dataclasses
import os
import time
import typing as tp
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F

from deepaudio.analysis import frontend
from deepaudio.analysis.scores import f_measure
from deepaudio.analysis.tracker import Tracker
from deepaudio.core.config import ConfigError, config_to_dict, load_config
from deepaudio.core.datasets import CorpusPiece, find_shards, read_shards
from deepaudio.core.errors import ToolkitError
from deepaudio.core.files import atomic_write_json
from deepaudio.networks.beats import BeatTCN, BeatTCNConfig
from deepaudio.networks.checkpoint import (
    load_checkpoint,
    save_checkpoint,
    torch_device,
)
from deepaudio.networks.registry import count_parameters
from deepaudio.training.loop import (
    check_same_config,
    restore,
    run_steps,
    save_epoch,
    setup_distributed,
    world,
)

METRIC_FIELDS = ["epoch", "train_loss", "cv_loss", "cv_beat_f", "cv_downbeat_f", "lr",
                 "epoch_seconds", "frames_per_s"]
RESUMABLE_CHANGES = frozenset({"num_epochs", "max_batches_per_epoch", "early_stopping_patience"})


@dataclasses.dataclass
class BeatTrainConfig:
    name: str
    corpus: str                          # folder of beat-corpus shards (train-*.h5)
    model: tp.Literal["beat_tcn"] = "beat_tcn"
    models_dir: str = "models/runs"
    model_params: dict = dataclasses.field(default_factory=dict)
    num_epochs: int = 30
    batch_size: int = 8
    crop_frames: int = 1500              # 30 s at 50 fps
    lr: float = 2e-3
    weight_decay: float = 1e-5
    lr_schedule: tp.Literal["none", "cosine"] = "cosine"
    seed: int = 0
    cv_share: float = 0.1
    widen: float = 0.5
    downbeat_weight: float = 1.0
    max_pieces: int | None = None        # only the first N train pieces (smoke tests)
    max_batches_per_epoch: int | None = None
    early_stopping_patience: int | None = None

    def validate(self) -> None:
        for key in ("num_epochs", "batch_size", "crop_frames"):
            if getattr(self, key) < 1:
                raise ConfigError(f"key {key!r} must be >= 1")
        if self.lr <= 0 or self.weight_decay < 0:
            raise ConfigError("key 'lr' must be positive and 'weight_decay' >= 0")
        if not 0 <= self.cv_share < 1:
            raise ConfigError("key 'cv_share' must be in [0, 1)")
        if not 0 <= self.widen <= 1 or self.downbeat_weight < 0:
            raise ConfigError("key 'widen' must be in [0, 1] and 'downbeat_weight' >= 0")
        for key in ("max_pieces", "max_batches_per_epoch", "early_stopping_patience"):
            if getattr(self, key) is not None and getattr(self, key) < 1:
                raise ConfigError(f"key {key!r} must be >= 1 or null")
        if not self.name or "/" in self.name:
            raise ConfigError(f"key 'name' must be a plain folder name, got {self.name!r}")

    @property
    def run_dir(self) -> Path:
        return Path(self.models_dir) / self.name


def targets(times: np.ndarray, n: int, widen: float) -> np.ndarray:
    """(n,) frame targets: 1 on the frame nearest each time, ``widen`` on its neighbours."""
    y = np.zeros(n, np.float32)
    f = np.round(np.asarray(times) * frontend.FPS).astype(int)
    for d, v in ((-1, widen), (1, widen), (0, 1.0)):
        g = f + d
        g = g[(g >= 0) & (g < n)]
        y[g] = np.maximum(y[g], v)
    return y


def split_pieces(pieces: list[CorpusPiece], cfg: BeatTrainConfig) -> tuple[list, list]:
    order = np.random.default_rng(cfg.seed).permutation(len(pieces))
    n_cv = int(round(cfg.cv_share * len(pieces)))
    cv = {int(i) for i in order[:n_cv]}
    return ([p for k, p in enumerate(pieces) if k not in cv],
            [p for k, p in enumerate(pieces) if k in cv])


def epoch_batches(pieces: list[CorpusPiece], cfg: BeatTrainConfig, epoch: int):
    """(x, y, mask) batches of one epoch; under DDP each rank gets a disjoint share."""
    rank, size = world()
    rng = np.random.default_rng([cfg.seed, epoch])
    order = rng.permutation(len(pieces))
    per_rank = len(order) // size
    order = order[rank * per_rank:(rank + 1) * per_rank]
    crops = [int(rng.integers(0, max(1, len(pieces[i].mel) - cfg.crop_frames + 1)))
             for i in order]
    for b, i in enumerate(range(0, len(order), cfg.batch_size)):
        if cfg.max_batches_per_epoch and b >= cfg.max_batches_per_epoch:
            return
        idx = order[i:i + cfg.batch_size]
        n = min(cfg.crop_frames, max(len(pieces[k].mel) for k in idx))
        x = np.zeros((len(idx), n, pieces[idx[0]].mel.shape[1]), np.float32)
        y = np.zeros((len(idx), n, 2), np.float32)
        mask = np.zeros((len(idx), n), np.float32)
        for r, (k, c0) in enumerate(zip(idx, crops[i:i + cfg.batch_size])):
            p = pieces[k]
            seg = p.mel[c0:c0 + n]
            x[r, :len(seg)] = seg
            shift = c0 / frontend.FPS
            y[r, :, 0] = targets(p.beats - shift, n, cfg.widen)
            y[r, :, 1] = targets(p.downbeats - shift, n, cfg.widen)
            mask[r, :len(seg)] = 1
        yield torch.from_numpy(x), torch.from_numpy(y), torch.from_numpy(mask)


def frame_loss(out: torch.Tensor, y: torch.Tensor, mask: torch.Tensor,
               cfg: BeatTrainConfig) -> torch.Tensor:
    """Binary cross-entropy of (B, T, 2) logits against the targets, over unmasked frames."""
    w = torch.stack([mask, mask * cfg.downbeat_weight], dim=-1)
    return (F.binary_cross_entropy_with_logits(out, y, weight=w, reduction="sum")
            / mask.sum().clamp(min=1))


@torch.no_grad()
def evaluate(model: BeatTCN, pieces: list[CorpusPiece], cfg: BeatTrainConfig,
             device: torch.device) -> dict:
    """The cv loss and the tracker's mean beat and downbeat F-measures on ``pieces`` (the
    F-measures over the pieces that have beats)."""
    if not pieces:
        return {"loss": float("nan"), "beat_f": float("nan"), "downbeat_f": float("nan")}
    model.eval()
    tracker = Tracker(model, source="training")
    losses, beat_f, down_f = [], [], []
    for p in pieces:
        x = torch.from_numpy(p.mel.astype(np.float32))[None].to(device)
        n = x.shape[1]
        y = torch.from_numpy(np.stack([targets(p.beats, n, cfg.widen),
                                       targets(p.downbeats, n, cfg.widen)], -1))[None]
        logits = model(x)
        losses.append(frame_loss(logits, y.to(device), torch.ones(1, n, device=device),
                                 cfg).item())
        if not len(p.beats):            # a piece with no beat counts in the loss only
            continue
        act = torch.sigmoid(logits[0]).cpu().numpy()
        try:
            decoded = tracker.decode(act)
            beats, downs = decoded.times, decoded.times[decoded.positions == 1]
        except ToolkitError:
            beats = downs = np.zeros(0)
        beat_f.append(f_measure(p.beats, beats))
        down_f.append(f_measure(p.downbeats, downs))
    return {"loss": float(np.mean(losses)),
            "beat_f": float(np.mean(beat_f)) if beat_f else float("nan"),
            "downbeat_f": float(np.mean(down_f)) if down_f else float("nan")}


def load_corpus(cfg: BeatTrainConfig) -> tuple[list[CorpusPiece], list[CorpusPiece]]:
    pieces = read_shards(find_shards(cfg.corpus, "train"))
    if cfg.max_pieces:
        pieces = pieces[:cfg.max_pieces]
    n_mels = int(cfg.model_params.get("n_mels", BeatTCNConfig.n_mels))
    if pieces and pieces[0].mel.shape[1] != n_mels:
        raise ToolkitError(f"{cfg.corpus}: frames of {pieces[0].mel.shape[1]} bands, the "
                           f"model reads {n_mels}")
    return split_pieces(pieces, cfg)


def train_beats(cfg: BeatTrainConfig, *, resume: bool = False, device: str = "cpu",
                stop_after_epochs: int | None = None,
                on_epoch: tp.Callable[[dict], None] | None = None) -> dict:
    """Train (or continue) a beat run; returns the last epoch's metrics row."""
    dev = torch_device(device)
    setup_distributed(device)
    rank, size = world()
    if dev.type == "cuda":
        dev = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    train_set, cv_set = load_corpus(cfg)
    if len(train_set) < size:
        raise ToolkitError(f"{cfg.corpus}: {len(train_set)} train pieces for {size} ranks")
    run = cfg.run_dir
    net_cfg = load_config(BeatTCNConfig, cfg.model_params, where="model_params")
    params = config_to_dict(net_cfg)           # every setting, defaults included, is recorded
    torch.manual_seed(cfg.seed)
    model = BeatTCN(net_cfg).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = (torch.optim.lr_scheduler.CosineAnnealingLR(opt, cfg.num_epochs)
             if cfg.lr_schedule == "cosine" else None)
    start_epoch, history, best = 0, [], -1.0
    if resume and (run / "last.pt").is_file():
        check_same_config(cfg, run, RESUMABLE_CHANGES)
        ck = restore(run / "last.pt", model, opt, sched)
        start_epoch, history, best = ck["epoch"], ck["history"], ck["best_score"]
    elif (run / "last.pt").is_file():
        raise ToolkitError(f"{run} already holds a run; pass --resume to continue it or "
                           "choose another name")
    if rank == 0:
        run.mkdir(parents=True, exist_ok=True)
        atomic_write_json(run / "config.json", config_to_dict(cfg))
    net: torch.nn.Module = model
    if size > 1:
        net = torch.nn.parallel.DistributedDataParallel(model)
    patience = cfg.early_stopping_patience
    if patience is not None and history:
        best_epoch = max(history, key=lambda r: r["cv_beat_f"])["epoch"]
        patience -= history[-1]["epoch"] - best_epoch
    row = history[-1] if history else {}
    frames = [0]                                  # frames trained on in this epoch

    def step_loss(x, y, m):
        frames[0] += int(m.sum().item())
        return frame_loss(net(x), y, m, cfg)
    for n_run, epoch in enumerate(range(start_epoch, cfg.num_epochs)):
        if (patience is not None and patience <= 0) or (
                stop_after_epochs is not None and n_run >= stop_after_epochs):
            break
        t0 = time.perf_counter()
        net.train()
        batches = ((x.to(dev), y.to(dev), m.to(dev)) for x, y, m in
                   epoch_batches(train_set, cfg, epoch))
        frames[0] = 0
        losses, _ = run_steps(net, opt, batches, step_loss, grad_clip=5.0)
        seconds = time.perf_counter() - t0
        train_loss = float(np.mean(losses)) if losses else float("nan")
        if size > 1:
            t = torch.tensor([train_loss * len(losses), len(losses), frames[0]],
                             dtype=torch.float64)
            dist.all_reduce(t)
            train_loss, frames[0] = float(t[0] / t[1]), int(t[2])
        cv = evaluate(model, cv_set, cfg, dev)
        row = {"epoch": epoch + 1, "train_loss": round(train_loss, 6),
               "cv_loss": round(cv["loss"], 6), "cv_beat_f": round(cv["beat_f"], 4),
               "cv_downbeat_f": round(cv["downbeat_f"], 4), "lr": opt.param_groups[0]["lr"],
               "epoch_seconds": round(time.perf_counter() - t0, 2),
               "frames_per_s": round(frames[0] / max(seconds, 1e-9))}
        if sched is not None:
            sched.step()
        history.append(row)
        score = cv["beat_f"] + cv["downbeat_f"] if np.isfinite(cv["beat_f"]) else -train_loss
        improved = score > best
        best = max(best, score)
        if patience is not None:
            patience = cfg.early_stopping_patience if improved else patience - 1
        if rank == 0:
            save_epoch(run, model, opt, sched, epoch=epoch + 1, history=history,
                       improved=improved, fields=METRIC_FIELDS, best_score=best,
                       model_name=cfg.model, model_params=params, frontend=frontend_info(),
                       parameters=count_parameters(model))
            print(f"epoch {epoch + 1}/{cfg.num_epochs} train {train_loss:.4f} cv "
                  f"{cv['loss']:.4f} beat F {cv['beat_f']:.3f} downbeat F "
                  f"{cv['downbeat_f']:.3f} {row['frames_per_s']} frames/s", flush=True)
        if on_epoch is not None:
            on_epoch(row)
        if size > 1:
            dist.barrier()
    return row


def frontend_info() -> dict:
    return {"sr": frontend.SR, "hop": frontend.HOP, "n_fft": frontend.N_FFT,
            "n_mels": frontend.N_MELS, "fmin": frontend.FMIN, "fmax": frontend.FMAX}


def export_weights(cfg: BeatTrainConfig, to: str | os.PathLike) -> Path:
    """The run's best weights as a small file the tracker loads (no optimizer state), with
    where they came from and their cv figures."""
    ck = load_checkpoint(cfg.run_dir / "best.pt")
    best = max(ck["history"], key=lambda r: r["cv_beat_f"] + r["cv_downbeat_f"])
    out = Path(to)
    save_checkpoint(out, model={k: v.half() if v.is_floating_point() else v
                                for k, v in ck["model"].items()},
                    model_name=ck["model_name"], model_params=ck["model_params"],
                    frontend=ck["frontend"], epoch=ck["epoch"], cv=best,
                    config=config_to_dict(cfg))
    return out
