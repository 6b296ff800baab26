"""The data pipeline: FMA metadata and layout, the FMA-format sample set, and processed
datasets (segmented features in one HDF5 file, resumable, sharded).

``python data_processor.py`` is its command line (:mod:`deepaudio.cli.data`).
"""
