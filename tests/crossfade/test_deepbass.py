"""DeepBass' config.ini: round trip, bad keys and values, quoting, the NSynth run."""

from __future__ import annotations

import configparser
import json

import numpy as np
import pytest

from deepaudio.cli import crossfade as crossfade_cli
from deepaudio.core.audio import load_audio
from deepaudio.core.config import ConfigError
from deepaudio.crossfade.deepbass import read_ini

SR = 22050


def _edit_ini(path, changes: dict):
    p = configparser.ConfigParser(interpolation=None, default_section="\0none")
    p.optionxform = str
    p.read(path)
    for (section, key), value in changes.items():
        if not p.has_section(section):
            p.add_section(section)
        p.set(section, key, value)
    with open(path, "w") as f:
        p.write(f)


def test_init_config_round_trip_with_home_paths(songs, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "songs").mkdir()
    for p in songs:
        (tmp_path / "songs" / p.name).write_bytes(p.read_bytes())
    ini = tmp_path / "config.ini"
    assert crossfade_cli.main(["init-config", str(ini)]) == 0
    cfg = read_ini(ini)                               # the default file is valid
    assert cfg.default.samplingrate == 16000 and cfg.simple.style == "Linear"
    assert crossfade_cli.main(["init-config", str(ini)]) == 2    # no silent overwrite
    _edit_ini(ini, {("IO", "Load Directory"): "~/songs", ("IO", "Save Directory"): "~/out",
                    ("IO", "FirstSong"): "a.flac", ("IO", "SecondSong"): "b.flac",
                    ("IO", "Save Name"): "mix", ("Simple XFade Settings", "Time"): "2",
                    ("Simple XFade Settings", "Context"): "1.5"})
    assert crossfade_cli.main(["-config_fname", str(ini)]) == 0
    out = tmp_path / "out"
    mix, sr = load_audio(out / "mix_simple.wav", mono=False)
    assert sr == 16000 and mix.shape == (2, 5 * 16000)
    for name in ("end_trim", "begin_trim", "end_faded", "begin_faded"):
        part, sr = load_audio(out / f"{name}.wav", mono=False)
        assert part.shape == (2, 2 * 16000) and np.abs(part).max() > 0.01
    end_trim, _ = load_audio(out / "end_trim.wav", mono=False)
    end_faded, _ = load_audio(out / "end_faded.wav", mono=False)
    np.testing.assert_allclose(end_faded, end_trim * np.linspace(1, 0, 2 * 16000), atol=1e-6)
    assert float((out / "mix_simple_roughness.txt").read_text()) > 0
    assert (out / "mix_simple.png").stat().st_size > 1000
    side = json.loads((out / "mix_simple.json").read_text())
    assert side["style"] == "linear" and side["sr"] == 16000
    assert not (tmp_path / "~").exists()


@pytest.mark.parametrize("section,key,value,fragment", [
    ("Simple XFade Settings", "Style", "Foo", "Style"),
    ("Simple XFade Settings", "Time", "-1", "Time"),
    ("NSynth XFade Settings", "Style", "Extend", "Extend"),
    ("NSynth XFade Settings", "Time", "four", "Time"),
    ("Plot", "Flag", "maybe", "Flag"),
    ("DEFAULT", "SamplingRate", "16k", "SamplingRate"),
    ("IO", "Colour", "red", "Colour"),
    ("Extras", "Key", "1", "Extras"),
])
def test_bad_config_values_name_section_and_key(tmp_path, capsys, section, key, value,
                                                fragment):
    ini = tmp_path / "config.ini"
    crossfade_cli.main(["init-config", str(ini)])
    _edit_ini(ini, {(section, key): value})
    with pytest.raises(ConfigError, match=fragment) as e:
        read_ini(ini)
    assert f"[{section}]" in str(e.value)
    capsys.readouterr()
    assert crossfade_cli.main(["-config_fname", str(ini)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and fragment in err[0]


def test_deepbass_quoted_flag_and_missing_sections(tmp_path):
    ini = tmp_path / "c.ini"
    ini.write_text("[Plot]\nFlag = 'False'\n[IO]\nFirstSong = x.mp3\n")
    cfg = read_ini(ini)
    assert cfg.plot.flag is False and cfg.io.firstsong == "x.mp3"
    assert cfg.simple.time == 4.0 and cfg.default.samplingrate == 16000


def test_deepbass_config_with_model_weights(songs, tmp_path, tiny_run):
    for p in songs:
        (tmp_path / p.name).write_bytes(p.read_bytes())
    ini = tmp_path / "c.ini"
    crossfade_cli.main(["init-config", str(ini)])
    _edit_ini(ini, {("IO", "Load Directory"): str(tmp_path), ("IO", "FirstSong"): "a.flac",
                    ("IO", "SecondSong"): "b.flac", ("IO", "Save Directory"): str(tmp_path / "o"),
                    ("IO", "Save Name"): "x", ("IO", "Model Weights"): str(tiny_run),
                    ("NSynth XFade Settings", "Time"): "0.25",
                    ("NSynth XFade Settings", "Style"): "HannFade",
                    ("Simple XFade Settings", "Time"): "1"})
    assert crossfade_cli.main(["-config_fname", str(ini)]) == 0
    o = tmp_path / "o"
    for name in ("x_simple.wav", "x_NSynth.wav", "end.wav", "begin.wav", "a_end_enc.npy",
                 "b_begin_enc.npy", "x_nsynth_roughness.txt", "x_NSynth.png"):
        assert (o / name).stat().st_size > 0, name
    assert not (o / "begin_enc.npy").exists() and not (o / "end_enc.npy").exists()
    end, sr = load_audio(o / "end.wav")
    assert sr == 16000 and end.shape == (1, (4000 // 512) * 512)
    assert json.loads((o / "x_NSynth.json").read_text())["style"] == "hann"
