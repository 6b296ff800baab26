"""The learned beat tracker: the beat network's activations decoded into a beat grid.

:func:`load_tracker` reads the weights (by default the small file shipped in
``deepaudio/analysis/weights/``, which ``docs/analysis.md`` says how to reproduce; or a
training run's folder, or any checkpoint file the trainer wrote); :meth:`Tracker.track` runs
the front end (:mod:`deepaudio.analysis.frontend`), the network
(:class:`deepaudio.networks.beats.BeatTCN`) and the decoder (:func:`deepaudio.analysis.dbn
.decode_beats`: tempo, bars of 2, 3 or 4, downbeats) and returns a
:class:`~deepaudio.analysis.grid.BeatGrid` with ``backend="model"``.

Audio without a steady beat: the decoder always finds a path, so the tracker refuses a grid
whose beats the network does not believe in (the mean beat activation at the decoded beats
under ``MIN_ACTIVATION``), with the figure in the message.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np
import torch

from deepaudio.analysis import frontend
from deepaudio.analysis.dbn import DecodedBeats, decode_beats
from deepaudio.analysis.grid import BeatGrid, NoBeatError, tempo_of
from deepaudio.core.errors import ToolkitError
from deepaudio.networks.beats import BeatTCN
from deepaudio.networks.checkpoint import load_checkpoint
from deepaudio.networks.registry import build_model

WEIGHTS = Path(__file__).resolve().parent / "weights" / "beat_tcn.pt"
MIN_SECONDS = 2.0              # shorter audio holds too few beats for the decoder to follow
MIN_ACTIVATION = 0.2           # mean beat activation at the decoded beats; below: no beat
EDGE_ACTIVATION = 0.3          # leading / trailing beats weaker than this x the median beat's
                               # activation are dropped (a reverb tail, a fade into silence)
BEATS_PER_BAR = (2, 3, 4)
TEMPO_RANGE = (55.0, 215.0)


class Tracker:
    """A beat network in eval mode and the decoder's settings."""

    def __init__(self, model: BeatTCN, *, source: str, info: dict | None = None):
        self.model = model.eval()
        self.source = source
        self.info = info or {}

    @torch.inference_mode()
    def activations(self, frames: np.ndarray) -> np.ndarray:
        """(frames, 2) beat and downbeat probabilities of (frames, n_mels) input."""
        dev = next(self.model.parameters()).device
        x = torch.from_numpy(np.ascontiguousarray(frames, np.float32))[None].to(dev)
        return torch.sigmoid(self.model(x)[0]).cpu().numpy().astype(np.float64)

    def decode(self, act: np.ndarray, *,
               beats_per_bar: tuple[int, ...] = BEATS_PER_BAR) -> DecodedBeats:
        return decode_beats(act[:, 0], act[:, 1], frontend.FPS, beats_per_bar=beats_per_bar,
                            min_bpm=TEMPO_RANGE[0], max_bpm=TEMPO_RANGE[1])

    def track(self, audio: np.ndarray, sr: int, *, start: float = 0.0,
              beats_per_bar: tuple[int, ...] = BEATS_PER_BAR) -> BeatGrid:
        """Beat grid of ``audio`` ((C, N) or (N,)); ``start`` is its offset in the song."""
        seconds = np.shape(audio)[-1] / sr
        if seconds < MIN_SECONDS:
            raise NoBeatError(f"{seconds:.2f} s of audio is too short to track beats in "
                              f"(at least {MIN_SECONDS:g} s)")
        frames, feats = frontend.analyse(audio, sr, start=start)
        act = self.activations(frames)
        try:
            decoded = self.decode(act, beats_per_bar=beats_per_bar)
        except ToolkitError as e:
            raise NoBeatError(f"no steady beat found ({e})") from None
        if decoded.activation < MIN_ACTIVATION or len(decoded.times) < 4:
            raise NoBeatError(f"no steady beat found (beat activation "
                              f"{decoded.activation:.2f}, below {MIN_ACTIVATION})")
        keep = strong_span(act[:, 0], decoded.times)
        times = start + decoded.times[keep]
        positions = decoded.positions[keep]
        first_down = np.flatnonzero(positions == 1)
        m = decoded.beats_per_bar
        phase = int(first_down[0]) % m if len(first_down) else 0
        return BeatGrid(times=times, tempo=tempo_of(times), downbeat_phase=phase,
                        features=feats, beats_per_bar=m, backend="model")


def strong_span(beat_act: np.ndarray, times: np.ndarray) -> slice:
    """The beats from the first to the last whose activation (the largest within a frame of
    it) reaches ``EDGE_ACTIVATION`` times the median beat's: the decoder carries the grid
    through the whole active span, and a ringing chord after the last bar keeps the network
    weakly on, so the beats it continues into the tail are dropped."""
    f = np.round(times * frontend.FPS).astype(int)
    lo, hi = np.clip(f - 1, 0, len(beat_act) - 1), np.clip(f + 2, 1, len(beat_act))
    strength = np.array([beat_act[a:b].max() for a, b in zip(lo, hi)])
    strong = np.flatnonzero(strength >= EDGE_ACTIVATION * np.median(strength))
    return slice(int(strong[0]), int(strong[-1]) + 1) if len(strong) else slice(0, 0)


@functools.lru_cache(maxsize=4)
def _load(path: str, mtime: float) -> Tracker:
    p = Path(path)
    file = p / "best.pt" if p.is_dir() else p
    if not file.is_file():
        raise ToolkitError(f"beat model weights not found: {file}" + (
            " (train them: docs/analysis.md)" if p == WEIGHTS else ""))
    ck = load_checkpoint(file)
    if not isinstance(ck, dict) or ck.get("model_name") != "beat_tcn":
        raise ToolkitError(f"{file} is not a beat model (model "
                           f"{ck.get('model_name') if isinstance(ck, dict) else None!r})")
    try:
        model = build_model("beat_tcn", ck["model_params"])
        model.load_state_dict({k: v.float() if v.is_floating_point() else v
                               for k, v in ck["model"].items()})
    except (KeyError, RuntimeError, ToolkitError) as e:
        raise ToolkitError(f"{file}: damaged beat model ({str(e).splitlines()[0]})") from None
    fe = ck.get("frontend", {})
    if fe and (fe.get("sr"), fe.get("hop"), fe.get("n_mels")) != (
            frontend.SR, frontend.HOP, frontend.N_MELS):
        raise ToolkitError(f"{file}: trained on other input frames ({fe}) than this version "
                           "reads")
    assert isinstance(model, BeatTCN)
    return Tracker(model, source=str(file), info={k: ck.get(k) for k in ("epoch", "cv")})


def load_tracker(weights: str | os.PathLike | None = None) -> Tracker:
    """The tracker of ``weights`` (a run folder, a checkpoint file; default: the shipped
    weights), loaded once per file and modification time."""
    p = Path(weights) if weights is not None else WEIGHTS
    try:
        mtime = (p / "best.pt" if p.is_dir() else p).stat().st_mtime
    except OSError:
        mtime = 0.0
    return _load(str(p), mtime)
