"""Playlist mixes: five sample-generator songs as one continuous mix with planned transitions
(each song's audio sample for sample between the transitions, B going on exactly where each
transition hands over, the cue sheet and its JSON), the auto order by key and tempo, and the
errors (one song, a song too short to enter and leave, a corrupt file), none leaving a file."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from deepaudio.analysis.key import parse_key
from deepaudio.cli import crossfade as crossfade_cli
from deepaudio.core.audio import load_audio, save_audio
from deepaudio.core.errors import ToolkitError
from deepaudio.core.gain import db_to_gain
from deepaudio.crossfade.playlist import (
    SPLICE_SECONDS,
    SongSummary,
    cue_sheet,
    order_songs,
    render_mix,
    tempo_distance,
    transition_cost,
)
from deepaudio.crossfade.songs import crossfade_songs
from deepaudio.data.samples import render_track

SR = 22050
SONGS = (("Pop", 8), ("Pop", 9), ("Rock", 1), ("Electronic", 2), ("Hip-Hop", 5))


@pytest.fixture(scope="module")
def playlist(tmp_path_factory):
    d = tmp_path_factory.mktemp("playlist")
    paths = []
    for k, (genre, tid) in enumerate(SONGS, 1):
        stems, _ = render_track(genre, tid, seed=0, seconds=30.0, sr=SR)
        paths.append(save_audio(d / f"{k}_{genre}.wav", np.sum(list(stems.values()), axis=0),
                                SR, sample_format="float"))
    return paths


def _song(path, gain_db: float) -> np.ndarray:
    audio, _ = load_audio(path, sr=SR, mono=False)
    return audio * np.float32(db_to_gain(gain_db))


def test_five_songs_mix_into_one_stream_with_a_cue_sheet(playlist, tmp_path, capsys):
    out = tmp_path / "mix.wav"
    assert crossfade_cli.main(["mix", *map(str, playlist), "-o", str(out),
                               "--sr", str(SR)]) == 0
    printed = capsys.readouterr().out
    assert "5 songs" in printed and "mix.cue" in printed
    mix, _ = load_audio(out, sr=SR, mono=False)
    rep = json.loads(out.with_suffix(".json").read_text())
    assert mix.shape[0] == 2 and rep["duration_s"] == pytest.approx(mix.shape[1] / SR, abs=1e-3)
    assert [t["path"] for t in rep["tracks"]] == [str(p) for p in playlist]
    starts = [t["start_s"] for t in rep["tracks"]]
    assert starts[0] == 0 and all(b > a + 5 for a, b in zip(starts, starts[1:]))
    assert len(rep["transitions"]) == 4
    for k, tr in enumerate(rep["transitions"]):
        assert tr["in_mix_s"] == starts[k + 1]
        assert tr["mode"] in ("beat_sync", "cut") and tr["fallback_reason"] is None
        if tr["mode"] == "beat_sync":
            assert tr["planner"]["of"] >= 1 and tr["seconds"] > 5     # 16 beats
    # the cue sheet: one track per song, INDEX 01 at each start (75 frames a second)
    cue = out.with_suffix(".cue").read_text()
    assert 'FILE "mix.wav" WAVE' in cue and cue.count("TRACK ") == 5
    index = [int(m) * 60 + int(s) + int(f) / 75
             for m, s, f in re.findall(r"INDEX 01 (\d+):(\d\d):(\d\d)", cue)]
    assert index == pytest.approx(starts, abs=1 / 75)
    # the first song is itself, sample for sample, up to its transition
    first = _song(playlist[0], 0.0)
    x = int(round(rep["transitions"][0]["output_start_in_first_song_s"] * SR))
    np.testing.assert_allclose(mix[:, :x], first[:, :x], atol=1e-6)
    # after each transition B goes on exactly where the transition handed over, at its chained
    # loudness gain
    gain, end = 0.0, None
    n = int(round(SPLICE_SECONDS * SR))
    for k, tr in enumerate(rep["transitions"]):
        gain += tr["loudness"]["gain_db"]
        assert rep["tracks"][k + 1]["gain_db"] == pytest.approx(gain, abs=1e-3)
        song = _song(playlist[k + 1], gain)
        p = int(round(tr["output_end_in_second_song_s"] * SR))
        seg = song[:, p:p + SR]
        # found in the 30 s after the transition starts, then equal to the song exactly
        lo = int(tr["in_mix_s"] * SR)
        corr = np.correlate(mix[0, lo:lo + 30 * SR], seg[0], "valid")
        q = lo + int(np.argmax(corr))
        np.testing.assert_allclose(mix[:, q:q + SR], seg, atol=1e-5)
        assert end is None or q > end
        end = q
        # no click at the join: the splice zone's sample-to-sample curvature is no larger
        # than the music's on either side of it
        curve = np.abs(np.diff(mix[:, q - 21 * n:q + 20 * n], 2, axis=1)).max(axis=0)
        zone, around = curve[20 * n - 2:21 * n + 1], np.r_[curve[:20 * n - 2], curve[21 * n + 1:]]
        assert zone.max() <= 1.5 * around.max(), (k, zone.max(), around.max())
    # the last song plays to its end
    last = _song(playlist[-1], gain)
    np.testing.assert_allclose(mix[:, -SR:], last[:, -SR:], atol=1e-5)


def test_progress_reaches_the_end_and_the_mix_streams_to_mp3(playlist, tmp_path):
    seen = []
    rep = render_mix(playlist[:3], tmp_path / "mix.mp3", sr=SR,
                     progress=lambda f, stage: seen.append((f, stage)))
    fractions = [f for f, _ in seen]
    assert fractions[-1] == 1.0 and all(0 <= f <= 1 for f in fractions)
    assert any(stage.startswith("planning 2->3") for _, stage in seen)
    mix, _ = load_audio(tmp_path / "mix.mp3", sr=SR, mono=False)
    # the MP3 decodes to the mix's length (gapless export), within one frame
    assert abs(mix.shape[1] - rep["duration_s"] * SR) <= 1152
    assert 'FILE "mix.mp3" MP3' in (tmp_path / "mix.cue").read_text()


def _summary(name: str, key: str | None, tempo: float | None) -> SongSummary:
    return SongSummary(Path(name), 200.0, parse_key(key) if key else None, tempo)


def test_auto_order_follows_the_camelot_wheel_and_the_tempo():
    assert tempo_distance(120, 120) == 0 and tempo_distance(120, 60) == 0
    assert tempo_distance(120, 126) == pytest.approx(np.log(1.05) / np.log(1.08))
    assert tempo_distance(120, 140) == 1.0 and tempo_distance(None, 120) == 0.5
    assert transition_cost(_summary("a", "C major", 120), _summary("b", "C major", 120)) == 0
    # a chain of fifths C G D A E at one tempo, given shuffled: the fifths come back in a row
    keys = ["C major", "A major", "G major", "E major", "D major"]
    songs = [_summary(k, k, 124.0) for k in keys]
    order = [keys[i] for i in order_songs(songs)]
    assert order == ["C major", "G major", "D major", "A major", "E major"]
    # same key, tempi far apart: songs of one tempo go together
    tempi = [100.0, 128.0, 101.0, 127.0, 99.0]
    songs = [_summary(str(t), "A minor", t) for t in tempi]
    order = [tempi[i] for i in order_songs(songs)]
    assert order[:3] == [100.0, 101.0, 99.0] or order[:3] == [100.0, 99.0, 101.0]
    assert sorted(order[3:]) == [127.0, 128.0]


def test_auto_order_from_the_cli(playlist, tmp_path, capsys):
    out = tmp_path / "auto.flac"
    songs = [playlist[2], playlist[0], playlist[3]]
    assert crossfade_cli.main(["mix", *map(str, songs), "-o", str(out), "--order", "auto",
                               "--sr", str(SR), "--no-beat-sync", "--seconds", "3"]) == 0
    rep = json.loads(out.with_suffix(".json").read_text())
    assert rep["order"] == "auto" and rep["tracks"][0]["path"] == str(songs[0])
    assert sorted(t["path"] for t in rep["tracks"]) == sorted(map(str, songs))
    assert all(t["tempo"] and t["key"] for t in rep["tracks"])
    assert all(tr["mode"] == "simple" and tr["seconds"] == 3.0 for tr in rep["transitions"])
    assert "bpm" in capsys.readouterr().out


def test_cue_sheet_quotes_titles():
    cue = cue_sheet("m.flac", [{"title": 'say "hi"', "start_s": 0.0},
                               {"title": "b", "start_s": 3723.6}])
    assert 'TITLE "say \'hi\'"' in cue and "INDEX 01 62:03:45" in cue


def test_bad_playlists_are_one_line_errors_and_leave_no_file(playlist, tmp_path, capsys):
    short = save_audio(tmp_path / "short.wav", _song(playlist[1], 0.0)[:, :6 * SR], SR)
    bad = tmp_path / "bad.mp3"
    bad.write_bytes(b"ID3\x03\x00\x00\x00\x00\x00\x00" + b"\xff" * 500)
    out = tmp_path / "mix.flac"
    cases = [([playlist[0]], "at least two songs"),
             ([playlist[0], short, playlist[2]], "(1_Pop.wav -> short.wav): the second song "
                                                 "is shorter than"),
             ([playlist[0], bad], "bad.mp3")]
    for songs, message in cases:
        rc = crossfade_cli.main(["mix", *map(str, songs), "-o", str(out), "--sr", str(SR)])
        err = capsys.readouterr().err.strip().splitlines()
        assert rc == 2 and err[-1].startswith("error:") and message in err[-1], err
        assert not out.exists() and not out.with_suffix(".cue").exists()
        assert list(tmp_path.glob(".mix.*")) == []


@pytest.mark.parametrize("beat_sync", [True, False])
def test_a_transition_never_starts_before_the_previous_one_ended(playlist, beat_sync):
    """``a_after_s``: the planner keeps only candidates that leave A after it was entered;
    none left (or a plain fade starting too early) is an error naming the song."""
    kw = {"sr": SR, "beat_sync": beat_sync, "seconds": 4.0, "context": 0.04}
    out = crossfade_songs(playlist[0], playlist[1], a_after_s=15.0, **kw)
    assert out["sidecar"]["output_start_in_first_song_s"] >= 15.0
    if beat_sync:
        assert all(c["a_start_in_song_s"] >= 15.0 for c in out["sidecar"]["candidates"])
    with pytest.raises(ToolkitError, match="1_Pop.wav is too short to mix out of"):
        crossfade_songs(playlist[0], playlist[1], a_after_s=28.0, **kw)


def test_a_mix_with_a_stem_schedule_separates_each_song_once(playlist, tmp_path):
    out, cache = tmp_path / "stems.flac", tmp_path / "cache"
    assert crossfade_cli.main(["mix", *map(str, playlist[:3]), "-o", str(out), "--sr", str(SR),
                               "--schedule", "vocal_handoff", "--backend", "dsp",
                               "--stems-cache", str(cache)]) == 0
    rep = json.loads(out.with_suffix(".json").read_text())
    assert len(list(cache.iterdir())) == 3
    assert any(tr["mode"] == "beat_sync" for tr in rep["transitions"])
    for tr in rep["transitions"]:
        assert tr["mode"] != "beat_sync" or tr["schedule"]["name"] == "vocal_handoff"
