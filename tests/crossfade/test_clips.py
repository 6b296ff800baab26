"""WaveNet training clips (``crossfade.py prep``) and ``crossfade.py train``."""

from __future__ import annotations

import numpy as np
import soundfile as sf

from deepaudio.cli import crossfade as crossfade_cli
from deepaudio.core.audio import save_audio
from deepaudio.crossfade.clips import prep_clips
from deepaudio.networks.checkpoint import load_wavenet

SR = 22050


def test_prep_cuts_begin_end_clips_and_skips_bad_files(tmp_path, tone_song):
    d = tmp_path / "songs"
    save_audio(d / "one.wav", tone_song(14, 44100, seed=1), 44100)
    save_audio(d / "two.flac", tone_song(13, 22050, seed=2), 22050)
    save_audio(d / "short.wav", tone_song(5, 16000, seed=3), 16000)
    (d / "broken.mp3").write_bytes(b"not an mp3 at all" * 20)
    logs = []
    rep = prep_clips(d, tmp_path / "clips.h5", seconds=4, log=logs.append)
    import h5py
    with h5py.File(tmp_path / "clips.h5") as f:
        clips, sources = f["clips"][:], f["sources"].asstr()[:]
        assert f.attrs["sr"] == 16000 and f.attrs["clip_seconds"] == 4
    assert clips.shape == (4, 64000) and clips.dtype == np.float32
    assert [s[1] for s in sources] == ["begin", "end", "begin", "end"]
    assert sources[0][0].endswith("one.wav")
    assert {s["path"].split("/")[-1] for s in rep["skipped"]} == {"short.wav", "broken.mp3"}
    assert len(logs) == 2 and not list(tmp_path.glob(".clips.h5.*"))
    assert sf.info(str(d / "one.wav")).samplerate == 44100     # inputs untouched


def test_prep_then_train_cli(tmp_path, tone_song):
    d = tmp_path / "songs"
    for i in range(2):
        save_audio(d / f"s{i}.wav", tone_song(3, 16000, seed=i), 16000)
    clips, run = str(tmp_path / "c.h5"), str(tmp_path / "run")
    assert crossfade_cli.main(["prep", str(d), "-o", clips, "--seconds", "0.5"]) == 0
    assert crossfade_cli.main(["train", "--data", clips, "--run", run, "--steps", "2",
                               "--batch-size", "1", "--crop", "1024"]) == 0
    assert load_wavenet(tmp_path / "run") is not None
    assert crossfade_cli.main(["train", "--data", str(tmp_path / "missing.h5"), "--run",
                    str(tmp_path / "run2"), "--steps", "1"]) == 2
