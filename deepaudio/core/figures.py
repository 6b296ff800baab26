"""Figures: matplotlib without a display, saved as PNG atomically."""

from __future__ import annotations

import io
import os

from deepaudio.core.files import atomic_write_bytes


def pyplot():
    """``matplotlib.pyplot`` on the Agg backend (no display needed), imported on first use:
    importing matplotlib costs about a second, and most commands draw nothing."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def save_figure(fig, path: str | os.PathLike, *, dpi: int = 100) -> None:
    """Save a matplotlib figure as PNG atomically and close it."""
    plt = pyplot()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())
