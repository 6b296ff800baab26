"""Reading processed datasets: the HDF5 layout that :mod:`deepaudio.data` writes and that
training, the mappings and the benches read.

One file per dataset: ``partition_cv``, ``partition_test`` and ``partition_train_<k>`` groups
(``segment_data``, ``segment_labels``, ``segment_indices`` (track id of each segment),
``segment_positions``, ``track_indices``), a ``scaler`` group with the train-fitted scaler
parameters, a ``tracks`` group, and attributes ``mode``, ``config`` (JSON), ``genres`` (JSON),
``segment_seconds`` and ``hop_seconds``.

The beat corpus (:mod:`deepaudio.data.beatcorpus` writes it) is a folder of shards
``<split>-00000.h5`` ...: ``mel`` frames of every piece concatenated with their ``offsets``,
the ``beats`` and ``downbeats`` with theirs, and a ``meta`` JSON list, one entry per piece.
"""

from __future__ import annotations

import dataclasses
import json
import os
import typing as tp
from pathlib import Path

import h5py
import numpy as np

from deepaudio.core.errors import ToolkitError


class Partitions:
    """Train / cv / test partitions of one processed HDF5 dataset.

    Train partitions are read one at a time (memory stays bounded by one partition, as in the
    reference), in an order drawn from (seed, epoch), and shuffled within.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        if not self.path.is_file():
            raise ToolkitError(f"dataset {self.path} not found; build it with "
                               "'python data_processor.py process -c CONFIG'")
        try:
            f = h5py.File(self.path, "r")
        except OSError as e:
            raise ToolkitError(f"{self.path}: not a readable HDF5 dataset ({e})") from None
        with f:
            self.train = sorted(k for k in f if k.startswith("partition_train_"))
            if not self.train or "segment_data" not in f[self.train[0]]:
                raise ToolkitError(f"{self.path}: no train partitions; is it a dataset made "
                                   "by data_processor.py?")
            self.attrs = {k: (v.decode() if isinstance(v, bytes) else v)
                          for k, v in f.attrs.items()}
            self.genres = json.loads(self.attrs.get("genres", "[]"))
            self.scaler = {k: f["scaler"][k][:] for k in f["scaler"]} if "scaler" in f else {}
            first = f[self.train[0]]["segment_data"]
            self.input_shape = tuple(first.shape[1:])
            self.n_train = sum(f[p]["segment_data"].shape[0] for p in self.train)

    def load(self, part: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        with h5py.File(self.path, "r") as f:
            if part not in f:
                raise ToolkitError(f"{self.path}: no partition {part!r}")
            g = f[part]
            return g["segment_data"][:], g["segment_labels"][:], g["segment_indices"][:]


def read_partition(h5_path: str | os.PathLike, part: str) -> dict[str, np.ndarray]:
    """Load one partition into memory: segment_data, segment_indices, segment_labels, ..."""
    with h5py.File(h5_path, "r") as f:
        if part not in f:
            raise ToolkitError(f"{h5_path}: no partition {part!r} "
                               f"(has {', '.join(k for k in f if k.startswith('partition_'))})")
        return {k: f[part][k][:] for k in f[part]}


def read_scaler(h5_path: str | os.PathLike) -> dict[str, np.ndarray]:
    with h5py.File(h5_path, "r") as f:
        return {k: f["scaler"][k][:] for k in f["scaler"]}


def dataset_summary(h5_path: str | os.PathLike) -> dict:
    with h5py.File(h5_path, "r") as f:
        parts = {k: {"tracks": int(f[k]["track_indices"].shape[0]),
                     "segments": int(f[k]["segment_indices"].shape[0]),
                     "segment_shape": list(f[k]["segment_data"].shape[1:])}
                 for k in f if k.startswith("partition_")}
        return {"mode": f.attrs["mode"], "scaler": f.attrs["scaler"],
                "genres": json.loads(f.attrs["genres"]), "partitions": parts,
                "config": json.loads(f.attrs["config"])}


def shard_path(out: Path, split: str, shard: int) -> Path:
    """Where shard ``shard`` of a beat-corpus split lives in the folder ``out``."""
    return out / f"{split}-{shard:05d}.h5"


@dataclasses.dataclass
class CorpusPiece:
    mel: np.ndarray               # (frames, n_mels) float16
    beats: np.ndarray
    downbeats: np.ndarray
    meta: dict


def read_shards(paths: tp.Iterable[str | os.PathLike]) -> list[CorpusPiece]:
    """Every piece of the given shard files."""
    pieces = []
    for p in paths:
        try:
            f = h5py.File(p, "r")
        except OSError as e:
            raise ToolkitError(f"{p}: not a readable corpus shard ({e})") from None
        with f:
            if "mel" not in f or "offsets" not in f:
                raise ToolkitError(f"{p}: not a beat corpus shard (no 'mel' frames)")
            mel, off = f["mel"][:], f["offsets"][:]
            b, bo = f["beats"][:], f["beats_offsets"][:]
            d, do = f["downbeats"][:], f["downbeats_offsets"][:]
            metas = json.loads(f["meta"][()])
        for k, meta in enumerate(metas):
            pieces.append(CorpusPiece(mel[off[k]:off[k + 1]], b[bo[k]:bo[k + 1]],
                                      d[do[k]:do[k + 1]], meta))
    return pieces


def find_shards(folder: str | os.PathLike, split: str) -> list[Path]:
    paths = sorted(Path(folder).glob(f"{split}-*.h5"))
    if not paths:
        raise ToolkitError(f"no {split} shards in {folder}; write them with "
                           f"'data_processor.py beat-corpus --split {split} --out {folder}'")
    return paths

