"""Training metrics: one CSV row per epoch (FMA models) or per step (WaveNet), written
atomically after every checkpoint, and the learning-curve figure."""

from __future__ import annotations

import csv
import io
import typing as tp
from pathlib import Path

from deepaudio.core.figures import pyplot, save_figure
from deepaudio.core.files import atomic_write_bytes


def write_metrics(run: Path, rows: list[dict], fields: tp.Sequence[str]) -> Path:
    """``run/metrics.csv``: a header of ``fields``, then one line per row."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fields)
    w.writeheader()
    w.writerows(rows)
    atomic_write_bytes(run / "metrics.csv", buf.getvalue().encode())
    return run / "metrics.csv"


def plot_learning_curve(run: Path, history: list[dict]) -> None:
    plt = pyplot()
    epochs = [r["epoch"] for r in history]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(epochs, [r["train_loss"] for r in history], "o-", label="train")
    ax.plot(epochs, [r["cv_loss"] for r in history], "s-", label="cv")
    ax.set_xlabel("epoch")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_ylabel("loss")
    ax.set_title(run.name)
    ax.legend()
    fig.tight_layout()
    save_figure(fig, run / "learning_curve.png")
