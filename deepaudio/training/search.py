"""Hyper-parameter search: generate seeded random configs, train them as a batch, rank them.

    python hp_tune.py generate --space conv_ae --n 8 --seed 0 --out models/hp/conv_ae
    python hp_tune.py train --list models/hp/conv_ae/list.txt [--device cpu|cuda]
    python hp_tune.py report --list models/hp/conv_ae/list.txt [--out DIR]

``generate`` draws from deep-audioviz-experiments' ranges (its ``helpers.py``), but seeded, with
booleans stored as JSON booleans (the original wrote ``"batchnorm": "false"``, a truthy string, so
its whole "non-BN" sweep built batch-norm VGGs), and every config validated by
:func:`config.load_config` before it is written. Parameter counts come from models built on
torch's ``meta`` device: shapes only, no memory, so filtering hundreds of 20-30M-parameter
candidates costs milliseconds. ``train`` skips finished runs and resumes unfinished ones, so a
killed batch is restarted with the same command. ``report`` writes ``leaderboard.csv`` (sorted
by best cv loss) and ``learning_curves.png`` next to the list file.
"""

from __future__ import annotations

import copy
import csv
import io
import json
import math
import sys
from pathlib import Path

import numpy as np
import torch

from deepaudio.core.config import load_config
from deepaudio.core.datasets import Partitions
from deepaudio.core.errors import ToolkitError
from deepaudio.core.figures import pyplot, save_figure
from deepaudio.core.files import atomic_write_bytes, atomic_write_json
from deepaudio.networks.registry import build_model, count_parameters
from deepaudio.training.fma import TrainConfig, check_resumable, prepare_model_params, train

# deep-audioviz-experiments' helpers.py ranges (its duplicated entries, e.g. filters {16, 32, 32},
# only weighted the draw; here each value is equally likely). lr is 10 ** U(log10_lr).
SPACES: dict[str, dict] = {
    "conv_ae": {
        "model": "conv_autoencoder",
        "dataset": "datasets/processed/sample/mfcc_ae_sample.h5",
        "log10_lr": [-4.0, -2.0],
        "momentum": [0.9, 0.95, 0.99],
        "batch_size": [32, 64],
        "param_bounds": [20_000_000, 30_000_000],
        "model_params": {"num_init_filters": [16, 32], "num_pools": [4], "num_fc": [2, 3, 4],
                         "fc_scale_down": [2, 4, 8, 16], "kernel_size": [3, 5],
                         "variant": ["plain", "shared", "skip"]},
        "tiny": {"num_init_filters": [2, 4]},
    },
    "classifier": {
        "model": "cnn_classifier",
        "dataset": "datasets/processed/sample/mfcc_classifier_sample.h5",
        "log10_lr": [-5.0, -2.0],
        "momentum": [0.9, 0.98],
        "batch_size": [32, 64, 128],
        "param_bounds": [0, None],
        "model_params": {"arch": ["vgg11", "vgg13", "vgg16", "alexnet"],
                         "batchnorm": [True, False]},   # AlexNet has no batch-norm layout
        "tiny": {"width": [0.0625], "fc_units": [64]},
    },
    "dense_ae": {
        "model": "dense_autoencoder",
        "dataset": "datasets/processed/sample/spectrum_sample.h5",
        "log10_lr": [-4.0, -2.0],
        "momentum": [0.9, 0.95, 0.99],
        "batch_size": [32, 64],
        "param_bounds": [0, None],
        # widths: `hidden_layers` distinct sizes from `hidden_sizes`, decreasing, then the code
        "model_params": {"widths": {"hidden_sizes": [4096, 2048, 1024, 512, 256, 128, 64, 32],
                                    "hidden_layers": [2, 3, 4, 5], "code": 10}},
        "tiny": {"widths": {"hidden_sizes": [64, 32, 16], "hidden_layers": [1, 2], "code": 10}},
    },
}


def space_ranges(space: str, *, tiny: bool = False) -> dict:
    """The ranges of one search space; ``tiny`` swaps in minute models for smoke tests."""
    if space not in SPACES:
        raise ToolkitError(f"unknown space {space!r}; choose one of {', '.join(SPACES)}")
    ranges = copy.deepcopy(SPACES[space])
    tiny_choices = ranges.pop("tiny")
    if tiny:
        ranges["model_params"].update(tiny_choices)
    return ranges


def _pick(rng: np.random.Generator, options: list):
    """One option, as the Python object itself (never a numpy scalar: np.bool_ is no JSON bool)."""
    return options[int(rng.integers(len(options)))]


def draw_candidate(ranges: dict, rng: np.random.Generator) -> dict:
    """One random point: ``{"lr", "momentum", "batch_size", "model_params"}``."""
    params: dict = {}
    for key, options in ranges["model_params"].items():
        if key == "widths":
            k = _pick(rng, options["hidden_layers"])
            sizes = rng.choice(options["hidden_sizes"], size=k, replace=False)
            params[key] = sorted((int(s) for s in sizes), reverse=True) + [options["code"]]
        else:
            params[key] = _pick(rng, options)
    if "kernel_size" in params:
        params["padding"] = params["kernel_size"] // 2      # same-size convolutions
    if params.get("arch") == "alexnet":
        params["batchnorm"] = False
    return {"lr": float(f"{10 ** rng.uniform(*ranges['log10_lr']):.4g}"),
            "momentum": _pick(rng, ranges["momentum"]),
            "batch_size": _pick(rng, ranges["batch_size"]),
            "model_params": params}


def count_model_parameters(model: str, params: dict) -> int:
    """Parameters of ``build_model(model, params)``, built on the meta device (no allocation)."""
    with torch.device("meta"):
        return count_parameters(build_model(model, params))


def generate(space: str, *, n: int, seed: int, out: str | Path, dataset: str | None = None,
             epochs: int = 5, models_dir: str | None = None, min_params: int | None = None,
             max_params: int | None = None, max_draws: int | None = None, tiny: bool = False,
             optimizer: str = "sgd", overwrite: bool = False) -> list[Path]:
    """Write ``n`` configs, ``list.txt`` and ``space.json`` into ``out``; returns the paths.

    Candidates that do not build or whose parameter count falls outside
    [min_params, max_params] are redrawn, up to ``max_draws`` draws in all.
    """
    if n < 1 or epochs < 1:
        raise ToolkitError("--n and --epochs must be >= 1")
    out = Path(out)
    ranges = space_ranges(space, tiny=tiny)
    lo, hi = ranges.pop("param_bounds")
    lo = lo if min_params is None else min_params
    hi = hi if max_params is None else max_params
    if hi is not None and hi < lo:
        raise ToolkitError(f"--max-params {hi} is below --min-params {lo}")
    max_draws = max_draws or max(500, 50 * n)
    default_dataset = ranges.pop("dataset")
    dataset = dataset or default_dataset
    models_dir = models_dir or f"models/runs/{out.name}"
    # Count parameters at the dataset's input size when it exists (as train.py will build them)
    data = None
    if Path(dataset).is_file():
        try:
            data = Partitions(dataset)
        except (OSError, IndexError) as e:
            raise ToolkitError(f"--dataset {dataset}: not a processed dataset ({e})") from None
    else:
        print(f"note: {dataset} does not exist yet; parameters counted at the models' default "
              "input size", file=sys.stderr)

    rng = np.random.default_rng(seed)
    configs: list[dict] = []
    counts: list[int] = []
    draws = 0
    while len(configs) < n and draws < max_draws:
        draws += 1
        point = draw_candidate(ranges, rng)
        cfg = {"name": f"{space}_hp_{len(configs)}", "dataset_path": str(dataset),
               "model": ranges["model"], "num_epochs": epochs,
               "batch_size": point["batch_size"], "models_dir": models_dir,
               "model_params": point["model_params"], "seed": seed, "optimizer": optimizer,
               "lr": point["lr"]}
        if optimizer == "sgd":
            cfg["momentum"] = point["momentum"]
        train_cfg = load_config(TrainConfig, cfg, where=cfg["name"])
        params = (prepare_model_params(train_cfg, data) if data is not None
                  else dict(cfg["model_params"]))
        try:
            count = count_model_parameters(cfg["model"], params)
        except (ToolkitError, RuntimeError, ValueError):
            continue                              # does not build (e.g. maps shrink to 0)
        if count < lo or (hi is not None and count > hi):
            continue
        configs.append(cfg)
        counts.append(count)
    if len(configs) < n:
        raise ToolkitError(f"only {len(configs)} of {n} {space} candidates had between {lo} and "
                           f"{hi if hi is not None else 'any number of'} parameters after "
                           f"{draws} draws; widen --min-params/--max-params or raise --max-draws")

    paths = [out / f"{cfg['name']}.json" for cfg in configs]
    listing = "".join(f"{p}\n" for p in paths)
    list_path = out / "list.txt"
    if list_path.is_file():
        if not overwrite and _read_configs(list_path) != configs:
            raise ToolkitError(f"{list_path} already lists another search; pass --overwrite or "
                               "choose another --out")
        try:
            old_paths = read_list(list_path)
        except ToolkitError:
            old_paths = []
        for old in old_paths:              # configs of the replaced search that are not redrawn
            if old.parent == out and old not in paths:
                old.unlink(missing_ok=True)
    for path, cfg in zip(paths, configs):
        atomic_write_json(path, cfg)
    atomic_write_bytes(list_path, listing.encode())
    atomic_write_json(out / "space.json", {
        "space": space, "seed": seed, "n": n, "tiny": tiny, "model": ranges["model"],
        "optimizer": optimizer, "epochs": epochs, "dataset_path": str(dataset),
        "models_dir": models_dir, "ranges": ranges, "param_bounds": [lo, hi],
        "input_shape": list(data.input_shape) if data is not None else None,
        "max_draws": max_draws, "draws": draws,
        "candidates": [{"name": c["name"], "parameters": k} for c, k in zip(configs, counts)]})
    for cfg, count in zip(configs, counts):
        print(f"{cfg['name']:<20} {count:>12,d} parameters  lr {cfg['lr']:<10.4g} "
              f"batch {cfg['batch_size']:<4d} {json.dumps(cfg['model_params'])}")
    print(f"wrote {len(paths)} configs and {list_path} ({draws} draws)")
    return paths


def _read_configs(list_path: Path) -> list[dict]:
    try:
        return [json.loads(Path(p).read_text()) for p in read_list(list_path)]
    except (ToolkitError, OSError, json.JSONDecodeError):
        return []


def read_list(list_path: str | Path) -> list[Path]:
    """Config paths of a list file: one per line, relative to the working folder or the list."""
    list_path = Path(list_path)
    if not list_path.is_file():
        raise ToolkitError(f"list file {list_path} not found; make one with 'hp_tune.py generate'")
    paths = []
    for line in list_path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        path = Path(line)
        if not path.is_absolute() and not path.exists() and (list_path.parent / path).exists():
            path = list_path.parent / path
        paths.append(path)
    if not paths:
        raise ToolkitError(f"list file {list_path} names no configs")
    return paths


def run_state(cfg: TrainConfig) -> tuple[str, int]:
    """("new" | "unfinished" | "finished", epochs done) of a config's run folder.

    A run is finished when its last checkpoint reached ``num_epochs`` or early stopping ended
    it. The checkpoint is memory-mapped, so a VGG's weights are not read just for its epoch.
    """
    last = cfg.run_dir / "last.pt"
    if not last.is_file():
        return "new", 0
    try:
        ck = torch.load(last, map_location="cpu", weights_only=False, mmap=True)
    except Exception as e:
        raise ToolkitError(f"{last}: unreadable checkpoint ({e})") from None
    epoch, history = int(ck["epoch"]), ck.get("history") or []
    if epoch >= cfg.num_epochs:
        return "finished", epoch
    patience = cfg.early_stopping_patience
    if patience is not None and history:
        best_epoch = min(history, key=lambda r: r["cv_loss"])["epoch"]
        if history[-1]["epoch"] - best_epoch >= patience:
            return "finished", epoch
    return "unfinished", epoch


# Keys a run may change between sessions (train.py's resume allows the same ones)
def train_list(list_path: str | Path, *, device: str = "cpu") -> dict[str, list[str]]:
    """Train every config of a list in turn; returns names by outcome.

    Outcomes: ``trained``, ``skipped`` (already finished) and ``failed`` (a ToolkitError,
    reported on one line; the batch continues with the next config).
    """
    paths = read_list(list_path)
    outcome: dict[str, list[str]] = {"trained": [], "skipped": [], "failed": []}
    for i, path in enumerate(paths, 1):
        label = f"[{i}/{len(paths)}] {path}"
        try:
            cfg = load_config(TrainConfig, path)
            check_resumable(cfg)
            state, done = run_state(cfg)
            if state == "finished":
                print(f"{label}: finished ({done}/{cfg.num_epochs} epochs), skipped", flush=True)
                outcome["skipped"].append(cfg.name)
                continue
            print(f"{label}: " + (f"resuming from epoch {done}" if done else "training"),
                  flush=True)
            train(cfg, resume=True, device=device)
            outcome["trained"].append(cfg.name)
        except ToolkitError as e:
            print(f"{label}: failed: {e}", file=sys.stderr, flush=True)
            outcome["failed"].append(str(path))
    print(f"{len(outcome['trained'])} trained, {len(outcome['skipped'])} skipped, "
          f"{len(outcome['failed'])} failed")
    return outcome


def _number(text: str | None) -> float | None:
    if text is None or text == "":
        return None
    return float(text)


def read_metrics(run_dir: Path) -> list[dict]:
    path = run_dir / "metrics.csv"
    if not path.is_file():
        return []
    with path.open(newline="") as f:
        return [{k: _number(v) for k, v in row.items()} for row in csv.DictReader(f)]


def _best(values: list[float | None], pick=min) -> float | None:
    finite = [v for v in values if v is not None and not math.isnan(v)]
    return pick(finite) if finite else None


def run_summary(cfg: TrainConfig) -> dict:
    """One leaderboard row of a config: best cv loss and where, accuracies, hyper-parameters."""
    history = read_metrics(cfg.run_dir)
    row: dict = {"name": cfg.name}
    if not history:
        row["status"] = "not trained"
    else:
        done = int(history[-1]["epoch"])
        row["status"] = "finished" if done >= cfg.num_epochs else f"{done}/{cfg.num_epochs}"
        best = _best([r["cv_loss"] for r in history])
        row["best_cv_loss"] = best
        row["best_epoch"] = (next(int(r["epoch"]) for r in history if r["cv_loss"] == best)
                             if best is not None else None)
        row["epochs"] = done
        row["final_train_loss"] = history[-1]["train_loss"]
        for key in ("cv_segment_acc", "cv_track_acc"):
            value = _best([r.get(key) for r in history], max)
            if value is not None:
                row[f"best_{key}"] = value
    info = cfg.run_dir / "dataset.json"
    if info.is_file():   # the model_params train.py completed from the dataset
        try:
            row["parameters"] = count_model_parameters(
                cfg.model, json.loads(info.read_text())["model_params"])
        except (ToolkitError, RuntimeError, ValueError, KeyError, json.JSONDecodeError):
            pass
    row.update(model=cfg.model, optimizer=cfg.optimizer, lr=cfg.lr,
               momentum=cfg.momentum if cfg.optimizer == "sgd" else None,
               batch_size=cfg.batch_size)
    for key, value in cfg.model_params.items():
        if key != "padding":                     # padding follows kernel_size
            row[key] = value
    return row


def leaderboard(list_path: str | Path) -> list[dict]:
    """Rows of every config of a list, best cv loss first; untrained runs last."""
    rows = []
    for path in read_list(list_path):
        try:
            rows.append(run_summary(load_config(TrainConfig, path)))
        except ToolkitError as e:
            rows.append({"name": Path(path).stem, "status": "bad config", "error": str(e)})
    return sorted(rows, key=lambda r: (r.get("best_cv_loss") is None,
                                       r.get("best_cv_loss") or 0.0, r["name"]))


def _columns(rows: list[dict]) -> list[str]:
    lead = ["name", "status", "best_cv_loss", "best_epoch", "epochs", "final_train_loss",
            "best_cv_segment_acc", "best_cv_track_acc", "parameters"]
    present = {k for r in rows for k in r}
    cols = [c for c in lead if c in present or c in lead[:6]]
    for r in rows:
        cols += [k for k in r if k not in cols and k != "error"]
    return cols


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:.5g}"
    if isinstance(value, list):
        return "-".join(str(v) for v in value)
    return str(value)


def format_table(rows: list[dict], columns: list[str]) -> str:
    cells = [columns] + [[_cell(r.get(c)) or "-" for c in columns] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    return "\n".join("  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip()
                     for row in cells)


def plot_learning_curves(list_path: str | Path, out: Path) -> None:
    plt = pyplot()
    from matplotlib.ticker import MaxNLocator
    fig, ax = plt.subplots(figsize=(8, 5))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    plotted, positive = 0, True
    for path in read_list(list_path):
        try:
            cfg = load_config(TrainConfig, path)
        except ToolkitError:
            continue
        history = read_metrics(cfg.run_dir)
        if not history:
            continue
        cv = [r["cv_loss"] for r in history]
        positive &= all(v is not None and v > 0 for v in cv)
        ax.plot([r["epoch"] for r in history], cv, "o-", label=cfg.name)
        plotted += 1
    if plotted:
        if positive:
            ax.set_yscale("log")
        ax.legend(fontsize=7)
    else:
        ax.text(0.5, 0.5, "no trained runs yet", ha="center", va="center",
                transform=ax.transAxes)
    ax.set_xlabel("epoch")
    ax.set_ylabel("cv loss")
    ax.set_title(Path(list_path).parent.name or "runs")
    fig.tight_layout()
    save_figure(fig, out)


def report(list_path: str | Path, out_dir: str | Path | None = None) -> list[dict]:
    """Write ``leaderboard.csv`` and ``learning_curves.png``; print the table; return the rows."""
    out = Path(out_dir) if out_dir else Path(list_path).parent
    rows = leaderboard(list_path)
    columns = _columns(rows)
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(columns)
    for r in rows:
        writer.writerow([repr(r[c]) if isinstance(r.get(c), float) else _cell(r.get(c))
                         for c in columns])
    atomic_write_bytes(out / "leaderboard.csv", buf.getvalue().encode())
    plot_learning_curves(list_path, out / "learning_curves.png")
    print(format_table(rows, columns))
    for r in rows:
        if "error" in r:
            print(f"{r['name']}: {r['error']}")
    print(f"wrote {out / 'leaderboard.csv'} and {out / 'learning_curves.png'}")
    return rows
