"""FMA (or any folder of songs) -> segmented features in one HDF5 file per dataset.

Subcommands::

    python data_processor.py sample --out datasets/fma --tracks-per-genre 10 [--stems]
    python data_processor.py process -c datasets/processed/samples/mfcc_ae.json [--workers 2]
    python data_processor.py process -c CONFIG --shard 0/4     # on a cluster, one per array task
    python data_processor.py merge -c CONFIG                   # after every shard has finished
    python data_processor.py info datasets/processed/mfcc_ae_sample/mfcc_ae_sample.h5

Design decisions (and the reference bugs they fix):

* FMA's ``('set', 'subset')`` column holds the *smallest* subset a track belongs to, so
  "medium" selects small + medium and "large" selects everything (the reference selected the
  17,000 medium-only tracks).
* Track order is shuffled with a recorded seed; the same config gives the same partitions.
* Each finished track is written to its own file in a work folder (atomically), and the HDF5
  file is only assembled, in a temp file renamed into place, once every track is done. A
  killed or disk-full run therefore resumes where it stopped, and a ``<name>.h5`` that exists
  is always complete. HDF5 itself is not crash-safe, which is why no partial HDF5 is resumed.
* Scalers are fitted on the train partitions only, in float64 with streaming sums, and stored
  in the file. ``scaler_axis`` says what one set of statistics covers: ``feature`` (default)
  pools each MFCC coefficient over the segment's frames, ``global`` uses one mean/std or
  min/max for every value, and ``position`` fits each of the 64×96 positions on its own, as the
  reference did (its weakness 10: time positions are interchangeable, so per-position
  statistics are noisy estimates of the per-coefficient ones). ``global`` keeps the geometry of
  the MFCCs, whose squared error is the log-mel spectrogram's (the DCT is orthonormal); the
  sample autoencoder set uses it.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import os
import shutil
import sys
import time
import typing as tp
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
from tqdm import tqdm

from audio_io import AudioError, find_audio_files, load_audio
from config import (
    ConfigError,
    ToolkitError,
    atomic_write_bytes,
    atomic_write_json,
    config_to_dict,
    load_config,
    user_errors_exit_2,
)

FORMAT_VERSION = 1
FMA_SUBSETS = ("small", "medium", "large")
NO_LABEL = -1


# ---------------------------------------------------------------------------------------------
# FMA metadata

def load_fma_tracks(meta_dir: str | os.PathLike) -> pd.DataFrame:
    """Read ``fma_metadata/tracks.csv`` with its two-row column header, indexed by track id."""
    path = Path(meta_dir) / "tracks.csv"
    if not path.is_file():
        raise ToolkitError(f"{path}: FMA metadata not found (expected fma_metadata/tracks.csv)")
    try:
        tracks = pd.read_csv(path, index_col=0, header=[0, 1], low_memory=False)
    except (ValueError, pd.errors.ParserError) as e:
        raise ToolkitError(f"{path}: not an FMA tracks.csv ({e})") from None
    for col in (("set", "subset"), ("track", "genre_top")):
        if col not in tracks.columns:
            raise ToolkitError(f"{path}: column {col} is missing; FMA's tracks.csv has a "
                               "two-row header such as 'set,subset' / 'track,genre_top'")
    tracks.index = tracks.index.astype(np.int64)
    return tracks


def select_fma_subset(tracks: pd.DataFrame, subset: str) -> pd.DataFrame:
    """Tracks of an FMA subset. Subsets nest (small ⊂ medium ⊂ large) and the column stores
    the smallest one a track is in, so a subset is every track whose value is at most it."""
    if subset not in FMA_SUBSETS:
        raise ConfigError(f"fma_type must be one of {FMA_SUBSETS}, got {subset!r}")
    rank = tracks[("set", "subset")].map({s: i for i, s in enumerate(FMA_SUBSETS)})
    return tracks[rank.notna() & (rank <= FMA_SUBSETS.index(subset))]


def fma_audio_path(audio_dir: str | os.PathLike, track_id: int) -> Path:
    tid = f"{int(track_id):06d}"
    return Path(audio_dir) / tid[:3] / f"{tid}.mp3"


# ---------------------------------------------------------------------------------------------
# Dataset config

@dataclasses.dataclass
class DatasetConfig:
    """One processed dataset. Keys follow the reference's JSON schema where it had one."""
    name: str
    mode: tp.Literal["mfcc", "spectrum", "frames"] = "mfcc"
    fma_audio_dir: str = "datasets/fma/fma_small"   # or any folder of songs
    fma_meta_dir: str | None = "datasets/fma/fma_metadata"  # null: plain folder, no labels
    fma_type: tp.Literal["small", "medium", "large"] = "small"
    datasets_dir: str = "datasets/processed"
    num_tracks: int | None = None          # null: every selected track
    seed: int = 0                          # shuffle + segment sampling; recorded in the file
    stratify: bool = True                  # every partition gets the genres in proportion
    sr: int = 44100
    do_re_sample: bool = True              # false: skip tracks at another rate (reference)
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


# ---------------------------------------------------------------------------------------------
# Features: NumPy in, NumPy out

def mfcc_segments(y: np.ndarray, sr: int, *, num_mfcc: int = 64, n_mels: int = 128,
                  hop_length: int = 441, n_fft: int = 1102, frames_per_segment: int = 96,
                  segment_hop: int | None = None) -> np.ndarray:
    """MFCCs of mono ``y`` cut into segments, shape (N, num_mfcc, frames_per_segment).

    Segments start every ``segment_hop`` MFCC frames (default: back to back, as the
    reference); a smaller hop gives overlapping segments.
    """
    import librosa
    m = librosa.feature.mfcc(y=y, sr=sr, n_mfcc=num_mfcc, n_fft=n_fft, hop_length=hop_length,
                             n_mels=n_mels)
    hop = segment_hop or frames_per_segment
    if m.shape[1] < frames_per_segment:
        return np.zeros((0, num_mfcc, frames_per_segment), np.float32)
    segs = librosa.util.frame(m, frame_length=frames_per_segment, hop_length=hop, axis=-1)
    return np.ascontiguousarray(segs.transpose(2, 0, 1), dtype=np.float32)  # (N, mfcc, frames)


def spectrum_segments(y: np.ndarray, *, window_size: int = 11025,
                      hop_length: int = 11025) -> np.ndarray:
    """Hann-windowed log-magnitude (dB) rfft of each window, shape (N, window_size // 2 + 1).

    The reference took ``|fft|`` of unwindowed frames with no log, so half its 11,025 inputs
    were mirror images; the one-sided spectrum holds the same information.
    """
    import librosa
    if len(y) < window_size:
        return np.zeros((0, window_size // 2 + 1), np.float32)
    frames = librosa.util.frame(y, frame_length=window_size, hop_length=hop_length, axis=0)
    mag = np.abs(np.fft.rfft(frames * np.hanning(window_size).astype(np.float32), axis=1))
    return librosa.amplitude_to_db(mag, ref=1.0, amin=1e-5, top_db=None).astype(np.float32)


def raw_frame_segments(y: np.ndarray, *, segment_samples: int = 16000) -> np.ndarray:
    """Non-overlapping raw-audio segments, shape (N, segment_samples)."""
    n = len(y) // segment_samples
    return np.ascontiguousarray(y[:n * segment_samples].reshape(n, segment_samples))


def segment_seconds(cfg: DatasetConfig) -> tuple[float, float]:
    """(length of audio one segment covers, stride between segment starts), in seconds."""
    if cfg.mode == "mfcc":
        frame = cfg.mfcc_hops / cfg.sr
        return frame * cfg.frames_per_segment, frame * (cfg.segment_hop or cfg.frames_per_segment)
    if cfg.mode == "spectrum":
        return cfg.window_size / cfg.sr, cfg.hop_length / cfg.sr
    return cfg.segment_samples / cfg.sr, cfg.segment_samples / cfg.sr


def track_features(y: np.ndarray, sr: int, cfg: DatasetConfig) -> np.ndarray:
    if cfg.mode == "mfcc":
        return mfcc_segments(y, sr, num_mfcc=cfg.num_mfcc, n_mels=cfg.n_mels,
                             hop_length=cfg.mfcc_hops, n_fft=cfg.n_fft,
                             frames_per_segment=cfg.frames_per_segment,
                             segment_hop=cfg.segment_hop)
    if cfg.mode == "spectrum":
        return spectrum_segments(y, window_size=cfg.window_size, hop_length=cfg.hop_length)
    return raw_frame_segments(y, segment_samples=cfg.segment_samples)


# ---------------------------------------------------------------------------------------------
# Catalog and partitions

@dataclasses.dataclass
class Catalog:
    """The tracks a dataset is drawn from, before any audio is read."""
    ids: np.ndarray            # int64 track ids (FMA ids, or 0..n-1 for a plain folder)
    paths: list[str]
    labels: np.ndarray         # int32 genre index, NO_LABEL when unknown
    genres: list[str]          # label index -> genre name
    skipped: list[dict]        # tracks excluded by metadata, with reasons


def build_catalog(cfg: DatasetConfig) -> Catalog:
    if cfg.fma_meta_dir is None:
        files = find_audio_files(cfg.fma_audio_dir)
        if not files:
            raise ToolkitError(f"{cfg.fma_audio_dir}: no audio files (.mp3 .ogg .flac .wav)")
        return Catalog(np.arange(len(files), dtype=np.int64), [str(p) for p in files],
                       np.full(len(files), NO_LABEL, np.int32), [], [])
    tracks = select_fma_subset(load_fma_tracks(cfg.fma_meta_dir), cfg.fma_type)
    genre = tracks[("track", "genre_top")]
    no_genre = genre.isna()
    skipped = [{"track_id": int(t), "reason": "no genre_top in tracks.csv"}
               for t in tracks.index[no_genre]]
    tracks, genre = tracks[~no_genre], genre[~no_genre]
    genres = sorted(genre.unique())
    ids = tracks.index.to_numpy(np.int64)
    order = np.argsort(ids)
    labels = genre.map({g: i for i, g in enumerate(genres)}).to_numpy(np.int32)
    return Catalog(ids[order], [str(fma_audio_path(cfg.fma_audio_dir, t)) for t in ids[order]],
                   labels[order], genres, skipped)


def partition_names(cfg: DatasetConfig) -> list[str]:
    return (["partition_cv", "partition_test"]
            + [f"partition_train_{k}" for k in range(cfg.num_train_partitions)])


def partition_tracks(ids: np.ndarray, cfg: DatasetConfig,
                     labels: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Seeded shuffle, cut to num_tracks, then cv / test / k train partitions (in that order).

    The last train partition takes the remainder, as in the reference. With ``stratify`` and
    labels, the shuffled order interleaves the genres (the n-th track of every genre before
    the (n+1)-th of any), so each cut holds the genres in proportion: on a small set a plain
    shuffle can leave whole genres out of the test partition.
    """
    ids = np.asarray(ids, dtype=np.int64)
    order = np.argsort(ids)
    ids = ids[order]
    perm = np.random.default_rng(cfg.seed).permutation(len(ids))
    ids = ids[perm]
    if cfg.stratify and labels is not None and (np.asarray(labels) != NO_LABEL).any():
        lab = np.asarray(labels)[order][perm]
        rank = np.zeros(len(lab), np.int64)
        for value in np.unique(lab):
            rank[lab == value] = np.arange((lab == value).sum())
        ids = ids[np.argsort(rank, kind="stable")]
    ids = ids[:cfg.num_tracks]
    n_cv = int(round(cfg.cv_split * len(ids)))
    n_test = int(round(cfg.test_split * len(ids)))
    train = ids[n_cv + n_test:]
    k = cfg.num_train_partitions
    if len(train) < k:
        raise ConfigError(f"only {len(train)} training tracks for {k} train partitions; "
                          "lower num_train_partitions or add tracks")
    per = len(train) // k
    parts = {"partition_cv": ids[:n_cv], "partition_test": ids[n_cv:n_cv + n_test]}
    for i in range(k):
        parts[f"partition_train_{i}"] = train[i * per:(i + 1) * per if i < k - 1 else None]
    return parts


def is_train(part: str) -> bool:
    return part.startswith("partition_train_")


# ---------------------------------------------------------------------------------------------
# Per-track processing (runs in worker processes)

def _select_segments(feats: np.ndarray, cfg: DatasetConfig, track_id: int):
    positions = np.arange(len(feats), dtype=np.int32)
    if cfg.segments_per_track is not None and len(feats) > cfg.segments_per_track:
        rng = np.random.default_rng([cfg.seed, int(track_id)])
        positions = np.sort(rng.choice(len(feats), cfg.segments_per_track, replace=False))
        positions = positions.astype(np.int32)
    return feats[positions], positions


def compute_track(path: str, track_id: int, cfg: DatasetConfig):
    """Features of one track -> (segments, positions), or raise AudioError with a reason."""
    y, sr = load_audio(path, sr=cfg.sr if cfg.do_re_sample else None, mono=True)
    if sr != cfg.sr:
        raise AudioError(path, f"sample rate {sr} Hz differs from sr {cfg.sr} "
                               "and do_re_sample is false")
    feats = track_features(y[0], sr, cfg)
    if len(feats) == 0:
        raise AudioError(path, f"too short ({y.shape[1] / sr:.2f} s) for one segment")
    return _select_segments(feats, cfg, track_id)


def _cache_file(work_dir: Path, track_id: int) -> Path:
    return work_dir / "tracks" / f"{int(track_id)}.npz"


def _process_one(job: tuple[str, int, DatasetConfig, str]) -> dict:
    """Worker: compute one track and store it in the work folder. Audio problems are reported
    as a skip; a failure to *write* (disk full) propagates and stops the run for a resume."""
    path, track_id, cfg, work_dir = job
    try:
        segs, pos = compute_track(path, track_id, cfg)
    except AudioError as e:
        return {"track_id": track_id, "path": path, "reason": e.reason}
    except Exception as e:  # a decoder or DSP failure on one file must not stop the run
        return {"track_id": track_id, "path": path, "reason": f"{type(e).__name__}: {e}"}
    buf = io.BytesIO()
    np.savez(buf, segments=segs, positions=pos)
    atomic_write_bytes(_cache_file(Path(work_dir), track_id), buf.getvalue())
    return {"track_id": track_id, "segments": int(len(segs))}


def _limit_threads() -> None:
    # One BLAS/OpenMP thread per worker: the processes are the parallelism.
    from threadpoolctl import threadpool_limits
    threadpool_limits(1)


def run_tracks(jobs: list[tuple], workers: int, desc: str) -> list[dict]:
    results = []
    bar = tqdm(total=len(jobs), desc=desc, unit="track", disable=None)
    try:
        if workers <= 1 or len(jobs) <= 1:
            # one BLAS thread here too: the mel-filter matmul's rounding depends on the thread
            # count, and a dataset must not depend on --workers
            from threadpoolctl import threadpool_limits
            with threadpool_limits(1):
                for job in jobs:
                    results.append(_process_one(job))
                    bar.update()
        else:
            ctx = get_context("fork")
            with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_limit_threads) as ex:
                futures = [ex.submit(_process_one, job) for job in jobs]
                for fut in as_completed(futures):
                    results.append(fut.result())
                    bar.update()
    except OSError as e:
        raise ToolkitError(f"could not write the work folder ({e.strerror or e}); "
                           "free space and run the same command again to resume") from e
    finally:
        bar.close()
    return results


# ---------------------------------------------------------------------------------------------
# Scalers (fitted on train only)

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


def apply_scaler(x: np.ndarray, params: dict[str, np.ndarray]) -> np.ndarray:
    """Apply stored scaler params (as read from the HDF5 ``scaler`` group) to segments."""
    if "mean" in params:
        return ((x - params["mean"]) / params["std"]).astype(np.float32)
    if "min" in params:
        return ((x - params["min"]) / params["scale"]).astype(np.float32)
    return x.astype(np.float32)


def invert_scaler(x: np.ndarray, params: dict[str, np.ndarray]) -> np.ndarray:
    """The features before :func:`apply_scaler` (float64), from scaled segments."""
    x = x.astype(np.float64)
    if "mean" in params:
        return x * params["std"] + params["mean"]
    if "min" in params:
        return x * params["scale"] + params["min"]
    return x


# ---------------------------------------------------------------------------------------------
# Assembly into one HDF5 file

class SegmentSource(tp.Protocol):
    def get(self, track_id: int) -> tuple[np.ndarray, np.ndarray] | None: ...


class CacheSource:
    """Per-track ``.npz`` files in the work folder."""

    def __init__(self, work_dir: Path):
        self.work_dir = work_dir

    def get(self, track_id):
        f = _cache_file(self.work_dir, track_id)
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


# ---------------------------------------------------------------------------------------------
# process / merge

def _stored_config(cfg: DatasetConfig) -> dict | None:
    """The config of an existing dataset or of an unfinished run of it, if any."""
    if cfg.h5_path.is_file():
        with h5py.File(cfg.h5_path, "r") as f:
            return json.loads(f.attrs["config"])
    marker = cfg.work_dir / "config.json"
    if marker.is_file():
        return json.loads(marker.read_text())
    return None


def _comparable(config: dict) -> dict:
    """A dataset config with settings that cannot change the data made equal.

    Files made before ``scaler_axis`` existed were scaled per position; for 1-D segments
    (spectrum, frames) ``feature`` is ``position``, and without a scaler the axis is moot.
    """
    out = dict(config)
    axis = out.get("scaler_axis", "position")
    if out.get("scaler") == "none" or (axis == "feature" and out.get("mode") != "mfcc"):
        axis = "position"
    out["scaler_axis"] = axis
    return out


def _check_or_reset(cfg: DatasetConfig, overwrite: bool) -> None:
    stored = _stored_config(cfg)
    stored = None if stored is None else _comparable(stored)
    mine = _comparable(config_to_dict(cfg))
    if overwrite:
        cfg.h5_path.unlink(missing_ok=True)
        shutil.rmtree(cfg.work_dir, ignore_errors=True)
        for p in Path(cfg.datasets_dir).glob(f"{cfg.name}.shard-*-of-*.h5"):
            p.unlink()
        return
    if stored is not None and stored != mine:
        diff = sorted(k for k in set(stored) | set(mine) if stored.get(k) != mine.get(k))
        raise ConfigError(f"{cfg.name}: the config differs from the one stored with the "
                          f"existing dataset in key(s) {', '.join(map(repr, diff))}; "
                          "rerun with --overwrite to rebuild it")


def _parse_shard(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    try:
        i, n = (int(v) for v in text.split("/"))
    except ValueError:
        raise ConfigError(f"--shard must look like I/N (e.g. 0/4), got {text!r}") from None
    if not 0 <= i < n:
        raise ConfigError(f"--shard {text}: need 0 <= I < N")
    return i, n


def process_dataset(cfg: DatasetConfig, *, workers: int = 1, overwrite: bool = False,
                    shard: str | None = None) -> dict:
    """Build ``<datasets_dir>/<name>.h5`` (or one shard file); returns the report."""
    t0 = time.time()
    shard_ix = _parse_shard(shard)
    _check_or_reset(cfg, overwrite)
    out = cfg.h5_path if shard_ix is None else cfg.shard_path(*shard_ix)
    if out.is_file():
        return {"name": cfg.name, "complete": True, "output": str(out), "already_done": True}
    catalog = build_catalog(cfg)
    parts = partition_tracks(catalog.ids, cfg, catalog.labels)
    if shard_ix is not None:  # every N-th track of the global order belongs to shard I
        i, n = shard_ix
        order = np.concatenate(list(parts.values()))
        mine = set(order[i::n].tolist())
        parts = {p: ids[np.isin(ids, list(mine))] for p, ids in parts.items()}
    path_of = dict(zip(catalog.ids.tolist(), catalog.paths))
    atomic_write_json(cfg.work_dir / "config.json", config_to_dict(cfg))
    atomic_write_json(cfg.report_path, {"name": cfg.name, "complete": False,
                                        "status": "processing"})
    jobs = [(path_of[int(t)], int(t), cfg, str(cfg.work_dir))
            for ids in parts.values() for t in ids
            if not _cache_file(cfg.work_dir, t).is_file()]
    if workers > 1 and jobs:  # import + JIT librosa once here; forked workers inherit it
        track_features(np.zeros(cfg.sr * 2, np.float32), cfg.sr, cfg)
    results = run_tracks(jobs, workers, desc=f"{cfg.name} ({cfg.mode})")
    skipped = sorted((r for r in results if "reason" in r), key=lambda r: r["track_id"])
    if not any(_cache_file(cfg.work_dir, t).is_file() for ids in parts.values() for t in ids):
        reasons = "; ".join(f"{r['path']}: {r['reason']}" for r in skipped[:3])
        atomic_write_json(cfg.report_path, {"name": cfg.name, "complete": False,
                                            "skipped": skipped})
        raise ToolkitError(f"{cfg.name}: no track could be processed ({reasons})")
    if shard_ix is None:
        counts = write_dataset(out, cfg, catalog, parts, CacheSource(cfg.work_dir),
                               scaler=cfg.scaler)
        shutil.rmtree(cfg.work_dir, ignore_errors=True)
    else:
        counts = write_dataset(out, cfg, catalog, parts, CacheSource(cfg.work_dir),
                               scaler="none", extra_attrs={"shard": f"{shard_ix[0]}/{shard_ix[1]}"})
        for ids in parts.values():
            for t in ids:
                _cache_file(cfg.work_dir, t).unlink(missing_ok=True)
    report = {"name": cfg.name, "complete": True, "output": str(out), "mode": cfg.mode,
              "seed": cfg.seed, "workers": workers, "shard": shard,
              "seconds": round(time.time() - t0, 2), "partitions": counts,
              "tracks_processed": sum(c["tracks"] for c in counts.values()),
              "skipped": catalog.skipped + skipped}
    if shard_ix is None:
        atomic_write_json(cfg.report_path, report)
    else:
        atomic_write_json(out.with_suffix(".report.json"), report)
    return report


def merge_shards(cfg: DatasetConfig) -> dict:
    """Combine every ``<name>.shard-I-of-N.h5`` into ``<name>.h5``, fitting the scaler."""
    found = sorted(Path(cfg.datasets_dir).glob(f"{cfg.name}.shard-*-of-*.h5"))
    if not found:
        raise ToolkitError(f"no shard files {cfg.name}.shard-*-of-*.h5 in {cfg.datasets_dir}")
    counts = {int(p.name.rsplit("-of-", 1)[1][:-3]) for p in found}
    if len(counts) != 1:
        raise ToolkitError(f"shard files of different counts: {[p.name for p in found]}")
    n = counts.pop()
    missing = [i for i in range(n) if not cfg.shard_path(i, n).is_file()]
    if missing:
        raise ToolkitError(f"shard(s) {missing} of {n} have not finished; run "
                           f"'process --shard I/{n}' for them first")
    mine = config_to_dict(cfg)
    for p in found:
        with h5py.File(p, "r") as f:
            if json.loads(f.attrs["config"]) != mine:
                raise ConfigError(f"{p.name} was made with a different config")
    if cfg.h5_path.is_file():
        raise ToolkitError(f"{cfg.h5_path} exists already; delete it to merge again")
    catalog = build_catalog(cfg)
    parts = partition_tracks(catalog.ids, cfg, catalog.labels)
    source = ShardSource([cfg.shard_path(i, n) for i in range(n)])
    try:
        counts_by_part = write_dataset(cfg.h5_path, cfg, catalog, parts, source,
                                       scaler=cfg.scaler)
    finally:
        source.close()
    skipped = []
    for i in range(n):
        rp = cfg.shard_path(i, n).with_suffix(".report.json")
        if rp.is_file():
            skipped += [s for s in json.loads(rp.read_text()).get("skipped", [])
                        if s not in skipped]
    report = {"name": cfg.name, "complete": True, "output": str(cfg.h5_path), "shards": n,
              "partitions": counts_by_part, "skipped": skipped,
              "tracks_processed": sum(c["tracks"] for c in counts_by_part.values())}
    atomic_write_json(cfg.report_path, report)
    return report


# ---------------------------------------------------------------------------------------------
# Reading

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


# ---------------------------------------------------------------------------------------------
# CLI

def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("sample", help="write the synthesized FMA-format sample set")
    s.add_argument("--out", default="datasets/fma")
    s.add_argument("--tracks-per-genre", type=int, default=10)
    s.add_argument("--seconds", type=float, default=30.0)
    s.add_argument("--stems", action="store_true", help="also write true stems (FLAC)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    s.add_argument("--overwrite", action="store_true")
    pr = sub.add_parser("process", help="segment a dataset into HDF5")
    pr.add_argument("-c", "--config", required=True)
    pr.add_argument("--overwrite", action="store_true", help="discard stored data and config")
    pr.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    pr.add_argument("--shard", help="I/N: process only shard I of N (merge afterwards)")
    m = sub.add_parser("merge", help="merge shard files into the dataset")
    m.add_argument("-c", "--config", required=True)
    i = sub.add_parser("info", help="summarise a processed dataset")
    i.add_argument("h5")
    return p


@user_errors_exit_2
def main(argv: list[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    if args.command == "sample":
        from sample_music import write_sample_set
        info = write_sample_set(args.out, tracks_per_genre=args.tracks_per_genre,
                                seconds=args.seconds, stems=args.stems, seed=args.seed,
                                workers=args.workers, overwrite=args.overwrite)
        print(json.dumps(info))
    elif args.command == "process":
        cfg = load_config(DatasetConfig, args.config)
        report = process_dataset(cfg, workers=args.workers, overwrite=args.overwrite,
                                 shard=args.shard)
        if report.get("already_done"):
            print(f"{report['output']} is complete (same config); nothing to do")
        else:
            print(f"{report['output']}: {report['tracks_processed']} tracks, "
                  f"{len(report['skipped'])} skipped (see {cfg.report_path}), "
                  f"{report['seconds']} s")
    elif args.command == "merge":
        report = merge_shards(load_config(DatasetConfig, args.config))
        print(f"{report['output']}: {report['tracks_processed']} tracks "
              f"from {report['shards']} shards")
    elif args.command == "info":
        print(json.dumps(dataset_summary(args.h5), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
