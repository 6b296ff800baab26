from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from deepaudio.core.errors import ToolkitError
from deepaudio.data.fma import fma_audio_path, load_fma_tracks, select_fma_subset

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"

FIXTURE = FIXTURES / "fma_tracks_fixture.csv"


@pytest.fixture
def meta_dir(tmp_path):
    (tmp_path / "tracks.csv").write_bytes(FIXTURE.read_bytes())
    return tmp_path


def test_parses_the_real_two_row_header(meta_dir):
    t = load_fma_tracks(meta_dir)
    assert isinstance(t.columns, pd.MultiIndex)
    assert t.index.name == "track_id" and t.index.dtype == np.int64
    assert list(t.index) == [2, 3, 5, 10, 20, 26, 134, 140, 1066, 155320]
    assert t.loc[2, ("track", "genre_top")] == "Hip-Hop"
    assert t.loc[2, ("artist", "name")] == "AWOL"
    assert t.loc[140, ("track", "duration")] == 219
    # quoted fields with commas and doubled quotes survive
    assert t.loc[20, ("track", "title")] == "Spiritual Level, Part 1"
    assert t.loc[1066, ("track", "title")] == 'Ladder, "Crossing"'
    assert pd.isna(t.loc[20, ("track", "genre_top")])


@pytest.mark.parametrize("subset, expected", [
    ("small", {2, 5, 10, 134, 140}),
    ("medium", {2, 3, 5, 10, 26, 134, 140}),                 # small ⊂ medium
    ("large", {2, 3, 5, 10, 20, 26, 134, 140, 1066, 155320}),  # medium ⊂ large
])
def test_subsets_nest(meta_dir, subset, expected):
    assert set(select_fma_subset(load_fma_tracks(meta_dir), subset).index) == expected


def test_missing_columns_are_named(tmp_path):
    (tmp_path / "tracks.csv").write_text(",track,track\n,title,duration\ntrack_id,,\n2,a,3\n")
    with pytest.raises(ToolkitError, match=r"\('set', 'subset'\)"):
        load_fma_tracks(tmp_path)


def test_missing_metadata_file(tmp_path):
    with pytest.raises(ToolkitError, match="tracks.csv"):
        load_fma_tracks(tmp_path)


def test_audio_path_layout():
    assert fma_audio_path("fma_small", 2).as_posix() == "fma_small/000/000002.mp3"
    assert fma_audio_path("fma_large", 155320).as_posix() == "fma_large/155/155320.mp3"
