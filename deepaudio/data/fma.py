"""FMA's metadata: the real ``fma_metadata/tracks.csv`` (two-row column header) and the
``fma_<subset>/000/000002.mp3`` audio layout, which the sample set reproduces exactly.

FMA's ``('set', 'subset')`` column holds the *smallest* subset a track belongs to, so
"medium" selects small + medium and "large" selects everything (deep-audioviz-experiments
selected the 17,000 medium-only tracks).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from deepaudio.core.config import ConfigError
from deepaudio.core.errors import ToolkitError

FMA_SUBSETS = ("small", "medium", "large")


def load_fma_tracks(meta_dir: str | os.PathLike) -> pd.DataFrame:
    """Read ``fma_metadata/tracks.csv`` with its two-row column header, indexed by track id."""
    path = Path(meta_dir) / "tracks.csv"
    if not path.is_file():
        raise ToolkitError(f"{path}: FMA metadata not found (expected fma_metadata/tracks.csv)")
    try:
        tracks = pd.read_csv(path, index_col=0, header=[0, 1], low_memory=False)
    except (ValueError, pd.errors.ParserError) as e:
        raise ToolkitError(f"{path}: not an FMA tracks.csv ({e})") from None
    for col in (("set", "subset"), ("track", "genre_top")):
        if col not in tracks.columns:
            raise ToolkitError(f"{path}: column {col} is missing; FMA's tracks.csv has a "
                               "two-row header such as 'set,subset' / 'track,genre_top'")
    tracks.index = tracks.index.astype(np.int64)
    return tracks


def select_fma_subset(tracks: pd.DataFrame, subset: str) -> pd.DataFrame:
    """Tracks of an FMA subset. Subsets nest (small ⊂ medium ⊂ large) and the column stores
    the smallest one a track is in, so a subset is every track whose value is at most it."""
    if subset not in FMA_SUBSETS:
        raise ConfigError(f"fma_type must be one of {FMA_SUBSETS}, got {subset!r}")
    rank = tracks[("set", "subset")].map({s: i for i, s in enumerate(FMA_SUBSETS)})
    return tracks[rank.notna() & (rank <= FMA_SUBSETS.index(subset))]


def fma_audio_path(audio_dir: str | os.PathLike, track_id: int) -> Path:
    tid = f"{int(track_id):06d}"
    return Path(audio_dir) / tid[:3] / f"{tid}.mp3"
