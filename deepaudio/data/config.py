"""A processed dataset's settings (one validated JSON config per HDF5 file) and the
catalog of tracks it is drawn from."""

from __future__ import annotations

import dataclasses
import os
import typing as tp
from pathlib import Path

import numpy as np

from deepaudio.core.config import ConfigError, load_config


@dataclasses.dataclass
class DatasetConfig:
    """One processed dataset. Keys follow deep-audioviz-experiments' JSON schema where it had
    one."""
    name: str
    mode: tp.Literal["mfcc", "spectrum", "frames"] = "mfcc"
    fma_audio_dir: str = "datasets/fma/fma_small"   # or any folder of songs
    fma_meta_dir: str | None = "datasets/fma/fma_metadata"  # null: plain folder, no labels
    fma_type: tp.Literal["small", "medium", "large"] = "small"
    datasets_dir: str = "datasets/processed"
    num_tracks: int | None = None          # null: every selected track
    seed: int = 0                          # shuffle + segment sampling; recorded in the file
    stratify: bool = True                  # every partition gets the genres in proportion
    split: tp.Literal["random", "fma"] = "random"  # fma: FMA's own training/validation/test
    sr: int = 44100
    do_re_sample: bool = True              # false: skip tracks at another rate (as the original)
    cv_split: float = 0.1
    test_split: float = 0.1
    num_train_partitions: int = 2
    scaler: tp.Literal["standard", "minmax", "none"] = "standard"
    scaler_axis: tp.Literal["feature", "global", "position"] = "feature"
    segments_per_track: int | None = None  # null: all segments, in order
    # mfcc: 64 MFCCs of 128 mel bands, 10 ms hop, 25 ms window, 96 frames = 0.96 s segments
    num_mfcc: int = 64
    n_mels: int = 128
    mfcc_hops: int = 441
    n_fft: int = 1102
    frames_per_segment: int = 96
    segment_hop: int | None = None         # MFCC frames between segment starts; null = no overlap
    # spectrum: 0.5 s Hann windows at 22050 Hz, log-magnitude rfft (5513 bins)
    window_size: int = 11025
    hop_length: int = 11025
    # frames: raw samples per segment (the WaveNet autoencoder's (B, T) input at 16 kHz)
    segment_samples: int = 16000

    def validate(self) -> None:
        positive = ("sr", "num_train_partitions", "num_mfcc", "n_mels", "mfcc_hops", "n_fft",
                    "frames_per_segment", "window_size", "hop_length", "segment_samples")
        for key in positive:
            if getattr(self, key) <= 0:
                raise ConfigError(f"key {key!r} must be positive, got {getattr(self, key)}")
        for key in ("num_tracks", "segments_per_track", "segment_hop"):
            if getattr(self, key) is not None and getattr(self, key) <= 0:
                raise ConfigError(f"key {key!r} must be positive or null")
        for key in ("cv_split", "test_split"):
            if not 0 <= getattr(self, key) < 1:
                raise ConfigError(f"key {key!r} must be in [0, 1), got {getattr(self, key)}")
        if self.cv_split + self.test_split >= 1:
            raise ConfigError("cv_split + test_split must leave tracks for training")
        if self.split == "fma" and self.fma_meta_dir is None:
            raise ConfigError("key 'split' can be 'fma' only with FMA metadata (fma_meta_dir); "
                              "a plain folder has no official split")
        if self.num_mfcc > self.n_mels:
            raise ConfigError(f"key 'num_mfcc' ({self.num_mfcc}) cannot exceed n_mels")
        if not self.name or "/" in self.name or self.name.startswith("."):
            raise ConfigError(f"key 'name' must be a plain file name, got {self.name!r}")

    @property
    def h5_path(self) -> Path:
        return Path(self.datasets_dir) / f"{self.name}.h5"

    @property
    def work_dir(self) -> Path:
        return Path(self.datasets_dir) / f".{self.name}.work"

    @property
    def report_path(self) -> Path:
        return Path(self.datasets_dir) / f"{self.name}.report.json"

    def shard_path(self, index: int, count: int) -> Path:
        return Path(self.datasets_dir) / f"{self.name}.shard-{index}-of-{count}.h5"


def segment_seconds(cfg: DatasetConfig) -> tuple[float, float]:
    """(length of audio one segment covers, stride between segment starts), in seconds."""
    if cfg.mode == "mfcc":
        frame = cfg.mfcc_hops / cfg.sr
        return frame * cfg.frames_per_segment, frame * (cfg.segment_hop or cfg.frames_per_segment)
    if cfg.mode == "spectrum":
        return cfg.window_size / cfg.sr, cfg.hop_length / cfg.sr
    return cfg.segment_samples / cfg.sr, cfg.segment_samples / cfg.sr

NO_LABEL = -1


@dataclasses.dataclass
class Catalog:
    """The tracks a dataset is drawn from, before any audio is read."""
    ids: np.ndarray            # int64 track ids (FMA ids, or 0..n-1 for a plain folder)
    paths: list[str]
    labels: np.ndarray         # int32 genre index, NO_LABEL when unknown
    genres: list[str]          # label index -> genre name
    skipped: list[dict]        # tracks excluded by metadata, with reasons
    splits: np.ndarray | None = None   # FMA's ('set', 'split') per track, when it has one


def is_train(part: str) -> bool:
    return part.startswith("partition_train_")


# The real-folder recipe's segments (docs/training.md, "Training on your own folder of
# songs"): 64x96 MFCC segments, half-overlapping, 100 per song, standard-scaled per position,
# songs split 80/10/10. datasets/processed/real/mfcc_ae_debian.json is these settings.
FOLDER_DATASET = {"mode": "mfcc", "fma_meta_dir": None, "num_tracks": None, "seed": 0,
                  "sr": 44100, "cv_split": 0.1, "test_split": 0.1, "num_train_partitions": 2,
                  "scaler": "standard", "scaler_axis": "position", "segments_per_track": 100,
                  "num_mfcc": 64, "mfcc_hops": 441, "n_fft": 1102, "frames_per_segment": 96,
                  "segment_hop": 48}
FOLDER_MIN_SONGS = 10   # one cv and one test song at the 10 % splits, eight to train on


def folder_dataset_config(audio_dir: str | os.PathLike, datasets_dir: str | os.PathLike,
                          name: str = "mfcc_ae_folder") -> DatasetConfig:
    """The recipe's dataset config for the songs in ``audio_dir`` (found recursively)."""
    return load_config(DatasetConfig, {**FOLDER_DATASET, "name": name,
                                       "fma_audio_dir": str(audio_dir),
                                       "datasets_dir": str(datasets_dir)})

