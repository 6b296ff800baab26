"""Keys in the crossfade: each song's key (name and Camelot) in the sidecar, how they mix,
and with key matching B shifted by Rubber Band to a compatible key (and heard in it); songs
without a key keep B as it is, with the reason; the CLI prints the keys."""

from __future__ import annotations

import json

import numpy as np
import pytest

from deepaudio.analysis.key import estimate_key
from deepaudio.cli import crossfade as crossfade_cli
from deepaudio.core.audio import save_audio
from deepaudio.core.config import ConfigError
from deepaudio.crossfade.songs import crossfade_songs

SR = 22050
STEPS = {"major": (0, 2, 4, 5, 7, 9, 11), "minor": (0, 2, 3, 5, 7, 8, 11)}


def _tone(midi: float, seconds: float) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    f = 440.0 * 2 ** ((midi - 69) / 12)
    return sum(0.3 / k * np.sin(2 * np.pi * k * f * t) for k in (1, 2, 3)) * np.minimum(
        1, 20 * t) * np.exp(-1.5 * t)


def _song(tonic: int, mode: str, repeats: int = 3) -> np.ndarray:
    steps = STEPS[mode]
    root = 48 + tonic
    notes = [root + s for s in steps] + [root + 12] + [root + s for s in reversed(steps)]
    third = 4 if mode == "major" else 3
    chords = [_tone(root + d, 1.0) + _tone(root + d + q, 1.0) + _tone(root + d + 7, 1.0)
              for d, q in ((0, third), (5, third), (7, 4), (0, third))]
    one = np.concatenate([*(_tone(n, 0.3) for n in notes), *chords])
    return np.tile(one, repeats).astype(np.float32)


@pytest.fixture(scope="module")
def keyed(tmp_path_factory):
    folder = tmp_path_factory.mktemp("keyed")
    return {name: save_audio(folder / f"{name}.flac", _song(t, m), SR)
            for name, (t, m) in {"c": (0, "major"), "d": (2, "major"),
                                 "am": (9, "minor")}.items()}


def test_keys_are_in_the_sidecar_and_matching_shifts_b(keyed):
    out = crossfade_songs(keyed["c"], keyed["d"], sr=SR, seconds=2.0, context=3.0)
    keys = out["sidecar"]["keys"]
    assert (keys["a"]["name"], keys["a"]["camelot"]) == ("C major", "8B")
    assert (keys["b"]["name"], keys["b"]["camelot"]) == ("D major", "10B")
    assert keys["relation"] == "clash" and keys["shift_semitones"] == 0
    matched = crossfade_songs(keyed["c"], keyed["d"], sr=SR, seconds=2.0, context=3.0,
                              key_match=True)
    keys = matched["sidecar"]["keys"]
    assert keys["shift_semitones"] == -2 and keys["b_shifted"]["name"] == "C major"
    assert keys["relation"] == "same" and keys["score"] == 1.0
    # what is heard of B after the overlap is in C major now, and as long as before
    audio = matched["audio"]
    assert audio.shape == out["audio"].shape
    tail = audio[:, -int(3.0 * SR):]
    assert estimate_key(tail, SR).name == "C major"
    assert estimate_key(out["audio"][:, -int(3.0 * SR):], SR).name == "D major"
    # relative keys mix as they are
    rel = crossfade_songs(keyed["c"], keyed["am"], sr=SR, seconds=2.0, context=3.0,
                          key_match=True)["sidecar"]["keys"]
    assert rel["relation"] == "relative" and rel["shift_semitones"] == 0


def test_a_song_without_a_key_is_left_as_it_is_with_the_reason(keyed, tmp_path):
    rng = np.random.default_rng(0)
    noise = save_audio(tmp_path / "noise.flac",
                       (0.1 * rng.standard_normal(SR * 20)).astype(np.float32), SR)
    out = crossfade_songs(keyed["c"], noise, sr=SR, seconds=2.0, context=3.0, key_match=True)
    keys = out["sidecar"]["keys"]
    assert keys["a"]["name"] == "C major" and keys["b"] is None
    assert "no pitched content" in keys["b_reason"] and keys["shift_semitones"] == 0
    assert keys["reason"] == "no key for the second song"


def test_cli_prints_the_keys_and_the_shift(keyed, tmp_path, capsys):
    code = crossfade_cli.main(["simple", str(keyed["c"]), str(keyed["d"]), "-o",
                               str(tmp_path / "x.wav"), "--seconds", "2", "--context", "3",
                               "--sr", str(SR), "--key-match"])
    out = capsys.readouterr().out
    assert code == 0
    assert "keys: C major (8B) -> D major (10B), same; B shifted -2 semitones to C major (8B)" \
        in out
    sidecar = json.loads((tmp_path / "x.json").read_text())
    assert sidecar["keys"]["key_match"] is True


def test_a_shift_by_hand_and_its_bounds(keyed, tmp_path, capsys):
    """--shift N moves B by N semitones whatever the keys (D major up 2: E major, heard so);
    outside [-2, 2], a fraction, or with --key-match, it is an error naming the option."""
    out = crossfade_songs(keyed["c"], keyed["d"], sr=SR, seconds=2.0, context=3.0, shift=2)
    keys = out["sidecar"]["keys"]
    assert keys["shift_semitones"] == 2 and keys["shift_by_hand"] is True
    assert keys["b_shifted"]["name"] == "E major" and keys["relation"] == "clash"
    assert estimate_key(out["audio"][:, -int(3.0 * SR):], SR).name == "E major"
    for bad in (3, -3, 1.5, True):
        with pytest.raises(ConfigError, match=r"shift must be a whole number of semitones in "
                                              r"\[-2, 2\]"):
            crossfade_songs(keyed["c"], keyed["d"], sr=SR, seconds=2.0, shift=bad)
    base = ["simple", str(keyed["c"]), str(keyed["d"]), "-o", str(tmp_path / "x.wav"),
            "--seconds", "2", "--context", "3", "--sr", str(SR)]
    assert crossfade_cli.main(base + ["--shift", "-1"]) == 0
    assert "B shifted -1 semitones to Db major (3B) (by hand)" in capsys.readouterr().out
    with pytest.raises(SystemExit) as e:
        crossfade_cli.main(base + ["--shift", "3"])
    assert e.value.code == 2 and "--shift: must be in [-2, 2]" in capsys.readouterr().err
    assert crossfade_cli.main(base + ["--shift", "1", "--key-match"]) == 2
    assert "--shift and --key-match" in capsys.readouterr().err
