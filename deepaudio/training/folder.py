"""The real-folder recipe's model: an autoencoder that learns from a plain folder of songs.

The settings that work on about 100 real songs (docs/training.md, "Training on your own folder
of songs"): a dense autoencoder 6144-512-256-10 (ReLU, tanh code), Adam 1e-3, early stopping
on the cv songs, on the segments of :data:`deepaudio.data.config.FOLDER_DATASET`.
``models/real/dense_ae_folder.json`` is these settings (a test holds them equal); the
playground's training jobs use them too.
"""

from __future__ import annotations

import os
import typing as tp
from pathlib import Path

from deepaudio.core.config import load_config
from deepaudio.training.fma import TrainConfig

FOLDER_MODEL = {"model": "dense_autoencoder", "num_epochs": 40, "early_stopping_patience": 5,
                "batch_size": 64, "seed": 0, "optimizer": "adam", "lr": 0.001,
                "model_params": {"widths": [512, 256, 10], "activation": "relu",
                                 "code_activation": "tanh"}}


def folder_train_config(dataset_path: str | os.PathLike, models_dir: str | os.PathLike,
                        name: str, **changes: tp.Any) -> TrainConfig:
    """The recipe's training config for the dataset at ``dataset_path``; the run goes to
    ``models_dir/name``."""
    return load_config(TrainConfig, {**FOLDER_MODEL, "name": name,
                                     "dataset_path": str(Path(dataset_path)),
                                     "models_dir": str(models_dir), **changes})
