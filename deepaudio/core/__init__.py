"""The shared core every other part builds on; it imports nothing else of the project.

- ``errors``: :class:`ToolkitError`, the one error family, and the CLI wrapper (exit 2);
- ``config``: the one config validator (dataclasses, keys named in errors);
- ``files``, ``figures``: atomic writes, PNG figures;
- ``audio``: the one audio loader and saver, block-wise reading and writing;
- ``gain``, ``loudness``: dB to gain, BS.1770 loudness, true peak, the limiter;
- ``features``: MFCC segments, spectra, raw frames and stored scalers (model inputs);
- ``datasets``: reading the processed HDF5 datasets.
"""
