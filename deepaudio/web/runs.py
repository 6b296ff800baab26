"""Trained runs the server offers: FMA encoders and classifiers for the visualizer, WaveNet
autoencoders for the neural crossfade. A run's id is its folder relative to the models
folder. Runs a user trained on their own songs live under ``users/<user key>/`` and are
listed to that user only."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from flask import Flask, has_request_context

from deepaudio.web.http import ApiError, user_id

CLASSIFIER_MODELS = {"cnn_classifier"}
USER_RUNS = "users"


def user_key(uid: str) -> str:
    """The folder name of a user's own runs (not the session id itself)."""
    return hashlib.sha256(f"runs:{uid}".encode()).hexdigest()[:16]


def list_runs(models_dir: str | os.PathLike, user: str | None = None) -> list[dict]:
    """Run folders under ``models_dir`` that have weights: id (relative path), kind, model.
    Runs under ``users/`` are listed only to their owner ``user``."""
    root = Path(models_dir)
    out: list[dict] = []
    if not root.is_dir():
        return out
    mine = root / USER_RUNS / user_key(user) if user else None
    for run in _run_folders(root):
        cfg_path = run / "config.json"
        if run.is_relative_to(root / USER_RUNS) and (mine is None or not run.is_relative_to(
                mine)):
            continue
        if not (run / "dataset.json").is_file() or not any(
                (run / f).is_file() for f in ("best.pt", "last.pt")):
            continue
        try:
            cfg = json.loads(cfg_path.read_text())
            mode = json.loads((run / "dataset.json").read_text()).get("mode")
        except (OSError, json.JSONDecodeError):
            continue
        if mode not in ("mfcc", "spectrum"):
            continue
        kind = "classifier" if cfg.get("model") in CLASSIFIER_MODELS else "autoencoder"
        out.append({"id": run.relative_to(root).as_posix(), "path": run, "kind": kind,
                    "model": cfg.get("model"), "name": cfg.get("name"), "mode": mode})
    return out


def _run_folders(root: Path) -> list[Path]:
    """Folders below ``root`` holding a config.json, sorted. A training job creates and removes
    its work folder meanwhile: a folder that vanishes during the walk is skipped (os.walk
    ignores it) instead of failing the listing, as ``rglob`` did."""
    found = []
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        if "config.json" in files:
            found.append(Path(folder))
    return sorted(found, key=lambda run: run / "config.json")    # rglob's order, as before


def run_dir(app: Flask, run_id: str) -> Path:
    root = Path(app.config["MODELS_DIR"])
    for r in list_runs(root, user_id() if has_request_context() else None):
        if r["id"] == run_id:
            return r["path"]
    raise ApiError(404, f"unknown run {run_id!r} (GET /api/models lists them)")


def default_run(app: Flask) -> str:
    runs = list_runs(app.config["MODELS_DIR"])      # the shared runs, not a user's own
    if not runs:
        raise ApiError(404, "no trained runs yet: 'make playground' trains the sample models")
    auto = [r for r in runs if r["kind"] == "autoencoder"]
    return (auto or runs)[0]["id"]


def wavenet_runs(models_dir: str | Path) -> list[dict]:
    """Run folders under ``models_dir`` that ``wavenet.load_wavenet`` can load: a
    ``config.json`` with a ``model`` section and ``last.pt`` next to it."""
    root = Path(models_dir)
    runs: list[dict] = []
    if not root.is_dir():
        return runs
    for cfg_path in sorted(root.rglob("config.json")):
        run = cfg_path.parent
        if not (run / "last.pt").is_file():
            continue
        try:
            settings = json.loads(cfg_path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if not isinstance(settings, dict) or not isinstance(settings.get("model"), dict):
            continue
        origin = ("NSynth checkpoint" if settings.get("imported_from") else
                  "fine-tuned from NSynth" if settings.get("fine_tuned_from") else "trained here")
        runs.append({"id": run.relative_to(root).as_posix(), "path": run,
                     "preset": settings.get("preset"), "sr": settings.get("sr"),
                     "origin": origin})
    return runs
