"""The models by name, as configs and checkpoints store them, and the parameter count."""

from __future__ import annotations

from torch import nn

from deepaudio.core.config import ConfigError, load_config
from deepaudio.networks.beats import BeatTCN, BeatTCNConfig
from deepaudio.networks.cnn import (
    ClassifierConfig,
    ConvAEConfig,
    ConvAutoencoder,
    DenseAEConfig,
    DenseAutoencoder,
    GenreClassifier,
)

MODELS: dict[str, tuple[type, type]] = {
    "conv_autoencoder": (ConvAEConfig, ConvAutoencoder),
    "cnn_classifier": (ClassifierConfig, GenreClassifier),
    "dense_autoencoder": (DenseAEConfig, DenseAutoencoder),
    "beat_tcn": (BeatTCNConfig, BeatTCN),
}


def build_model(name: str, params: dict) -> nn.Module:
    """A model from its registry name and ``model_params`` (validated, key errors named)."""
    if name not in MODELS:
        raise ConfigError(f"key 'model' must be one of {', '.join(MODELS)}, got {name!r}")
    cfg_cls, model_cls = MODELS[name]
    return model_cls(load_config(cfg_cls, params, where="model_params"))


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
