"""Encoding a song with a trained run: the run's dataset features (MFCC or spectrum) at a
chosen hop, overlapping segments allowed, the dataset's stored scaler, then ``model.encode`` in
eval mode, batched. Runs are loaded once per process and shared by concurrent callers.
"""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path

import numpy as np
import torch

from deepaudio.core.audio import load_audio, resample, to_channels
from deepaudio.core.datasets import read_partition
from deepaudio.core.errors import ToolkitError
from deepaudio.core.features import apply_scaler, mfcc_segments, spectrum_segments
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

    def segments(self, y: np.ndarray, hop_seconds: float) -> tuple[np.ndarray, float]:
        """Scaled model inputs at a hop; returns (segments, actual hop in seconds)."""
        c = self.config
        if self.mode == "mfcc":
            frame = c["mfcc_hops"] / self.sr
            hop = max(1, int(round(hop_seconds / frame)))
            segs = mfcc_segments(y, self.sr, num_mfcc=c["num_mfcc"], n_mels=c["n_mels"],
                                 hop_length=c["mfcc_hops"], n_fft=c["n_fft"],
                                 frames_per_segment=c["frames_per_segment"], segment_hop=hop)
            actual = hop * frame
        else:
            hop = max(1, int(round(hop_seconds * self.sr)))
            segs = spectrum_segments(y, window_size=c["window_size"], hop_length=hop)
            actual = hop / self.sr
        return apply_scaler(segs, self.scaler), actual

    def encode(self, segs: np.ndarray, layer: str | None, batch_size: int = 256) -> np.ndarray:
        with self.lock:
            return self.model.encode_array(segs, layer, batch_size=batch_size)

_RUNS: dict[tuple[str, str], EncoderRun] = {}
_RUNS_LOCK = threading.Lock()


def get_run(run_dir: str | Path, device: str = "cpu") -> EncoderRun:
    """The process-wide loaded run (models load once; concurrent callers share it)."""
    key = (str(Path(run_dir).resolve()), device)
    with _RUNS_LOCK:
        if key not in _RUNS:
            _RUNS[key] = EncoderRun(run_dir, device)
        return _RUNS[key]


def _mono(source: str | Path | tuple[np.ndarray, int], sr: int) -> np.ndarray:
    """A song (a path, or ``(audio (C, N), rate)``) as mono float32 (N,) at ``sr``."""
    if isinstance(source, tuple):
        audio, rate = source
        audio = np.asarray(audio, np.float32).reshape(-1, audio.shape[-1])
        return resample(to_channels(audio, 1), rate, sr)[0]
    return load_audio(source, sr=sr, mono=True)[0][0]


def encode_track(source: str | Path | tuple[np.ndarray, int], run_dir: str | Path,
                 layer: str | None = None, *, hop_seconds: float | None = None,
                 device: str = "cpu", batch_size: int = 256) -> FeatureTimeline:
    """Encode a song (a path, or ``(audio (C, N), sr)``) with a trained run.

    ``hop_seconds`` sets the spacing of (overlapping) segments; default the dataset's hop.
    Frame ``i`` is the segment centred at ``start + i * hop``.
    """
    run = get_run(run_dir, device)
    y = _mono(source, run.sr)
    hop = hop_seconds if hop_seconds is not None else float(run.info.get("hop_seconds") or
                                                              run.segment_length())
    if hop <= 0:
        raise ToolkitError(f"hop_seconds must be positive, got {hop}")
    segs, actual = run.segments(y, hop)
    if len(segs) == 0:
        raise ToolkitError(f"the audio ({len(y) / run.sr:.2f} s) is shorter than one "
                           f"{run.segment_length():.2f} s segment")
    feats = run.encode(segs, layer, batch_size)
    layer = layer or run.model.default_layer
    return FeatureTimeline(fps=1.0 / actual, names=[f"{layer}_{k}" for k in range(feats.shape[1])],
                           frames=feats, start=run.segment_length() / 2,
                           meta={"layer": layer, "duration": len(y) / run.sr})


def genre_probabilities(source: str | Path | tuple[np.ndarray, int], run_dir: str | Path,
                        *, hop_seconds: float | None = None) -> dict[str, float]:
    """A classifier run's genre probabilities for a whole song: the softmax of each segment's
    logits (eval mode), averaged over the song's segments. Keys are the run's genre names."""
    run = get_run(run_dir)
    genres = run.info.get("genres")
    if not hasattr(run.model, "classifier") or not genres:
        raise ToolkitError(f"{run_dir}: not a genre classifier run")
    y = _mono(source, run.sr)
    segs, _ = run.segments(y, hop_seconds or run.segment_length())
    if len(segs) == 0:
        raise ToolkitError(f"the audio ({len(y) / run.sr:.2f} s) is shorter than one "
                           f"{run.segment_length():.2f} s segment")
    with run.lock, torch.inference_mode():
        run.model.eval()
        logits = torch.cat([run.model(torch.from_numpy(segs[i:i + 256]).to(run.device)).cpu()
                            for i in range(0, len(segs), 256)])
    p = torch.softmax(logits.float(), dim=1).mean(0).numpy()
    return {g: float(v) for g, v in zip(genres, p)}


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
