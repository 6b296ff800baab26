"""The offline DSP separator: blocks that sum to the mix, files, progress, block decoding."""

from __future__ import annotations

import numpy as np
import pyloudnorm as pyln
import pytest
import soundfile as sf

from deepaudio.cli import mixer as mixer_cli
from deepaudio.core.audio import decode_in_blocks, load_audio
from deepaudio.mixer.dsp_backend import DECODE_SHARE, dsp_separate
from deepaudio.mixer.evaluate import new_sdr
from deepaudio.mixer.separate import separate
from deepaudio.mixer.stems import load_stems

SR = 44100


def test_dsp_blocks_crossfade_and_sum_to_the_mix(song, tmp_path):
    path, true_stems, mix = song
    written = []

    class Writer:
        def write(self, block):
            written.append(block)

        def abort(self):
            pass
    dsp_separate(path, lambda sr, sources: Writer(), block_seconds=2.5, fade_seconds=0.5,
                     progress=lambda f, s: None)
    est = np.concatenate(written, -1)
    assert len(written) == 3 and est.shape == (4, 2, mix.shape[1])
    np.testing.assert_allclose(est.sum(0), mix, atol=1e-5)          # stems add up to the song
    drums = est[0]
    # the percussive stem is closer to the true drums than to the true vocals
    assert new_sdr(true_stems["drums"], drums) > new_sdr(true_stems["vocals"], drums)


def test_dsp_separate_files_and_cli_mix(song, tmp_path, capsys):
    path, _, mix = song
    assert mixer_cli.main(["separate", str(path), "-o", str(tmp_path / "st"), "--backend",
                           "dsp"]) == 0
    stems, sr = load_stems(tmp_path / "st")
    np.testing.assert_allclose(sum(stems.values()), mix, atol=1e-4)     # 24-bit FLAC
    out = tmp_path / "mix.flac"
    assert mixer_cli.main(["mix", str(tmp_path / "st"), "--gain", "vocals=+3", "--gain",
                           "drums=-6", "-o", str(out), "--normalize", "lufs"]) == 0
    audio, sr = sf.read(out)
    assert audio.shape == (mix.shape[1], 2)
    assert pyln.Meter(sr).integrated_loudness(audio) == pytest.approx(-14, abs=0.5)
    assert mixer_cli.main(["mix", str(tmp_path / "st"), "--gain", "vocals=+30", "-o",
                           str(out)]) == 2
    assert "must be in [-60, 12]" in capsys.readouterr().err


def test_dsp_progress_moves_from_the_start(song, tmp_path):
    path, _, mix = song
    short = tmp_path / "short.wav"
    sf.write(short, mix[:, :3 * SR].T, SR, subtype="FLOAT")
    seen = []
    separate(short, tmp_path / "out", backend="dsp", progress=lambda f, s: seen.append((f, s)))
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions) and fractions[0] <= 0.01 and fractions[-1] == 1.0
    assert any(0 < f < 0.2 for f, s in seen if s == "decoding")
    # a one-block song still reports progress within its block
    assert len({f for f, s in seen if s == "separating" and f < 0.95}) >= 4


def test_decode_in_blocks_equals_load_audio(song, tmp_path):
    path, _, mix = song
    low = tmp_path / "low.flac"
    sf.write(low, mix[:, ::2].T, SR // 2)                    # resampled on the way in
    seen = []
    audio = decode_in_blocks(low, SR, lambda f, s: seen.append((f, s)), block_seconds=1.0)
    expected, _ = load_audio(low, sr=SR, mono=False)
    np.testing.assert_array_equal(audio, expected)
    fractions = [f for f, _ in seen]
    assert len(seen) >= 6 and fractions == sorted(fractions) and fractions[0] > 0
    assert fractions[-1] == DECODE_SHARE and {s for _, s in seen} == {"decoding"}
