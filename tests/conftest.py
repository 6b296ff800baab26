"""Shared fixtures: a tiny FMA-format sample set synthesized once per test process."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = Path(__file__).parent / "data"

from sample_music import write_sample_set  # noqa: E402


@pytest.fixture(scope="session")
def sample_set(tmp_path_factory) -> Path:
    """3 tracks per genre, 6 s each, with true stems: 24 tracks, seed 0."""
    out = tmp_path_factory.mktemp("fma")
    write_sample_set(out, tracks_per_genre=3, seconds=6.0, stems=True, seed=0, workers=1)
    return out


@pytest.fixture
def sample_copy(sample_set, tmp_path) -> Path:
    """A private copy of the sample set, for tests that damage files."""
    dst = tmp_path / "fma"
    shutil.copytree(sample_set, dst, ignore=shutil.ignore_patterns("fma_stems"))
    return dst


def dataset_config(fma: Path, out: Path, **overrides) -> dict:
    cfg = {"name": "ds", "mode": "mfcc", "fma_audio_dir": str(fma / "fma_small"),
           "fma_meta_dir": str(fma / "fma_metadata"), "fma_type": "small",
           "datasets_dir": str(out), "seed": 0, "cv_split": 0.125, "test_split": 0.125,
           "num_train_partitions": 2, "scaler": "standard"}
    cfg.update(overrides)
    return cfg


def write_config(path: Path, cfg: dict) -> Path:
    path.write_text(json.dumps(cfg))
    return path
