"""``analyse_beats``: the one beat, downbeat, metre and tempo analysis every consumer uses.

Backends:

- ``model``: the learned tracker (:mod:`deepaudio.analysis.tracker`): a temporal convolutional
  network's beat and downbeat activations, decoded by a dynamic Bayesian network over tempo
  and bar position (:mod:`deepaudio.analysis.dbn`);
- ``dsp``: the hand-written spectral-flux tracker (:mod:`deepaudio.analysis.dsp`), the
  fallback where the model's weights are missing or unreadable;
- ``auto`` (the default): ``model`` when its weights load, else ``dsp`` with the reason in
  :attr:`BeatGrid.backend_reason`.

Audio with no steady beat (silence, speech, drones, noise) raises :class:`NoBeatError` with the
reason, whatever the backend; no grid is made up.
"""

from __future__ import annotations

import os
import typing as tp

import numpy as np

from deepaudio.analysis import dsp, tracker
from deepaudio.analysis.grid import BeatGrid, NoBeatError
from deepaudio.core.errors import ToolkitError

BACKENDS = ("auto", "model", "dsp")
Backend = tp.Literal["auto", "model", "dsp"]
__all__ = ["BACKENDS", "BeatGrid", "NoBeatError", "analyse_beats", "estimate_tempo"]


def analyse_beats(audio: np.ndarray, sr: int, *, start: float = 0.0,
                  backend: Backend = "auto",
                  weights: str | os.PathLike | None = None) -> BeatGrid:
    """Beat grid of ``audio`` ((C, N) or (N,)); ``start`` is its offset in seconds within the
    song (beat times are song times). ``weights``: a beat model's run folder or checkpoint
    (default: the weights shipped with the package)."""
    if backend not in BACKENDS:
        raise ToolkitError(f"beat backend must be one of {', '.join(BACKENDS)}, got "
                           f"{backend!r}")
    audio = np.atleast_2d(np.asarray(audio, np.float32))
    reason = None
    if backend != "dsp":
        try:
            model = tracker.load_tracker(weights)
        except ToolkitError as e:
            if backend == "model":
                raise
            reason = f"learned beat tracker not available: {e}"
        else:
            return model.track(audio, sr, start=start)
    try:
        grid = dsp.track_beats(audio, sr, start=start)
    except ToolkitError as e:
        raise NoBeatError(str(e)) from None
    grid.backend_reason = reason
    return grid


estimate_tempo = dsp.estimate_tempo
