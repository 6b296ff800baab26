"""Synthesized, genre-distinct music for the FMA-format sample set.

Each of the eight fma_small genres is a :class:`GenreStyle`: a tempo range, 16-step drum
patterns and a drum kit, a bass line and waveform, a harmonic timbre and chord rhythm, a
voice-like formant melody, and a noise bed. Every track draws its own tempo, key, mix levels,
pattern mutations and song sections from a generator seeded with ``(seed, track_id)``, and with
some probability borrows one ingredient from another genre, so genre is learnable from the
audio but not from any single cue. Stems are rendered separately and summed, which gives the
true drums/bass/other/vocals stems for separation evaluation.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import typing as tp
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from deepaudio.core.audio import save_audio
from deepaudio.core.config import ConfigError
from deepaudio.core.files import atomic_write_bytes, atomic_write_json
from deepaudio.data.fma import fma_audio_path

STEMS = ("drums", "bass", "other", "vocals")

# fma_small's eight top-level genres and their FMA genre ids (fma_metadata/genres.csv).
GENRE_IDS = {"Electronic": 15, "Experimental": 38, "Folk": 17, "Hip-Hop": 21,
             "Instrumental": 1235, "International": 2, "Pop": 10, "Rock": 12}

# Harmonic timbres as (frequency ratio, amplitude, extra decay per second) partials.
TIMBRES: dict[str, list[tuple[float, float, float]]] = {
    "saw": [(k, 1 / k, 0.0) for k in range(1, 16)],
    "square": [(k, 1 / k, 0.0) for k in range(1, 16, 2)],
    "organ": [(1, 1, 0), (2, 0.6, 0), (3, 0.4, 0), (4, 0.25, 0), (6, 0.15, 0), (8, 0.1, 0)],
    "bell": [(1, 1, 1), (2.76, 0.6, 2), (5.4, 0.4, 3), (8.93, 0.25, 5), (13.3, 0.1, 7)],
    "piano": [(k, 1 / k ** 1.4, 0.8 * k) for k in range(1, 12)],
    "pluck": [(k, 1 / k, 2.0 * k) for k in range(1, 14)],
    "sine": [(1, 1, 0), (2, 0.08, 0)],
}
SCALES = {"major": (0, 2, 4, 5, 7, 9, 11), "minor": (0, 2, 3, 5, 7, 8, 10),
          "dorian": (0, 2, 3, 5, 7, 9, 10), "pentatonic": (0, 2, 4, 7, 9),
          "hijaz": (0, 1, 4, 5, 7, 8, 10), "chromatic": tuple(range(12)),
          "whole_tone": (0, 2, 4, 6, 8, 10)}
# Vowel formants (F1, F2, F3) in Hz, after Peterson & Barney's adult averages.
VOWELS = np.array([[730, 1090, 2440], [270, 2290, 3010], [300, 870, 2240],
                   [530, 1840, 2480], [570, 840, 2410]], dtype=np.float64)


@dataclasses.dataclass(frozen=True)
class GenreStyle:
    bpm: tuple[float, float]
    swing: float                      # delay of odd 16ths, as a fraction of a step
    kick: str                         # 16 steps: 'x' hit, 'o' hit with probability 1/2
    snare: str
    hat: str
    kit: str                          # electronic | acoustic | hand | glitch | brush
    bass_pattern: str                 # 'x' root, '5' fifth, '8' octave, '.' rest, '-' hold
    bass_timbre: str
    scale: str
    progression: tuple[int, ...]      # scale degrees, one chord per bar
    chord_timbre: str
    chord_rhythm: str                 # 'x' attack (pluck/stab), '-' hold, '.' rest
    chord_decay: float                # 1/s; 0 = sustained pad
    distortion: float                 # tanh drive on the chords (guitar-like at > 2)
    vocal_level: float                # dB relative to the mix; -inf = instrumental
    syllables_per_beat: float
    vocal_range: int                  # semitones the melody may span
    vibrato_cents: float
    noise: str                        # white | pink | brown | vinyl
    noise_db: float
    levels_db: tuple[float, float, float]   # drums, bass, other


STYLES: dict[str, GenreStyle] = {
    "Electronic": GenreStyle((118, 132), 0.0, "x...x...x...x...", "....x.......x...",
                             "..x...x...x...x.", "electronic", "x.x8x.x.x.x8x.x5", "saw",
                             "minor", (0, 5, 3, 4), "square", "..x-..x-..x-..x-", 6.0, 0.0,
                             -12.0, 0.5, 5, 10, "white", -42, (0, -3, -6)),
    "Experimental": GenreStyle((60, 170), 0.15, "o..o.o..o...o.o.", "..o...o.o..o...o",
                               "o.o.oo.o..oo.o.o", "glitch", "x..-5.-.o..x.--.", "bell",
                               "whole_tone", (0, 3, 1, 5), "bell", "x..o..x.o..x..o.", 1.5,
                               1.0, -9.0, 0.75, 14, 60, "brown", -24, (-4, -6, 0)),
    "Folk": GenreStyle((78, 108), 0.08, "x.......x.......", "........o.......",
                       "x.x.x.x.x.x.x.x.", "brush", "x---5---x---5---", "sine", "major",
                       (0, 3, 4, 0), "pluck", "x.x.x.x.x.x.x.x.", 3.0, 0.0, -2.0, 1.0, 9, 25,
                       "pink", -48, (-10, -6, 0)),
    "Hip-Hop": GenreStyle((82, 96), 0.22, "x.....x...x.....", "....x.......x...",
                          "x.x.x.x.x.x.x.x.", "acoustic", "x-----x-..x-----", "sine",
                          "minor", (0, 0, 5, 4), "piano", "x-------x-------", 0.8, 0.0,
                          -1.0, 3.0, 4, 5, "vinyl", -36, (0, 0, -8)),
    "Instrumental": GenreStyle((66, 100), 0.05, "x.......o.......", "........x.......",
                               "x...x...x...x...", "brush", "x-------5-------", "sine",
                               "major", (0, 5, 3, 4), "piano", "x...x...x...x...", 0.9,
                               0.0, float("-inf"), 1.0, 12, 15, "pink", -50, (-12, -6, 0)),
    "International": GenreStyle((96, 128), 0.12, "x..x..x...x..x..", "...x..x....x.x..",
                                "x.xxx.xxx.xxx.xx", "hand", "x-..x5..x-..x5..", "pluck",
                                "hijaz", (0, 1, 0, 6), "organ", "x---------------", 0.0,
                                0.0, -4.0, 2.0, 7, 45, "pink", -44, (-3, -6, -4)),
    "Pop": GenreStyle((98, 122), 0.0, "x.......x.x.....", "....x.......x...",
                      "x.x.x.x.x.x.x.x.", "electronic", "x.x.x.x.5.5.8.8.", "square",
                      "major", (0, 4, 5, 3), "saw", "x.-x.-x.x.-x.-x.", 2.5, 0.0, -2.0, 1.0,
                      9, 20, "white", -54, (-2, -4, -3)),
    "Rock": GenreStyle((108, 150), 0.0, "x.x.....x.x.....", "....x.......x...",
                       "x.x.x.x.x.x.x.x.", "acoustic", "xxxxxxxx55558888", "saw", "minor",
                       (0, 5, 6, 4), "saw", "x-x-x-x-x-x-x-x-", 0.0, 6.0, -3.0, 1.0, 7, 15,
                       "white", -40, (-1, -4, 0)),
}


def _midi_hz(note: float) -> float:
    return 440.0 * 2 ** ((note - 69) / 12)


def _tone(freq: np.ndarray | float, n: int, sr: int, partials, *, decay: float,
          attack: float = 0.005, rng: np.random.Generator) -> np.ndarray:
    """Additive tone with per-partial decay; ``freq`` may be a per-sample f0 curve."""
    t = np.arange(n) / sr
    f0 = np.broadcast_to(np.asarray(freq, dtype=np.float64), (n,))
    phase = 2 * np.pi * np.cumsum(f0) / sr
    out = np.zeros(n)
    for ratio, amp, extra_decay in partials:
        if ratio * f0.max() >= sr / 2 - 500:
            continue
        env = amp * np.exp(-t * (decay + extra_decay)) if decay + extra_decay else amp
        out += env * np.sin(ratio * phase + rng.uniform(0, 2 * np.pi))
    a = min(n, max(1, int(attack * sr)))
    out[:a] *= np.linspace(0, 1, a)
    r = min(64, n)
    out[n - r:] *= np.linspace(1, 0, r)  # no click at the note's end
    return out


def _drum(kind: str, kit: str, sr: int, rng: np.random.Generator) -> np.ndarray:
    """One drum hit for a kit; small per-hit variation keeps loops from being identical."""
    n = int(0.35 * sr)
    t = np.arange(n) / sr
    noise = rng.standard_normal(n)
    if kind == "kick":
        if kit == "hand":  # tuned frame drum / tabla-like: pitched, ringing
            f = rng.choice([110, 147, 196]) * (1 + 0.4 * np.exp(-t / 0.01))
            return np.sin(2 * np.pi * np.cumsum(f) / sr) * np.exp(-t / 0.12)
        start, end, dec = {"electronic": (160, 45, 0.28), "acoustic": (120, 55, 0.12),
                           "glitch": (400, 30, 0.05), "brush": (90, 60, 0.08)}[kit]
        f = end + (start - end) * np.exp(-t / 0.03)
        return np.sin(2 * np.pi * np.cumsum(f) / sr) * np.exp(-t / (dec * rng.uniform(0.8, 1.2)))
    if kind == "snare":
        if kit == "hand":
            f = float(rng.choice([300, 380, 450]))
            return (np.sin(2 * np.pi * f * t) * np.exp(-t / 0.05)
                    + 0.3 * noise * np.exp(-t / 0.02))
        if kit == "brush":
            return 0.5 * np.cumsum(noise) / 30 * np.exp(-t / 0.09) * np.sin(np.pi * t / 0.35)
        bright = np.diff(noise, prepend=0) if kit != "glitch" else np.sign(noise)
        tone = np.sin(2 * np.pi * 185 * t) * np.exp(-t / 0.04)
        return 0.6 * bright * np.exp(-t / (0.07 if kit == "electronic" else 0.11)) + 0.5 * tone
    # hi-hat / shaker: differentiated noise is a cheap high-pass (+6 dB/octave)
    hp = np.diff(noise, prepend=0) / 2
    decay = {"electronic": 0.03, "acoustic": 0.05, "glitch": 0.01, "brush": 0.06, "hand": 0.04}
    return 0.35 * hp * np.exp(-t / decay[kit])


def _colored_noise(kind: str, n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    if kind == "vinyl":
        x = 0.2 * _colored_noise("pink", n, sr, rng)
        clicks = rng.random(n) < 8 / sr  # ~8 crackles per second
        x[clicks] += rng.uniform(-4, 4, clicks.sum())
        return x
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.maximum(np.fft.rfftfreq(n, 1 / sr), 20.0)
    spec *= {"white": 1.0, "pink": f ** -0.5, "brown": f ** -1.0}[kind]
    x = np.fft.irfft(spec, n)
    return x / (x.std() + 1e-12)


def _moving_average(x: np.ndarray, width: int) -> np.ndarray:
    """Centred box mean in O(n) (np.convolve is O(n * width))."""
    c = np.concatenate([[0.0], np.cumsum(np.pad(x, (width // 2, width - width // 2)))])
    return (c[width:] - c[:-width])[:len(x)] / width


def _vocal_line(style: GenreStyle, root: int, scale: tuple[int, ...], n: int, sr: int,
                beat_s: float, active: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Voice-like formant singing: glottal harmonics shaped by moving vowel formants."""
    syl_s = beat_s / style.syllables_per_beat
    n_syl = int(n / sr / syl_s) + 1
    # melody: a random walk on the scale, kept within the style's range
    degrees = np.clip(np.cumsum(rng.integers(-2, 3, n_syl)), -len(scale), len(scale) * 2)
    notes = np.array([root + 12 + 12 * (d // len(scale)) + scale[d % len(scale)]
                      for d in degrees], dtype=np.float64)
    notes = np.clip(notes, root + 12 - style.vocal_range / 2, root + 12 + style.vocal_range)
    voiced = (rng.random(n_syl) < 0.8) & active[np.minimum(
        (np.arange(n_syl) * syl_s * sr).astype(int), n - 1)]
    idx = np.minimum((np.arange(n) / (syl_s * sr)).astype(int), n_syl - 1)
    glide = max(1, int(0.03 * sr))
    f0_midi = _moving_average(notes[idx], glide)
    t = np.arange(n) / sr
    f0_midi += style.vibrato_cents / 100 * np.sin(2 * np.pi * rng.uniform(4.5, 6.5) * t)
    f0 = 440.0 * 2 ** ((f0_midi - 69) / 12)
    # per-syllable vowel, interpolated at a 256-sample control rate
    vowels = VOWELS[rng.integers(0, len(VOWELS), n_syl)] * rng.uniform(0.95, 1.1)
    ctrl = np.arange(0, n, 256)
    formants = np.stack([np.interp(ctrl / (syl_s * sr) - 0.5, np.arange(n_syl), vowels[:, j])
                         for j in range(3)], 1)                    # (n_ctrl, 3)
    f0_ctrl = f0[ctrl]
    phase = 2 * np.pi * np.cumsum(f0) / sr
    out = np.zeros(n)
    bw = np.array([90.0, 110.0, 150.0])
    gains = np.array([1.0, 0.6, 0.3])
    for k in range(1, 30):
        fk = k * f0_ctrl
        if fk.min() > 5000:
            break
        amp = (gains / (1 + ((fk[:, None] - formants) / bw) ** 2)).sum(1) / k ** 0.5
        out += np.interp(np.arange(n), ctrl, amp) * np.sin(k * phase)
    # syllable envelope: gate voiced syllables with short attacks and releases
    gate = voiced[idx].astype(np.float64)
    edge = max(1, int(0.02 * sr))
    gate = _moving_average(gate, edge)
    consonant = np.zeros(n)  # fricative bursts at syllable onsets
    for s in np.flatnonzero(voiced & (rng.random(n_syl) < 0.5)):
        i0 = int(s * syl_s * sr)
        m = min(int(0.04 * sr), n - i0)
        if m > 0:
            consonant[i0:i0 + m] += (np.diff(rng.standard_normal(m + 1)) * 0.15
                                     * np.hanning(m))
    return out * gate + consonant


def _sections(n_bars: int, rng: np.random.Generator) -> np.ndarray:
    """Per-bar activity (n_bars, 4 stems) for intro / verse / chorus / break sections."""
    kinds = {"intro": (0.3, 0.0, 0.7, 0.0), "verse": (1, 1, 0.6, 1), "chorus": (1, 1, 1, 1),
             "break": (0.0, 0.6, 1, 0.5)}
    # FMA clips are cut from the middle of songs, so only some open on an intro
    order = list(rng.choice(["verse", "chorus", "break", "chorus", "verse"], 6))
    act = [kinds["intro"]] * int(rng.choice([0, 0, 1, 2]))
    for kind in order:
        act += [kinds[kind]] * int(rng.choice([2, 4]))
    act = (act * (n_bars // len(act) + 1))[:n_bars]
    return np.array(act, dtype=np.float64)


def _mutate(pattern: str, rng: np.random.Generator, p: float = 0.12) -> str:
    """Flip a few steps so no two tracks of a genre share the exact loop."""
    out = list(pattern)
    for i in np.flatnonzero(rng.random(len(out)) < p):
        out[i] = "x" if out[i] == "." else "."
    return "".join(out)


def render_track(genre: str, track_id: int, *, seed: int, seconds: float = 30.0,
                 sr: int = 44100) -> tuple[dict[str, np.ndarray], dict[str, tp.Any]]:
    """Render one track's four stereo stems ``{stem: (2, N) float32}`` and what was drawn."""
    rng = np.random.default_rng([seed, track_id])
    style = STYLES[genre]
    borrowed = None
    if rng.random() < 0.3:  # borrow one ingredient from another genre: genre is not trivial
        other = STYLES[str(rng.choice([g for g in STYLES if g != genre]))]
        borrowed = str(rng.choice(["drums", "bass", "chords", "tempo"]))
        fields = {"drums": ("kick", "snare", "hat", "kit"),
                  "bass": ("bass_pattern", "bass_timbre"),
                  "chords": ("chord_timbre", "chord_rhythm", "chord_decay"),
                  "tempo": ("bpm", "swing")}[borrowed]
        style = dataclasses.replace(style, **{f: getattr(other, f) for f in fields})
    n = int(round(seconds * sr))
    bpm = float(rng.uniform(*style.bpm))
    beat_s = 60.0 / bpm
    step_s = beat_s / 4
    root = int(rng.integers(38, 50))          # bass-register key root (D2..C#3)
    scale = SCALES[style.scale]
    n_steps = int(np.ceil(seconds / step_s)) + 1
    n_bars = n_steps // 16 + 1
    act = _sections(n_bars, rng)
    patterns = {k: _mutate(getattr(style, k), rng) for k in ("kick", "snare", "hat")}

    def step_time(i: int) -> int:
        swing = style.swing * step_s if i % 2 else 0.0
        return int(round((i * step_s + swing + rng.normal(0, 0.003)) * sr))

    stems = {s: np.zeros(n) for s in STEMS}
    for i in range(n_steps):
        t0, bar = step_time(i), i // 16
        if not 0 <= t0 < n:
            continue
        for kind in ("kick", "snare", "hat"):
            c = patterns[kind][i % 16]
            if c == "x" or (c == "o" and rng.random() < 0.5):
                hit = _drum(kind, style.kit, sr, rng) * rng.uniform(0.7, 1.0) * act[bar, 0]
                m = min(len(hit), n - t0)
                stems["drums"][t0:t0 + m] += hit[:m]
        chord_root = scale[style.progression[bar % len(style.progression)] % len(scale)]
        b = style.bass_pattern[i % 16]
        if b in "x58":
            hold = 1
            while hold < 16 and style.bass_pattern[(i + hold) % 16] == "-":
                hold += 1
            note = root + chord_root + {"x": 0, "5": 7, "8": 12}[b]
            m = min(int(hold * step_s * sr), n - t0)
            stems["bass"][t0:t0 + m] += act[bar, 1] * _tone(
                _midi_hz(note), m, sr, TIMBRES[style.bass_timbre], decay=1.5, rng=rng)
        c = style.chord_rhythm[i % 16]
        if c == "x" or (c == "o" and rng.random() < 0.5):
            hold = 1
            while hold < 16 and style.chord_rhythm[(i + hold) % 16] == "-":
                hold += 1
            deg = style.progression[bar % len(style.progression)]
            m = min(int(hold * step_s * sr), n - t0)
            chord = np.zeros(m)
            for d in (deg, deg + 2, deg + 4):
                note = root + 24 + 12 * (d // len(scale)) + scale[d % len(scale)]
                chord += _tone(_midi_hz(note) * rng.uniform(0.998, 1.002), m, sr,
                               TIMBRES[style.chord_timbre], decay=style.chord_decay, rng=rng)
            if style.distortion:
                chord = np.tanh(style.distortion * chord / 3)
            stems["other"][t0:t0 + m] += act[bar, 2] * chord
    if np.isfinite(style.vocal_level):
        bar_of_sample = np.minimum((np.arange(n) / (16 * step_s * sr)).astype(int), n_bars - 1)
        active = act[bar_of_sample, 3] > 0
        stems["vocals"] = _vocal_line(style, root, scale, n, sr, beat_s, active, rng)
    noise = _colored_noise(style.noise, n, sr, rng)

    # mix levels: each stem to a reference RMS, then the genre's level with per-track jitter
    jitter = rng.normal(0, 2.0, 4)
    levels = list(style.levels_db) + [style.vocal_level]
    for k, s in enumerate(STEMS):
        rms = np.sqrt(np.mean(stems[s] ** 2))
        if rms > 0:
            stems[s] *= 0.1 / rms * 10 ** ((levels[k] + jitter[k]) / 20)
    stems["other"] += 0.1 * 10 ** ((style.noise_db + rng.normal(0, 3)) / 20) * noise
    pans = {"drums": 0.0, "bass": 0.0, "other": rng.uniform(-0.5, 0.5), "vocals": 0.0}
    out = {}
    for s in STEMS:
        theta = (pans[s] + 1) * np.pi / 4  # equal-power pan
        out[s] = np.stack([np.cos(theta) * stems[s], np.sin(theta) * stems[s]]) * np.sqrt(2)
    peak = np.abs(sum(out.values())).max()
    gain = 0.89 / peak if peak > 0 else 1.0   # -1 dBFS peak for the mix; stems scaled alike
    out = {s: (x * gain).astype(np.float32) for s, x in out.items()}
    drawn = {"genre": genre, "bpm": round(bpm, 2), "root_midi": root, "borrowed": borrowed,
             "seed": seed}
    return out, drawn


# ---------------------------------------------------------------------------------------------
# The FMA-format sample set: fma_metadata/{tracks,genres}.csv and fma_small/XXX/XXXXXX.mp3

_WORDS = ("amber velvet harbor neon river static echo hollow silver paper lantern golden "
          "winter broken signal midnight cedar ocean violet distant marble ember quiet wild "
          "electric northern glass crimson lunar fading").split()


def _name(rng: np.random.Generator, words: int) -> str:
    return " ".join(str(w).capitalize() for w in rng.choice(_WORDS, words, replace=False))


def sample_metadata(tracks_per_genre: int, *, seconds: float, seed: int):
    """The tracks.csv and genres.csv tables of a sample set, as pandas DataFrames."""
    rng = np.random.default_rng(seed)
    genres = sorted(GENRE_IDS)
    n = tracks_per_genre * len(genres)
    ids = np.sort(rng.choice(np.arange(2, 156000), n, replace=False))
    genre_of = rng.permutation(np.repeat(genres, tracks_per_genre))
    rows = []
    artists = {g: [_name(rng, 2) for _ in range(max(1, tracks_per_genre // 3))] for g in genres}
    for k, g in enumerate(genre_of):
        # FMA's official split is 80/10/10 per genre; reproduce it by position in the genre
        pos = int((genre_of[:k] == g).sum())
        split = ("test" if pos % 10 == 9 else "validation" if pos % 10 == 8 else "training")
        title = _name(rng, int(rng.integers(1, 4)))
        if rng.random() < 0.15:
            title += ", Pt. " + str(rng.integers(1, 4))   # commas must survive CSV quoting
        artist = int(rng.integers(len(artists[g])))
        rows.append({
            ("album", "id"): int(rng.integers(1, 20000)),
            ("album", "title"): _name(rng, 2),
            ("artist", "id"): genres.index(g) * 100 + artist,
            ("artist", "name"): artists[g][artist],
            ("set", "split"): split,
            ("set", "subset"): "small",
            ("track", "bit_rate"): 256000,
            ("track", "date_created"): "2026-11-01 00:00:00",
            ("track", "duration"): int(round(seconds)),
            ("track", "genre_top"): g,
            ("track", "genres"): f"[{GENRE_IDS[g]}]",
            ("track", "genres_all"): f"[{GENRE_IDS[g]}]",
            ("track", "listens"): int(rng.integers(10, 5000)),
            ("track", "title"): title,
        })
    tracks = pd.DataFrame(rows, index=pd.Index(ids, name="track_id"))
    tracks.columns = pd.MultiIndex.from_tuples(tracks.columns)
    counts = pd.Series(genre_of).value_counts()
    genres_df = pd.DataFrame({"genre_id": [GENRE_IDS[g] for g in genres],
                              "#tracks": [int(counts[g]) for g in genres],
                              "parent": 0, "title": genres,
                              "top_level": [GENRE_IDS[g] for g in genres]})
    return tracks, genres_df


def _render_to_files(job) -> int:
    tid, genre, out, seconds, seed, stems = job
    path = fma_audio_path(Path(out) / "fma_small", tid)
    stem_dir = Path(out) / "fma_stems" / f"{tid:06d}"[:3] / f"{tid:06d}"
    if path.is_file() and (not stems or (stem_dir / "vocals.flac").is_file()):
        return tid  # already rendered by an interrupted earlier run
    parts, _ = render_track(genre, tid, seed=seed, seconds=seconds)
    if stems:  # stems first: the mp3's existence marks the track as finished
        for name, x in parts.items():
            save_audio(stem_dir / f"{name}.flac", x, 44100, sample_format="pcm16")
    # highest MP3 quality (~320 kbps), like much of FMA
    save_audio(path, np.sum(list(parts.values()), axis=0), 44100, compression_level=0.0)
    return tid


def write_sample_set(out: str | os.PathLike, *, tracks_per_genre: int, seconds: float = 30.0,
                     stems: bool = False, seed: int = 0, workers: int = 1,
                     overwrite: bool = False) -> dict:
    """Write the FMA-format sample set; resumable, and a no-op when it already exists."""
    out = Path(out)
    if tracks_per_genre < 1 or seconds < 1:
        raise ConfigError("--tracks-per-genre must be >= 1 and --seconds >= 1")
    params = {"tracks_per_genre": tracks_per_genre, "seconds": seconds, "stems": stems,
              "seed": seed, "generator": "sample_music v1"}
    marker = out / "fma_metadata" / "sample_params.json"
    if marker.is_file() and not overwrite:
        stored = json.loads(marker.read_text())
        if stored == params and (out / "fma_metadata" / "tracks.csv").is_file():
            return {"out": str(out), "tracks": tracks_per_genre * len(GENRE_IDS),
                    "already_done": True}
        if stored != params:
            raise ConfigError(f"{out} holds a sample set made with {stored}; pass --overwrite "
                              "or another --out to make one with different settings")
    if overwrite:
        for sub in ("fma_small", "fma_stems", "fma_metadata"):
            shutil.rmtree(out / sub, ignore_errors=True)
    tracks, genres = sample_metadata(tracks_per_genre, seconds=seconds, seed=seed)
    atomic_write_json(marker, params)
    jobs = [(int(t), str(g), str(out), seconds, seed, stems)
            for t, g in zip(tracks.index, tracks[("track", "genre_top")])]
    bar = tqdm(total=len(jobs), desc="synthesize sample set", unit="track", disable=None)
    if workers > 1:
        with ProcessPoolExecutor(workers) as ex:
            for _ in ex.map(_render_to_files, jobs):
                bar.update()
    else:
        for job in jobs:
            _render_to_files(job)
            bar.update()
    bar.close()
    # metadata last: a tracks.csv means every file it lists exists
    atomic_write_bytes(out / "fma_metadata" / "genres.csv", genres.to_csv(index=False).encode())
    atomic_write_bytes(out / "fma_metadata" / "tracks.csv", tracks.to_csv().encode())
    return {"out": str(out), "tracks": len(jobs), "seed": seed}
