"""Stem folders: the anti-clipping scale, reading whole or block by block, foreign folders,
and the decoded-stem cache bounded in bytes."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from deepaudio.mixer.stems import (
    STEMS,
    SeparationError,
    StemCache,
    StemWriter,
    load_stems,
    open_stems,
)

SR = 44100


def _folder(path, seconds=2.0, peak=0.5):
    rng = np.random.default_rng(0)
    block = (rng.standard_normal((4, 2, int(SR * seconds))) * peak / 4).astype(np.float32)
    block[0, 0, 100] = 1.5                              # clips in 24-bit FLAC: scaled
    writer = StemWriter(path, SR)
    writer.write(block)
    return block, writer.close({"backend": "test"})


def test_blocks_undo_the_scale_and_add_up_to_the_whole(tmp_path):
    block, manifest = _folder(tmp_path / "st")
    assert manifest["scale"] < 1
    folder = open_stems(tmp_path / "st")
    assert sorted(folder.names) == sorted(STEMS) and folder.frames == block.shape[-1]
    whole = folder.stack()
    order = [STEMS.index(n) for n in folder.names]
    np.testing.assert_allclose(whole, block[order], atol=2 ** -21)
    parts = list(folder.blocks(frames=10007))
    assert [s for s, _ in parts] == list(range(0, folder.frames, 10007))
    np.testing.assert_array_equal(np.concatenate([b for _, b in parts], axis=-1), whole)
    stems, sr = load_stems(tmp_path / "st", sources=["vocals", "drums"])
    assert list(stems) == ["vocals", "drums"] and sr == SR
    np.testing.assert_array_equal(stems["vocals"], whole[folder.names.index("vocals")])


def test_foreign_folders_mono_and_shorter_stems(tmp_path):
    d = tmp_path / "demucs"
    d.mkdir()
    sf.write(d / "vocals.wav", np.full(1000, 0.25, np.float32), SR, subtype="FLOAT")
    sf.write(d / "drums.wav", np.full((600, 2), 0.5, np.float32), SR, subtype="FLOAT")
    folder = open_stems(d)
    assert sorted(folder.names) == ["drums", "vocals"] and folder.frames == 1000
    stack = dict(zip(folder.names, folder.stack()))
    assert np.all(stack["vocals"] == 0.25)                       # mono copied to both sides
    assert np.all(stack["drums"][:, :600] == 0.5) and np.all(stack["drums"][:, 600:] == 0)
    sf.write(d / "bass.wav", np.zeros(100, np.float32), 22050)
    with pytest.raises(SeparationError, match="different sample rates"):
        open_stems(d)
    with pytest.raises(SeparationError, match="no stem file for other"):
        open_stems(d, sources=["other"])


def test_the_cache_keeps_what_fits_and_streams_the_rest(tmp_path):
    _folder(tmp_path / "short", seconds=1.0)
    _folder(tmp_path / "long", seconds=3.0)
    short, long = open_stems(tmp_path / "short"), open_stems(tmp_path / "long")
    cache = StemCache(2 * short.nbytes)
    first = cache.source(short)
    assert isinstance(first, tuple) and cache.source(short) is first      # decoded once
    assert cache.source(long) is long                                     # too long to keep
    assert cache.memory.used == short.nbytes
