"""The model inputs: MFCC segments against librosa and the published shape, overlapping
segments, log spectra, raw frames."""


import librosa
import numpy as np
import pytest

from deepaudio.core.config import load_config
from deepaudio.core.features import (
    mfcc_segments,
    raw_frame_segments,
    spectrum_segments,
)
from deepaudio.data.config import DatasetConfig, segment_seconds


def test_mfcc_segments_match_librosa_and_published_shape():
    y = np.random.default_rng(0).standard_normal(30 * 44100).astype(np.float32) * 0.1
    segs = mfcc_segments(y, 44100)
    assert segs.shape == (31, 64, 96)      # 31 segments of 0.96 s per 30 s clip
    ref = librosa.feature.mfcc(y=y, sr=44100, n_mfcc=64, n_fft=1102, hop_length=441)
    np.testing.assert_allclose(segs[3], ref[:, 3 * 96:4 * 96], rtol=1e-5, atol=1e-4)


def test_overlapping_mfcc_segments():
    y = np.random.default_rng(1).standard_normal(5 * 44100).astype(np.float32) * 0.1
    whole = mfcc_segments(y, 44100)
    half = mfcc_segments(y, 44100, segment_hop=48)
    assert whole.shape == (5, 64, 96) and half.shape == (2 * 5 - 1, 64, 96)
    np.testing.assert_array_equal(half[::2], whole)          # every other one is the same
    np.testing.assert_array_equal(half[1, :, :48], whole[0, :, 48:])
    cfg = load_config(DatasetConfig, {"name": "x", "segment_hop": 48})
    assert segment_seconds(cfg) == pytest.approx((0.96, 0.48))


def test_spectrum_segments_peak_at_the_tone():
    sr = 22050
    y = np.sin(2 * np.pi * 1000 * np.arange(sr * 2) / sr).astype(np.float32)
    spec = spectrum_segments(y, window_size=11025, hop_length=5512)
    assert spec.shape == (1 + (2 * sr - 11025) // 5512, 5513)
    assert np.all(np.argmax(spec, axis=1) == 500)   # 1000 Hz / (22050 / 11025) Hz per bin
    assert spectrum_segments(y[:100]).shape == (0, 5513)


def test_raw_frames():
    y = np.arange(50, dtype=np.float32)
    f = raw_frame_segments(y, segment_samples=16)
    assert f.shape == (3, 16) and f[1, 0] == 16


def test_streamed_features_equal_the_whole_signal():
    """MFCCs and spectra computed from blocks of any size are those of the whole signal."""
    from deepaudio.core.features import frame_stream, mfcc_stream, segment_view
    rng = np.random.default_rng(2)
    y = (rng.standard_normal(7 * 22050) * np.linspace(0, 0.3, 7 * 22050)).astype(np.float32)
    cuts = np.sort(rng.choice(len(y), 12, replace=False))
    blocks = np.split(y, cuts)
    whole = mfcc_stream([y], 22050, hop_length=441, n_fft=1102)
    ref = librosa.feature.mfcc(y=y, sr=22050, n_mfcc=64, n_fft=1102, hop_length=441)
    np.testing.assert_allclose(whole, ref, rtol=1e-4, atol=2e-3)
    np.testing.assert_allclose(mfcc_stream(blocks, 22050), whole, rtol=1e-5, atol=1e-4)
    frames = np.concatenate(list(frame_stream(blocks, 1000, 300, batch=7)))
    np.testing.assert_array_equal(frames, librosa.util.frame(y, frame_length=1000,
                                                             hop_length=300, axis=0))
    segs = segment_view(whole, 96, 10)
    np.testing.assert_array_equal(segs[3], whole[:, 30:126])
    np.testing.assert_array_equal(mfcc_segments(y, 22050, segment_hop=10), segs)
