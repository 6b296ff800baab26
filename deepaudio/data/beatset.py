"""Music with exact beat and bar times: MIDI pieces written here, rendered by FluidSynth.

The beat tracker (:mod:`deepaudio.analysis.beats`) is measured on audio whose beats are known
exactly (``bench/beats.py``): General MIDI pieces in several styles, tempi and metres (4/4,
3/4 and 6/8), each a drum kit on channel 10, a bass line and chords, written with ``mido``
and rendered to WAV by FluidSynth (Debian's ``fluidsynth``) with a General MIDI soundfont
(Debian's ``timgm6mb-soundfont`` by default). The annotations come from the MIDI itself: a
constant tempo, so beat *k* is at ``k * 60 / bpm`` after the first note (which follows a
0.3 s rest, so no beat falls on mir_eval's 5 s cut); in 6/8 the beat is the
dotted quarter (two per bar), as beat annotations of compound metre usually count it; bars
start on downbeats. Each piece is ``<name>.mid``, ``<name>.wav`` and ``<name>.json``
(``beats``, ``downbeats``, ``bpm``, ``metre``, ``style``).
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np

from deepaudio.core.errors import ToolkitError
from deepaudio.core.files import atomic_write_json

SOUNDFONTS = ("/usr/share/sounds/sf2/TimGM6mb.sf2", "/usr/share/sounds/sf2/FluidR3_GM.sf2")
TPB = 480                        # MIDI ticks per quarter note
LEAD_IN_S = 0.3                  # a rest before the first note (no beat on mir_eval's 5 s cut)
KICK, SNARE, HAT, OPEN_HAT, RIDE, CLAP, SHAKER = 36, 38, 42, 46, 51, 39, 70


@dataclasses.dataclass(frozen=True)
class Piece:
    name: str
    style: str
    bpm: float                   # beats per minute (the dotted quarter in 6/8)
    metre: str                   # "4/4", "3/4" or "6/8"
    program: int                 # GM program of the chords
    bass_program: int
    drums: dict                  # drum note -> hits per bar, in the bar's pulses (see below)
    pulses: int                  # pulses per bar the drum pattern counts in
    swing: float = 0.0           # delay of every second pulse, as a fraction of a pulse


# Several styles, tempi and metres; drum patterns in pulses (16ths in 4/4, 8ths in 3/4 and 6/8)
PIECES = (
    Piece("rock_4-4_124", "rock", 124, "4/4", 29, 33,
          {KICK: (0, 8, 10), SNARE: (4, 12), HAT: tuple(range(0, 16, 2))}, 16),
    Piece("house_4-4_126", "house", 126, "4/4", 81, 38,
          {KICK: (0, 4, 8, 12), CLAP: (4, 12), OPEN_HAT: (2, 6, 10, 14)}, 16),
    Piece("hiphop_4-4_88", "hip-hop", 88, "4/4", 4, 34,
          {KICK: (0, 7, 10), SNARE: (4, 12), HAT: tuple(range(0, 16, 2))}, 16, swing=0.3),
    Piece("ballad_4-4_68", "ballad", 68, "4/4", 0, 32,
          {KICK: (0, 10), SNARE: (8,), RIDE: (0, 4, 8, 12)}, 16),
    Piece("funk_4-4_104", "funk", 104, "4/4", 17, 36,
          {KICK: (0, 3, 10), SNARE: (4, 12), HAT: tuple(range(16))}, 16),
    Piece("waltz_3-4_150", "waltz", 150, "3/4", 48, 32,
          {KICK: (0,), SNARE: (2, 4), HAT: (0, 1, 2, 3, 4, 5)}, 6),
    Piece("folk_3-4_96", "folk", 96, "3/4", 24, 32,
          {KICK: (0,), SHAKER: (0, 1, 2, 3, 4, 5), SNARE: (4,)}, 6),
    Piece("jig_6-8_116", "jig", 116, "6/8", 21, 32,
          {KICK: (0,), SNARE: (3,), HAT: (0, 1, 2, 3, 4, 5)}, 6),
    Piece("shuffle_6-8_72", "blues", 72, "6/8", 16, 33,
          {KICK: (0, 5), SNARE: (3,), RIDE: (0, 1, 2, 3, 4, 5)}, 6),
)
PROGRESSION = (0, 5, 3, 4)            # I vi IV V in degrees of the major scale
MAJOR = (0, 2, 4, 5, 7, 9, 11)


def _beats_per_bar(metre: str) -> int:
    return {"4/4": 4, "3/4": 3, "6/8": 2}[metre]


def piece_midi(piece: Piece, seconds: float, *, key: int = 0):
    """The piece as a ``mido.MidiFile`` and its annotations (beat and downbeat times from the
    first note, in seconds)."""
    import mido
    beats_per_bar = _beats_per_bar(piece.metre)
    beat_quarters = 1.5 if piece.metre == "6/8" else 1.0
    quarter_s = 60.0 / piece.bpm / beat_quarters
    bar_ticks = int(round(beats_per_bar * beat_quarters * TPB))
    pulse_ticks = bar_ticks // piece.pulses
    bars = int(np.ceil(seconds / (beats_per_bar * beat_quarters * quarter_s)))   # whole bars
    mid = mido.MidiFile(ticks_per_beat=TPB)
    meta = mido.MidiTrack()
    num, den = (int(x) for x in piece.metre.split("/"))
    meta += [mido.MetaMessage("set_tempo", tempo=int(round(quarter_s * 1e6)), time=0),
             mido.MetaMessage("time_signature", numerator=num, denominator=den, time=0)]
    mid.tracks.append(meta)
    events: dict[str, list[tuple[int, mido.Message]]] = {"drums": [], "bass": [], "chords": []}
    rng = np.random.default_rng(len(piece.name))

    def note(part: str, channel: int, pitch: int, start: int, length: int, vel: int) -> None:
        events[part].append((start, mido.Message("note_on", channel=channel, note=pitch,
                                                 velocity=vel)))
        events[part].append((start + length, mido.Message("note_off", channel=channel,
                                                           note=pitch, velocity=0)))

    for bar in range(bars):
        t0 = bar * bar_ticks
        degree = PROGRESSION[bar % len(PROGRESSION)]
        root = 48 + key + MAJOR[degree]
        triad = [root + MAJOR[(degree + k) % 7] - MAJOR[degree] + 12 * ((degree + k) // 7)
                 for k in (0, 2, 4)]
        for pitch in triad:                                   # chords: one per bar
            note("chords", 0, pitch + 12, t0, bar_ticks - 20, 70)
        beat_ticks = bar_ticks // beats_per_bar
        for b in range(beats_per_bar):                        # bass: root on each beat
            pitch = root - 12 + (7 if b % 2 and beats_per_bar > 2 else 0)
            note("bass", 1, pitch, t0 + b * beat_ticks, beat_ticks - 30, 90 if b == 0 else 75)
        for drum, hits in piece.drums.items():
            for p in hits:
                start = t0 + p * pulse_ticks
                if p % 2 == 1:
                    start += int(piece.swing * pulse_ticks)
                accent = 110 if p == 0 else 85 + int(rng.integers(0, 15))
                note("drums", 9, drum, start, pulse_ticks // 2, accent)
    programs = {"chords": (0, piece.program), "bass": (1, piece.bass_program)}
    lead = int(round(LEAD_IN_S / quarter_s * TPB))
    for part, evs in events.items():
        track = mido.MidiTrack()
        if part in programs:
            ch, prog = programs[part]
            track.append(mido.Message("program_change", channel=ch, program=prog, time=0))
        last = -lead
        for t, msg in sorted(evs, key=lambda e: (e[0], e[1].type == "note_on")):
            track.append(msg.copy(time=t - last))
            last = t
        mid.tracks.append(track)
    beat_s = beat_quarters * quarter_s
    n_beats = bars * beats_per_bar
    beats = lead * quarter_s / TPB + np.arange(n_beats) * beat_s   # every beat written
    return mid, {"beats": beats.round(6).tolist(),
                 "downbeats": beats[::beats_per_bar].round(6).tolist(),
                 "bpm": piece.bpm, "metre": piece.metre, "style": piece.style,
                 "beats_per_bar": beats_per_bar}


def soundfont() -> Path:
    for sf in SOUNDFONTS:
        if Path(sf).is_file():
            return Path(sf)
    raise ToolkitError("no General MIDI soundfont: apt-get install timgm6mb-soundfont "
                       f"(looked for {', '.join(SOUNDFONTS)})")


def render_midi(mid_path: Path, wav_path: Path, *, sr: int = 44100,
                sf2: Path | None = None) -> Path:
    """FluidSynth renders ``mid_path`` to ``wav_path`` (offline, no audio device)."""
    exe = shutil.which("fluidsynth")
    if exe is None:
        raise ToolkitError("fluidsynth not found: apt-get install fluidsynth")
    part = wav_path.with_name(f".{wav_path.name}.part.wav")
    res = subprocess.run([exe, "-ni", "-q", "-g", "0.6", "-r", str(sr), "-F", str(part),
                          str(sf2 or soundfont()), str(mid_path)], capture_output=True,
                         text=True)
    if res.returncode != 0 or not part.is_file():
        part.unlink(missing_ok=True)
        raise ToolkitError(f"fluidsynth failed on {mid_path.name}: "
                           f"{(res.stderr or res.stdout).strip()[-300:]}")
    part.replace(wav_path)
    return wav_path


def write_beat_set(out_dir: str | Path, *, seconds: float = 30.0, sr: int = 44100,
                   pieces: tuple[Piece, ...] = PIECES) -> list[Path]:
    """Every piece as MIDI, WAV and JSON annotations in ``out_dir``; returns the WAVs.
    Pieces already rendered are kept."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    wavs = []
    for k, piece in enumerate(pieces):
        wav = out / f"{piece.name}.wav"
        if not (wav.is_file() and (out / f"{piece.name}.json").is_file()):
            mid, truth = piece_midi(piece, seconds, key=(5 * k) % 12)
            mid.save(str(out / f"{piece.name}.mid"))
            render_midi(out / f"{piece.name}.mid", wav, sr=sr)
            atomic_write_json(out / f"{piece.name}.json", truth)
        wavs.append(wav)
    return wavs


def load_truth(wav: Path) -> dict:
    return json.loads(wav.with_suffix(".json").read_text())
