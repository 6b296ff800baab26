"""The beat corpus: generated music with exact beat and downbeat times, to train and evaluate
the learned beat tracker on.

Each piece is drawn from a seed (:func:`draw_piece`): a style (rock, pop, funk, disco/house,
techno, hip-hop, reggae, drum and bass, half-time, latin, metal, jazz swing, waltz, folk 3/4,
jig 6/8, 12/8 blues shuffle, march 2/4, ballad, and drum-less piano or ambient pieces), a tempo
between 60 and 200 bpm, a metre (4/4, 3/4, 2/4, 6/8 and 12/8 counted in dotted quarters,
swing), syncopated bass, chords on the beat or off it (skanks, stabs, 3+3+2), hats on the
off-beats, melodies with passing notes, half-time drums, drum-less intros and breakdowns,
fills, tempo ramps and steps, fades, endings inside the excerpt and lead-ins of up to 3 s. It
is written as General MIDI (``mido``), so the beat
times follow exactly from its tempo map, and rendered to audio by FluidSynth through one of
the split's soundfonts; pieces of the sample set's own synthesis
(:func:`deepaudio.data.samples.render_track`, beats from its drawn tempo) are mixed in.
A share of the train pieces has no beat at all (:func:`negative_piece`: noise, drones,
speech-like bursts, rubato pads), annotated with none. Every piece is then augmented: gain,
EQ, reverb, noise, Rubber Band tempo and pitch changes (beat times scaled), MP3, AAC or Vorbis
coding.

Splits keep evaluation apart from training in three ways at once: other seeds, other pieces
(the generator's draws), and other soundfonts.

=======  ============================================  =================  ===================
split    soundfonts                                    sample synth, none  seeds
=======  ============================================  =================  ===================
train    FluidR3 GM, MuseScore General Lite, OPL-3 FM  1/6, 6 %           (1, shard, piece)
eval     TimGM6mb, csound's sf_GMbank                  no, no             (9, shard, piece)
=======  ============================================  =================  ===================

The corpus is a folder of shards, ``<split>-00000.h5`` ... each holding ``pieces_per_shard``
pieces: the learned tracker's input frames (:mod:`deepaudio.analysis.frontend`, float16
``mel`` (frames, 128) concatenated, ``offsets``) and the annotations (``beats``,
``downbeats`` concatenated with their offsets, ``meta`` JSON per piece). The evaluation split
also keeps each piece's audio (``eval-audio/*.flac``, 22.05 kHz mono), which the benchmark's
other trackers read, and each piece's key. A shard is written atomically when complete, so
an interrupted run continues where it stopped; ``--shard I/N`` builds every N-th shard from
the I-th, for array jobs on a cluster.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import shutil
import subprocess
import tempfile
import typing as tp
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from tqdm import tqdm

from deepaudio.analysis import frontend
from deepaudio.core.audio import load_audio, write_audio_blocks
from deepaudio.core.datasets import shard_path
from deepaudio.core.errors import ToolkitError
from deepaudio.core.files import atomic_write_bytes
from deepaudio.core.stretch import stretch
from deepaudio.data.samples import STYLES as GENRES
from deepaudio.data.samples import render_track

SOUNDFONT_DIRS = ("/usr/share/sounds/sf2", "/usr/share/sounds/sf3", "/usr/share/soundfonts")
SPLITS: dict[str, dict[str, tp.Any]] = {
    "train": {"soundfonts": ("FluidR3_GM.sf2", "MuseScore_General_Lite.sf3",
                             "OPL-3_FM_128M.sf2"), "synth_share": 1 / 6, "seed": 1,
              "negative_share": 0.06},
    "eval": {"soundfonts": ("TimGM6mb.sf2", "sf_GMbank.sf2"), "synth_share": 0.0, "seed": 9,
             "keep_audio": True},
}
DEBIAN_PACKAGES = {"FluidR3_GM.sf2": "fluid-soundfont-gm",
                   "MuseScore_General_Lite.sf3": "musescore-general-soundfont-small",
                   "OPL-3_FM_128M.sf2": "opl3-soundfont", "TimGM6mb.sf2": "timgm6mb-soundfont",
                   "sf_GMbank.sf2": "csound-soundfont"}
TPB = 480
KICK, SNARE, RIM, CLAP, HAT, PEDAL_HAT, OPEN_HAT, RIDE, CRASH = 36, 38, 37, 39, 42, 44, 46, 51, 49
TOM_LO, TOM_MID, TOM_HI, SHAKER, CLAVE, CONGA, COWBELL = 45, 47, 50, 70, 75, 63, 56
MAJOR = (0, 2, 4, 5, 7, 9, 11)
MINOR = (0, 2, 3, 5, 7, 8, 10)
PROGRESSIONS = ((0, 5, 3, 4), (0, 3, 4, 0), (0, 4, 5, 3), (5, 3, 0, 4), (0, 0, 3, 4),
                (1, 4, 0, 0), (0, 6, 5, 4), (0, 3, 0, 4, 5, 3, 1, 4))


@dataclasses.dataclass(frozen=True)
class Metre:
    name: str
    beats: int              # beats per bar (what the tracker counts)
    pulses: int             # pulses per beat the patterns are written in (4: 16ths, 3: 8ths)
    beat_quarters: float    # quarter notes per beat (1.5: a dotted quarter)


METRES = {"4/4": Metre("4/4", 4, 4, 1.0), "3/4": Metre("3/4", 3, 4, 1.0),
          "2/4": Metre("2/4", 2, 4, 1.0), "6/8": Metre("6/8", 2, 3, 1.5),
          "12/8": Metre("12/8", 4, 3, 1.5)}


@dataclasses.dataclass(frozen=True)
class Style:
    metres: tuple[str, ...]
    bpm: tuple[float, float]
    drums: str                           # a drum-pattern family (see _drum_bar)
    chords: tuple[str, ...]              # chord rhythms it may use (see _chord_hits)
    bass: tuple[str, ...]                # bass rhythms (see _bass_hits)
    programs: tuple[int, ...]            # GM programs for the chords
    bass_programs: tuple[int, ...]
    swing: float = 0.0                   # delay of off-pulses, fraction of a pulse


STYLES: dict[str, Style] = {
    "rock": Style(("4/4",), (90, 160), "rock", ("beat", "sustain", "eighths"), ("root8",
                  "root"), (29, 30, 27, 25), (33, 34)),
    "pop": Style(("4/4",), (80, 130), "pop", ("offbeat", "sustain", "332", "arp"),
                 ("root", "synco"), (0, 4, 5, 88, 81), (33, 38, 39)),
    "funk": Style(("4/4",), (90, 120), "funk", ("stab16", "offbeat"), ("synco", "octave"),
                  (17, 16, 62, 28), (36, 37)),
    "house": Style(("4/4",), (118, 132), "house", ("offbeat", "stab16", "332"),
                   ("offbass", "octave"), (81, 89, 90, 4, 0), (38, 39, 87)),
    "techno": Style(("4/4",), (125, 150), "techno", ("offbeat", "none", "sustain"),
                    ("offbass", "root16"), (81, 90, 95, 50), (38, 39)),
    "hiphop": Style(("4/4",), (70, 100), "hiphop", ("sustain", "332", "arp"), ("synco",),
                    (0, 4, 11, 48), (33, 38), swing=0.25),
    "reggae": Style(("4/4",), (65, 95), "onedrop", ("skank",), ("synco",), (16, 17, 27, 4),
                    (33, 34)),
    "dnb": Style(("4/4",), (160, 178), "dnb", ("sustain", "none"), ("root", "synco"),
                 (89, 90, 91), (38, 39)),
    "halftime": Style(("4/4",), (130, 160), "halftime", ("sustain", "332"), ("root", "synco"),
                      (89, 81, 30), (38, 39)),
    "latin": Style(("4/4",), (90, 125), "latin", ("montuno", "332"), ("tumbao",),
                   (0, 24, 21, 61), (32, 33)),
    "metal": Style(("4/4",), (140, 200), "metal", ("eighths", "beat"), ("root16", "root8"),
                   (30, 29), (34, 33)),
    "swing": Style(("4/4",), (100, 200), "swing", ("charleston", "beat"), ("walking",),
                   (0, 26, 11, 65, 66), (32,), swing=0.33),
    "ballad": Style(("4/4", "3/4"), (60, 85), "ballad", ("arp", "sustain"), ("root",),
                    (0, 48, 49, 4, 19), (32, 42)),
    "waltz": Style(("3/4",), (90, 190), "waltz", ("waltz",), ("root",), (0, 21, 48, 40),
                   (32, 43)),
    "folk34": Style(("3/4",), (80, 140), "folk", ("beat", "arp"), ("root",), (24, 25, 105, 21),
                    (32, 33)),
    "march": Style(("2/4",), (100, 130), "march", ("beat", "offbeat"), ("root",),
                   (56, 57, 60, 61, 71), (58, 67)),
    "jig": Style(("6/8",), (95, 130), "jig", ("beat", "arp"), ("root",), (21, 22, 24, 110, 73),
                 (32, 33)),
    "shuffle": Style(("12/8",), (60, 110), "shuffle", ("beat", "offbeat"), ("walking",
                     "root"), (16, 17, 26, 27, 29), (33, 34)),
    "piano": Style(("4/4", "3/4", "6/8"), (60, 140), "none", ("arp", "beat", "waltz"),
                   ("root",), (0, 1, 2, 6, 46), (0, 1, 32)),
    "ambient": Style(("4/4",), (60, 110), "none", ("sustain", "arp"), ("root",),
                     (88, 89, 91, 92, 95, 52), (38, 88)),
}
STYLE_NAMES = tuple(STYLES)


def soundfont_path(name: str) -> Path:
    """The path of a soundfont by file name, from Debian's soundfont folders."""
    for d in SOUNDFONT_DIRS:
        if (Path(d) / name).is_file():
            return Path(d) / name
    pkg = DEBIAN_PACKAGES.get(name, "a General MIDI soundfont package")
    raise ToolkitError(f"soundfont {name} not found in {', '.join(SOUNDFONT_DIRS)}: "
                       f"apt-get install {pkg}")


# ---------------------------------------------------------------------------------------------
# Drawing a piece


@dataclasses.dataclass
class Piece:
    seed: tuple[int, ...]
    style: str
    metre: str
    bpm: float
    bars: int
    key: int
    minor: bool
    tempo_curve: str                 # "steady" | "ramp" | "step"
    tempo_end: float                 # bpm at the end (ramp) or after the step
    step_bar: int
    drumless_intro: int              # bars without drums at the start
    breakdown: tuple[int, int]       # bars [a, b) without drums
    halftime: tuple[int, int]        # bars [a, b) with half-time drums
    fade_in: bool
    fade_out: bool
    melody: bool
    chords: str
    bass: str
    program: int
    bass_program: int
    melody_program: int
    swing: float
    progression: tuple[int, ...]
    lead_in: float = 0.3             # seconds of silence before the first beat
    ending: bool = False             # a final downbeat after the last bar, then its tail


def draw_piece(seed: tp.Sequence[int], *, seconds: float = 30.0) -> Piece:
    """A piece drawn from ``seed`` (the same seed always gives the same piece)."""
    rng = np.random.default_rng(list(seed))
    name = str(rng.choice(STYLE_NAMES))
    st = STYLES[name]
    metre = METRES[str(rng.choice(st.metres))]
    lo, hi = st.bpm
    bpm = float(np.exp(rng.uniform(np.log(max(60.0, lo)), np.log(min(200.0, hi)))))
    bar_s = metre.beats * 60.0 / bpm
    lead_in = 0.3 if rng.random() < 0.6 else float(rng.uniform(0.5, 3.0))
    # half the pieces end inside the excerpt (a last downbeat, then its ring and silence), the
    # others run past its end, as an excerpt of a longer song does
    ending = bool(rng.random() < 0.5)
    tail = float(rng.uniform(1.5, 5.0)) if ending else -bar_s
    bars = max(4, int(np.floor((seconds - lead_in - tail) / bar_s)))
    curve = str(rng.choice(["steady", "ramp", "step"], p=[0.7, 0.15, 0.15]))
    factor = float(rng.choice([-1, 1]) * rng.uniform(0.05, 0.25))
    tempo_end = float(np.clip(bpm * (1 + factor), 60.0, 200.0)) if curve != "steady" else bpm
    drums = st.drums != "none"
    intro = int(rng.choice([0, 0, 0, 2, 4, 8])) if drums else 0
    bd = (0, 0)
    if drums and bars >= 12 and rng.random() < 0.25:
        a = int(rng.integers(intro + 2, max(intro + 3, bars - 4)))
        bd = (a, a + int(rng.choice([2, 4])))
    ht = (0, 0)
    if drums and metre.beats == 4 and bars >= 10 and rng.random() < 0.15:
        a = int(rng.integers(0, bars - 4))
        ht = (a, a + 4)
    return Piece(
        seed=tuple(int(s) for s in seed), style=name, metre=metre.name, bpm=bpm, bars=bars,
        key=int(rng.integers(0, 12)), minor=bool(rng.random() < 0.45), tempo_curve=curve,
        tempo_end=tempo_end, step_bar=int(rng.integers(bars // 3, max(bars // 3 + 1,
                                                                       2 * bars // 3))),
        drumless_intro=intro, breakdown=bd, halftime=ht, fade_in=bool(rng.random() < 0.1),
        fade_out=bool(rng.random() < 0.25), melody=bool(rng.random() < 0.6),
        chords=str(rng.choice(st.chords)), bass=str(rng.choice(st.bass)),
        program=int(rng.choice(st.programs)), bass_program=int(rng.choice(st.bass_programs)),
        melody_program=int(rng.choice([0, 11, 13, 40, 56, 65, 66, 71, 73, 80, 81, 104])),
        swing=st.swing * float(rng.uniform(0.6, 1.2)) if st.swing else 0.0,
        progression=tuple(int(x) for x in PROGRESSIONS[int(rng.integers(len(PROGRESSIONS)))]),
        lead_in=lead_in, ending=ending)


def _drum_bar(family: str, m: Metre, rng: np.random.Generator, *, half: bool,
              fill: bool) -> list[tuple[int, int, int]]:
    """One bar of drums as (pulse, note, velocity), pulses counted from the bar start."""
    n = m.beats * m.pulses
    p = m.pulses
    hits: list[tuple[int, int, int]] = []

    def add(pulses, note, vel=90, prob=1.0):
        for q in pulses:
            if 0 <= q < n and rng.random() < prob:
                hits.append((int(q), note, int(np.clip(vel + rng.integers(-12, 8), 20, 127))))

    beats = [k * p for k in range(m.beats)]
    backbeat = [k * p for k in range(1, m.beats, 2)]
    eighths = range(0, n, max(1, p // 2)) if p % 2 == 0 else range(0, n)
    if family in ("rock", "pop", "metal", "ballad"):
        add([0], KICK, 105)
        add([2 * p + (p // 2 if rng.random() < 0.4 else 0)], KICK, 95)
        add(rng.choice(range(n), 1) if rng.random() < 0.4 else [], KICK, 80)
        add(backbeat, SNARE, 100)
        add(eighths, HAT if family != "ballad" else RIDE, 70)
        if family == "metal":
            add(range(0, n, max(1, p // 4)), KICK, 95)
    elif family == "funk":
        add([0, 3 * p // 2 + 1, 2 * p + p // 2 + 1], KICK, 100)
        add(backbeat, SNARE, 105)
        add(range(n), HAT, 60)
        add([p + p // 2 + 1, 3 * p + 3], SNARE, 45, 0.5)          # ghost notes
    elif family in ("house", "techno"):
        add(beats, KICK, 110)
        add(backbeat, CLAP, 95, 0.9)
        add([b + p // 2 for b in beats], OPEN_HAT, 80)            # the off-beat open hat
        if family == "techno":
            add(range(0, n, max(1, p // 4)), HAT, 55)
    elif family == "hiphop":
        add([0, p + p // 2 + 1, 2 * p + p // 2], KICK, 105)       # off-beat kicks
        add(backbeat, SNARE, 105)
        add(eighths, HAT, 65)
    elif family == "onedrop":
        add([2 * p], KICK, 100)
        add([2 * p], RIM, 95)
        add(eighths, HAT, 60)
    elif family == "dnb":
        add([0, 2 * p + p // 2], KICK, 105)
        add([p, 3 * p], SNARE, 110)
        add([3 * p + p // 2 + 1], SNARE, 55, 0.5)
        add(eighths, HAT, 65)
    elif family == "halftime":
        add([0, 3 * p // 2 + 1], KICK, 105)
        add([2 * p], SNARE, 110)
        add(eighths, HAT, 65)
    elif family == "latin":
        add([0, 3 * p // 2 + 1, 2 * p, 3 * p + p // 2 + 1], KICK, 90)
        add([0, 3 * p // 4 * 1 + 2, 3 * p // 2 + 2, 2 * p + p // 2, 3 * p], CLAVE, 85)
        add([p // 2, p + p // 2, 2 * p + p // 2, 3 * p + p // 2], CONGA, 80)
        add(range(n), SHAKER, 50)
    elif family == "swing":
        add([p, 3 * p], PEDAL_HAT, 80)
        add(beats + [b + 2 for b in beats if b // p % 2], RIDE, 80)
        add(beats, KICK, 45, 0.5)
        add(rng.choice(range(n), 2), SNARE, 50, 0.6)              # comping
    elif family == "waltz":
        add([0], KICK, 100)
        add([p, 2 * p], SNARE, 70)
        add(range(0, n, p // 2), HAT, 55)
    elif family == "folk":
        add([0], KICK, 95)
        add([2 * p], SNARE, 70, 0.7)
        add(range(0, n, p // 2), SHAKER, 55)
    elif family == "march":
        add([0, p], KICK, 100)
        add(range(n), SNARE, 60)
        add([0], CRASH, 80, 0.3)
    elif family in ("jig", "shuffle"):
        add([0] + ([2 * p] if m.beats == 4 else []), KICK, 100)
        add([p] + ([3 * p] if m.beats == 4 else []), SNARE, 95)
        add(range(n), RIDE if family == "shuffle" else HAT, 60)
        add([q for q in range(n) if q % p == 2], PEDAL_HAT, 50, 0.5)
    if half:                     # half-time: the backbeat moves to beat 3 and kicks thin out
        hits = [h for h in hits if h[1] not in (SNARE, CLAP) and not (h[1] == KICK and h[0])]
        hits.append((2 * p, SNARE, 110))
    if fill:                     # a fill in the bar's last beat
        last = (m.beats - 1) * p
        hits = [h for h in hits if h[0] < last]
        for q in range(last, n):
            hits.append((q, int(rng.choice([SNARE, TOM_HI, TOM_MID, TOM_LO])),
                         int(rng.integers(70, 115))))
    return hits


def _chord_hits(kind: str, m: Metre, rng: np.random.Generator) -> list[tuple[int, int]]:
    """(pulse, length in pulses) of the chords in a bar."""
    n, p = m.beats * m.pulses, m.pulses
    if kind == "sustain":
        return [(0, n)]
    if kind == "beat":
        return [(k * p, p) for k in range(m.beats)]
    if kind == "eighths":
        step = max(1, p // 2) if p % 2 == 0 else 1
        return [(q, step) for q in range(0, n, step)]
    if kind in ("offbeat", "skank"):            # on the "and" of each beat
        off = p // 2 if p % 2 == 0 else 2
        return [(k * p + off, max(1, p // 2)) for k in range(m.beats)]
    if kind == "stab16":
        return [(q, 1) for q in sorted(rng.choice(range(n), min(n, 5), replace=False))]
    if kind == "332":                           # 3+3+2 in pulses of an eighth
        step = max(1, p // 2)
        return [(q * step, 2 * step) for q in (0, 3, 6) if q * step < n]
    if kind == "arp":
        step = max(1, p // 2) if p % 2 == 0 else 1
        return [(q, step) for q in range(0, n, step)]
    if kind == "waltz":
        return [(k * p, p) for k in range(1, m.beats)] + [(0, p)]
    if kind == "charleston":
        return [(0, p + p // 2), (p + p // 2 + 1, p)]
    if kind == "montuno":
        return [(q, 1) for q in range(0, n) if q % 4 in (0, 3) or q % 8 == 6]
    return []


def _bass_hits(kind: str, m: Metre, rng: np.random.Generator) -> list[tuple[int, int, int]]:
    """(pulse, length, interval above the chord root) of the bass in a bar."""
    n, p = m.beats * m.pulses, m.pulses
    if kind == "root":
        return [(k * p, p, 0 if k % 2 == 0 else 7) for k in range(m.beats)]
    if kind == "root8":
        step = max(1, p // 2)
        return [(q, step, 0) for q in range(0, n, step)]
    if kind == "root16":
        return [(q, 1, 0) for q in range(0, n, max(1, p // 4))]
    if kind == "synco":
        picks = sorted({0} | set(int(x) for x in rng.choice(range(n), min(n, 4), replace=False)))
        return [(q, max(1, p // 2), int(rng.choice([0, 0, 7, 12, 5]))) for q in picks]
    if kind == "offbass":                       # the house/techno bass between the kicks
        return [(k * p + p // 2, max(1, p // 2), 0) for k in range(m.beats)]
    if kind == "octave":
        step = max(1, p // 2)
        return [(q, step, 12 * (q // step % 2)) for q in range(0, n, step)]
    if kind == "walking":
        return [(k * p, p, int(rng.choice([0, 2, 4, 5, 7, 9, 10]))) for k in range(m.beats)]
    if kind == "tumbao":
        return [(p + p // 2, p, 7), (3 * p, p, 0)]
    return []


def beat_tempi(piece: Piece) -> list[float]:
    """The tempo (bpm) of each beat, from the piece's tempo curve."""
    m = METRES[piece.metre]
    n = piece.bars * m.beats + int(piece.ending)
    k = np.arange(n)
    if piece.tempo_curve == "ramp":
        bpms = piece.bpm + (piece.tempo_end - piece.bpm) * k / max(1, n - 1)
    elif piece.tempo_curve == "step":
        bpms = np.where(k < piece.step_bar * m.beats, piece.bpm, piece.tempo_end)
    else:
        bpms = np.full(n, piece.bpm)
    return [float(b) for b in bpms]


def piece_midi(piece: Piece):
    """The piece as a ``mido.MidiFile`` and its exact annotations."""
    import mido
    rng = np.random.default_rng(list(piece.seed) + [7])
    m = METRES[piece.metre]
    bpms = beat_tempi(piece)
    # MIDI tempos are whole microseconds per quarter note: the annotations use those, and the
    # lead-in's whole ticks, so they are the file's own beat times
    tempos = [int(round(60e6 / bpm / m.beat_quarters)) for bpm in bpms]
    lead = int(round(piece.lead_in * 1e6 / tempos[0] * TPB))
    times = lead * tempos[0] / 1e6 / TPB + np.r_[0.0, np.cumsum(
        np.asarray(tempos[:-1], np.float64) * m.beat_quarters / 1e6)]
    beat_ticks = int(round(m.beat_quarters * TPB))
    pulse_ticks = beat_ticks // m.pulses
    bar_ticks = beat_ticks * m.beats
    scale = MINOR if piece.minor else MAJOR
    events: list[tuple[int, tp.Any]] = []

    def note(ch: int, pitch: int, start: int, length: int, vel: int) -> None:
        pitch = int(np.clip(pitch, 0, 127))
        events.append((start, mido.Message("note_on", channel=ch, note=pitch,
                                           velocity=int(np.clip(vel, 1, 127)))))
        events.append((start + max(1, length), mido.Message("note_off", channel=ch, note=pitch,
                                                            velocity=0)))

    def at(bar: int, pulse: int) -> int:
        t = bar * bar_ticks + pulse * pulse_ticks
        if piece.swing and pulse % 2 == 1 and m.pulses % 2 == 0:
            t += int(piece.swing * pulse_ticks)
        return t + int(rng.integers(-6, 7))        # a human's few ms

    drums = STYLES[piece.style].drums
    for bar in range(piece.bars):
        deg = piece.progression[bar % len(piece.progression)]
        root = 48 + piece.key + scale[deg % 7]
        triad = [48 + piece.key + scale[(deg + j) % 7] + 12 * ((deg + j) // 7) for j in (0, 2, 4)]
        if piece.minor and deg == 4 and rng.random() < 0.7:       # harmonic minor's V
            triad[1] += 1
        if rng.random() < 0.1:                                   # a borrowed chord
            triad = [t + int(rng.choice([-1, 1])) for t in triad]
        for q, length in _chord_hits(piece.chords, m, rng):
            notes = triad if piece.chords != "arp" else [triad[(q // max(1, length)) % 3]]
            for pitch in notes:
                note(0, pitch + 12, at(bar, q), length * pulse_ticks - 10,
                     int(rng.integers(55, 85)))
        for q, length, iv in _bass_hits(piece.bass, m, rng):
            note(1, root - 12 + iv, at(bar, q), length * pulse_ticks - 20,
                 int(rng.integers(75, 100)))
        if piece.melody and rng.random() < 0.8:
            q = 0
            pitch_deg = int(rng.integers(0, 7))
            while q < m.beats * m.pulses:
                length = int(rng.choice([1, 2, 2, 3, 4, 6])) * max(1, m.pulses // 2)
                pitch_deg += int(rng.choice([-2, -1, -1, 0, 1, 1, 2]))
                pitch = 72 + piece.key + scale[pitch_deg % 7] + 12 * (pitch_deg // 7 % 2)
                if rng.random() < 0.15:
                    pitch += 1                                   # a chromatic passing note
                if rng.random() < 0.85:
                    note(2, pitch, at(bar, q), length * pulse_ticks - 15,
                         int(rng.integers(60, 95)))
                q += length
        in_break = piece.breakdown[0] <= bar < piece.breakdown[1]
        if drums != "none" and bar >= piece.drumless_intro and not in_break:
            half = piece.halftime[0] <= bar < piece.halftime[1]
            fill = (bar + 1) % 8 == 0 and rng.random() < 0.5
            for q, drum, vel in _drum_bar(drums, m, rng, half=half, fill=fill):
                note(9, drum, at(bar, q), pulse_ticks // 2, vel)
            if bar == piece.drumless_intro or (bar % 8 == 0 and rng.random() < 0.3):
                note(9, CRASH, at(bar, 0), pulse_ticks, 90)
    if piece.ending:                 # the last downbeat: the tonic held for a bar, then silence
        t0 = at(piece.bars, 0)
        for pitch in (48 + piece.key, 52 + piece.key - int(piece.minor), 55 + piece.key):
            note(0, pitch + 12, t0, bar_ticks, 80)
        note(1, 36 + piece.key, t0, bar_ticks, 90)
        if drums != "none":
            note(9, KICK, t0, pulse_ticks, 110)
            note(9, CRASH, t0, pulse_ticks, 100)
    mid = mido.MidiFile(ticks_per_beat=TPB)
    meta = mido.MidiTrack()
    num, den = (int(x) for x in piece.metre.split("/"))
    meta.append(mido.MetaMessage("time_signature", numerator=num, denominator=den, time=0))
    last = 0
    # one tempo per beat: the quarter note lasts 60 / bpm / beat_quarters seconds; the lead-in
    # is at the first beat's tempo
    for k, tempo in enumerate(tempos):
        tick = 0 if k == 0 else lead + k * beat_ticks
        if k == 0 or tempo != tempos[k - 1]:
            meta.append(mido.MetaMessage("set_tempo", time=tick - last, tempo=tempo))
            last = tick
    mid.tracks.append(meta)
    track = mido.MidiTrack()
    for ch, prog in ((0, piece.program), (1, piece.bass_program), (2, piece.melody_program)):
        track.append(mido.Message("program_change", channel=ch, program=prog, time=0))
    total = lead + piece.bars * bar_ticks
    vol_events = []
    if piece.fade_in or piece.fade_out:           # CC7 ramps over the first / last 4 bars
        for step in range(17):
            for ch in (0, 1, 2, 9):
                if piece.fade_in:
                    vol_events.append((step * 4 * bar_ticks // 16, mido.Message(
                        "control_change", channel=ch, control=7, value=int(30 + 97 * step / 16))))
                if piece.fade_out:
                    vol_events.append((total - 4 * bar_ticks + step * 4 * bar_ticks // 16,
                                       mido.Message("control_change", channel=ch, control=7,
                                                    value=int(127 - 110 * step / 16))))
    evs = sorted([(t + lead, msg) for t, msg in events] + vol_events,
                 key=lambda e: (e[0], e[1].type == "note_on"))
    last = 0
    for t, msg in evs:
        t = max(t, last)
        track.append(msg.copy(time=t - last))
        last = t
    mid.tracks.append(track)
    downbeats = times[::m.beats]
    return mid, {"beats": times, "downbeats": downbeats, "beats_per_bar": m.beats}


def render(mid, sf2: Path, *, sr: int = frontend.SR, reverb: bool = True) -> np.ndarray:
    """FluidSynth renders a ``mido.MidiFile`` to mono float32 at ``sr``."""
    import soundfile as sf
    exe = shutil.which("fluidsynth")
    if exe is None:
        raise ToolkitError("fluidsynth not found: apt-get install fluidsynth")
    with tempfile.TemporaryDirectory() as tmp:
        midi, wav = Path(tmp) / "p.mid", Path(tmp) / "p.wav"
        mid.save(str(midi))
        res = subprocess.run([exe, "-ni", "-q", "-g", "0.5", "-r", str(sr), "-R",
                              "1" if reverb else "0", "-F", str(wav), str(sf2), str(midi)],
                             capture_output=True, text=True)
        if res.returncode != 0 or not wav.is_file():
            raise ToolkitError(f"fluidsynth failed: {(res.stderr or res.stdout).strip()[-300:]}")
        y, file_sr = sf.read(str(wav), dtype="float32", always_2d=True)
    return frontend.mono(y.T, file_sr)


def negative_piece(seed: tp.Sequence[int], *, seconds: float, sf2: Path) -> np.ndarray:
    """Sound with no beat to find, annotated with none: noise with a drifting level, a drone,
    speech-like bursts at an irregular rate, or pad chords changing at irregular times."""
    import mido
    rng = np.random.default_rng(list(seed) + [3])
    sr = frontend.SR
    n = int(seconds * sr)
    t = np.arange(n) / sr
    kind = str(rng.choice(["noise", "drone", "bursts", "pads"]))
    if kind == "noise":
        y = rng.standard_normal(n)
        spec = np.fft.rfft(y) / np.maximum(np.arange(n // 2 + 1), 1) ** rng.uniform(0, 1)
        y = np.fft.irfft(spec, n) * (1 + 0.5 * np.sin(2 * np.pi * rng.uniform(0.02, 0.2) * t))
    elif kind == "drone":
        f0 = rng.uniform(55, 220)
        y = np.sum([np.sin(2 * np.pi * f0 * k * t + rng.uniform(0, 6)) / k
                    for k in range(1, 6)], axis=0)
        y = y * (1 + 0.3 * np.sin(2 * np.pi * rng.uniform(0.03, 0.3) * t))
        y = y + 0.02 * rng.standard_normal(n)
    elif kind == "bursts":
        y = np.zeros(n)
        pos = int(rng.uniform(0, 0.5) * sr)
        while pos < n:
            m = int(rng.uniform(0.06, 0.35) * sr)
            seg = np.hanning(len(y[pos:pos + m]))
            y[pos:pos + m] = seg * np.sin(2 * np.pi * rng.uniform(100, 300) * t[pos:pos + m])
            pos += m + int(rng.exponential(0.25) * sr)
        y = y * (1 + 0.5 * rng.standard_normal(n))
    else:
        mid = mido.MidiFile(ticks_per_beat=TPB)
        track = mido.MidiTrack()
        track.append(mido.Message("program_change", channel=0,
                                  program=int(rng.choice([48, 49, 52, 88, 89, 91, 95])), time=0))
        now = 0.0
        while now < seconds:
            chord = 48 + int(rng.integers(0, 12)) + np.array([0, 4, 7, 12])
            length = int(rng.uniform(1.5, 6.0) * 2 * TPB)          # at 120 bpm: 2 ticks/ms
            for k, p in enumerate(chord):
                track.append(mido.Message("note_on", channel=0, note=int(p), velocity=70,
                                          time=int(rng.integers(0, 300)) if k == 0 else 0))
            for k, p in enumerate(chord):
                track.append(mido.Message("note_off", channel=0, note=int(p), velocity=0,
                                          time=length if k == 0 else 0))
            now += length / (2 * TPB)
        mid.tracks.append(track)
        y = render(mid, sf2)
    y = np.pad(np.asarray(y, np.float32)[:n], (0, max(0, n - len(y))))
    peak = float(np.abs(y).max()) or 1.0
    return (y / peak * 10 ** (rng.uniform(-20, -1) / 20)).astype(np.float32)


def synth_piece(seed: tp.Sequence[int], *, seconds: float) -> tuple[np.ndarray, dict]:
    """A piece of the sample set's own synthesis and its beats (from its drawn tempo; 16
    steps to the bar of four)."""
    rng = np.random.default_rng(list(seed))
    genre = str(rng.choice(sorted(GENRES)))
    stems, drawn = render_track(genre, int(rng.integers(1, 10 ** 6)),
                                seed=int(rng.integers(10 ** 6, 10 ** 7)), seconds=seconds)
    y = frontend.mono(np.sum(list(stems.values()), axis=0), 44100)
    beats = np.arange(0.0, seconds, 60.0 / drawn["bpm"])
    return y, {"beats": beats, "downbeats": beats[::4], "beats_per_bar": 4, "style":
               f"synth-{genre}", "bpm": drawn["bpm"]}


# ---------------------------------------------------------------------------------------------
# Augmentation


def _biquad_shelves(y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random low shelf, high shelf and peak (RBJ cookbook filters, +-9 dB)."""
    from scipy.signal import lfilter
    sr = frontend.SR
    for kind, f0 in (("low", rng.uniform(80, 400)), ("high", rng.uniform(2000, 8000)),
                     ("peak", np.exp(rng.uniform(np.log(200), np.log(5000))))):
        gain = rng.uniform(-9, 9)
        a_ = 10 ** (gain / 40)
        w = 2 * np.pi * f0 / sr
        cw, sw = np.cos(w), np.sin(w)
        if kind == "peak":
            alpha = sw / 2
            b = [1 + alpha * a_, -2 * cw, 1 - alpha * a_]
            a = [1 + alpha / a_, -2 * cw, 1 - alpha / a_]
        else:
            alpha = sw / 2 * np.sqrt(2)
            s = 1 if kind == "low" else -1
            sq = 2 * np.sqrt(a_) * alpha
            b = [a_ * ((a_ + 1) - s * (a_ - 1) * cw + sq),
                 2 * s * a_ * ((a_ - 1) - s * (a_ + 1) * cw),
                 a_ * ((a_ + 1) - s * (a_ - 1) * cw - sq)]
            a = [(a_ + 1) + s * (a_ - 1) * cw + sq, -2 * s * ((a_ - 1) + s * (a_ + 1) * cw),
                 (a_ + 1) + s * (a_ - 1) * cw - sq]
        y = lfilter(np.array(b) / a[0], np.array(a) / a[0], y).astype(np.float32)
    return y


def _reverb(y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    from scipy.signal import fftconvolve
    sr = frontend.SR
    rt60 = rng.uniform(0.3, 2.5)
    n = int(rt60 * sr)
    ir = rng.standard_normal(n) * np.exp(-6.9 * np.arange(n) / n)
    wet = fftconvolve(y, ir)[:len(y)]
    wet *= np.sqrt(np.mean(y ** 2) / max(np.mean(wet ** 2), 1e-12))
    mix = rng.uniform(0.1, 0.4)
    return ((1 - mix) * y + mix * wet).astype(np.float32)


def _noise(y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    snr = rng.uniform(15, 40)
    n = rng.standard_normal(len(y))
    if rng.random() < 0.5:                      # pink: 1/f power
        spec = np.fft.rfft(n)
        spec /= np.sqrt(np.maximum(np.arange(len(spec)), 1))
        n = np.fft.irfft(spec, len(y))
    n *= np.sqrt(np.mean(y ** 2) / max(np.mean(n ** 2), 1e-12)) * 10 ** (-snr / 20)
    return (y + n).astype(np.float32)


def _codec(y: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, str]:
    ext = str(rng.choice([".mp3", ".m4a", ".ogg"]))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"c{ext}"
        write_audio_blocks(path, [y[None]], frontend.SR, 1,
                           compression_level=float(rng.uniform(0.5, 0.9)) if ext != ".m4a"
                           else None)
        back, sr = load_audio(path, mono=True)
    out = frontend.mono(back, sr)[:len(y)]
    return np.pad(out, (0, len(y) - len(out))), ext[1:]


def augment(y: np.ndarray, truth: dict, rng: np.random.Generator) -> tuple[np.ndarray, dict,
                                                                         list[str]]:
    """A random chain of augmentations; the beat times scaled where the tempo changes."""
    done = []
    if rng.random() < 0.25:
        rate = float(rng.uniform(0.85, 1.18))
        semis = float(rng.choice([0.0, rng.uniform(-3, 3)]))
        y = stretch(y, frontend.SR, rate=rate, semitones=semis)
        truth = {**truth, "beats": truth["beats"] / rate, "downbeats": truth["downbeats"] / rate}
        done.append(f"stretch {rate:.3f} {semis:+.2f} st")
    elif rng.random() < 0.15:
        semis = float(rng.uniform(-3, 3))
        y = stretch(y, frontend.SR, semitones=semis)
        done.append(f"pitch {semis:+.2f} st")
    if rng.random() < 0.5:
        y = _biquad_shelves(y, rng)
        done.append("eq")
    if rng.random() < 0.3:
        y = _reverb(y, rng)
        done.append("reverb")
    if rng.random() < 0.25:
        y = _noise(y, rng)
        done.append("noise")
    peak = float(np.abs(y).max()) or 1.0
    y = y / peak * 10 ** (rng.uniform(-20, -0.5) / 20)
    done.append("gain")
    if rng.random() < 0.3:
        y, codec = _codec(y.astype(np.float32), rng)
        done.append(codec)
    return y.astype(np.float32), truth, done


# ---------------------------------------------------------------------------------------------
# Shards


def make_piece(split: str, shard: int, index: int, *, seconds: float,
               augmentation: bool = True, audio_to: Path | None = None
               ) -> tuple[np.ndarray, dict]:
    """One piece of a split: its network input frames (frames, 128) and annotations; with
    ``audio_to``, its audio too, as FLAC (what the benchmark's other trackers read)."""
    cfg = SPLITS[split]
    seed = (cfg["seed"], shard, index)
    rng = np.random.default_rng(list(seed) + [1])
    draw = rng.random()
    if draw < cfg.get("negative_share", 0.0):
        sf2 = soundfont_path(str(rng.choice(cfg["soundfonts"])))
        y = negative_piece(seed, seconds=seconds, sf2=sf2)
        truth: dict[str, tp.Any] = {"beats": np.zeros(0), "downbeats": np.zeros(0),
                                    "beats_per_bar": 0}
        source = "negative"
        meta = {"style": "none", "bpm": 0.0, "metre": "none", "tempo_curve": "none"}
    elif draw < cfg.get("negative_share", 0.0) + cfg["synth_share"]:
        y, truth = synth_piece(seed, seconds=seconds)
        source = "sample-synth"
        meta = {"style": truth.pop("style"), "bpm": truth.pop("bpm"), "metre": "4/4",
                "tempo_curve": "steady"}
    else:
        piece = draw_piece(seed, seconds=seconds)
        sf2 = soundfont_path(str(rng.choice(cfg["soundfonts"])))
        mid, truth = piece_midi(piece)
        y = render(mid, sf2, reverb=bool(rng.random() < 0.6))
        source = sf2.name
        meta = {"style": piece.style, "bpm": round(piece.bpm, 2), "metre": piece.metre,
                "tempo_curve": piece.tempo_curve, "drumless_intro": piece.drumless_intro,
                "key": piece.key, "mode": "minor" if piece.minor else "major"}
    aug: list[str] = []
    if augmentation:
        y, truth, aug = augment(y, truth, rng)
    n = min(len(y), int(seconds * frontend.SR))
    y = y[:n]
    frames = frontend.log_mel(frontend.spectrogram(y))
    end = n / frontend.SR
    beats = np.asarray(truth["beats"])
    downs = np.asarray(truth["downbeats"])
    meta.update(source=source, seed=list(seed), augment=aug, seconds=round(end, 3),
                beats_per_bar=int(truth["beats_per_bar"]))
    if audio_to is not None:
        name = f"{split}-{shard:05d}-{index:03d}.flac"
        write_audio_blocks(audio_to / name, [y[None]], frontend.SR, 1)
        meta["audio"] = name
    return frames, {"beats": beats[beats < end], "downbeats": downs[downs < end], "meta": meta}


def write_shard(out: str | os.PathLike, split: str, shard: int, *, pieces: int,
                seconds: float, augmentation: bool = True) -> Path:
    """Shard ``shard`` of ``split`` (``pieces`` pieces), written atomically; kept if there."""
    import h5py
    path = shard_path(Path(out), split, shard)
    if path.is_file():
        return path
    audio_to = path.parent / f"{split}-audio" if SPLITS[split].get("keep_audio") else None
    made = [make_piece(split, shard, i, seconds=seconds, augmentation=augmentation,
                       audio_to=audio_to) for i in range(pieces)]
    buf = io.BytesIO()
    with h5py.File(buf, "w") as f:
        f.create_dataset("mel", data=np.concatenate([m for m, _ in made]).astype(np.float16),
                         compression="gzip", compression_opts=1)
        f["offsets"] = np.cumsum([0] + [len(m) for m, _ in made])
        for key in ("beats", "downbeats"):
            f[key] = np.concatenate([t[key] for _, t in made]).astype(np.float64)
            f[f"{key}_offsets"] = np.cumsum([0] + [len(t[key]) for _, t in made])
        f["meta"] = json.dumps([t["meta"] for _, t in made])
        f.attrs.update(split=split, shard=shard, fps=frontend.FPS, n_mels=frontend.N_MELS,
                       seconds=seconds)
    atomic_write_bytes(path, buf.getvalue())
    return path


def _write_shard_job(job: tuple) -> str:
    from threadpoolctl import threadpool_limits
    out, split, shard, pieces, seconds, augmentation = job
    with threadpool_limits(1):
        return str(write_shard(out, split, shard, pieces=pieces, seconds=seconds,
                               augmentation=augmentation))


def write_corpus(out: str | os.PathLike, split: str, *, shards: int, pieces_per_shard: int = 20,
                 seconds: float = 30.0, workers: int = 1, shard_of: tuple[int, int] = (0, 1),
                 augmentation: bool = True, progress: bool = True) -> list[Path]:
    """The shards of ``split`` in ``out`` (those already written are kept: resumable).
    ``shard_of = (i, n)`` builds shards i, i + n, i + 2n, ... (cluster array jobs)."""
    if split not in SPLITS:
        raise ToolkitError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    i, n = shard_of
    if not 0 <= i < n:
        raise ToolkitError(f"--shard I/N needs 0 <= I < N, got {i}/{n}")
    for name in SPLITS[split]["soundfonts"]:
        soundfont_path(name)                    # every soundfont is there before any work
    Path(out).mkdir(parents=True, exist_ok=True)
    todo = [s for s in range(i, shards, n) if not shard_path(Path(out), split, s).is_file()]
    jobs = [(str(out), split, s, pieces_per_shard, seconds, augmentation) for s in todo]
    bar = tqdm(total=len(jobs), desc=f"{split} shards", unit="shard", disable=not progress)
    if workers <= 1:
        for job in jobs:
            _write_shard_job(job)
            bar.update()
    else:
        with ProcessPoolExecutor(workers) as ex:
            for _ in ex.map(_write_shard_job, jobs):
                bar.update()
    bar.close()
    return [shard_path(Path(out), split, s) for s in range(i, shards, n)]
