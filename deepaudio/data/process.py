"""FMA (or any folder of songs) -> segmented features in one HDF5 file per dataset.

Design decisions (and the deep-audioviz-experiments bugs they fix):

* Track order is shuffled with a recorded seed, stratified by genre; the same config gives the
  same partitions.
* Each finished track is written to its own file in a work folder (atomically), and the HDF5
  file is only assembled (:mod:`deepaudio.data.assembly`), in a temp file renamed into place,
  once every track is done. A killed or disk-full run therefore resumes where it stopped, and a
  ``<name>.h5`` that exists is always complete. HDF5 itself is not crash-safe, which is why no
  partial HDF5 is resumed.
* A cluster processes one ``--shard I/N`` per array task; :func:`merge_shards` assembles them
  and fits the scaler once.
* Every worker uses one BLAS thread, so a dataset does not depend on ``--workers``.
"""

from __future__ import annotations

import io
import json
import shutil
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path

import h5py
import numpy as np
from threadpoolctl import threadpool_limits
from tqdm import tqdm

from deepaudio.core.audio import AudioError, find_audio_files, load_audio
from deepaudio.core.config import ConfigError, config_to_dict
from deepaudio.core.errors import ToolkitError
from deepaudio.core.features import mfcc_segments, raw_frame_segments, spectrum_segments
from deepaudio.core.files import atomic_write_bytes, atomic_write_json
from deepaudio.data.assembly import CacheSource, ShardSource, track_cache_file, write_dataset
from deepaudio.data.config import NO_LABEL, Catalog, DatasetConfig
from deepaudio.data.fma import fma_audio_path, load_fma_tracks, select_fma_subset


def track_features(y: np.ndarray, sr: int, cfg: DatasetConfig) -> np.ndarray:
    if cfg.mode == "mfcc":
        return mfcc_segments(y, sr, num_mfcc=cfg.num_mfcc, n_mels=cfg.n_mels,
                             hop_length=cfg.mfcc_hops, n_fft=cfg.n_fft,
                             frames_per_segment=cfg.frames_per_segment,
                             segment_hop=cfg.segment_hop)
    if cfg.mode == "spectrum":
        return spectrum_segments(y, window_size=cfg.window_size, hop_length=cfg.hop_length)
    return raw_frame_segments(y, segment_samples=cfg.segment_samples)




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
    splits = None
    if cfg.split == "fma":
        column = ("set", "split")
        if column not in tracks.columns:
            raise ConfigError("key 'split' is 'fma' but tracks.csv has no ('set', 'split') "
                              "column")
        splits = tracks[column].astype(str).to_numpy()[order]
        unknown = sorted(set(splits) - {"training", "validation", "test"})
        if unknown:
            raise ConfigError(f"tracks.csv: unknown ('set', 'split') values {unknown}")
    return Catalog(ids[order], [str(fma_audio_path(cfg.fma_audio_dir, t)) for t in ids[order]],
                   labels[order], genres, skipped, splits)


def partition_names(cfg: DatasetConfig) -> list[str]:
    return (["partition_cv", "partition_test"]
            + [f"partition_train_{k}" for k in range(cfg.num_train_partitions)])


def partition_tracks(ids: np.ndarray, cfg: DatasetConfig,
                     labels: np.ndarray | None = None,
                     splits: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Seeded shuffle, cut to num_tracks, then cv / test / k train partitions (in that order).

    With ``split: fma`` (and ``splits``, FMA's ``('set', 'split')`` of each track) the cut is
    FMA's own: validation tracks are the cv partition, test tracks the test partition, the
    rest the train partitions (``cv_split``/``test_split`` unused). FMA keeps each artist in
    one of them, so test accuracy compares with the FMA paper's baselines; a random split puts
    an artist's songs on both sides and reads higher.

    The last train partition takes the remainder, as in deep-audioviz-experiments. With ``stratify``
    and labels, the shuffled order interleaves the genres (the n-th track of every genre before the
    (n+1)-th of any), so each cut holds the genres in proportion: on a small set a plain shuffle can
    leave whole genres out of the test partition.
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
    if cfg.split == "fma" and splits is not None:
        kind = np.asarray(splits)[order][perm]
        if cfg.stratify and labels is not None and (np.asarray(labels) != NO_LABEL).any():
            kind = kind[np.argsort(rank, kind="stable")]
        kind = kind[:cfg.num_tracks]
        cv, test = ids[kind == "validation"], ids[kind == "test"]
        train = ids[kind == "training"]
    else:
        n_cv = int(round(cfg.cv_split * len(ids)))
        n_test = int(round(cfg.test_split * len(ids)))
        cv, test, train = ids[:n_cv], ids[n_cv:n_cv + n_test], ids[n_cv + n_test:]
    k = cfg.num_train_partitions
    if len(train) < k:
        raise ConfigError(f"only {len(train)} training tracks for {k} train partitions; "
                          "lower num_train_partitions or add tracks")
    per = len(train) // k
    parts = {"partition_cv": cv, "partition_test": test}
    for i in range(k):
        parts[f"partition_train_{i}"] = train[i * per:(i + 1) * per if i < k - 1 else None]
    return parts




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
    atomic_write_bytes(track_cache_file(Path(work_dir), track_id), buf.getvalue())
    return {"track_id": track_id, "segments": int(len(segs))}


def _limit_threads() -> None:
    # One BLAS/OpenMP thread per worker: the processes are the parallelism.
    threadpool_limits(1)


def run_tracks(jobs: list[tuple], workers: int, desc: str) -> list[dict]:
    results = []
    bar = tqdm(total=len(jobs), desc=desc, unit="track", disable=None)
    try:
        if workers <= 1 or len(jobs) <= 1:
            # one BLAS thread here too: the mel-filter matmul's rounding depends on the thread
            # count, and a dataset must not depend on --workers
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
    Files made before ``split`` existed were split at random.
    """
    out = dict(config)
    out.setdefault("split", "random")
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
    parts = partition_tracks(catalog.ids, cfg, catalog.labels, catalog.splits)
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
            if not track_cache_file(cfg.work_dir, t).is_file()]
    if workers > 1 and jobs:  # import + JIT librosa once here; forked workers inherit it
        track_features(np.zeros(cfg.sr * 2, np.float32), cfg.sr, cfg)
    results = run_tracks(jobs, workers, desc=f"{cfg.name} ({cfg.mode})")
    skipped = sorted((r for r in results if "reason" in r), key=lambda r: r["track_id"])
    if not any(track_cache_file(cfg.work_dir, t).is_file() for ids in parts.values() for t in ids):
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
                track_cache_file(cfg.work_dir, t).unlink(missing_ok=True)
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
    parts = partition_tracks(catalog.ids, cfg, catalog.labels, catalog.splits)
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
