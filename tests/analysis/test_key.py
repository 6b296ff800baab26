"""Key estimation on synthesized music of known key: scales and cadences in every major and
minor key, both profiles; Camelot notation and its parsing; the relations and the smallest
compatible shift; silence, noise and drums have no key."""

from __future__ import annotations

import numpy as np
import pytest

from deepaudio.analysis.key import (
    Key,
    NoKeyError,
    compatible_shift,
    estimate_key,
    key_relation,
    parse_key,
)
from deepaudio.core.errors import ToolkitError

SR = 22050
MAJOR, MINOR = (0, 2, 4, 5, 7, 9, 11), (0, 2, 3, 5, 7, 8, 11)     # harmonic minor


def _tone(midi: float, seconds: float) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    f = 440.0 * 2 ** ((midi - 69) / 12)
    env = np.minimum(1, 20 * t) * np.exp(-1.5 * t)
    return sum(0.3 / k * np.sin(2 * np.pi * k * f * t) for k in (1, 2, 3)) * env


def cadence(tonic: int, mode: str) -> np.ndarray:
    """A scale up and down, then I-IV-V-I chords, in the key: what key finders are tested on."""
    steps = MAJOR if mode == "major" else MINOR
    root = 48 + tonic
    notes = [root + s for s in steps] + [root + 12] + [root + s for s in reversed(steps)]
    scale = np.concatenate([_tone(n, 0.3) for n in notes])
    third = 4 if mode == "major" else 3
    chords = []
    for degree, quality in ((0, third), (5, 4 if mode == "major" else 3), (7, 4), (0, third)):
        r = root + degree
        chords.append(_tone(r, 1.0) + _tone(r + quality, 1.0) + _tone(r + 7, 1.0)
                      + _tone(r - 12, 1.0))
    return np.concatenate([scale, *chords]).astype(np.float32)


@pytest.mark.parametrize("mode", ["major", "minor"])
def test_every_key_of_a_cadence_is_found(mode):
    wrong = []
    for tonic in range(12):
        key = estimate_key(cadence(tonic, mode), SR)
        if (key.tonic, key.mode) != (tonic, mode):
            wrong.append((Key(tonic, mode).name, key.name))
        assert 0.5 < key.confidence <= 1 and key.margin >= 0
    assert wrong == []


def test_temperley_profiles_and_stereo_input():
    y = cadence(9, "minor")
    assert estimate_key(np.stack([y, y]), SR, profiles="temperley").name == "A minor"
    with pytest.raises(ValueError, match="profiles must be"):
        estimate_key(y, SR, profiles="bach")


@pytest.mark.parametrize("name, camelot", [
    ("C major", "8B"), ("A minor", "8A"), ("G major", "9B"), ("E minor", "9A"),
    ("F major", "7B"), ("D minor", "7A"), ("B major", "1B"), ("G# minor", "1A"),
    ("Db major", "3B"), ("Bb minor", "3A"), ("F# major", "2B"), ("Eb minor", "2A")])
def test_camelot_wheel(name, camelot):
    key = parse_key(name)
    assert key.name == name and key.camelot == camelot and parse_key(camelot) == key


def test_parse_key_forms_and_errors():
    assert parse_key("Bbm") == parse_key("A# minor") == Key(10, "minor")
    assert parse_key("c#") == Key(1, "major")
    for bad in ("H major", "13A", "C dorian", "", "C major minor"):
        with pytest.raises(ValueError):
            parse_key(bad)


def test_relations_and_the_smallest_compatible_shift():
    c, am, g, em, d, fs = (parse_key(k) for k in ("C", "Am", "G", "Em", "D", "F#"))
    assert key_relation(c, c) == ("same", 1.0)
    assert key_relation(c, am) == ("relative", 0.9)
    assert key_relation(c, g) == ("adjacent", 0.8) == key_relation(g, c)
    assert key_relation(c, em) == ("diagonal", 0.5)
    assert key_relation(c, fs)[0] == "clash" and key_relation(c, fs)[1] == 0.0
    assert compatible_shift(c, g) == (0, "adjacent", 0.8)
    assert compatible_shift(c, d) == (-2, "same", 1.0)           # D down 2: C
    s, rel, _ = compatible_shift(c, fs)                          # F# by 1 either way: F or G
    assert abs(s) == 1 and rel == "adjacent"
    assert compatible_shift(c, parse_key("Eb minor"), max_semitones=1) is None
    with pytest.raises(ValueError, match="max_semitones"):
        compatible_shift(c, d, max_semitones=3)


def test_silence_noise_and_drums_have_no_key():
    rng = np.random.default_rng(0)
    with pytest.raises(NoKeyError, match="silent"):
        estimate_key(np.zeros(SR * 3, np.float32), SR)
    with pytest.raises(NoKeyError, match="no pitched content"):
        estimate_key(0.1 * rng.standard_normal(SR * 5).astype(np.float32), SR)
    whole_tone = np.concatenate([_tone(48 + 2 * k, 0.4) + _tone(55 + 2 * k, 0.4)
                                 for k in range(6)] * 3).astype(np.float32)
    with pytest.raises(NoKeyError):              # no tonal centre: flat, or no clear key
        estimate_key(whole_tone, SR)
    t = np.arange(SR * 4) / SR
    kicks = (np.sin(2 * np.pi * 55 * t * np.exp(-t % 0.5 * 8)) * np.exp(-(t % 0.5) * 30)
             + 0.3 * rng.standard_normal(len(t)) * np.exp(-((t + 0.25) % 0.5) * 60))
    with pytest.raises(NoKeyError):
        estimate_key(kicks.astype(np.float32), SR)
    with pytest.raises(NoKeyError, match="too short"):
        estimate_key(cadence(0, "major")[:1000], SR)


def test_rubber_band_shift_moves_the_key_and_keeps_the_length():
    from deepaudio.core.stretch import stretch
    y = cadence(0, "major")
    up = stretch(y, SR, semitones=2)
    assert up.shape == y.shape and estimate_key(up, SR).name == "D major"
    down = stretch(np.stack([y, y]), SR, semitones=-3)           # stereo, C to A major
    assert down.shape == (2, len(y)) and estimate_key(down, SR).name == "A major"
    fast = stretch(y, SR, rate=1.25)                             # tempo only: same key
    assert len(fast) == round(len(y) / 1.25) and estimate_key(fast, SR).name == "C major"
    with pytest.raises(ToolkitError, match="rate must be"):
        stretch(y, SR, rate=3.0)
    with pytest.raises(ToolkitError, match="pitch shift must be"):
        stretch(y, SR, semitones=float("nan"))
