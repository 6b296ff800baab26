"""Encoding songs with trained runs: hops, array input, the spectrum model, stored partitions."""

import json

import numpy as np
import pytest

from deepaudio.core.audio import load_audio
from deepaudio.core.datasets import read_partition
from deepaudio.core.errors import ToolkitError
from deepaudio.mapping.encode import encode_partition, encode_track


def test_encode_track_hop_and_array_input(ae_run, song):
    a = encode_track(song, ae_run)
    b = encode_track(song, ae_run, hop_seconds=0.48)
    assert a.fps == pytest.approx(1 / 0.96) and b.fps == pytest.approx(1 / 0.48)
    assert len(b.frames) == 2 * len(a.frames) - 1
    np.testing.assert_allclose(b.frames[::2], a.frames, atol=1e-5)  # same segments, batched
    assert a.start == pytest.approx(0.48)
    audio, sr = load_audio(song, mono=False)
    c = encode_track((audio, sr), ae_run)
    np.testing.assert_allclose(c.frames, a.frames, atol=1e-5)
    with pytest.raises(ToolkitError, match="shorter than one"):
        encode_track((audio[:, :1000], sr), ae_run)


def test_spectrum_model_timeline(spectrum_run, song):
    feats = encode_track(song, spectrum_run, hop_seconds=1 / 60)
    assert feats.fps == pytest.approx(22050 / 368) and feats.frames.shape[1] == 10
    assert len(feats.frames) > 300


def test_partition_encodings_match_stored_segments(ae_run):
    info = json.loads((ae_run / "dataset.json").read_text())
    segs = read_partition(info["dataset_path"], "partition_cv")["segment_data"]
    enc = encode_partition(ae_run, "partition_cv")
    assert enc.shape == (len(segs), 10)


def test_features_memory_does_not_grow_with_the_song(ae_run, classifier_run, long_song,
                                                     peak_rss, tmp_path):
    """A 10-minute song's features and genres take hardly more memory than a 1-minute
    song's (its mel spectrogram and MFCCs, 2 to 3 MB a minute): the audio is decoded,
    resampled and featurised block by block. Decoded whole, the 10-minute song alone is
    212 MB of float stereo; the features request used to peak 450 MB above the short song's."""
    short = long_song(tmp_path / "short.flac", 1)
    long = long_song(tmp_path / "long.flac", 10)
    setup = ("from deepaudio.mapping.timeline import mapped_timeline\n"
             "from deepaudio.mapping.encode import genre_probabilities\n"
             f"def go(p): mapped_timeline(p, {str(ae_run)!r}, fps=30, hop_seconds=0.1); "
             f"genre_probabilities(p, {str(classifier_run)!r})")
    r = peak_rss(setup, warm=f"go({str(short)!r})", short=f"go({str(short)!r})",
                 long=f"go({str(long)!r})")
    assert r["long"] - r["short"] < 100, r
