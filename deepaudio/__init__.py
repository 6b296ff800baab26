"""Deep audio toolkit: learned-feature visualizations, stem separation and personalised
remixing, and content-aware crossfades between songs.

Layers (checked by the import contracts in ``pyproject.toml``; see ``docs/architecture.md``):

- :mod:`deepaudio.cli`: the command lines behind the root scripts and console scripts;
- :mod:`deepaudio.web`: the playground server (Flask), the only layer that uses the pipelines
  together;
- the pipelines, which never import each other: :mod:`deepaudio.data`,
  :mod:`deepaudio.training`, :mod:`deepaudio.mapping`, :mod:`deepaudio.mixer`,
  :mod:`deepaudio.crossfade`;
- :mod:`deepaudio.networks`: every network, checkpoints and trained runs;
- :mod:`deepaudio.core`: errors, config, files, audio I/O, dB, loudness, features, beats.
"""

__version__ = "0.2.0"
