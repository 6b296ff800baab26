import numpy as np
import pytest

from deepaudio.core.audio import (
    AudioError,
    audio_info,
    find_audio_files,
    load_audio,
    resample,
    save_audio,
)


def tone(sr=44100, seconds=1.0, freq=440.0, channels=2):
    t = np.arange(int(sr * seconds)) / sr
    x = 0.5 * np.sin(2 * np.pi * freq * t).astype(np.float32)
    return np.stack([x, 0.5 * x])[:channels]


@pytest.mark.parametrize("ext, tol", [(".wav", 1e-4), (".flac", 1e-4), (".ogg", 0.05),
                                      (".mp3", 0.05)])
def test_round_trip_each_format(tmp_path, ext, tol):
    x = tone()
    p = save_audio(tmp_path / f"a{ext}", x, 44100)
    y, sr = load_audio(p, mono=False)
    assert sr == 44100 and y.dtype == np.float32 and y.shape[0] == 2
    assert abs(y.shape[1] - x.shape[1]) <= 1152      # lossy codecs may pad one frame
    n = min(x.shape[1], y.shape[1])
    assert np.sqrt(np.mean((y[:, :n] - x[:, :n]) ** 2)) < tol
    assert audio_info(p).channels == 2


def test_mono_stereo_and_resample(tmp_path):
    p = save_audio(tmp_path / "a.wav", tone(channels=2), 44100)
    mono, _ = load_audio(p)
    assert mono.shape == (1, 44100)
    np.testing.assert_allclose(mono[0], 0.75 * tone()[0], atol=1e-4)  # mean of L and R
    y, sr = load_audio(p, sr=22050)
    assert sr == 22050 and y.shape == (1, 22050)
    # resampling keeps a 440 Hz tone at 440 Hz
    spec = np.abs(np.fft.rfft(y[0]))
    assert abs(np.argmax(spec) * sr / len(y[0]) - 440) < 2
    st, _ = load_audio(save_audio(tmp_path / "m.wav", tone(channels=1), 44100), channels=2)
    assert st.shape == (2, 44100) and np.array_equal(st[0], st[1])


def test_offset_and_duration(tmp_path):
    p = save_audio(tmp_path / "a.flac", tone(seconds=2.0), 44100)
    y, _ = load_audio(p, offset=0.5, duration=1.0)
    assert y.shape == (1, 44100)
    with pytest.raises(AudioError, match="past the end"):
        load_audio(p, offset=5.0)


def test_resample_identity_and_length():
    x = tone(channels=1)
    assert resample(x, 44100, 44100) is x
    assert resample(x, 44100, 16000).shape == (1, 16000)


@pytest.mark.parametrize("content, reason", [
    (None, "file not found"),
    (b"", "empty file"),
    (b"this is a text file, not audio\n" * 20, "not a readable audio file"),
    (b"ID3" + bytes(2000), "not a readable audio file"),      # corrupt mp3: tag, no frames
    (b"RIFF\x24\x00\x00\x00WAVEfmt ", "not a readable audio file"),   # truncated header
])
def test_bad_files_raise_with_name_and_reason(tmp_path, content, reason):
    p = tmp_path / "bad.mp3"
    if content is not None:
        p.write_bytes(content)
    with pytest.raises(AudioError) as e:
        load_audio(p)
    assert e.value.path == str(p) and reason in e.value.reason and "bad.mp3" in str(e.value)


def test_zero_length_wav(tmp_path):
    p = save_audio(tmp_path / "z.wav", np.zeros((1, 0), np.float32), 8000)
    with pytest.raises(AudioError, match="no audio samples"):
        load_audio(p)


def test_save_rejects_bad_requests(tmp_path):
    with pytest.raises(AudioError, match="cannot save"):
        save_audio(tmp_path / "a.aiff", tone(), 44100)
    with pytest.raises(AudioError, match=r"\(channels, samples\)"):
        save_audio(tmp_path / "a.wav", tone().T, 44100)
    with pytest.raises(AudioError, match="FLAC cannot store float"):
        save_audio(tmp_path / "a.flac", tone(), 44100, sample_format="float")
    assert list(tmp_path.iterdir()) == []   # nothing half-written left behind


def test_save_pcm24_and_float(tmp_path):
    x = tone(seconds=0.1)
    for fmt in ("pcm24", "float"):
        y, _ = load_audio(save_audio(tmp_path / f"{fmt}.wav", x, 44100, sample_format=fmt),
                          mono=False)
        assert np.abs(y - x).max() < 1e-6


def test_find_audio_files(tmp_path):
    for name in ("b/2.flac", "a.wav", "c.MP3", "notes.txt", ".hidden.wav"):
        (tmp_path / name).parent.mkdir(exist_ok=True, parents=True)
        (tmp_path / name).write_bytes(b"x")
    assert [p.relative_to(tmp_path).as_posix() for p in find_audio_files(tmp_path)] == \
        ["a.wav", "b/2.flac", "c.MP3"]


@pytest.mark.parametrize("rate", [44100, 22050, 48000])
def test_stream_audio_equals_the_whole_file(tmp_path, rate):
    """Decoding, downmixing and resampling block by block gives the samples of load_audio."""
    from deepaudio.core.audio import stream_audio
    x = np.random.default_rng(0).standard_normal((2, 3 * rate + 17)).astype(np.float32) * 0.1
    p = save_audio(tmp_path / "a.wav", x, rate, sample_format="float")
    whole, _ = load_audio(p, sr=22050, mono=True)
    blocks = list(stream_audio(p, 22050, block_seconds=0.37))
    assert len(blocks) > 5 and all(b.shape[0] == 1 and b.dtype == np.float32 for b in blocks)
    streamed = np.concatenate(blocks, axis=1)
    assert streamed.shape == whole.shape
    np.testing.assert_allclose(streamed, whole, atol=1e-5)
    arrays = np.concatenate(list(stream_audio((x, rate), 22050, block_seconds=1.1)), axis=1)
    np.testing.assert_allclose(arrays, whole, atol=1e-5)
    stereo = np.concatenate(list(stream_audio(p, rate, channels=2)), axis=1)
    np.testing.assert_array_equal(stereo, x)


def test_stream_audio_refuses_what_load_audio_refuses(tmp_path):
    from deepaudio.core.audio import stream_audio
    bad = tmp_path / "bad.mp3"
    bad.write_bytes(b"not audio at all" * 100)
    with pytest.raises(AudioError, match="bad.mp3"):
        list(stream_audio(bad, 22050))
    x = tone(seconds=0.0)
    with pytest.raises(AudioError, match="no audio samples"):
        list(stream_audio((x, 44100), 22050))


def test_long_ogg_saves_without_crashing_the_process(tmp_path):
    """A 90 s stereo OGG (a crossfade render with 30 s of context on both sides): written in
    one piece, libsndfile's Vorbis encoder crashed the whole process (a segmentation fault),
    so it runs in a child process here."""
    import subprocess
    import sys
    code = ("import numpy as np, soundfile as sf, sys\n"
            "from deepaudio.core.audio import save_audio\n"
            "x = (0.1 * np.random.default_rng(0).standard_normal((2, 90 * 44100)))"
            ".astype(np.float32)\n"
            "p = save_audio(sys.argv[1], x, 44100)\n"
            "assert sf.info(str(p)).frames == x.shape[1]\n")
    r = subprocess.run([sys.executable, "-c", code, str(tmp_path / "long.ogg")],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, (r.returncode, r.stderr[-500:])
