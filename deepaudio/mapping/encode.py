"""Encoding a song with a trained run: the run's dataset features (MFCC or spectrum) at a
chosen hop, overlapping segments allowed, the dataset's stored scaler, then ``model.encode`` in
eval mode, batched. Runs are loaded once per process and shared by concurrent callers.
"""

from __future__ import annotations

import dataclasses
import threading
import typing as tp
from pathlib import Path

import numpy as np
import torch

from deepaudio.core.audio import stream_audio
from deepaudio.core.datasets import read_partition
from deepaudio.core.errors import ToolkitError
from deepaudio.core.features import (
    apply_scaler,
    frame_stream,
    log_spectra,
    mfcc_stream,
    segment_view,
)
from deepaudio.networks.checkpoint import load_trained


@dataclasses.dataclass
class FeatureTimeline:
    """Features at regular times: ``frames[i]`` describes the audio around ``times[i]``."""
    fps: float
    names: list[str]
    frames: np.ndarray          # (T, D) float32
    start: float = 0.0          # time of frames[0] in seconds
    meta: dict = dataclasses.field(default_factory=dict)

    @property
    def times(self) -> np.ndarray:
        return self.start + np.arange(len(self.frames)) / self.fps

    def to_json(self, decimals: int = 4) -> dict:
        """The documented wire format: ``{"fps", "names", "frames", ...}``."""
        return {"fps": self.fps, "start": self.start, "names": self.names,
                "frames": np.round(self.frames.astype(np.float64), decimals).tolist(),
                **self.meta}


class EncoderRun:
    """A trained run loaded once: model (eval mode), dataset feature config, scaler."""

    def __init__(self, run_dir: str | Path, device: str = "cpu"):
        self.run_dir = Path(run_dir)
        self.model, self.info, self.scaler = load_trained(self.run_dir, device=device)
        self.device = device
        self.config = self.info["config"]
        self.mode = self.info.get("mode") or self.config.get("mode")
        if self.mode not in ("mfcc", "spectrum"):
            raise ToolkitError(f"{run_dir}: runs on {self.mode!r} datasets produce no "
                               "visualization features (mfcc or spectrum runs do)")
        self.sr = int(self.config["sr"])
        self.lock = threading.Lock()   # torch modules are not re-entrant across threads

    @property
    def layers(self) -> tuple[str, ...]:
        return tuple(self.model.layers)

    def segment_length(self) -> float:
        return float(self.info["segment_seconds"])

    def segment_batches(self, source, hop_seconds: float, batch_size: int = 256
                        ) -> tuple[tp.Iterator[np.ndarray], float, _Count]:
        """Scaled model inputs at a hop, ``batch_size`` segments at a time, computed from the
        song block by block; returns (batches, actual hop in seconds, a counter whose
        ``samples`` is the song's length once the batches are consumed).

        MFCC runs hold the song's MFCCs (the dB floor is set by the whole song's loudest
        frame); spectrum runs hold one block and one batch. The segments are those of
        :func:`~deepaudio.core.features.mfcc_segments` / ``spectrum_segments`` on the whole
        song, the features the dataset was built with.
        """
        c = self.config
        count = _Count()
        blocks = count.through(stream_audio(source, self.sr))
        if self.mode == "mfcc":
            frame = c["mfcc_hops"] / self.sr
            hop = max(1, int(round(hop_seconds / frame)))
            m = mfcc_stream(blocks, self.sr, num_mfcc=c["num_mfcc"], n_mels=c["n_mels"],
                            hop_length=c["mfcc_hops"], n_fft=c["n_fft"])
            view = segment_view(m, c["frames_per_segment"], hop)
            batches = (apply_scaler(view[i:i + batch_size], self.scaler)
                       for i in range(0, len(view), batch_size))
            return batches, hop * frame, count
        hop = max(1, int(round(hop_seconds * self.sr)))
        batches = (apply_scaler(log_spectra(f), self.scaler)
                   for f in frame_stream(blocks, c["window_size"], hop, batch=batch_size))
        return batches, hop / self.sr, count

    def encode(self, segs: np.ndarray, layer: str | None, batch_size: int = 256) -> np.ndarray:
        with self.lock:
            return self.model.encode_array(segs, layer, batch_size=batch_size)


class _Count:
    """Counts the samples of a block stream as it passes."""

    def __init__(self):
        self.samples = 0

    def through(self, blocks: tp.Iterable[np.ndarray]) -> tp.Iterator[np.ndarray]:
        for block in blocks:
            self.samples += block.shape[-1]
            yield block


_RUNS: dict[tuple[str, str], EncoderRun] = {}
_RUNS_LOCK = threading.Lock()


def get_run(run_dir: str | Path, device: str = "cpu") -> EncoderRun:
    """The process-wide loaded run (models load once; concurrent callers share it)."""
    key = (str(Path(run_dir).resolve()), device)
    with _RUNS_LOCK:
        if key not in _RUNS:
            _RUNS[key] = EncoderRun(run_dir, device)
        return _RUNS[key]


def _too_short(run: EncoderRun, samples: int) -> ToolkitError:
    return ToolkitError(f"the audio ({samples / run.sr:.2f} s) is shorter than one "
                        f"{run.segment_length():.2f} s segment")


def encode_track(source: str | Path | tuple[np.ndarray, int], run_dir: str | Path,
                 layer: str | None = None, *, hop_seconds: float | None = None,
                 device: str = "cpu", batch_size: int = 256) -> FeatureTimeline:
    """Encode a song (a path, or ``(audio (C, N), sr)``) with a trained run.

    ``hop_seconds`` sets the spacing of (overlapping) segments; default the dataset's hop.
    Frame ``i`` is the segment centred at ``start + i * hop``. The song is decoded, featurised
    and encoded block by block: memory grows with the output, not with the song.
    """
    run = get_run(run_dir, device)
    hop = hop_seconds if hop_seconds is not None else float(run.info.get("hop_seconds") or
                                                              run.segment_length())
    if hop <= 0:
        raise ToolkitError(f"hop_seconds must be positive, got {hop}")
    batches, actual, count = run.segment_batches(source, hop, batch_size)
    parts = [run.encode(segs, layer, batch_size) for segs in batches]
    if not parts:
        raise _too_short(run, count.samples)
    feats = np.concatenate(parts)
    layer = layer or run.model.default_layer
    return FeatureTimeline(fps=1.0 / actual, names=[f"{layer}_{k}" for k in range(feats.shape[1])],
                           frames=feats, start=run.segment_length() / 2,
                           meta={"layer": layer, "duration": count.samples / run.sr})


def genre_probabilities(source: str | Path | tuple[np.ndarray, int], run_dir: str | Path,
                        *, hop_seconds: float | None = None) -> dict[str, float]:
    """A classifier run's genre probabilities for a whole song: the softmax of each segment's
    logits (eval mode), averaged over the song's segments. Keys are the run's genre names."""
    run = get_run(run_dir)
    genres = run.info.get("genres")
    if not hasattr(run.model, "classifier") or not genres:
        raise ToolkitError(f"{run_dir}: not a genre classifier run")
    batches, _, count = run.segment_batches(source, hop_seconds or run.segment_length())
    total, n = None, 0
    for segs in batches:
        with run.lock, torch.inference_mode():
            run.model.eval()
            probs = torch.softmax(run.model(torch.from_numpy(segs).to(run.device)).float(), 1)
        p = probs.sum(0).cpu().numpy().astype(np.float64)
        total, n = (p if total is None else total + p), n + len(segs)
    if total is None:
        raise _too_short(run, count.samples)
    return {g: float(v) for g, v in zip(genres, total / n)}


def encode_partition(run_dir: str | Path, part: str, layer: str | None = None, *,
                     max_segments: int | None = None, seed: int = 0) -> np.ndarray:
    """Encodings of a stored dataset partition (already scaled), e.g. for fitting mappings."""
    run = get_run(run_dir)
    path = run.info["dataset_path"]
    if not Path(path).is_file():
        raise ToolkitError(f"{path}: the run's training dataset is needed to fit a mapping "
                           "(data_processor.py process -c ...)")
    segs = read_partition(path, part)["segment_data"]
    if max_segments and len(segs) > max_segments:
        idx = np.sort(np.random.default_rng(seed).choice(len(segs), max_segments, replace=False))
        segs = segs[idx]
    return run.encode(segs, layer)
