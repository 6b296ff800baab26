"""The one loader on what a music library holds beyond libsndfile's formats: AAC and ALAC in
M4A, Opus in WebM, AAC in Matroska, WMA, raw AAC, the audio of MP4/MOV videos; files made
here with PyAV's encoders. Decoded content matches the source within codec tolerance, offsets
seek to the exact sample, the duration cap holds before decoding, and broken files, or a video
without sound, give one clear error."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soxr

from deepaudio.core.audio import (
    AudioError,
    audio_info,
    find_audio_files,
    load_audio,
    read_blocks,
    save_audio,
    scan_audio,
    stream_audio,
)

SR = 44100
# name, codec, container, rate, aligned (the container records the encoder's delay), min SNR
CASES = [
    ("aac.m4a", "aac", "ipod", SR, True, 25),
    ("alac.m4a", "alac", "ipod", SR, True, 90),
    ("opus.webm", "libopus", "webm", 48000, True, 30),
    ("aac.mkv", "aac", "matroska", SR, True, 25),
    ("video.mp4", "aac", "mp4", SR, True, 25),
    ("video.mov", "aac", "mov", SR, True, 25),
    ("wmav2.wma", "wmav2", "asf", SR, False, 12),
    ("adts.aac", "aac", "adts", SR, False, 25),
]


def _source(rate: int, seconds: float = 3.0) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return np.stack([0.3 * np.sin(2 * np.pi * 440 * t) + 0.1 * np.sin(2 * np.pi * 1234 * t),
                     0.3 * np.sin(2 * np.pi * 660 * t) * (1 + 0.5 * np.sin(2 * np.pi * t))]
                    ).astype(np.float32)


def _snr_at_best_lag(y: np.ndarray, src: np.ndarray, max_lag: int = 2600) -> tuple[int, float]:
    best = (0, -np.inf)
    n = min(y.shape[1], src.shape[1]) - max_lag
    for lag in range(0, max_lag + 1, 1):
        err = y[:, lag:lag + n] - src[:, :n]
        snr = 10 * np.log10((src[:, :n] ** 2).mean() / max((err ** 2).mean(), 1e-20))
        if snr > best[1]:
            best = (lag, snr)
    return best


@pytest.fixture(scope="module")
def library(tmp_path_factory, pyav_encode):
    folder = tmp_path_factory.mktemp("library")
    files = {}
    for name, codec, container, rate, *_ in CASES:
        files[name] = pyav_encode(folder / name, _source(rate), rate, codec,
                                  container=container, video=name.startswith("video"))
    return folder, files


@pytest.mark.parametrize("name, codec, container, rate, aligned, min_snr", CASES)
def test_decodes_within_codec_tolerance(library, name, codec, container, rate, aligned,
                                        min_snr):
    path = library[1][name]
    info = audio_info(path)
    assert info.backend == "ffmpeg" and info.samplerate == rate and info.channels == 2
    if container == "adts":           # a raw stream: no length in any header
        assert info.frames == 0
    else:
        assert abs(info.frames - 3 * rate) <= 4096            # the container's length
    y, sr = load_audio(path, mono=False)
    src = _source(rate)
    assert sr == rate and y.dtype == np.float32 and y.shape[0] == 2
    assert abs(y.shape[1] - src.shape[1]) <= 2048             # within a codec frame or two
    lag, snr = _snr_at_best_lag(y, src)
    assert snr >= min_snr, (lag, snr)
    if aligned:                       # the container's priming/delay info is applied
        assert lag == 0, (lag, snr)


@pytest.mark.parametrize("name", [c[0] for c in CASES])
def test_offsets_land_on_the_exact_sample(library, name):
    path = library[1][name]
    y, sr = load_audio(path, mono=False)
    part, _ = load_audio(path, mono=False, offset=1.25, duration=0.5)
    start = int(round(1.25 * sr))
    assert part.shape == (2, int(round(0.5 * sr)))
    np.testing.assert_allclose(part, y[:, start:start + part.shape[1]], atol=1e-4)
    # the usual options: mono, resampled; block readers give the same samples
    mono, r = load_audio(path, sr=22050)
    assert r == 22050 and mono.shape[0] == 1
    assert abs(mono.shape[1] - y.shape[1] * 22050 / sr) <= 2
    blocks = np.concatenate(list(read_blocks(path, frames=10000)), axis=1)
    np.testing.assert_array_equal(blocks, y)
    streamed = np.concatenate(list(stream_audio(path, 22050, channels=1)), axis=1)
    whole = soxr.resample(y.mean(0), sr, 22050, quality="HQ")
    assert streamed.shape[1] == pytest.approx(whole.shape[0], abs=2)
    n = min(streamed.shape[1], whole.shape[0]) - 200
    assert np.abs(streamed[0, 200:n] - whole[200:n]).max() < 1e-3


def test_long_parts_seek_instead_of_decoding_from_the_start(tmp_path, pyav_encode):
    """An M4A counts samples in its timestamps: a part near the end costs about the part."""
    import time
    path = pyav_encode(tmp_path / "long.m4a", _source(SR, 60.0), SR, "aac", container="ipod")
    t0 = time.perf_counter()
    load_audio(path, mono=False)
    whole = time.perf_counter() - t0
    t0 = time.perf_counter()
    end, _ = load_audio(path, mono=False, offset=58.0, duration=1.0)
    part = time.perf_counter() - t0
    assert end.shape[1] == SR and part < whole / 4, (part, whole)


def test_duration_cap_before_decoding_and_broken_files(library, tmp_path, pyav_encode):
    path = library[1]["aac.m4a"]
    with pytest.raises(AudioError, match=r"3\.0 s|0\.1 min long; the limit is"):
        scan_audio(path, max_seconds=1.0)
    assert scan_audio(path, max_seconds=10).seconds == pytest.approx(3.0, abs=0.05)
    # no length in a header (raw AAC): the cap stops the decoding itself
    with pytest.raises(AudioError, match="decodes to more than .* past the limit"):
        scan_audio(library[1]["adts.aac"], max_seconds=1.0)
    data = path.read_bytes()
    cut = tmp_path / "cut.m4a"
    cut.write_bytes(data[:len(data) // 2])                    # an interrupted download
    with pytest.raises(AudioError, match="cut.m4a"):
        scan_audio(cut)
    junk = tmp_path / "junk.m4a"
    junk.write_bytes(data[:32] + bytes(range(256)) * 40)      # an ftyp box, then garbage
    with pytest.raises(AudioError, match="junk.m4a: not a readable audio file"):
        load_audio(junk)
    silent = pyav_encode(tmp_path / "silent.mp4", _source(SR), SR, "aac", video=True,
                         audio_track=False)
    with pytest.raises(AudioError, match="no audio track.*video without sound"):
        load_audio(silent)
    names = {p.name for p in find_audio_files(library[0])}
    assert names == {c[0] for c in CASES}


@pytest.mark.parametrize("channels,rate", [(2, SR), (1, SR), (2, 22050)])
def test_mp3_in_parallel_chunks_equals_one_encoder_run_and_is_gapless(tmp_path, monkeypatch,
                                                                      channels, rate):
    """The MP3 writer encodes frame-aligned chunks on every core; with 20 chunks of 16 frames
    (and a length that is no multiple of a frame), the file decodes to the input's length and
    to exactly the samples one LAME run over the whole input gives: the seams cannot be
    heard because they are not there. At 22.05 kHz (MPEG-2) a frame is 576 samples, not
    1152."""
    from deepaudio.core import _pyav
    monkeypatch.setattr(_pyav, "MP3_CHUNK_FRAMES", 16)
    src = _source(rate, seconds=8.0)[:channels]
    src = src[:, :src.shape[1] - 333]
    blocks = (src[:, i:i + 10_000] for i in range(0, src.shape[1], 10_000))
    _pyav.write_mp3(tmp_path / "chunked.mp3", blocks, rate, channels, workers=2)
    y, sr = load_audio(tmp_path / "chunked.mp3", mono=False)
    assert sr == rate and y.shape == src.shape
    # one LAME run over the whole input, its frames decoded, less LAME's and the decoder's delay
    import av

    from deepaudio.core import _lame
    dec = av.CodecContext.create("mp3float", "r")
    frames = [f.to_ndarray() for p in _pyav._mp3_run(src, rate, 0, 5, 0, None)
              for f in dec.decode(av.Packet(p))] + [f.to_ndarray() for f in dec.decode(None)]
    delay = _lame.ENCODER_DELAY + _lame.DECODER_DELAY
    whole = np.concatenate(frames, axis=1)[:, delay:delay + src.shape[1]]
    np.testing.assert_allclose(y, whole, atol=1e-5)       # two decoders: mpg123 vs FFmpeg
    assert _snr_at_best_lag(y, src, max_lag=0)[1] > 15
    # the mixer's exports and save_audio go through it (-V 0 at compression level 0)
    path = save_audio(tmp_path / "saved.mp3", src, rate, compression_level=0.0)
    assert load_audio(path, mono=False)[0].shape == src.shape


def test_lame_comes_from_lameenc_and_any_other_lame_gives_the_same_frames(monkeypatch):
    """The writer calls the optimised LAME in lameenc's wheel; where that one is missing or
    exports nothing (Windows), the LAME in PyAV's wheel encodes the same frames (the same
    audio; only the filler text in unused bits differs); with no LAME at all, MP3 export is
    one clear error."""
    import av

    from deepaudio.core import _lame, _pyav

    def decoded(data: bytes) -> np.ndarray:
        dec = av.CodecContext.create("mp3float", "r")
        return np.concatenate([f.to_ndarray() for p in _pyav.mp3_frames(data)
                               for f in dec.decode(av.Packet(p))], axis=1)

    src = _source(SR, seconds=3.0)
    assert _lame.library()[1].startswith("lameenc")
    fast = decoded(_lame.encode(src, SR, vbr_quality=2, algorithm=5))
    candidates = _lame._candidates()
    try:
        monkeypatch.setattr(_lame, "_candidates", lambda: [
            c for c in candidates if not Path(str(c)).name.startswith("lameenc")])
        _lame.library.cache_clear()
        assert "mp3lame" in _lame.library()[1]
        np.testing.assert_array_equal(
            decoded(_lame.encode(src, SR, vbr_quality=2, algorithm=5)), fast)
        monkeypatch.setattr(_lame, "_candidates", lambda: [])
        _lame.library.cache_clear()
        with pytest.raises(_lame.LameError, match="pip install lameenc"):
            _lame.encode(src, SR, vbr_quality=2, algorithm=5)
    finally:
        _lame.library.cache_clear()
    with pytest.raises(_lame.LameError, match="cannot hold 44000 Hz"):
        _lame.encode(src, 44000, vbr_quality=2, algorithm=5)
