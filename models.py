"""``models.py`` of the design card: every network of the toolkit, from
:mod:`deepaudio.networks` (import from there in new code).

- FMA models: :class:`ConvAutoencoder`, :class:`GenreClassifier`, :class:`DenseAutoencoder`,
  built by name with :func:`build_model`;
- the WaveNet autoencoder of the neural crossfade: :class:`WaveNetAutoencoder`;
- the mixer's per-user suggestion network: :class:`PreferenceNet`.
"""

from deepaudio.networks.cnn import (
    ClassifierConfig,
    ConvAEConfig,
    ConvAutoencoder,
    DenseAEConfig,
    DenseAutoencoder,
    GenreClassifier,
)
from deepaudio.networks.preference import PreferenceNet
from deepaudio.networks.registry import MODELS, build_model, count_parameters
from deepaudio.networks.wavenet import WaveNetAutoencoder, WaveNetConfig

__all__ = ["MODELS", "ClassifierConfig", "ConvAEConfig", "ConvAutoencoder", "DenseAEConfig",
           "DenseAutoencoder", "GenreClassifier", "PreferenceNet", "WaveNetAutoencoder",
           "WaveNetConfig", "build_model", "count_parameters"]
