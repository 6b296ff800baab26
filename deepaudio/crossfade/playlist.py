"""Playlist mixes: N songs as one continuous mix with a planned transition between each two.

Each transition is :func:`deepaudio.crossfade.songs.crossfade_songs` (beat-synchronous and
planned by default, a stem schedule where asked), rendered with only ``SPLICE_SECONDS`` of
context; between transitions each song streams from its file block by block
(:func:`deepaudio.core.audio.stream_audio`), and the whole goes to the encoder as it is made
(:func:`deepaudio.core.audio.write_audio_blocks`). Memory holds one transition and one block,
whatever the number of songs. The joins are short crossfades (``SPLICE_SECONDS``) between a
song's stream and the transition, which hold the same music there: at the start A itself
(sample for sample); at the end B, stretched to A's tempo during the transition and at its
own tempo again after it (the tempo returns to B's on the join; the phase vocoder's timing
is within about 7 ms of the original there).

Loudness: the first song plays as it is; each transition matches B to A, and B keeps that
gain for the rest of its time in the mix (the gains chain). Samples past full scale are
clipped and counted (``clipped_samples``).

``order="auto"`` keeps the first song first and orders the rest by key and tempo
compatibility (:func:`order_songs`): a nearest-neighbour path improved by 2-opt on
:func:`transition_cost`.
"""

from __future__ import annotations

import dataclasses
import math
import os
import typing as tp
from pathlib import Path

import numpy as np

from deepaudio.analysis.beats import estimate_tempo
from deepaudio.analysis.key import Key, NoKeyError, estimate_key, key_relation
from deepaudio.core.audio import (
    audio_info,
    load_audio,
    stream_audio,
    to_channels,
    write_audio_blocks,
)
from deepaudio.core.errors import ToolkitError
from deepaudio.core.files import atomic_write_bytes, atomic_write_json
from deepaudio.core.gain import db_to_gain
from deepaudio.crossfade.songs import StemSource, crossfade_songs

SPLICE_SECONDS = 0.03          # the linear crossfade joining a song's stream and a transition
CONTEXT_SECONDS = 0.04         # context rendered around each transition (>= the splice)
ANALYSIS_SECONDS = 60.0        # the middle of each song analysed for key and tempo (auto order)
ANALYSIS_SR = 22050
MAX_STRETCH = 0.08             # the beat-synchronous mode's stretch limit
ORDERS = ("keep", "auto")
CHANNELS = 2


@dataclasses.dataclass
class SongSummary:
    path: Path
    duration_s: float
    key: Key | None
    tempo: float | None

    def to_json(self) -> dict:
        return {"path": str(self.path), "duration_s": round(self.duration_s, 3),
                "key": self.key.to_json() if self.key else None,
                "tempo": round(self.tempo, 2) if self.tempo else None}


def summarize_song(path: str | os.PathLike) -> SongSummary:
    """Duration, key and tempo of a song (its middle ``ANALYSIS_SECONDS``)."""
    path = Path(os.path.expanduser(path))
    info = audio_info(path)
    total = info.frames / info.samplerate
    offset = max(0.0, (total - ANALYSIS_SECONDS) / 2)
    y, _ = load_audio(path, sr=ANALYSIS_SR, mono=True, offset=offset,
                      duration=min(total, ANALYSIS_SECONDS))
    try:
        key: Key | None = estimate_key(y, ANALYSIS_SR)
    except NoKeyError:
        key = None
    try:
        tempo: float | None = estimate_tempo(y, ANALYSIS_SR)
    except ToolkitError:
        tempo = None
    return SongSummary(path, total, key, tempo)


def tempo_distance(a: float | None, b: float | None) -> float:
    """How far apart two tempi are for a beat-synchronous mix: |log| of their ratio after the
    octave (x2, x1/2) that brings them closest, over the stretch limit; 1 at the limit and
    beyond (a cut), 0.5 when a tempo is unknown."""
    if not a or not b:
        return 0.5
    ratio = min(abs(math.log(b * f / a)) for f in (0.5, 1.0, 2.0))
    return min(1.0, ratio / math.log(1 + MAX_STRETCH))


def transition_cost(a: SongSummary, b: SongSummary) -> float:
    """Cost of mixing from ``a`` into ``b``: ``1 - key score`` (0.5 without a key) plus the
    tempo distance; 0 for the same key and tempo, 2 at worst."""
    key = 0.5 if a.key is None or b.key is None else 1.0 - key_relation(a.key, b.key)[1]
    return key + tempo_distance(a.tempo, b.tempo)


def order_songs(songs: list[SongSummary]) -> list[int]:
    """An order of ``songs`` starting with the first that keeps neighbours compatible: the
    nearest neighbour path, then 2-opt moves (reversing a stretch of the path) while one
    lowers the total :func:`transition_cost`."""
    n = len(songs)
    if n < 3:
        return list(range(n))
    cost = np.array([[transition_cost(a, b) for b in songs] for a in songs])
    path, left = [0], set(range(1, n))
    while left:
        nxt = min(left, key=lambda j: (cost[path[-1], j], j))
        path.append(nxt)
        left.remove(nxt)

    def total(p: list[int]) -> float:
        return float(sum(cost[p[k], p[k + 1]] for k in range(len(p) - 1)))

    improved = True
    while improved:
        improved = False
        for i in range(1, n - 1):
            for j in range(i + 1, n):
                cand = path[:i] + path[i:j + 1][::-1] + path[j + 1:]
                if total(cand) < total(path) - 1e-9:
                    path, improved = cand, True
    return path


def _cue_time(seconds: float) -> str:
    frames = int(round(seconds * 75))
    return f"{frames // 4500:02d}:{frames // 75 % 60:02d}:{frames % 75:02d}"


def cue_sheet(audio_name: str, tracks: list[dict], *, title: str = "deepaudio mix") -> str:
    """A CD cue sheet (``INDEX 01`` at mm:ss:ff, 75 frames a second) for ``tracks``."""
    def quoted(text: str) -> str:
        return '"' + text.replace('"', "'").replace("\n", " ") + '"'

    kind = "MP3" if audio_name.lower().endswith(".mp3") else "WAVE"
    lines = [f"TITLE {quoted(title)}", f"FILE {quoted(audio_name)} {kind}"]
    for k, t in enumerate(tracks, 1):
        lines += [f"  TRACK {k:02d} AUDIO", f"    TITLE {quoted(t['title'])}",
                  f"    INDEX 01 {_cue_time(t['start_s'])}"]
    return "\n".join(lines) + "\n"


def _song_blocks(path: Path, sr: int, start: int, stop: int | None
                 ) -> tp.Iterator[np.ndarray]:
    """Samples ``[start, stop)`` of a song at ``sr``, stereo, as blocks (decoded from its
    start: the skipped part is one transition long)."""
    pos = 0
    for block in stream_audio(path, sr, channels=CHANNELS):
        n = block.shape[1]
        lo, hi = max(start - pos, 0), n if stop is None else min(stop - pos, n)
        if hi > lo:
            yield block[:, lo:hi]
        pos += n
        if stop is not None and pos >= stop:
            return


class _Splicer:
    """Takes a song's stream and replaces its first and last ``n`` samples by crossfades with
    a transition's tail (entering) and head (leaving). Both hold the same audio, so the
    crossfades are linear (the two add up to it), but where the transition stretched B: the
    phase vocoder's output is a different waveform of the same music (correlation about 0.4
    with the original), so the entering crossfade keeps the power (sine/cosine)."""

    def __init__(self, n: int):
        self.n = n
        self.fade_in = (np.arange(n, dtype=np.float32) + 0.5) / n
        self.power_in = np.sin(0.5 * np.pi * self.fade_in).astype(np.float32)
        self.power_out = np.cos(0.5 * np.pi * self.fade_in).astype(np.float32)

    def join(self, blocks: tp.Iterable[np.ndarray], length: int, gain: float,
             enter: np.ndarray | None, leave: np.ndarray | None, *,
             enter_stretched: bool = False) -> tp.Iterator[np.ndarray]:
        n, pos, fade = self.n, 0, self.fade_in
        g_in, g_out = ((self.power_in, self.power_out) if enter_stretched
                       else (fade, 1 - fade))
        for block in blocks:
            block = block * np.float32(gain)
            m = block.shape[1]
            if enter is not None and pos < n:           # the transition's tail fades out
                k = min(n - pos, m)
                block[:, :k] = (block[:, :k] * g_in[pos:pos + k]
                                + enter[:, pos:pos + k] * g_out[pos:pos + k])
            if leave is not None and pos + m > length - n:  # the next transition fades in
                lo = max(length - n - pos, 0)
                o = pos + lo - (length - n)
                k = m - lo
                block[:, lo:] = (block[:, lo:] * (1 - fade[o:o + k])
                                 + leave[:, o:o + k] * fade[o:o + k])
            pos += m
            yield block
        if pos != length:
            raise ToolkitError(f"the song ended {length - pos} samples early (its header "
                               f"overstates its length)")


def render_mix(songs: tp.Sequence[str | os.PathLike], output: str | os.PathLike, *,
               sr: int = 44100, order: str = "keep", beat_sync: bool = True,
               beats: int = 16, style: str = "equal_power", seconds: float = 8.0,
               schedule: str | dict | None = None,
               stems: tp.Callable[[Path], StemSource] | None = None,
               progress: tp.Callable[[float, str], None] | None = None) -> dict:
    """Render ``songs`` as one continuous mix to ``output`` (format by extension), with
    ``output.cue`` and ``output.json`` (the cue sheet, every transition's sidecar, each song's
    key, tempo, gain and where it starts). Returns the JSON. ``stems(path)`` gives a song's
    stems for a ``schedule``. ``progress(fraction, stage)`` is called as the mix is made."""
    if order not in ORDERS:
        raise ToolkitError(f"order must be one of {', '.join(ORDERS)}, got {order!r}")
    if len(songs) < 2:
        raise ToolkitError(f"a mix needs at least two songs, got {len(songs)}")
    if schedule is not None and stems is None:
        raise ToolkitError("a stem schedule needs the songs' stems")
    output = Path(os.path.expanduser(output))
    report = progress or (lambda fraction, stage: None)
    paths = [Path(os.path.expanduser(s)) for s in songs]
    if order == "auto":
        summaries = []
        for k, p in enumerate(paths):
            report(0.0, f"analysing {k + 1}/{len(paths)}")
            summaries.append(summarize_song(p))
        idx = order_songs(summaries)
    else:
        infos = [audio_info(p) for p in paths]
        summaries = [SongSummary(p, i.frames / i.samplerate, None, None)
                     for p, i in zip(paths, infos)]
        idx = list(range(len(paths)))
    playlist = [summaries[i] for i in idx]
    total_s = sum(s.duration_s for s in playlist)
    n = max(1, int(round(SPLICE_SECONDS * sr)))
    state: dict[str, tp.Any] = {"written": 0, "clipped": 0}
    tracks: list[dict] = []
    transitions: list[dict] = []
    splicer = _Splicer(n)

    def emit(block: np.ndarray) -> np.ndarray:
        over = np.abs(block) > 1.0
        if over.any():
            state["clipped"] += int(over.sum())
            block = np.clip(block, -1.0, 1.0)
        state["written"] += block.shape[1]
        report(min(1.0, state["written"] / sr / max(total_s, 1e-9)),
               f"song {len(tracks)}/{len(playlist)}")
        return block

    def blocks() -> tp.Iterator[np.ndarray]:
        gain_db, enter_pos, tail, start_s, stretched = 0.0, 0, None, 0.0, False
        for k, song in enumerate(playlist):
            tracks.append({"title": song.path.stem, "path": str(song.path),
                           "start_s": round(start_s, 3), "gain_db": round(gain_db, 3),
                           **{f: v for f, v in song.to_json().items() if f != "path"}})
            nxt = None
            if k + 1 < len(playlist):
                report(state["written"] / sr / max(total_s, 1e-9),
                       f"planning {k + 1}->{k + 2}")
                b_path = playlist[k + 1].path
                try:
                    nxt = crossfade_songs(
                        song.path, b_path, sr=sr, style=style, seconds=seconds,
                        context=CONTEXT_SECONDS, beat_sync=beat_sync, beats=beats,
                        schedule=schedule,
                        stems_a=stems(song.path) if schedule is not None and stems else None,
                        stems_b=stems(b_path) if schedule is not None and stems else None,
                        a_after_s=(enter_pos + n) / sr,
                        b_before_s=(playlist[k + 1].duration_s / 2 if k + 2 < len(playlist)
                                    else None))
                except ToolkitError as e:
                    where = f"transition {k + 1}->{k + 2} ({song.path.name} -> {b_path.name})"
                    raise ToolkitError(f"{where}: {e}") from None
                audio = to_channels(nxt["audio"], CHANNELS) * np.float32(db_to_gain(gain_db))
                side = nxt["sidecar"]
                leave_pos = int(round(side["output_start_in_first_song_s"] * sr)) + n
                if audio.shape[1] < 2 * n + 1:
                    raise ToolkitError(f"the transition after {song.path.name} is too short")
            else:
                leave_pos = None
            length = None if leave_pos is None else leave_pos - enter_pos
            body = _song_blocks(song.path, sr, enter_pos, leave_pos)
            if length is None:          # the last song: to its end
                info = audio_info(song.path)
                length = int(round(info.frames * sr / info.samplerate)) - enter_pos
                length = max(length, 0)
                body = _exact(body, length)
            for block in splicer.join(body, length, float(db_to_gain(gain_db)), tail,
                                      None if nxt is None else audio[:, :n],
                                      enter_stretched=stretched):
                yield emit(block)
            if nxt is None:
                break
            mid = audio[:, n:audio.shape[1] - n]
            start_s = (state["written"] - n + side["overlap_start_in_output_s"] * sr) / sr
            for i in range(0, mid.shape[1], sr * 10):
                yield emit(mid[:, i:i + sr * 10])
            tail = audio[:, audio.shape[1] - n:]
            stretched = abs(float(side.get("stretch_rate") or 1.0) - 1.0) > 1e-9

            enter_pos = int(round(side["output_end_in_second_song_s"] * sr)) - n
            transitions.append({"from": k, "to": k + 1,
                                "in_mix_s": round(start_s, 3), **_sidecar_summary(side)})
            gain_db += float(side["loudness"]["gain_db"])

    subtype = {".wav": "FLOAT", ".flac": "PCM_24"}.get(output.suffix.lower())
    write_audio_blocks(output, blocks(), sr, CHANNELS, subtype=subtype)
    report(1.0, "done")
    result = {"output": str(output), "sr": sr, "channels": CHANNELS,
              "duration_s": round(state["written"] / sr, 3), "order": order,
              "input_order": [str(p) for p in paths], "tracks": tracks,
              "transitions": transitions, "clipped_samples": state["clipped"]}
    atomic_write_bytes(output.with_suffix(".cue"),
                       cue_sheet(output.name, tracks).encode("utf-8"))
    atomic_write_json(output.with_suffix(".json"), result)
    return result


def _exact(blocks: tp.Iterable[np.ndarray], length: int) -> tp.Iterator[np.ndarray]:
    """``blocks`` cut or zero-padded to ``length`` samples (the resampler's last samples may
    differ from the header's count by one)."""
    pos = 0
    for block in blocks:
        block = block[:, :max(0, length - pos)]
        pos += block.shape[1]
        if block.shape[1]:
            yield block
    if pos < length:
        yield np.zeros((CHANNELS, length - pos), np.float32)


def _sidecar_summary(side: dict) -> dict:
    keep = ("mode", "style", "seconds", "stretch_rate", "fallback_reason", "keys", "candidate",
            "schedule", "loudness", "output_start_in_first_song_s",
            "output_end_in_second_song_s")
    out = {k: side.get(k) for k in keep}
    if side.get("candidates"):
        c = side["candidates"][side["candidate"]]
        out["planner"] = {"score": c["score"], "of": len(side["candidates"]),
                          "a_start_in_song_s": c["a_start_in_song_s"],
                          "b_entry_in_song_s": c["b_entry_in_song_s"]}
    return out
