"""What the mixer tests share: a 6 s synthetic song with its true stems."""

from __future__ import annotations

import pytest
import soundfile as sf

from deepaudio.data.samples import render_track

SR = 44100


@pytest.fixture(scope="module")
def song(tmp_path_factory):
    """6 s of the synthetic Rock genre: the true stems and the mix as a stereo WAV."""
    stems, _ = render_track("Rock", 3, seed=1, seconds=6.0)
    path = tmp_path_factory.mktemp("song") / "song.wav"
    mix = sum(stems.values())
    sf.write(path, mix.T, SR, subtype="FLOAT")
    return path, stems, mix
