"""Crossfading two songs: decoding their edges, trimming silence, matching loudness, and
rendering a simple or beat-synchronous transition with its JSON sidecar.

Every output comes with a sidecar (``OUT.json``): trims, loudness gain, tempi, offsets,
stretch, mode, style and seeds. Output audio is float32 ``(channels, samples)``, stereo when a
song is. Beat-synchronous mode decodes only the end of A and the start of B
(:data:`deepaudio.crossfade.plan.EDGE_SECONDS`), so silence thresholds and loudness are
measured on those parts; ``context=None`` ("full") decodes all.
"""

from __future__ import annotations

import os
import typing as tp
from pathlib import Path

import numpy as np

from deepaudio.analysis.key import NoKeyError, compatible_shift, estimate_key, key_relation
from deepaudio.core.audio import audio_info, load_audio, save_audio, to_channels
from deepaudio.core.config import ConfigError
from deepaudio.core.errors import ToolkitError
from deepaudio.core.files import atomic_write_json
from deepaudio.core.gain import db_to_gain
from deepaudio.core.stretch import stretch
from deepaudio.crossfade import render as cr
from deepaudio.crossfade.plan import EDGE_SECONDS, analyse_pair, candidate_plans
from deepaudio.crossfade.planner import score_candidates
from deepaudio.crossfade.schedules import (
    REST,
    SCHEDULES,
    SHAPES,
    Schedule,
    apply_schedule,
    custom_schedule,
    group_parts,
    named_schedule,
    split_parts,
)

SIMPLE_STYLES = tuple(cr.RAMPS)
LOUDNESS_SECONDS = 60.0        # end of A / start of B measured for loudness matching
KEY_SECONDS = 60.0             # end of A / start of B whose keys are estimated
MAX_KEY_SHIFT = 2              # semitones B may be shifted to a compatible key


def load_song(path: str | os.PathLike, sr: int, *, edge: str | None = None,
              seconds: float | None = None, mono: bool = False) -> tuple[np.ndarray, float]:
    """Decode a song (or only its ``edge`` "head"/"tail" of ``seconds``) at ``sr``; returns
    the audio and its offset in seconds within the song."""
    path = Path(os.path.expanduser(path))
    offset, duration = 0.0, None
    if edge is not None and seconds is not None:
        info = audio_info(path)
        total = info.frames / info.samplerate
        if seconds < total:
            duration = seconds
            offset = total - seconds if edge == "tail" else 0.0
    audio, _ = load_audio(path, sr=sr, mono=mono, offset=offset, duration=duration)
    return audio, offset


def prepare_pair(a_path, b_path, sr: int, *, edge_seconds: float | None = None,
                 threshold: float = 0.15, threshold_db: float | None = None,
                 max_trim: float | None = None, mono: bool = False) -> dict:
    """Both songs decoded, A's trailing and B's leading silence trimmed (both edges when whole
    songs are decoded), channels matched and B gained to A's integrated loudness."""
    kw: dict[str, tp.Any] = {"threshold": threshold, "threshold_db": threshold_db,
                             "max_seconds": max_trim}
    a, a_off = load_song(a_path, sr, edge="tail", seconds=edge_seconds, mono=mono)
    b, _ = load_song(b_path, sr, edge="head", seconds=edge_seconds, mono=mono)
    a, trim_a = cr.trim_silence(a, sr, leading=a_off == 0, what=str(a_path), **kw)
    b, trim_b = cr.trim_silence(b, sr, trailing=edge_seconds is None, what=str(b_path), **kw)
    a, b = cr.match_channels(a, b)
    n = int(LOUDNESS_SECONDS * sr)     # the loudness that matters is the one near the fade
    loud = cr.loudness_match_gain_db(a[:, -n:], b[:, :n], sr)
    b = (b * np.float32(db_to_gain(loud["gain_db"]))).astype(np.float32)
    return {"a": a, "b": b, "sr": sr, "trims": {"a": trim_a, "b": trim_b}, "loudness": loud,
            "a_offset_s": a_off}


KEY_STEM = "other"             # the chords: 98 % exact keys against 57 % from the mix (bench)


def check_shift(shift: int | None, max_shift: int = MAX_KEY_SHIFT) -> None:
    """A pitch shift of B asked for by hand: a whole number of semitones within ±max_shift."""
    if shift is not None and (isinstance(shift, bool) or not isinstance(shift, int)
                              or abs(shift) > max_shift):
        raise ConfigError(f"shift must be a whole number of semitones in [-{max_shift}, "
                          f"{max_shift}], got {shift!r}")


def match_keys(a: np.ndarray, b: np.ndarray, sr: int, *, key_match: bool = False,
               max_shift: int = MAX_KEY_SHIFT, key_a: np.ndarray | None = None,
               key_b: np.ndarray | None = None,
               shift: int | None = None) -> tuple[np.ndarray, dict]:
    """The keys of A's end and B's start (:func:`deepaudio.analysis.key.estimate_key` on the last
    and first ``KEY_SECONDS``), how well they mix, and with ``key_match`` B pitch-shifted
    (Rubber Band, tempo kept) by the smallest shift within ``max_shift`` semitones that makes
    it compatible (same, relative or adjacent on the Camelot wheel). A song without a
    detectable key, or keys no allowed shift reconciles, leave B as it is, with the reason.
    ``key_a`` / ``key_b`` (shaped like ``a`` / ``b``: a stem holding the chords) are what the
    keys are estimated from, the mixes where they have none (``a_from``/``b_from`` say
    which). ``shift`` (semitones, within ``max_shift``) shifts B by that much whatever the
    keys, instead of ``key_match``. Returns B and the sidecar's ``keys``."""
    check_shift(shift, max_shift)
    n = int(KEY_SECONDS * sr)
    keys: dict[str, tp.Any] = {"key_match": key_match, "shift_semitones": 0}
    found = {}
    for name, mix, stem in (("a", a[:, -n:], None if key_a is None else key_a[:, -n:]),
                            ("b", b[:, :n], None if key_b is None else key_b[:, :n])):
        for part in ([stem] if stem is not None else []) + [mix]:
            try:
                found[name] = estimate_key(part, sr)
                keys[name] = found[name].to_json()
                keys[f"{name}_from"] = "mix" if part is mix else f"{KEY_STEM} stem"
                keys.pop(f"{name}_reason", None)
                break
            except NoKeyError as e:
                keys[name] = None
                keys[f"{name}_reason"] = str(e)
    if shift:                          # by hand: whatever the keys
        b = stretch(b, sr, semitones=shift)
        keys.update(shift_semitones=shift, shift_by_hand=True)
        if "b" in found:
            keys["b_shifted"] = found["b"].shifted(shift).to_json()
        if len(found) == 2:
            keys["relation"], keys["score"] = key_relation(found["a"], found["b"].shifted(shift))
        return b, keys
    if len(found) < 2:
        keys["reason"] = "no key for " + " and ".join(
            {"a": "the first song", "b": "the second song"}[k] for k in "ab" if k not in found)
        return b, keys
    keys["relation"], keys["score"] = key_relation(found["a"], found["b"])
    if not key_match:
        return b, keys
    best = compatible_shift(found["a"], found["b"], max_shift)
    if best is None:
        keys["reason"] = (f"no shift within {max_shift} semitones makes "
                          f"{found['b'].name} compatible with {found['a'].name}")
        return b, keys
    semitones, relation, score = best
    if semitones:
        b = stretch(b, sr, semitones=semitones)
    keys.update(shift_semitones=semitones, b_shifted=found["b"].shifted(semitones).to_json(),
                relation=relation, score=score)
    return b, keys


StemSource = tp.Callable[[float, float, int], dict[str, np.ndarray]]
"""``(offset_s, duration_s, sr) -> {stem: (C, N) float32}``: a song's stems over a window of
it at ``sr`` (the mixer's stem folders give one: ``deepaudio.mixer.stems.stem_source``)."""


def _schedule(schedule: str | dict | os.PathLike | None, beats: int, style: str,
              stems_a: list[str], stems_b: list[str]) -> Schedule | None:
    if schedule is None:
        return None
    default = style if style in SHAPES else "equal_power"
    if isinstance(schedule, str) and schedule in SCHEDULES:
        return named_schedule(schedule, beats, default_shape=default)
    if isinstance(schedule, str) and not schedule.lower().endswith(".json"):
        raise ConfigError(f"unknown schedule {schedule!r} (schedules: "
                          f"{', '.join(SCHEDULES)}, or a .json file)")
    return custom_schedule(schedule, stems_a=stems_a, stems_b=stems_b)


def _window_stems(source: StemSource, offset: float, n: int, sr: int, channels: int
                  ) -> dict[str, np.ndarray]:
    stems = source(offset, n / sr, sr)
    return {k: to_channels(np.asarray(v, np.float32), channels) for k, v in stems.items()}


def _candidate_json(c: dict, a_song0: float, b_song0: float) -> dict:
    p = c["plan"]
    return {"rank": c["rank"], "score": c["score"], "parts": c["parts"],
            "penalties": c["penalties"], "beats": p["beats"],
            "a_start_in_song_s": round(a_song0 + p["overlap_start_s"], 3),
            "b_entry_in_song_s": round(b_song0 + p["b_downbeat_s"], 3),
            "overlap_s": round(p["overlap_s"], 3), "a_phrase": p["a_phrase"],
            "b_bar": p["b_bar"]}


def crossfade_songs(a_path, b_path, *, sr: int = 44100, style: str = "equal_power",
                    seconds: float = 4.0, context: float | None = 5.0, beat_sync: bool = False,
                    beats: int = 16, seed: int = 0, threshold: float = 0.15,
                    threshold_db: float | None = None, max_trim: float | None = None,
                    key_match: bool = False, schedule: str | dict | os.PathLike | None = None,
                    stems_a: StemSource | None = None, stems_b: StemSource | None = None,
                    candidate: int = 0, a_after_s: float | None = None,
                    b_before_s: float | None = None, shift: int | None = None) -> dict:
    """Render a simple or beat-synchronous crossfade; the result of
    :func:`deepaudio.crossfade.render.place` plus ``sidecar`` (everything a listener may ask
    about, the songs' keys included). ``key_match`` shifts B to a compatible key, ``shift``
    by that many semitones (within ±2; :func:`match_keys`).

    Beat-synchronous transitions are planned (:mod:`deepaudio.crossfade.planner`): every
    candidate is scored and the one ranked ``candidate`` (0: the best) is rendered; the
    sidecar lists them all. ``schedule`` (a name of
    :data:`deepaudio.crossfade.schedules.SCHEDULES`, a JSON file or dict) gives each stem its
    own gain curve; it needs ``beat_sync`` and both songs' stems (``stems_a``, ``stems_b``).
    Songs without a steady beat fall back to an equal-power fade of ``seconds``, with the
    reason in the sidecar (``fallback_reason``).

    ``a_after_s`` (a playlist: where A's previous transition left off, in A's seconds) keeps
    the output from starting earlier in A; ``b_before_s`` (a playlist whose B is followed by
    another song) prefers the beat-synchronous candidates whose overlap ends before that
    second of B, so B keeps room for its own transition out. The sidecar's
    ``output_start_in_first_song_s`` and ``output_end_in_second_song_s`` say where the output
    joins the two songs (B's position as B plays unstretched: a player goes on from there).
    """
    if style not in cr.RAMPS:
        raise ToolkitError(f"unknown style {style!r} (styles: {', '.join(cr.RAMPS)})")
    if schedule is not None and not beat_sync:
        raise ConfigError("schedule: a stem schedule needs a beat-synchronous transition "
                          "(--beat-sync)")
    if schedule is not None and (stems_a is None or stems_b is None):
        raise ConfigError("schedule: a stem schedule needs the stems of both songs")
    if not (isinstance(candidate, int) and 0 <= candidate):
        raise ConfigError(f"candidate must be a rank >= 0, got {candidate!r}")
    check_shift(shift)
    if beat_sync:
        edge = None if context is None else EDGE_SECONDS + context + 30.0
    else:
        edge = None if context is None else seconds + context + 30.0
    pair = prepare_pair(a_path, b_path, sr, edge_seconds=edge, threshold=threshold,
                        threshold_db=threshold_db, max_trim=max_trim)
    a, b = pair["a"], pair["b"]
    a_song0 = pair["a_offset_s"] + pair["trims"]["a"]["start_cut_s"]
    b_song0 = pair["trims"]["b"]["start_cut_s"]
    parts_a = parts_b = None
    stem_names: dict[str, list[str]] | None = None
    if stems_a is not None and stems_b is not None:
        sa = _window_stems(stems_a, a_song0, a.shape[1], sr, a.shape[0])
        sb = _window_stems(stems_b, b_song0, b.shape[1], sr, b.shape[0])
        gain = np.float32(db_to_gain(pair["loudness"]["gain_db"]))
        sb = {k: v * gain for k, v in sb.items()}
    chords = stems_a is not None and stems_b is not None and KEY_STEM in sa and KEY_STEM in sb
    b, keys = match_keys(a, b, sr, key_match=key_match, shift=shift,
                         key_a=sa[KEY_STEM] if chords else None,
                         key_b=sb[KEY_STEM] if chords else None)
    if stems_a is not None and stems_b is not None:
        if keys["shift_semitones"]:
            sb = {k: stretch(v, sr, semitones=keys["shift_semitones"]) for k, v in sb.items()}
        parts_a, parts_b = split_parts(a, sa), split_parts(b, sb)
        stem_names = {"a": list(sa), "b": list(sb)}
    plan, candidates, fallback, resolved = None, None, None, None
    if beat_sync:
        try:
            grid_a, grid_b = analyse_pair(a, b, sr)
        except ToolkitError as e:
            fallback = f"no beat-synchronous transition: {e}; an equal-power fade instead"
    if beat_sync and fallback is None:
        sched = _schedule(schedule, beats, style, list(sa) if parts_a else [],
                          list(sb) if parts_b else [])
        if sched is not None and sched.beats is not None:
            beats = sched.beats
        plans = candidate_plans(grid_a, grid_b, a_duration=a.shape[1] / sr,
                                b_duration=b.shape[1] / sr, beats=beats)
        if a_after_s is not None:
            pre = 0.0 if context is None else context
            kept = [p for p in plans if a_song0 + p["overlap_start_s"] - pre >= a_after_s]
            if not kept:
                raise ToolkitError(
                    f"{Path(a_path).name} is too short to mix out of: every transition "
                    f"starts before {a_after_s:.2f} s, where the previous one ended")
            plans = kept
        if b_before_s is not None:
            early = [p for p in plans if p["mode"] == "cut" or b_song0 + p["b_downbeat_s"]
                     + p["overlap_s"] * p["stretch_rate"] <= b_before_s]
            plans = early or [min(plans, key=lambda p: p["b_downbeat_s"])]
        if plans[0]["mode"] == "cut":
            plan = plans[0]
            if sched is not None:
                fallback = ("the tempi are too far apart to mix the stems over a "
                            "beat-synchronous overlap; a short cut instead")
        else:
            vocals = None
            if parts_a is not None and parts_b is not None and "vocals" in parts_a \
                    and "vocals" in parts_b:
                vocals = (parts_a["vocals"], parts_b["vocals"])
            if sched is not None and parts_a is not None and parts_b is not None:
                parts_a = group_parts(parts_a, sched, "a")
                parts_b = group_parts(parts_b, sched, "b")
            scored = score_candidates(
                plans, parts_a or {REST: a}, parts_b or {REST: b}, sr,
                schedule=sched or Schedule("whole_mix", {}, None,
                                           style if style in SHAPES else "equal_power"),
                key_score=keys.get("score"), vocals=vocals)
            if candidate >= len(scored):
                raise ConfigError(f"candidate must be below {len(scored)} (the planner found "
                                  f"{len(scored)}), got {candidate}")
            plan = scored[candidate]["plan"]
            candidates = [_candidate_json(c, a_song0, b_song0) for c in scored]
        out = cr.render_beat_sync(a, b, sr, plan, style=style, context=context, seed=seed,
                                  parts_a=parts_a if sched else None,
                                  parts_b=parts_b if sched else None)
        if sched is not None and plan["mode"] == "beat_sync":
            resolved = apply_schedule(out, sched, plan, sr, stems=stem_names or {})
    else:
        out = cr.render_simple(a, b, sr, style="equal_power" if fallback else style,
                               seconds=seconds, context=context, seed=seed)
    out["sr"] = sr
    bm = out["b_map"]
    b_end = bm["seg0"] + (out["timeline_start"] + out["audio"].shape[1] - bm["offset"]) \
        * bm["rate"]
    a_start = a_song0 + out["timeline_start"] / sr
    if a_after_s is not None and a_start < a_after_s - 0.5 / sr:
        raise ToolkitError(f"{Path(a_path).name} is too short to mix out of: its last "
                           f"{seconds:g} s start before {a_after_s:.2f} s, where the "
                           f"previous transition ended")
    out["sidecar"] = {"first_song": str(a_path), "second_song": str(b_path), "sr": sr,
                      "channels": int(out["audio"].shape[0]),
                      "duration_s": out["audio"].shape[1] / sr,
                      "context_s": context if context is not None else "full",
                      "trims": pair["trims"], "loudness": pair["loudness"],
                      "output_start_in_first_song_s": a_start,
                      "output_end_in_second_song_s": b_song0 + b_end / sr,
                      **out["report"], "plan": plan, "keys": keys,
                      "candidates": candidates,
                      "candidate": candidate if candidates is not None else None,
                      "schedule": resolved,
                      "stems": stem_names,
                      "fallback_reason": fallback}
    return out


def write_output(path: str | os.PathLike, out: dict, extra: dict | None = None) -> Path:
    """The audio (float WAV/FLAC/MP3 by extension) and its JSON sidecar ``<path>.json``."""
    path = Path(os.path.expanduser(path))
    fmt = "float" if path.suffix.lower() == ".wav" else "pcm16"
    save_audio(path, out["audio"], out["sr"], sample_format=fmt)
    atomic_write_json(path.with_suffix(".json"), {**out["sidecar"], **(extra or {})})
    return path
