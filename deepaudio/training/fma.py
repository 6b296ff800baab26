"""Training the FMA models (autoencoders, genre classifiers) from a JSON config; testing them.

    python train.py -c models/test/conv_ae.json [--resume] [--device cpu|cuda]
    torchrun --nproc_per_node 2 train.py -c models/test/conv_ae.json     # DDP (gloo on CPU)
    python train.py test -c models/test/conv_ae.json

The run folder ``<models_dir>/<name>/`` holds ``config.json``, ``last.pt`` and ``best.pt``
(model, optimizer, scheduler, epoch, metrics history and RNG states), ``metrics.csv`` (one row
per epoch), ``learning_curve.png``, and the dataset's ``dataset.json`` and ``scaler.npz`` so a
trained run can encode new audio without the training HDF5 file. Checkpoints are written
atomically at the end of every epoch, so a run killed even with SIGKILL resumes with
``--resume`` from its last finished epoch and continues exactly as an uninterrupted run would.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import time
import typing as tp
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F

from deepaudio.core.config import ConfigError, config_to_dict
from deepaudio.core.datasets import Partitions
from deepaudio.core.errors import ToolkitError
from deepaudio.core.figures import pyplot, save_figure
from deepaudio.core.files import atomic_write_bytes, atomic_write_json
from deepaudio.networks.checkpoint import (
    load_trained,
)
from deepaudio.networks.cnn import DenseAutoencoder
from deepaudio.networks.registry import MODELS, build_model, count_parameters
from deepaudio.training.loop import (
    check_same_config,
    restore,
    run_steps,
    save_epoch,
    setup_distributed,
    world,
)


@dataclasses.dataclass
class TrainConfig:
    name: str
    dataset_path: str
    model: tp.Literal["conv_autoencoder", "cnn_classifier", "dense_autoencoder"]
    num_epochs: int = 10
    batch_size: int = 64
    models_dir: str = "models/runs"
    model_params: dict = dataclasses.field(default_factory=dict)
    seed: int = 0
    optimizer: tp.Literal["sgd", "adam"] = "adam"
    lr: float = 1e-3
    momentum: float = 0.9             # SGD only
    weight_decay: float = 0.0
    lr_schedule: tp.Literal["none", "step", "cosine"] = "none"
    lr_step_epochs: int = 10          # step schedule: multiply by lr_gamma every N epochs
    lr_gamma: float = 0.1
    early_stopping_patience: int | None = None   # epochs without a better cv loss
    num_workers: int = 0              # threads reading the next partitions while one trains
    max_batches_per_epoch: int | None = None      # cap for smoke tests and benchmarks

    def validate(self) -> None:
        for key in ("num_epochs", "batch_size", "lr_step_epochs"):
            if getattr(self, key) < 1:
                raise ConfigError(f"key {key!r} must be >= 1")
        if self.lr <= 0:
            raise ConfigError("key 'lr' must be positive")
        if self.num_workers < 0:
            raise ConfigError("key 'num_workers' must be >= 0")
        for key in ("early_stopping_patience", "max_batches_per_epoch"):
            if getattr(self, key) is not None and getattr(self, key) < 1:
                raise ConfigError(f"key {key!r} must be >= 1 or null")
        if not self.name or "/" in self.name:
            raise ConfigError(f"key 'name' must be a plain folder name, got {self.name!r}")
        if self.model not in MODELS:
            raise ConfigError(f"key 'model' must be one of {', '.join(MODELS)}")

    @property
    def run_dir(self) -> Path:
        return Path(self.models_dir) / self.name


def _partition_stream(data: Partitions, parts: list[str], workers: int):
    """Partitions in order; with workers > 0 the next ones are read from HDF5 in background
    threads while the current one trains (h5py releases the GIL while it reads)."""
    if workers == 0:
        for part in parts:
            yield data.load(part)
        return
    with ThreadPoolExecutor(workers) as pool:
        pending = [pool.submit(data.load, p) for p in parts[:workers + 1]]
        for i in range(len(parts)):
            result = pending[i].result()
            if i + workers + 1 < len(parts):
                pending.append(pool.submit(data.load, parts[i + workers + 1]))
            yield result


def epoch_batches(data: Partitions, cfg: TrainConfig, epoch: int):
    """Yield (x, y) batches for one epoch; under DDP each rank gets a disjoint share."""
    rank, size = world()
    rng = np.random.default_rng([cfg.seed, epoch])
    n_batches = 0
    parts = [str(p) for p in rng.permutation(data.train)]
    for x, y, _ in _partition_stream(data, parts, cfg.num_workers):
        order = rng.permutation(len(x))
        per_rank = len(order) // size            # equal counts keep DDP ranks in step
        order = order[rank * per_rank:(rank + 1) * per_rank]
        for i in range(0, len(order), cfg.batch_size):
            if cfg.max_batches_per_epoch and n_batches >= cfg.max_batches_per_epoch:
                return
            idx = np.sort(order[i:i + cfg.batch_size])
            yield torch.from_numpy(x[idx]), torch.from_numpy(y[idx].astype(np.int64))
            n_batches += 1


def is_classifier(cfg: TrainConfig) -> bool:
    return cfg.model == "cnn_classifier"


def batch_loss(model, x, y, cfg: TrainConfig) -> torch.Tensor:
    out = model(x)
    if is_classifier(cfg):
        return F.cross_entropy(out, y)
    return F.mse_loss(out.reshape(x.shape), x)


def track_vote_accuracy(logits: np.ndarray, labels: np.ndarray, track_ids: np.ndarray) -> float:
    """Track-level accuracy by majority vote of segment predictions.

    Ties are broken by the summed log-probabilities of the tied classes (deep-audioviz-experiments
    counted every tie as wrong).
    """
    pred = logits.argmax(1)
    logp = logits - np.logaddexp.reduce(logits, axis=1, keepdims=True)
    correct = []
    for t in np.unique(track_ids):
        m = track_ids == t
        votes = np.bincount(pred[m], minlength=logits.shape[1])
        tied = np.flatnonzero(votes == votes.max())
        choice = tied[np.argmax(logp[m][:, tied].sum(0))]
        correct.append(choice == labels[m][0])
    return float(np.mean(correct)) if correct else float("nan")


@torch.no_grad()
def evaluate(model, data: Partitions, part: str, cfg: TrainConfig, device) -> dict:
    x, y, tracks = data.load(part)
    if len(x) == 0:
        return {"loss": float("nan")}
    model.eval()
    total, outs = 0.0, []
    for i in range(0, len(x), 256):
        xb = torch.from_numpy(x[i:i + 256]).to(device)
        yb = torch.from_numpy(y[i:i + 256].astype(np.int64)).to(device)
        out = model(xb)
        if is_classifier(cfg):
            total += F.cross_entropy(out, yb, reduction="sum").item()
            outs.append(out.cpu().numpy())
        else:
            total += F.mse_loss(out.reshape(xb.shape), xb, reduction="sum").item() / xb[0].numel()
    result: dict[str, tp.Any] = {"loss": total / len(x)}
    if is_classifier(cfg):
        logits = np.concatenate(outs)
        result["segment_acc"] = float((logits.argmax(1) == y).mean())
        result["track_acc"] = track_vote_accuracy(logits, y, tracks)
        result["logits"] = logits
        result["labels"] = y
    return result


def make_optimizer(model, cfg: TrainConfig):
    params = [p for p in model.parameters() if p.requires_grad]
    opt: torch.optim.Optimizer
    sched: torch.optim.lr_scheduler.LRScheduler | None
    if cfg.optimizer == "sgd":
        opt = torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum,
                              weight_decay=cfg.weight_decay)
    else:
        opt = torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.lr_schedule == "step":
        sched = torch.optim.lr_scheduler.StepLR(opt, cfg.lr_step_epochs, cfg.lr_gamma)
    elif cfg.lr_schedule == "cosine":
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, cfg.num_epochs)
    else:
        sched = None
    return opt, sched


def prepare_model_params(cfg: TrainConfig, data: Partitions) -> dict:
    """Fill in what the dataset decides (input size, number of classes)."""
    params = dict(cfg.model_params)
    if cfg.model == "dense_autoencoder":
        params.setdefault("input_dim", int(np.prod(data.input_shape)))
    else:
        params.setdefault("input_dims", list(data.input_shape[-2:]))
    if cfg.model == "cnn_classifier":
        if not data.genres:
            raise ToolkitError(f"{data.path} has no genre labels (a plain-folder dataset); "
                               "a classifier needs an FMA dataset")
        params.setdefault("num_classes", len(data.genres))
    return params


# Keys a run may change and still be continued: raising num_epochs extends a finished run, as in
# deep-audioviz-experiments. Anything else would silently train a different model on the old
# weights.
RESUMABLE_CHANGES = frozenset({"num_epochs", "early_stopping_patience", "max_batches_per_epoch",
                               "num_workers"})


def training_sample(data: Partitions, *, seed: int, max_segments: int = 5000) -> np.ndarray:
    """About ``max_segments`` train segments drawn at random (the same for a seed), read
    one partition at a time (memory holds one partition and the sample)."""
    rng = np.random.default_rng(seed)
    share = min(1.0, max_segments / max(1, data.n_train))
    parts = []
    for p in data.train:
        x = data.load(p)[0]
        parts.append(x if share >= 1 else x[rng.random(len(x)) < share])
    return np.concatenate(parts)


def check_same_scaling(run: Path, data: Partitions) -> None:
    """Raise if ``data`` is scaled otherwise than the data the run in ``run`` trained on.

    A dataset rebuilt with other settings (another scaler or scaler_axis) under the same path
    would otherwise be fed to weights that expect the old scaling, and resuming would
    overwrite the run's own copy of its scaler.
    """
    stored = run / "scaler.npz"
    if not stored.is_file():
        return
    with np.load(stored) as z:
        mine = {k: z[k] for k in z.files}
    same = (mine.keys() == data.scaler.keys()
            and all(np.array_equal(mine[k], data.scaler[k]) for k in mine))
    if not same:
        raise ToolkitError(f"{data.path} is not scaled as it was when the run in {run} "
                           "trained (was the dataset rebuilt with other settings?); train a "
                           "new run (another name or models_dir) on it, or restore the dataset")


def check_resumable(cfg: TrainConfig) -> None:
    """Raise if the run folder holds a run of a different config."""
    check_same_config(cfg, cfg.run_dir, RESUMABLE_CHANGES)

METRIC_FIELDS = ["epoch", "train_loss", "cv_loss", "cv_segment_acc", "cv_track_acc", "lr",
                 "epoch_seconds", "samples_per_s"]


def train(cfg: TrainConfig, *, resume: bool = False, device: str = "cpu",
          stop_after_epochs: int | None = None,
          on_epoch: tp.Callable[[dict], None] | None = None) -> dict:
    """Train (or continue) a run; returns the last epoch's metrics row.

    ``stop_after_epochs`` ends this call early (to test resumption) without changing the run.
    ``on_epoch(row)`` is called after each epoch with its metrics row (a job's progress).
    """
    if device == "cuda" and not torch.cuda.is_available():
        raise ToolkitError("--device cuda: no CUDA device is available")
    setup_distributed(device)
    rank, size = world()
    dev = (torch.device(device, int(os.environ.get("LOCAL_RANK", 0))) if device == "cuda"
           else torch.device(device))
    data = Partitions(cfg.dataset_path)
    run = cfg.run_dir
    params = prepare_model_params(cfg, data)
    torch.manual_seed(cfg.seed)
    model = build_model(cfg.model, params).to(dev)
    opt, sched = make_optimizer(model, cfg)
    stored = run / "config.json"
    start_epoch, history, best = 0, [], float("inf")
    if resume and (run / "last.pt").is_file():
        check_resumable(cfg)
        check_same_scaling(run, data)
        ck = restore(run / "last.pt", model, opt, sched)
        start_epoch, history, best = ck["epoch"], ck["history"], ck["best_loss"]
    elif (run / "last.pt").is_file() and not resume:
        raise ToolkitError(f"{run} already holds a run; pass --resume to continue it or "
                           "choose another name")
    elif isinstance(model, DenseAutoencoder):
        # a model that starts from the data (the dense AE's linear path at PCA; a no-op
        # without one): the same sample on every rank, drawn from the seed
        if model.linear_encoder is not None:
            model.init_from_data(training_sample(data, seed=cfg.seed))
    if rank == 0:
        run.mkdir(parents=True, exist_ok=True)
        atomic_write_json(stored, config_to_dict(cfg))
        atomic_write_json(run / "dataset.json", {
            "dataset_path": str(cfg.dataset_path), "genres": data.genres,
            "input_shape": list(data.input_shape), "model_params": params,
            "mode": data.attrs.get("mode"), "config": json.loads(data.attrs.get("config", "{}")),
            "segment_seconds": float(data.attrs.get("segment_seconds", 0.0)),
            "hop_seconds": float(data.attrs.get("hop_seconds", 0.0))})
        buf = io.BytesIO()
        np.savez(buf, **data.scaler)
        atomic_write_bytes(run / "scaler.npz", buf.getvalue())
    net = model
    if size > 1:
        net = torch.nn.parallel.DistributedDataParallel(model)
    patience_left = cfg.early_stopping_patience
    if patience_left is not None and history:
        best_epoch = min(history, key=lambda r: r["cv_loss"] if np.isfinite(r["cv_loss"])
                         else r["train_loss"])["epoch"]
        patience_left -= history[-1]["epoch"] - best_epoch
    row = history[-1] if history else {}
    epochs_run = 0
    for epoch in range(start_epoch, cfg.num_epochs):
        if patience_left is not None and patience_left <= 0:
            break
        if stop_after_epochs is not None and epochs_run >= stop_after_epochs:
            break
        t0 = time.perf_counter()
        net.train()
        batches = ((x.to(dev), y.to(dev)) for x, y in epoch_batches(data, cfg, epoch))
        losses, seen = run_steps(net, opt, batches, lambda x, y: batch_loss(net, x, y, cfg))
        train_seconds = time.perf_counter() - t0
        train_loss = float(np.mean(losses)) if losses else float("nan")
        if size > 1:  # mean over ranks, so every rank logs the same figure
            t = torch.tensor([train_loss * len(losses), len(losses), seen], dtype=torch.float64)
            dist.all_reduce(t)
            train_loss, seen = float(t[0] / t[1]), int(t[2])
        cv = evaluate(model, data, "partition_cv", cfg, dev)
        row = {"epoch": epoch + 1, "train_loss": train_loss, "cv_loss": cv["loss"],
               "cv_segment_acc": cv.get("segment_acc", ""), "cv_track_acc": cv.get("track_acc", ""),
               "lr": opt.param_groups[0]["lr"],
               "epoch_seconds": round(time.perf_counter() - t0, 3),
               "samples_per_s": round(seen / max(train_seconds, 1e-9), 1)}
        if sched is not None:
            sched.step()
        history.append(row)
        # model selection on cv loss; without cv data (cv_split 0) on train loss
        score = cv["loss"] if np.isfinite(cv["loss"]) else train_loss
        improved = score < best
        best = min(best, score)
        if patience_left is not None:
            patience_left = cfg.early_stopping_patience if improved else patience_left - 1
        if rank == 0:
            save_epoch(run, model, opt, sched, epoch=epoch + 1, history=history,
                       improved=improved, fields=METRIC_FIELDS, best_loss=best,
                       model_name=cfg.model, model_params=params)
            print(f"epoch {epoch + 1}/{cfg.num_epochs} train {train_loss:.5g} "
                  f"cv {cv['loss']:.5g}" + (f" acc {cv['segment_acc']:.3f}/"
                                            f"{cv['track_acc']:.3f}" if "segment_acc" in cv
                                            else "") + f" {row['samples_per_s']} samples/s",
                  flush=True)
        epochs_run += 1
        if on_epoch is not None:
            on_epoch(row)
        if size > 1:
            dist.barrier()
    return row


def evaluate_run(cfg: TrainConfig, device: str = "cpu") -> dict:
    """Evaluate the best checkpoint on the test partition; write JSON (+ confusion matrix)."""
    model, info, _ = load_trained(cfg.run_dir, device=device)
    data = Partitions(cfg.dataset_path)
    check_same_scaling(cfg.run_dir, data)
    res = evaluate(model, data, "partition_test", cfg, torch.device(device))
    out = {"name": cfg.name, "model": cfg.model, "test_loss": res["loss"],
           "parameters": count_parameters(model)}
    if is_classifier(cfg):
        from sklearn.metrics import confusion_matrix
        cm = confusion_matrix(res["labels"], res["logits"].argmax(1),
                              labels=range(len(data.genres)))
        out.update(test_segment_acc=res["segment_acc"], test_track_acc=res["track_acc"],
                   chance=1 / len(data.genres), confusion_matrix=cm.tolist(),
                   genres=data.genres)
        plot_confusion(cfg.run_dir, cm, data.genres)
    else:
        out.update(autoencoder_references(model, data, out["test_loss"]))
    atomic_write_json(cfg.run_dir / "test_metrics.json", out)
    return out


def linear_probe_accuracy(train_codes: np.ndarray, train_labels: np.ndarray,
                          test_codes: np.ndarray, test_labels: np.ndarray) -> float | None:
    """Genre accuracy of a logistic regression on features (standardized on train).

    How much of what tells genres apart a code carries: a linear read-out, so a code that
    only reconstructs well but hides genre in a tangle scores low. None without two classes.
    """
    if len(np.unique(train_labels)) < 2 or len(test_labels) == 0:
        return None
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    probe.fit(train_codes, train_labels)
    return float(probe.score(test_codes, test_labels))


def autoencoder_references(model, data: Partitions, test_mse: float, *,
                           max_train: int = 5000) -> dict:
    """What an autoencoder's test MSE should be judged against.

    * per-position baseline: predict every position by its train mean (the mean per-position
      variance of the test data around it);
    * PCA with as many components as the code, fitted on (up to ``max_train``) train segments:
      the best *linear* code of that size;
    * within-segment share: the part of the baseline that is variation along the last axis
      (frame to frame for MFCC segments), which a small per-segment code can hardly carry;
    * genre probe: test-segment genre accuracy of a logistic regression on the codes, fitted
      on the same train segments, for the model's codes and for PCA's (with chance beside).
    """
    from sklearn.decomposition import PCA
    x, y, _ = data.load("partition_test")
    loaded = [data.load(p) for p in data.train]
    train = np.concatenate([t[0] for t in loaded])
    labels = np.concatenate([t[1] for t in loaded])
    del loaded
    mean = train.mean(0, dtype=np.float64)
    baseline = float(((x - mean) ** 2).mean())
    rng = np.random.default_rng(0)
    pick = rng.choice(len(train), min(len(train), max_train), replace=False)
    fit, fit_labels = train[pick], labels[pick]
    del train
    code = model.encode_array(x[:1]).shape[1]
    flat = lambda a: (a - mean).reshape(len(a), -1)  # noqa: E731
    pca = PCA(min(code, len(fit)), svd_solver="randomized", random_state=0).fit(flat(fit))
    resid = flat(x) - pca.inverse_transform(pca.transform(flat(x)))
    out = {"baseline_mse_per_position_mean": baseline,
           "mse_ratio_to_baseline": test_mse / baseline,
           "pca_components": pca.n_components_,
           "pca_mse": float((resid ** 2).mean()),
           "pca_mse_ratio_to_baseline": float((resid ** 2).mean()) / baseline}
    if x.ndim == 3:
        out["within_segment_share"] = float(((x - x.mean(-1, keepdims=True)) ** 2).mean()
                                            / baseline)
    if data.genres:
        acc = linear_probe_accuracy(model.encode_array(fit), fit_labels, model.encode_array(x), y)
        if acc is not None:
            out.update(code_genre_probe_acc=acc,
                       pca_genre_probe_acc=linear_probe_accuracy(
                           pca.transform(flat(fit)), fit_labels, pca.transform(flat(x)), y),
                       chance=1 / len(data.genres))
    return out


def plot_confusion(run: Path, cm: np.ndarray, genres: list[str]) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 5))
    ax.imshow(cm, cmap="Blues")
    ax.set_xticks(range(len(genres)), genres, rotation=45, ha="right")
    ax.set_yticks(range(len(genres)), genres)
    for i in range(len(genres)):
        for j in range(len(genres)):
            ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    fig.tight_layout()
    save_figure(fig, run / "confusion_matrix.png")
