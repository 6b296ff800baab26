"""Musical key: tonic, mode and confidence from chroma, in Camelot notation too, and how well
two keys mix.

The method is Krumhansl and Schmuckler's key-finding algorithm (Krumhansl 1990, *Cognitive
Foundations of Musical Pitch*): the song's pitch-class distribution, here the mean of
librosa's constant-Q chroma (unnormalised, so loud passages count more than quiet ones), is
correlated (Pearson) with a key profile rotated to each of the 12 tonics, for major and minor;
the best of the 24 is the key. Profiles: Krumhansl and Kessler's probe-tone ratings (1982,
the default) or Temperley's (1999, "What's key for key?"), which weigh the leading tone more.
``confidence`` is the best correlation; ``margin`` how far it stands above the runner-up,
which is typically the relative or a fifth-related key.

Camelot notation (the DJ's wheel): major keys are ``NB``, minor keys ``NA``, numbered so that
C major is 8B and A minor (its relative) 8A, and one step round the wheel is a fifth. Keys
that mix without clashing are the same key, the relative key (same number, other letter) and
the neighbours one step away with the same letter.
"""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np

from deepaudio.core.audio import resample
from deepaudio.core.errors import ToolkitError

ANALYSIS_SR = 22050
HOP = 2048                   # ~93 ms chroma frames: key is a slow feature
FMIN, OCTAVES = "C2", 6      # 65 Hz-4 kHz: below C2 is mostly kick drum, which has no key
MIN_CONFIDENCE = 0.4         # below this correlation the key is reported as not detected
MIN_CONTRAST = 0.15          # chroma flatter than this (std / mean): noise or drums, no key
MIN_RMS = 1e-3               # quieter than about -60 dBFS: silence, no key

PROFILES = {
    # Krumhansl & Kessler (1982), probe-tone ratings, C major and C minor
    "krumhansl": ((6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88),
                  (6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17)),
    # Temperley (1999)
    "temperley": ((5.0, 2.0, 3.5, 2.0, 4.5, 4.0, 2.0, 4.5, 2.0, 3.5, 1.5, 4.0),
                  (5.0, 2.0, 3.5, 4.5, 2.0, 4.0, 2.0, 4.5, 3.5, 2.0, 1.5, 4.0)),
}
MAJOR_NAMES = ("C", "Db", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
MINOR_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "G#", "A", "Bb", "B")


class NoKeyError(ToolkitError):
    """The audio has no detectable key (silence, noise, speech, or too little tonality)."""


@dataclasses.dataclass(frozen=True)
class Key:
    tonic: int                  # pitch class, 0 = C
    mode: str                   # "major" | "minor"
    confidence: float = 1.0     # Pearson correlation with the key's profile
    margin: float = 0.0         # over the runner-up key

    def __post_init__(self):
        if self.mode not in ("major", "minor") or not 0 <= self.tonic < 12:
            raise ValueError(f"not a key: tonic {self.tonic}, mode {self.mode!r}")

    @property
    def name(self) -> str:
        names = MAJOR_NAMES if self.mode == "major" else MINOR_NAMES
        return f"{names[self.tonic]} {self.mode}"

    @property
    def camelot_number(self) -> int:
        # fifths above C of the major key (or of a minor key's relative major), 7 = 7^-1 mod 12
        major_tonic = self.tonic if self.mode == "major" else (self.tonic + 3) % 12
        return (7 + (major_tonic * 7) % 12) % 12 + 1

    @property
    def camelot(self) -> str:
        return f"{self.camelot_number}{'B' if self.mode == 'major' else 'A'}"

    def shifted(self, semitones: int) -> Key:
        return dataclasses.replace(self, tonic=(self.tonic + semitones) % 12)

    def to_json(self) -> dict:
        return {"name": self.name, "camelot": self.camelot, "tonic": self.tonic,
                "mode": self.mode, "confidence": round(self.confidence, 3),
                "margin": round(self.margin, 3)}


def parse_key(text: str) -> Key:
    """``"A minor"``, ``"F# major"``, ``"Bbm"`` or Camelot ``"8A"`` to a :class:`Key`."""
    t = text.strip()
    if t[:-1].isdigit() and t[-1:].upper() in ("A", "B"):
        number, letter = int(t[:-1]), t[-1].upper()
        if not 1 <= number <= 12:
            raise ValueError(f"{text!r}: Camelot numbers run from 1 to 12")
        major = ((number - 8) * 7) % 12             # 8B is C major, each step a fifth
        return Key(major if letter == "B" else (major - 3) % 12,
                   "major" if letter == "B" else "minor")
    parts = t.replace("minor", " minor").replace("major", " major").split()
    if len(parts) == 1 and parts[0].endswith("m") and len(parts[0]) > 1:
        parts = [parts[0][:-1], "minor"]
    if not parts or len(parts) > 2:
        raise ValueError(f"{text!r} is not a key (e.g. 'A minor', 'F# major', '8A')")
    note, mode = parts[0], parts[1] if len(parts) == 2 else "major"
    letters = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
    if note[:1].upper() not in letters or mode not in ("major", "minor") or any(
            c not in "#b" for c in note[1:]):
        raise ValueError(f"{text!r} is not a key (e.g. 'A minor', 'F# major', '8A')")
    pc = letters[note[0].upper()] + note.count("#") - note.count("b")
    return Key(pc % 12, mode)


def chroma_profile(audio: np.ndarray, sr: int) -> np.ndarray:
    """The pitch-class distribution of ``audio`` ((C, N) or (N,)): the mean of librosa's
    constant-Q chroma from C2 over six octaves, without per-frame normalisation, (12,)
    from C."""
    import librosa
    y = np.asarray(audio, np.float32)
    y = y.mean(axis=0) if y.ndim == 2 else y
    if sr != ANALYSIS_SR:
        y = resample(y[None], sr, ANALYSIS_SR)[0]
    if len(y) < HOP * 4:
        raise NoKeyError("too short to tell a key (less than half a second)")
    with warnings.catch_warnings():     # a pure tone or silence: no tuning to estimate (0)
        warnings.filterwarnings("ignore", "Trying to estimate tuning", UserWarning)
        chroma = librosa.feature.chroma_cqt(y=y, sr=ANALYSIS_SR, hop_length=HOP, norm=None,
                                            fmin=librosa.note_to_hz(FMIN), n_octaves=OCTAVES)
    return chroma.mean(axis=1)


def key_from_chroma(profile: np.ndarray, *, profiles: str = "krumhansl") -> Key:
    """The best of the 24 keys for a (12,) pitch-class distribution."""
    if profiles not in PROFILES:
        raise ValueError(f"profiles must be one of {', '.join(PROFILES)}")
    x = np.asarray(profile, np.float64)
    if not np.isfinite(x).all() or x.std() == 0:
        raise NoKeyError("no pitch content to tell a key from")
    scores = []
    for mode, values in zip(("major", "minor"), PROFILES[profiles]):
        ref = np.asarray(values)
        for tonic in range(12):
            r = np.corrcoef(x, np.roll(ref, tonic))[0, 1]
            scores.append((float(r), tonic, mode))
    scores.sort(reverse=True)
    (best, tonic, mode), (second, _, _) = scores[0], scores[1]
    return Key(tonic, mode, confidence=best, margin=best - second)


def estimate_key(audio: np.ndarray, sr: int, *, profiles: str = "krumhansl",
                 min_confidence: float = MIN_CONFIDENCE) -> Key:
    """The key of ``audio``; :class:`NoKeyError` (with the reason) for silence, for a flat
    pitch-class distribution (noise, drums, speech: its contrast, std / mean, under
    ``MIN_CONTRAST``), or when the best correlation is below ``min_confidence`` (no tonal
    centre, e.g. a whole-tone scale)."""
    y = np.asarray(audio, np.float32)
    if not y.size or float(np.sqrt(np.mean(y.astype(np.float64) ** 2))) < MIN_RMS:
        raise NoKeyError("silent: no key")
    profile = chroma_profile(y, sr)
    contrast = float(profile.std() / max(profile.mean(), 1e-12))
    if contrast < MIN_CONTRAST:
        raise NoKeyError(f"no pitched content to tell a key from (chroma contrast "
                         f"{contrast:.2f} < {MIN_CONTRAST}: noise, drums or speech)")
    key = key_from_chroma(profile, profiles=profiles)
    if key.confidence < min_confidence:
        raise NoKeyError(f"no clear key (best guess {key.name}, correlation "
                         f"{key.confidence:.2f} < {min_confidence})")
    return key


# How well two keys mix, by their places on the Camelot wheel.
RELATIONS = {"same": 1.0, "relative": 0.9, "adjacent": 0.8, "diagonal": 0.5}
COMPATIBLE = ("same", "relative", "adjacent")


def key_relation(a: Key, b: Key) -> tuple[str, float]:
    """``(relation, score)`` from A to B: ``same`` 1.0; ``relative`` 0.9 (same Camelot
    number, other letter: C major and A minor); ``adjacent`` 0.8 (one step round the wheel,
    same letter: a fifth apart); ``diagonal`` 0.5 (one step and the other letter); otherwise
    ``clash``, 0.4 at two steps falling to 0 at six."""
    d = abs(a.camelot_number - b.camelot_number)
    d = min(d, 12 - d)
    same_letter = a.mode == b.mode
    if d == 0:
        return ("same", RELATIONS["same"]) if same_letter else ("relative",
                                                                RELATIONS["relative"])
    if d == 1:
        return ("adjacent", RELATIONS["adjacent"]) if same_letter else (
            "diagonal", RELATIONS["diagonal"])
    return "clash", round(0.4 * (6 - d) / 4, 3)


def compatible_shift(a: Key, b: Key, max_semitones: int = 2) -> tuple[int, str, float] | None:
    """The smallest pitch shift of B, within ``max_semitones`` either way, that makes it
    compatible with A (same, relative or adjacent; the best-scoring relation when two shifts
    are equally small): ``(semitones, relation, score)``, 0 when B already fits, or None."""
    if not 0 <= max_semitones <= 2:
        raise ValueError(f"max_semitones must be in 0..2, got {max_semitones}")
    best = None
    for s in sorted(range(-max_semitones, max_semitones + 1), key=abs):
        if best is not None and abs(s) > abs(best[0]):
            break
        rel, score = key_relation(a, b.shifted(s))
        if rel in COMPATIBLE and (best is None or score > best[2]):
            best = (s, rel, score)
    return best
