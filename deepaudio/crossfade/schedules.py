"""Stem schedules: one gain curve per stem of each song across a beat-synchronous transition.

A schedule says, for each stem of A, where in the overlap it fades out, and for each stem of
B where it fades in, in beats from the overlap's first beat (A's downbeat, beat 0) to its last
(beat L). Each ramp is one of the crossfade styles (:data:`deepaudio.crossfade.render.RAMPS`,
but ``random_linear``) between ``start`` and ``end``; ``start == end`` is a switch on that beat
(a :data:`SWITCH_SECONDS` equal-power ramp beginning on it, so it does not click). A stem a
schedule does not name follows the whole-mix ramp (``default``: the transition's style over
the whole overlap), and so does whatever the stems miss of their song (the mix minus the sum of
its stems), so a schedule with no stems renders exactly today's whole-mix fade.

Named schedules, for an overlap of L beats (a multiple of 4):

=================  ==========================================================================
``bass_swap``      A's bass out and B's bass in on the same downbeat, L/2 (rounded to a bar);
                   the other stems cross over the whole overlap (two bass lines never sound
                   together: they beat against each other and muddy the low end)
``vocal_handoff``  A's vocals fade out over the first half, ending on the middle downbeat;
                   B's vocals start on it and fade in over the second half: never two lead
                   vocals at once. The bass swaps on that downbeat too.
``drums_first``    B's drums fade in over the first quarter, under A; B's other stems come in
                   over the rest; A's drums leave over the last half, its other stems cross
                   over the whole overlap
=================  ==========================================================================

A custom schedule is JSON (a file or a dict), checked like every config::

    {"default": {"shape": "equal_power"},
     "stems": {"bass":   {"a": {"shape": "linear", "start": 8, "end": 8},
                          "b": {"shape": "linear", "start": 8, "end": 8}},
               "vocals": {"a": {"start": 0, "end": 6}, "b": {"start": 10, "end": 16}}}}

``beats`` (optional) fixes the overlap length; ``start``/``end`` must lie within it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import typing as tp
from pathlib import Path

import numpy as np

from deepaudio.core.config import ConfigError, load_config
from deepaudio.crossfade.render import RAMPS, ramp

SCHEDULES = ("bass_swap", "vocal_handoff", "drums_first")
SHAPES = tuple(s for s in RAMPS if s != "random_linear")
SWITCH_SECONDS = 0.01          # a switch on a beat is a 10 ms equal-power ramp from it



@dataclasses.dataclass(frozen=True)
class StemRamp:
    """One song's stem fading (A: out, B: in) from beat ``start`` to beat ``end``."""
    start: float = 0.0
    end: float = 0.0
    shape: str = "equal_power"

    def validate(self) -> None:
        if self.shape not in SHAPES:
            raise ConfigError(f"key 'shape' must be one of {', '.join(SHAPES)}, "
                              f"got {self.shape!r}")
        if self.end < self.start:
            raise ConfigError(f"key 'end' ({self.end:g}) is before key 'start' "
                              f"({self.start:g})")
        if self.start < 0:
            raise ConfigError(f"key 'start' must be >= 0 beats, got {self.start:g}")

    def to_json(self) -> dict:
        return {"shape": self.shape, "start": self.start, "end": self.end}


@dataclasses.dataclass(frozen=True)
class Schedule:
    """Per stem name, A's and B's ramps (either may be absent: the default ramp then)."""
    name: str
    stems: dict[str, dict[str, StemRamp]]
    beats: int | None = None            # a custom schedule's fixed overlap length
    default_shape: str = "equal_power"

    def ramp_for(self, stem: str, song: str, beats: int) -> StemRamp:
        r = self.stems.get(stem, {}).get(song)
        return r if r is not None else StemRamp(0.0, float(beats), self.default_shape)

    def to_json(self, beats: int, stems: tp.Mapping[str, tp.Sequence[str]]) -> dict:
        """The resolved ramps of every stem each song has, in beats."""
        return {"name": self.name, "beats": beats, "default_shape": self.default_shape,
                "stems": {song: {s: self.ramp_for(s, song, beats).to_json() for s in names}
                          for song, names in stems.items()}}


def named_schedule(name: str, beats: int, *, default_shape: str = "equal_power") -> Schedule:
    """``bass_swap``, ``vocal_handoff`` or ``drums_first`` for an overlap of ``beats``."""
    if beats % 4 or beats < 8:
        raise ConfigError(f"a stem schedule needs an overlap of whole bars, >= 8 beats; "
                          f"got {beats}")
    mid = float(4 * round(beats / 8))            # the middle downbeat
    whole = float(beats)
    switch = {"a": StemRamp(mid, mid), "b": StemRamp(mid, mid)}
    if name == "bass_swap":
        stems = {"bass": switch}
    elif name == "vocal_handoff":
        stems = {"vocals": {"a": StemRamp(0.0, mid, default_shape),
                            "b": StemRamp(mid, whole, default_shape)},
                 "bass": switch}
    elif name == "drums_first":
        quarter = float(4 * max(1, round(beats / 16)))
        stems = {"drums": {"a": StemRamp(mid, whole, default_shape),
                           "b": StemRamp(0.0, quarter, default_shape)}}
        for s in ("bass", "other", "vocals", "guitar", "piano", "no_vocals"):
            stems[s] = {"b": StemRamp(quarter, whole, default_shape)}
    else:
        raise ConfigError(f"unknown schedule {name!r} (schedules: {', '.join(SCHEDULES)}, "
                          "or a JSON file)")
    return Schedule(name, stems, None, default_shape)


@dataclasses.dataclass
class _CustomFile:
    stems: dict
    default: dict = dataclasses.field(default_factory=dict)
    beats: int | None = None
    name: str = "custom"


@dataclasses.dataclass
class _Default:
    shape: str = "equal_power"

    def validate(self) -> None:
        StemRamp(shape=self.shape).validate()


@dataclasses.dataclass
class _StemEntry:
    a: dict | None = None
    b: dict | None = None


def custom_schedule(source: dict | str | os.PathLike, *, stems_a: tp.Sequence[str],
                    stems_b: tp.Sequence[str]) -> Schedule:
    """A schedule from JSON; every stem it names must be a stem of the song it applies to,
    and every key is checked (the error names it: ``schedule.stems.bass.a.end``)."""
    where = "schedule"
    if not isinstance(source, dict):
        path = Path(source)
        where = str(path)
        try:
            source = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise ConfigError(f"{where}: not a readable JSON schedule ({e})") from None
    top = load_config(_CustomFile, source, where=where)
    default = load_config(_Default, top.default, where=f"{where}.default")
    if top.beats is not None and (top.beats % 4 or not 8 <= top.beats <= 64):
        raise ConfigError(f"{where}.beats must be a multiple of 4 in [8, 64], got {top.beats}")
    stems: dict[str, dict[str, StemRamp]] = {}
    have = {"a": list(stems_a), "b": list(stems_b)}
    for stem, entry in top.stems.items():
        if not isinstance(entry, dict):
            raise ConfigError(f"{where}.stems.{stem} must be an object with 'a' and/or 'b'")
        ramps = load_config(_StemEntry, entry, where=f"{where}.stems.{stem}")
        for song in ("a", "b"):
            spec = getattr(ramps, song)
            if spec is None:
                continue
            if stem not in have[song]:
                raise ConfigError(
                    f"{where}.stems.{stem}.{song}: the {'first' if song == 'a' else 'second'}"
                    f" song has no stem {stem!r} (its stems: {', '.join(have[song]) or 'none'})")
            spec = {"shape": default.shape, **spec}
            r = load_config(StemRamp, spec, where=f"{where}.stems.{stem}.{song}")
            if top.beats is not None and r.end > top.beats:
                raise ConfigError(f"{where}.stems.{stem}.{song}.end: {r.end:g} is past the "
                                  f"overlap's {top.beats} beats")
            stems.setdefault(stem, {})[song] = r
    return Schedule(top.name, stems, top.beats, default.shape)


def check_fits(schedule: Schedule, beats: int) -> None:
    """Every ramp of the schedule lies within an overlap of ``beats``."""
    for stem, songs in schedule.stems.items():
        for song, r in songs.items():
            if r.end > beats:
                raise ConfigError(f"schedule.stems.{stem}.{song}.end: {r.end:g} is past the "
                                  f"overlap's {beats} beats")


def curve(r: StemRamp, song: str, beat_samples: tp.Callable[[np.ndarray], np.ndarray],
          n: int, sr: int) -> np.ndarray:
    """The gain (n,) of one song's stem on a timeline of ``n`` samples: A's is 1 before its
    ramp and 0 after, B's the reverse. ``beat_samples`` maps beats to timeline samples."""
    s0, s1 = (float(v) for v in beat_samples(np.array([r.start, r.end])))
    i0 = int(round(s0))
    i1 = max(int(round(s1)), i0 + max(1, int(round(SWITCH_SECONDS * sr))))
    shape = "equal_power" if r.end == r.start else r.shape
    g_out, g_in = ramp(shape, i1 - i0)
    g = np.zeros(n)
    if song == "a":
        g[:max(0, min(i0, n))] = 1.0
        part = g_out
    else:
        g[max(0, i1):] = 1.0
        part = g_in
    lo, hi = max(0, i0), min(n, i1)
    if hi > lo:
        g[lo:hi] = part[lo - i0:hi - i0]
    return g


REST = "rest"                  # the part of a song its stems miss: it follows the default ramp


def split_parts(mix: np.ndarray, stems: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """A song as its stems plus :data:`REST` (the mix minus their sum), all shaped like the
    mix (stems padded or cut to its length): the parts add up to the mix exactly."""
    n = mix.shape[1]
    parts = {}
    for name, x in stems.items():
        if name == REST:
            raise ConfigError(f"a stem may not be called {REST!r}")
        y = np.zeros_like(mix)
        m = min(n, x.shape[1])
        y[:, :m] = x[:mix.shape[0], :m] if x.shape[0] >= mix.shape[0] else x[:1, :m]
        parts[name] = y
    rest = mix.copy()
    for y in parts.values():           # in place: no (stems, C, N) stack
        rest -= y
    parts[REST] = rest
    return parts


def group_parts(parts: dict[str, np.ndarray], schedule: Schedule, song: str
                ) -> dict[str, np.ndarray]:
    """The stems ``schedule`` gives their own ramp in ``song``, and everything else summed
    into :data:`REST` (it all follows the default ramp: one part to stretch, not many)."""
    named = {k: v for k, v in parts.items() if k != REST and song in schedule.stems.get(k, {})}
    rest = [v for k, v in parts.items() if k not in named]
    total = rest[0].copy() if len(rest) > 1 else rest[0]
    for v in rest[1:]:
        total += v
    return {**named, REST: total}


def beat_mapper(plan: dict, sr: int, origin_s: float) -> tp.Callable[[np.ndarray], np.ndarray]:
    """Beats of the overlap (0..L, fractional, extrapolated) to samples of a timeline that
    starts at ``origin_s`` in A's (plan) coordinates."""
    times = np.asarray(plan["overlap_beat_times_s"], dtype=np.float64)
    k = np.arange(len(times))
    ibi = (times[-1] - times[0]) / (len(times) - 1)

    def to_samples(beats: np.ndarray) -> np.ndarray:
        beats = np.asarray(beats, dtype=np.float64)
        t = np.interp(beats, k, times)
        t = np.where(beats > k[-1], times[-1] + (beats - k[-1]) * ibi, t)
        t = np.where(beats < 0, times[0] + beats * ibi, t)
        return (t - origin_s) * sr
    return to_samples


def apply_schedule(out: dict, schedule: Schedule, plan: dict, sr: int, *,
                   stems: tp.Mapping[str, tp.Sequence[str]], a_offset: float = 0.0) -> dict:
    """Re-mix a beat-synchronous render from its parts (``out['parts_a']`` / ``['parts_b']``:
    :func:`split_parts` of each song, placed by
    :func:`deepaudio.crossfade.render.render_beat_sync`) with one gain curve per stem; the
    :data:`REST` follows the whole-mix ramp (``out['g_out']`` / ``['g_in']``). Sets
    ``out['audio']`` and ``out['stem_gains']`` (``{'a': {stem: gains}, 'b': ...}`` on the
    output timeline, for every stem in ``stems``, each song's stem names) and returns the
    resolved schedule (JSON)."""
    beats = int(plan["beats"])
    check_fits(schedule, beats)
    n = out["audio"].shape[1]
    origin = a_offset + out["timeline_start"] / sr
    to_samples = beat_mapper(plan, sr, origin)
    mix = np.zeros_like(out["audio"])
    gains: dict[str, dict[str, np.ndarray]] = {"a": {}, "b": {}}
    for song, default in (("a", out["g_out"]), ("b", out["g_in"])):
        for name, part in out[f"parts_{song}"].items():
            named = schedule.stems.get(name, {}).get(song)
            g = default if named is None else curve(named, song, to_samples, n, sr)
            gains[song][name] = g
            mix += part * g.astype(np.float32)
    for song, default in (("a", out["g_out"]), ("b", out["g_in"])):
        for name in stems[song]:
            gains[song].setdefault(name, default)       # grouped into the rest
    out["audio"] = mix.astype(np.float32)
    out["stem_gains"] = gains
    return schedule.to_json(beats, {s: list(names) for s, names in stems.items()})


def gain_at(schedule: Schedule, stem: str, song: str, beats: int,
            at: np.ndarray) -> np.ndarray:
    """A stem's gain at overlap positions ``at`` (beats), as :func:`curve` draws it (a switch
    is a step on its beat)."""
    r = schedule.ramp_for(stem, song, beats)
    at = np.asarray(at, dtype=np.float64)
    if r.end <= r.start:
        x = (at >= r.start).astype(np.float64)
    else:
        x = np.clip((at - r.start) / (r.end - r.start), 0.0, 1.0)
    g_out, g_in = ramp("equal_power" if r.end <= r.start else r.shape, 1001)
    idx = np.round(x * 1000).astype(int)
    return g_out[idx] if song == "a" else g_in[idx]
