"""Assembling a dataset's HDF5 file from per-track segments, with the train-fitted scaler.

Segments come from a :class:`SegmentSource`: the per-track ``.npz`` files of the work folder
(:class:`CacheSource`) or unscaled shard files (:class:`ShardSource`). The file is written to a
temporary name and renamed into place, so a ``<name>.h5`` that exists is always complete.

Scalers are fitted on the train partitions only, in float64 with streaming sums. ``scaler_axis``
says what one set of statistics covers: ``feature`` (default) pools each MFCC coefficient over
the segment's frames, ``global`` uses one mean/std or min/max for every value, and ``position``
fits each of the 64x96 positions on its own, as deep-audioviz-experiments did (time positions
are interchangeable, so per-position statistics are noisy estimates of the per-coefficient
ones). ``global`` keeps the geometry of the MFCCs, whose squared error is the log-mel
spectrogram's (the DCT is orthonormal); the sample autoencoder set uses it.
"""

from __future__ import annotations

import json
import os
import typing as tp
from pathlib import Path

import h5py
import numpy as np
from tqdm import tqdm

from deepaudio.core.config import ConfigError, config_to_dict
from deepaudio.core.errors import ToolkitError
from deepaudio.core.features import apply_scaler
from deepaudio.data.config import Catalog, DatasetConfig, is_train, segment_seconds

FORMAT_VERSION = 1


def track_cache_file(work_dir: Path, track_id: int) -> Path:
    return work_dir / "tracks" / f"{int(track_id)}.npz"

SCALER_AXES = ("feature", "global", "position")


def scaler_pool_axes(axis: str, shape: tuple[int, ...]) -> tuple[int, ...]:
    """Axes of one segment that share statistics: ``feature`` pools time (the last axis of
    2-D segments; a 1-D segment is one feature vector), ``global`` pools everything."""
    if axis == "global":
        return tuple(range(len(shape)))
    if axis == "feature" and len(shape) == 2:
        return (1,)
    if axis in ("feature", "position"):
        return ()
    raise ConfigError(f"key 'scaler_axis' must be one of {', '.join(SCALER_AXES)}, got {axis!r}")


class PositionScaler:
    """Streaming standard or min-max scaler, accumulated in float64.

    Statistics are kept per element position and pooled over ``pool`` axes at the end; the
    stored parameters always have the segment's full shape, so applying them is the same
    for every ``scaler_axis``.
    """

    def __init__(self, kind: str, shape: tuple[int, ...], pool: tuple[int, ...] = ()):
        self.kind, self.shape, self.count, self.pool = kind, shape, 0, pool
        self.sum = np.zeros(shape)
        self.sumsq = np.zeros(shape)
        self.min = np.full(shape, np.inf)
        self.max = np.full(shape, -np.inf)

    def update(self, x: np.ndarray) -> None:
        x = x.astype(np.float64)
        self.count += len(x)
        self.sum += x.sum(0)
        self.sumsq += (x * x).sum(0)
        self.min = np.minimum(self.min, x.min(0))
        self.max = np.maximum(self.max, x.max(0))

    def params(self) -> dict[str, np.ndarray]:
        if self.kind == "none":
            return {}
        if self.count == 0:
            raise ToolkitError("no training segments to fit the scaler on")
        ax, full = self.pool, self.shape
        n = self.count * int(np.prod([full[a] for a in ax]))
        if self.kind == "standard":
            mean = self.sum.sum(ax, keepdims=True) / n
            std = np.sqrt(np.maximum(self.sumsq.sum(ax, keepdims=True) / n - mean ** 2, 0.0))
            std[std < 1e-8] = 1.0    # constant values pass through centred
            return {"mean": np.broadcast_to(mean, full).astype(np.float32),
                    "std": np.broadcast_to(std, full).astype(np.float32)}
        lo, hi = self.min.min(ax, keepdims=True), self.max.max(ax, keepdims=True)
        span = hi - lo
        span[span < 1e-8] = 1.0
        return {"min": np.broadcast_to(lo, full).astype(np.float32),
                "scale": np.broadcast_to(span, full).astype(np.float32)}


class SegmentSource(tp.Protocol):
    def get(self, track_id: int) -> tuple[np.ndarray, np.ndarray] | None: ...


class CacheSource:
    """Per-track ``.npz`` files in the work folder."""

    def __init__(self, work_dir: Path):
        self.work_dir = work_dir

    def get(self, track_id):
        f = track_cache_file(self.work_dir, track_id)
        if not f.is_file():
            return None
        with np.load(f) as z:
            return z["segments"], z["positions"]


class ShardSource:
    """Unscaled shard files written by ``process --shard``."""

    def __init__(self, paths: list[Path]):
        self.files = [h5py.File(p, "r") for p in paths]
        self.index: dict[int, tuple[h5py.Group, int, int]] = {}
        for f in self.files:
            for part in f:
                if not part.startswith("partition_"):
                    continue
                g = f[part]
                seg_ids = g["segment_indices"][:]
                for tid in g["track_indices"][:]:
                    rows = np.flatnonzero(seg_ids == tid)
                    self.index[int(tid)] = (g, int(rows[0]), int(rows[-1]) + 1)

    def get(self, track_id):
        if int(track_id) not in self.index:
            return None
        g, a, b = self.index[int(track_id)]
        return g["segment_data"][a:b], g["segment_positions"][a:b]

    def close(self):
        for f in self.files:
            f.close()


def write_dataset(out_path: Path, cfg: DatasetConfig, catalog: Catalog,
                  parts: dict[str, np.ndarray], source: SegmentSource, *, scaler: str,
                  extra_attrs: dict | None = None) -> dict[str, dict]:
    """Write partitions from ``source`` into ``out_path`` atomically; returns counts per part.

    With a scaler, a first pass fits it on the train partitions, the second writes scaled data.
    """
    label_of = dict(zip(catalog.ids.tolist(), catalog.labels.tolist()))
    params: dict[str, np.ndarray] = {}
    if scaler != "none":
        fit = None
        for part, ids in parts.items():
            if not is_train(part):
                continue
            for tid in tqdm(ids, desc=f"fit {scaler} scaler", unit="track", disable=None,
                            leave=False):
                got = source.get(tid)
                if got is None:
                    continue
                shape = got[0].shape[1:]
                fit = fit or PositionScaler(scaler, shape,
                                            scaler_pool_axes(cfg.scaler_axis, shape))
                fit.update(got[0])
        if fit is None:
            raise ToolkitError(f"{cfg.name}: no training track could be processed; "
                               f"see {cfg.report_path}")
        params = fit.params()
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(f".{out_path.name}.{os.getpid()}.tmp")
    counts = {}
    try:
        with h5py.File(tmp, "w") as f:
            f.attrs.update({"format_version": FORMAT_VERSION, "mode": cfg.mode,
                            "config": json.dumps(config_to_dict(cfg), sort_keys=True),
                            "scaler": scaler, "genres": json.dumps(catalog.genres),
                            "segment_seconds": segment_seconds(cfg)[0],
                            "hop_seconds": segment_seconds(cfg)[1]})
            f.attrs.update(extra_attrs or {})
            sg = f.create_group("scaler")
            sg.attrs["kind"] = scaler
            for k, v in params.items():
                sg.create_dataset(k, data=v)
            tg = f.create_group("tracks")
            tg.create_dataset("id", data=catalog.ids.astype(np.int64))
            tg.create_dataset("label", data=catalog.labels)
            tg.create_dataset("path", data=np.array(catalog.paths, dtype=object),
                              dtype=h5py.string_dtype())
            for part, ids in parts.items():
                counts[part] = _write_partition(f.create_group(part), ids, source, params,
                                                label_of)
                f.attrs[f"{part}_cached"] = True
                f.attrs[f"{part}_scaled"] = bool(params)
        os.replace(tmp, out_path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return counts


def _write_partition(g: h5py.Group, ids: np.ndarray, source: SegmentSource, params: dict,
                     label_of: dict) -> dict:
    done, data = [], None
    seg_ids, seg_pos = [], []
    for tid in tqdm(ids, desc=f"write {g.name.strip('/')}", unit="track", disable=None,
                    leave=False):
        got = source.get(tid)
        if got is None:
            continue
        segs, pos = got
        segs = apply_scaler(segs, params)
        if data is None:
            chunk = (max(1, min(64, len(segs))),) + segs.shape[1:]
            data = g.create_dataset("segment_data", shape=(0,) + segs.shape[1:],
                                    maxshape=(None,) + segs.shape[1:], dtype=np.float32,
                                    chunks=chunk)
        n0 = data.shape[0]
        data.resize(n0 + len(segs), axis=0)
        data[n0:] = segs
        done.append(tid)
        seg_ids.append(np.full(len(segs), tid, np.int32))
        seg_pos.append(pos.astype(np.int32))
    if data is None:  # an empty partition (e.g. cv_split 0) still has the layout
        g.create_dataset("segment_data", shape=(0,), dtype=np.float32)
    seg_ids_arr = np.concatenate(seg_ids) if seg_ids else np.zeros(0, np.int32)
    g.create_dataset("track_indices", data=np.array(done, dtype=np.int32))
    g.create_dataset("segment_indices", data=seg_ids_arr)
    g.create_dataset("segment_positions",
                     data=np.concatenate(seg_pos) if seg_pos else np.zeros(0, np.int32))
    g.create_dataset("segment_labels", data=np.array([label_of[int(t)] for t in seg_ids_arr],
                                                     dtype=np.int32))
    return {"tracks": len(done), "segments": int(len(seg_ids_arr))}
