"""Two songs to a transition: output in context, loudness matching, channels, user errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from deepaudio.cli import crossfade as crossfade_cli
from deepaudio.core.audio import load_audio, save_audio
from deepaudio.core.loudness import integrated_loudness
from deepaudio.crossfade.songs import crossfade_songs

SR = 22050


def test_simple_output_in_context_and_loudness_matched(songs, tmp_path):
    a, b = songs
    out_path = tmp_path / "x.wav"
    assert crossfade_cli.main(["simple", str(a), str(b), "-o", str(out_path), "--seconds", "2",
                    "--context", "3", "--sr", str(SR)]) == 0
    y, sr = load_audio(out_path, mono=False)
    side = json.loads(out_path.with_suffix(".json").read_text())
    assert sr == SR and y.shape == (2, 8 * SR) and y.dtype == np.float32
    assert side["style"] == "equal_power" and side["overlap_start_in_output_s"] == 3.0
    assert side["loudness"]["gain_db"] == pytest.approx(12.0, abs=1.0)
    la = integrated_loudness(y[:, :3 * SR], SR)
    lb = integrated_loudness(y[:, 5 * SR:], SR)
    assert abs(la - lb) < 1.0                          # 12 dB apart in the files
    assert side["trims"]["a"]["end_cut_s"] == pytest.approx(0.5, abs=0.25)
    assert side["trims"]["b"]["start_cut_s"] == pytest.approx(0.5, abs=0.25)
    # the output's B part is B itself after its trimmed silence, gained
    b_audio, _ = load_audio(b, mono=False)
    k0 = int(round(side["trims"]["b"]["start_cut_s"] * SR))
    g = 10 ** (side["loudness"]["gain_db"] / 20)
    np.testing.assert_allclose(y[:, 5 * SR:], b_audio[:, k0 + 2 * SR:k0 + 5 * SR] * g,
                               atol=2e-4)


def test_context_full_keeps_both_songs(songs):
    a, b = songs
    out = crossfade_songs(a, b, sr=SR, style="linear", seconds=2, context=None)
    # both trimmed songs (~12 s each) minus the 2 s overlap
    assert out["audio"].shape[1] / SR == pytest.approx(22.0, abs=0.5)
    assert out["sidecar"]["context_s"] == "full"


def test_mono_and_stereo_songs_mix_in_stereo(tmp_path, tone_song):
    save_audio(tmp_path / "m.wav", tone_song(6, channels=1), SR)
    save_audio(tmp_path / "s.wav", tone_song(6, f0=300, channels=2), SR)
    out = crossfade_songs(tmp_path / "m.wav", tmp_path / "s.wav", sr=16000, seconds=1,
                             context=1)
    assert out["audio"].shape == (2, 3 * 16000)


def test_missing_and_corrupt_inputs_exit_2(songs, tmp_path, capsys):
    a, _ = songs
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunkjunkjunk" * 10)
    for other in (tmp_path / "missing.mp3", bad):
        rc = crossfade_cli.main(["simple", str(a), str(other), "-o", str(tmp_path / "o.wav")])
        err = capsys.readouterr().err.strip().splitlines()
        assert rc == 2 and len(err) == 1 and err[0].startswith("error:")
        assert other.name in err[0]
    assert not (tmp_path / "o.wav").exists()
