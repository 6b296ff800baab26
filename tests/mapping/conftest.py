"""What the mapping tests share: one sample song, decoded."""


import pytest

from deepaudio.data.fma import fma_audio_path, load_fma_tracks


@pytest.fixture(scope="module")
def song(sample_set):
    tid = int(load_fma_tracks(sample_set / "fma_metadata").index[0])
    return fma_audio_path(sample_set / "fma_small", tid)
