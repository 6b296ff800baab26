"""Processed datasets: partitions, the HDF5 layout, scalers fitted on train, resume after
a full disk and SIGKILL, shards, bad input and configs, the CLI."""

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from deepaudio.cli import data as data_cli
from deepaudio.core.audio import save_audio
from deepaudio.core.config import ConfigError, load_config
from deepaudio.core.datasets import read_partition, read_scaler
from deepaudio.core.errors import ToolkitError
from deepaudio.core.features import (
    apply_scaler,
)
from deepaudio.core.files import atomic_write_bytes
from deepaudio.data import process
from deepaudio.data.config import NO_LABEL, DatasetConfig, is_train
from deepaudio.data.fma import fma_audio_path, load_fma_tracks
from deepaudio.data.process import merge_shards, partition_names, partition_tracks, process_dataset

ROOT = Path(__file__).resolve().parents[2]     # the checkout


@pytest.fixture
def cfg_of(dataset_config):
    """``cfg_of(fma, out, **kw)``: a validated config."""
    def make(fma, out, **kw) -> DatasetConfig:
        return load_config(DatasetConfig, dataset_config(fma, out, **kw))
    return make


def contents(h5_path) -> dict:
    """Everything a consumer reads from a dataset, for equality checks."""
    out = {}
    with h5py.File(h5_path, "r") as f:
        for part in f:
            if part.startswith("partition_"):
                for k in f[part]:
                    out[f"{part}/{k}"] = f[part][k][:]
        for k in f["scaler"]:
            out[f"scaler/{k}"] = f["scaler"][k][:]
    return out


def assert_same(a: dict, b: dict):
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_partitions_are_seeded_disjoint_and_complete(tmp_path):
    ids = np.arange(100, 200)
    cfg = load_config(DatasetConfig, {"name": "p", "num_train_partitions": 3, "seed": 5})
    a, b = partition_tracks(ids, cfg), partition_tracks(ids[::-1], cfg)
    assert all(np.array_equal(a[k], b[k]) for k in a)      # input order does not matter
    assert list(a) == ["partition_cv", "partition_test", "partition_train_0",
                       "partition_train_1", "partition_train_2"]
    assert [len(v) for v in a.values()] == [10, 10, 26, 26, 28]   # last takes the remainder
    allids = np.concatenate(list(a.values()))
    assert sorted(allids) == list(ids)
    other = partition_tracks(ids, load_config(DatasetConfig, {"name": "p", "seed": 6}))
    assert not np.array_equal(other["partition_cv"], a["partition_cv"])
    few = load_config(DatasetConfig, {"name": "p", "num_tracks": 20})
    assert sum(len(v) for v in partition_tracks(ids, few).values()) == 20


def test_too_few_tracks_for_partitions():
    cfg = load_config(DatasetConfig, {"name": "p", "num_train_partitions": 8})
    with pytest.raises(ConfigError, match="num_train_partitions"):
        partition_tracks(np.arange(5), cfg)


def test_process_layout_labels_and_determinism(sample_set, tmp_path, cfg_of):
    cfg = cfg_of(sample_set, tmp_path / "a", segments_per_track=3)
    report = process_dataset(cfg, workers=1)
    assert report["complete"] and report["tracks_processed"] == 24 and report["skipped"] == []
    with h5py.File(cfg.h5_path, "r") as f:
        assert f.attrs["mode"] == "mfcc" and json.loads(f.attrs["config"])["seed"] == 0
        assert json.loads(f.attrs["genres"])[0] == "Electronic"
        for part in partition_names(cfg):
            g = f[part]
            assert f.attrs[f"{part}_cached"] and f.attrs[f"{part}_scaled"]
            assert g["segment_data"].shape[1:] == (64, 96)
            assert g["segment_data"].dtype == np.float32
            n = len(g["track_indices"])
            assert g["segment_data"].shape[0] == 3 * n == len(g["segment_indices"])
            assert set(g["segment_indices"][:]) == set(g["track_indices"][:])
            positions = g["segment_positions"][:].reshape(n, 3)
            assert np.all(np.diff(positions, axis=1) > 0)    # a sorted random subset
        tids, labels = f["tracks/id"][:], f["tracks/label"][:]
        lab = dict(zip(tids, labels))
        g = f["partition_train_0"]
        assert [lab[t] for t in g["segment_indices"][:]] == list(g["segment_labels"][:])
    # same config, another folder: identical data
    cfg_b = cfg_of(sample_set, tmp_path / "b", segments_per_track=3)
    process_dataset(cfg_b, workers=1)
    assert_same(contents(cfg.h5_path), contents(cfg_b.h5_path))
    assert json.loads(cfg.report_path.read_text())["complete"] is True


def test_second_run_is_a_noop_and_config_change_is_an_error(sample_set, tmp_path, cfg_of):
    cfg = cfg_of(sample_set, tmp_path, num_tracks=8)
    process_dataset(cfg)
    mtime = cfg.h5_path.stat().st_mtime_ns
    assert process_dataset(cfg)["already_done"]
    assert cfg.h5_path.stat().st_mtime_ns == mtime
    changed = cfg_of(sample_set, tmp_path, num_tracks=8, scaler="minmax")
    with pytest.raises(ConfigError, match="'scaler'.*--overwrite"):
        process_dataset(changed)
    process_dataset(changed, overwrite=True)
    with h5py.File(cfg.h5_path, "r") as f:
        assert f.attrs["scaler"] == "minmax" and set(f["scaler"]) == {"min", "scale"}


@pytest.mark.parametrize("kind", ["standard", "minmax"])
@pytest.mark.parametrize("axis, pool", [("position", (0,)), ("feature", (0, 2)),
                                        ("global", (0, 1, 2))])
def test_scaler_is_fitted_on_train_only(sample_set, tmp_path, kind, axis, pool, cfg_of):
    raw = cfg_of(sample_set, tmp_path, name="raw", scaler="none", segments_per_track=4)
    process_dataset(raw)
    scaled = cfg_of(sample_set, tmp_path / "s", name="raw", scaler=kind, scaler_axis=axis,
                    segments_per_track=4)
    process_dataset(scaled)
    parts = {p: read_partition(raw.h5_path, p)["segment_data"]
             for p in partition_names(raw)}
    train = np.concatenate([v for p, v in parts.items() if is_train(p)]).astype(np.float64)
    everything = np.concatenate(list(parts.values())).astype(np.float64)
    params = read_scaler(scaled.h5_path)
    assert all(v.shape == train.shape[1:] for v in params.values())

    def stat(fn, x):  # the statistic over the pooled axes, broadcast back to a segment
        return np.broadcast_to(fn(x, axis=pool, keepdims=True)[0], x.shape[1:])

    if kind == "standard":
        np.testing.assert_allclose(params["mean"], stat(np.mean, train), rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(params["std"], stat(np.std, train), rtol=1e-3, atol=1e-4)
        assert not np.allclose(params["mean"], stat(np.mean, everything), rtol=1e-4, atol=1e-4)
        z = read_partition(scaled.h5_path, "partition_train_0")["segment_data"]
        np.testing.assert_allclose(z, apply_scaler(parts["partition_train_0"], params),
                                   atol=1e-5)
    else:
        np.testing.assert_allclose(params["min"], stat(np.min, train), atol=1e-5)
        np.testing.assert_allclose(params["scale"], stat(np.max, train) - stat(np.min, train),
                                   rtol=1e-5)
        train_scaled = np.concatenate([read_partition(scaled.h5_path, p)["segment_data"]
                                       for p in parts if is_train(p)])
        assert train_scaled.min() >= -1e-6 and train_scaled.max() <= 1 + 1e-6
        if axis == "global":  # one affine map: squared distances keep their proportions
            a, b = parts["partition_train_0"][:2].astype(np.float64)
            za, zb = read_partition(scaled.h5_path, "partition_train_0")["segment_data"][:2]
            np.testing.assert_allclose(((za - zb) ** 2).sum() * params["scale"].flat[0] ** 2,
                                       ((a - b) ** 2).sum(), rtol=1e-3)


def test_scaler_axis_that_cannot_change_the_data_needs_no_rebuild(sample_set, tmp_path, cfg_of):
    """Files from before scaler_axis were scaled per position; 1-D features have no time axis."""
    spec = cfg_of(sample_set, tmp_path, name="spec", mode="spectrum", sr=22050,
                  scaler="standard", scaler_axis="position", segments_per_track=2, num_tracks=8)
    process_dataset(spec)
    for axis in ("feature", "position"):
        same = cfg_of(sample_set, tmp_path, name="spec", mode="spectrum", sr=22050,
                      scaler="standard", scaler_axis=axis, segments_per_track=2, num_tracks=8)
        assert process_dataset(same)["already_done"]
    other = cfg_of(sample_set, tmp_path, name="spec", mode="spectrum", sr=22050,
                   scaler="standard", scaler_axis="global", segments_per_track=2, num_tracks=8)
    with pytest.raises(ConfigError, match="'scaler_axis'"):
        process_dataset(other)
    # a file written before the key existed: its stored config has no scaler_axis
    mfcc = cfg_of(sample_set, tmp_path, name="old", scaler="minmax", scaler_axis="position",
                  segments_per_track=2, num_tracks=8)
    process_dataset(mfcc)
    with h5py.File(mfcc.h5_path, "r+") as f:
        stored = json.loads(f.attrs["config"])
        del stored["scaler_axis"]
        f.attrs["config"] = json.dumps(stored)
    assert process_dataset(mfcc)["already_done"]
    now_default = cfg_of(sample_set, tmp_path, name="old", scaler="minmax",
                         segments_per_track=2, num_tracks=8)
    with pytest.raises(ConfigError, match="'scaler_axis'.*--overwrite"):
        process_dataset(now_default)


@pytest.mark.parametrize("mode, sr, shape", [("mfcc", 44100, (64, 96)),
                                             ("spectrum", 22050, (5513,))])
def test_two_workers_give_identical_output(sample_set, tmp_path, mode, sr, shape, cfg_of):
    one = cfg_of(sample_set, tmp_path / "1", mode=mode, sr=sr, segments_per_track=2)
    two = cfg_of(sample_set, tmp_path / "2", mode=mode, sr=sr, segments_per_track=2)
    process_dataset(one, workers=1)
    process_dataset(two, workers=2)
    assert_same(contents(one.h5_path), contents(two.h5_path))    # bit for bit
    assert read_partition(one.h5_path, "partition_cv")["segment_data"].shape[1:] == shape


def test_frames_mode(sample_set, tmp_path, cfg_of):
    cfg = cfg_of(sample_set, tmp_path, mode="frames", sr=16000, segment_samples=16000,
                 scaler="none")
    process_dataset(cfg)
    d = read_partition(cfg.h5_path, "partition_train_0")
    assert d["segment_data"].shape[1:] == (16000,)
    assert np.abs(d["segment_data"]).max() <= 1.0


def test_corrupt_missing_and_empty_audio_are_skipped(sample_copy, tmp_path, cfg_of):
    tracks = load_fma_tracks(sample_copy / "fma_metadata")
    bad = [int(t) for t in tracks.index[:3]]
    paths = [fma_audio_path(sample_copy / "fma_small", t) for t in bad]
    paths[0].write_bytes(b"ID3" + os.urandom(5000))            # corrupt mp3
    paths[1].write_bytes(b"")                                   # empty
    paths[2].unlink()                                           # missing
    cfg = cfg_of(sample_copy, tmp_path)
    report = process_dataset(cfg)
    assert report["complete"] and report["tracks_processed"] == 21
    reasons = {s["track_id"]: s["reason"] for s in report["skipped"]}
    assert set(reasons) == set(bad)
    assert "not a readable audio file" in reasons[bad[0]]
    assert "empty file" in reasons[bad[1]]
    assert "file not found" in reasons[bad[2]]
    with h5py.File(cfg.h5_path, "r") as f:
        kept = np.concatenate([f[p]["track_indices"][:] for p in partition_names(cfg)])
    assert not set(bad) & set(kept.tolist())


def test_tracks_without_genre_are_reported(sample_copy, tmp_path, cfg_of):
    csv = sample_copy / "fma_metadata" / "tracks.csv"
    lines = csv.read_text().splitlines()
    first = lines[3].split(",")
    header = lines[1].split(",")
    first[header.index("genre_top")] = ""
    lines[3] = ",".join(first)
    csv.write_text("\n".join(lines) + "\n")
    report = process_dataset(cfg_of(sample_copy, tmp_path))
    assert {"track_id": int(first[0]), "reason": "no genre_top in tracks.csv"} in report["skipped"]
    assert report["tracks_processed"] == 23


def test_disk_full_then_resume(sample_set, tmp_path, monkeypatch, cfg_of):
    clean = cfg_of(sample_set, tmp_path / "clean", segments_per_track=2)
    process_dataset(clean)
    cfg = cfg_of(sample_set, tmp_path / "full", segments_per_track=2)
    real, calls = atomic_write_bytes, []

    def flaky(path, data):
        calls.append(path)
        if len(calls) == 6:
            raise OSError(errno.ENOSPC, "No space left on device")
        real(path, data)

    monkeypatch.setattr(process, "atomic_write_bytes", flaky)
    with pytest.raises(ToolkitError, match="No space left.*resume"):
        process_dataset(cfg)
    assert not cfg.h5_path.exists()
    assert json.loads(cfg.report_path.read_text())["complete"] is False
    done = len(list((cfg.work_dir / "tracks").glob("*.npz")))
    assert done == 5
    monkeypatch.setattr(process, "atomic_write_bytes", real)
    report = process_dataset(cfg)
    assert report["complete"] and not cfg.work_dir.exists()
    assert_same(contents(clean.h5_path), contents(cfg.h5_path))


def test_sigkill_mid_run_then_resume(sample_set, tmp_path, cfg_of, dataset_config, write_config):
    cfg_path = write_config(tmp_path / "c.json",
                            dataset_config(sample_set, tmp_path / "out", mode="spectrum",
                                           sr=22050, hop_length=2205))
    cfg = load_config(DatasetConfig, cfg_path)
    cmd = [sys.executable, str(ROOT / "data_processor.py"), "process", "-c", str(cfg_path),
           "--workers", "1"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stderr=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline and len(list(cfg.work_dir.glob("tracks/*.npz"))) < 3:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not cfg.h5_path.exists(), "the run finished before it could be killed"
    assert 3 <= len(list(cfg.work_dir.glob("tracks/*.npz"))) < 24
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    fresh = cfg_of(sample_set, tmp_path / "fresh", mode="spectrum", sr=22050, hop_length=2205)
    process_dataset(fresh)
    assert_same(contents(fresh.h5_path), contents(cfg.h5_path))


def test_shards_merge_to_the_unsharded_dataset(sample_set, tmp_path, cfg_of):
    whole = cfg_of(sample_set, tmp_path / "whole", segments_per_track=2)
    process_dataset(whole)
    sharded = cfg_of(sample_set, tmp_path / "sharded", segments_per_track=2)
    process_dataset(sharded, shard="0/3")
    process_dataset(sharded, shard="2/3")
    with pytest.raises(ToolkitError, match=r"\[1\] of 3 have not finished"):
        merge_shards(sharded)
    process_dataset(sharded, shard="1/3")
    report = merge_shards(sharded)
    assert report["tracks_processed"] == 24
    assert_same(contents(whole.h5_path), contents(sharded.h5_path))


def test_plain_folder_without_metadata(tmp_path):
    folder = tmp_path / "songs"
    sr = 44100
    for i, ext in enumerate((".wav", ".flac", ".ogg", ".mp3", ".wav")):
        t = np.arange(3 * sr) / sr
        save_audio(folder / f"song{i}{ext}", 0.3 * np.sin(2 * np.pi * 220 * (i + 1) * t), sr)
    (folder / "broken.mp3").write_bytes(b"not audio at all" * 100)
    cfg = load_config(DatasetConfig, {
        "name": "mine", "fma_audio_dir": str(folder), "fma_meta_dir": None,
        "datasets_dir": str(tmp_path / "out"), "cv_split": 0.2, "test_split": 0.2,
        "num_train_partitions": 1})
    report = process_dataset(cfg)
    assert report["tracks_processed"] == 5
    assert [s["path"].endswith("broken.mp3") for s in report["skipped"]] == [True]
    with h5py.File(cfg.h5_path, "r") as f:
        assert set(f["tracks/label"][:]) == {NO_LABEL}
        assert json.loads(f.attrs["genres"]) == []
        assert f["partition_train_0"]["segment_data"].shape[1:] == (64, 96)


def test_no_readable_track_is_an_error(tmp_path):
    (tmp_path / "songs").mkdir()
    for i in range(4):
        (tmp_path / "songs" / f"{i}.wav").write_bytes(b"junk")
    cfg = load_config(DatasetConfig, {
        "name": "x", "fma_audio_dir": str(tmp_path / "songs"), "fma_meta_dir": None,
        "datasets_dir": str(tmp_path / "out"), "cv_split": 0.25, "test_split": 0.25,
        "num_train_partitions": 1})
    with pytest.raises(ToolkitError, match="no track could be processed"):
        process_dataset(cfg)
    assert not cfg.h5_path.exists()


@pytest.mark.parametrize("patch, key", [
    ({"do_re_sample": "false"}, "do_re_sample"),
    ({"fma_meta_path": "x"}, "fma_meta_path"),
    ({"num_mfcc": "64"}, "num_mfcc"),
    ({"mode": "e2e"}, "mode"),
    ({"cv_split": 1.5}, "cv_split"),
    ({"hop_length": 0}, "hop_length"),
])
def test_cli_bad_config_exits_2_naming_the_key(tmp_path, capsys, patch, key, write_config):
    cfg = {"name": "x", **patch}
    path = write_config(tmp_path / "bad.json", cfg)
    assert data_cli.main(["process", "-c", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and repr(key) in err and "\n" not in err


def test_cli_process_and_info(sample_set, tmp_path, capsys, dataset_config, write_config):
    path = write_config(tmp_path / "c.json", dataset_config(sample_set, tmp_path / "o",
                                                            num_tracks=8, mode="frames",
                                                            sr=16000, scaler="none"))
    assert data_cli.main(["process", "-c", str(path), "--workers", "1"]) == 0
    assert data_cli.main(["info", str(tmp_path / "o" / "ds.h5")]) == 0
    info = json.loads(capsys.readouterr().out.split("\n", 1)[1])
    assert info["mode"] == "frames" and sum(p["tracks"] for p in info["partitions"].values()) == 8
    assert data_cli.main(["process", "-c", str(path), "--shard", "3/2"]) == 2


def test_sample_configs_in_repo_are_valid():
    configs = sorted((ROOT / "datasets/processed/samples").glob("*.json"))
    assert {c.stem for c in configs} >= {"mfcc_ae", "mfcc_classifier", "spectrum", "frames"}
    modes = {load_config(DatasetConfig, c).mode for c in configs}
    assert modes == {"mfcc", "spectrum", "frames"}
    real = sorted((ROOT / "datasets/processed/real").glob("*.json"))    # the real-FMA recipe
    assert {c.stem for c in real} == {"mfcc_classifier_small", "mfcc_classifier_medium",
                                      "mfcc_ae_debian"}
    for c in real:
        cfg = load_config(DatasetConfig, c)
        if c.stem == "mfcc_ae_debian":          # the real-folder recipe: no metadata
            assert cfg.fma_meta_dir is None and cfg.scaler == "standard"
        else:
            assert cfg.split == "fma" and cfg.fma_audio_dir.endswith(f"fma_{cfg.fma_type}")


def test_stratified_partitions_hold_every_genre():
    ids = np.arange(1000, 1080)
    labels = np.repeat(np.arange(8), 10).astype(np.int32)
    cfg = load_config(DatasetConfig, {"name": "p", "seed": 3})
    parts = partition_tracks(ids, cfg, labels)
    label_of = dict(zip(ids.tolist(), labels.tolist()))
    for name in ("partition_cv", "partition_test"):
        assert sorted(label_of[t] for t in parts[name]) == list(range(8))   # one of each
    assert sorted(np.concatenate(list(parts.values()))) == list(ids)
    again = partition_tracks(ids[::-1], cfg, labels[::-1])
    assert all(np.array_equal(parts[k], again[k]) for k in parts)
    plain = load_config(DatasetConfig, {"name": "p", "seed": 3, "stratify": False})
    unstrat = partition_tracks(ids, plain, labels)
    assert not np.array_equal(unstrat["partition_cv"], parts["partition_cv"])


def test_fma_split_uses_the_official_training_validation_test(sample_copy, tmp_path, cfg_of):
    """``split: fma``: the cv and test partitions are FMA's validation and test tracks (one
    artist on one side only, as the FMA paper's baselines were measured), whatever the seed."""
    csv = sample_copy / "fma_metadata" / "tracks.csv"
    ids = load_fma_tracks(sample_copy / "fma_metadata").index.to_numpy(np.int64)
    chosen = {"test": set(ids[[1, 6, 11, 17]].tolist()),
              "validation": set(ids[[3, 9, 20]].tolist())}
    lines = csv.read_text().splitlines(keepends=True)
    for i, line in enumerate(lines):
        head = line.split(",", 1)[0]
        for kind, which in chosen.items():
            if head.isdigit() and int(head) in which:
                assert line.count(",training,") == 1
                lines[i] = line.replace(",training,", f",{kind},")
    csv.write_text("".join(lines))
    official = load_fma_tracks(sample_copy / "fma_metadata")[("set", "split")]
    assert set(official.index[official == "test"]) == chosen["test"]

    labels = np.zeros(len(ids), np.int32)
    cfg = load_config(DatasetConfig, {"name": "p", "seed": 3, "split": "fma"})
    parts = partition_tracks(official.index.to_numpy(), cfg, labels, official.to_numpy())
    assert set(parts["partition_test"]) == chosen["test"]
    assert set(parts["partition_cv"]) == chosen["validation"]
    train = np.concatenate([v for k, v in parts.items() if is_train(k)])
    assert set(train) == set(ids) - chosen["test"] - chosen["validation"]
    other = partition_tracks(official.index.to_numpy()[::-1], load_config(DatasetConfig, {
        "name": "p", "seed": 9, "split": "fma"}), labels, official.to_numpy()[::-1])
    assert set(other["partition_test"]) == chosen["test"]
    # through process: the test partition's tracks are FMA's test tracks
    c = cfg_of(sample_copy, tmp_path, split="fma", num_train_partitions=1)
    process_dataset(c, workers=1)
    with h5py.File(c.h5_path, "r") as f:
        assert {int(t) for t in f["partition_test"]["track_indices"][:]} == chosen["test"]
        assert {int(t) for t in f["partition_cv"]["track_indices"][:]} == chosen["validation"]
    with pytest.raises(ConfigError, match="'split'"):
        load_config(DatasetConfig, {"name": "p", "split": "fma", "fma_meta_dir": None})
