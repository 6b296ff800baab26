"""Beat-synchronous transitions on click tracks (downbeats on a grid) and on rendered pieces
with exact beats (the plan's mix points on true downbeats, by the learned tracker), a cut when
tempi are far apart."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from deepaudio.cli import crossfade as crossfade_cli
from deepaudio.core.audio import load_audio, save_audio
from deepaudio.crossfade.render import (
    render_beat_sync,
)
from deepaudio.data.beatcorpus import draw_piece, piece_midi, render
from deepaudio.data.beatset import soundfont

SR = 22050


def test_beat_sync_downbeats_land_on_a_grid(tmp_path, band_onsets, click_track):
    sr = 44100
    a, a_down = click_track(120, 40, sr, down_hz=3000, beat_hz=4000)
    b, _ = click_track(124, 40, sr, down_hz=1000, beat_hz=1500)
    save_audio(tmp_path / "a.flac", a, sr)
    save_audio(tmp_path / "b.flac", b, sr)
    out_path = tmp_path / "beat.wav"
    assert crossfade_cli.main(["simple", str(tmp_path / "a.flac"), str(tmp_path / "b.flac"), "-o",
                    str(out_path), "--beat-sync", "--beats", "16", "--context", "4"]) == 0
    side = json.loads(out_path.with_suffix(".json").read_text())
    assert side["mode"] == side["plan"]["mode"] == "beat_sync" and side["plan"]["beats"] == 16
    assert side["plan"]["tracker_a"] == side["plan"]["tracker_b"] == "model"
    assert side["stretch_rate"] == pytest.approx(120 / 124, abs=0.005)
    assert side["seconds"] == pytest.approx(16 * 0.5, abs=0.02)
    y, _ = load_audio(out_path, mono=True)
    y = y[0]
    # A's downbeat grid in the output, fitted on A's downbeat clicks found in the output
    da = band_onsets(y, sr, 3000)
    k = np.round((da - da[0]) / 2.0)
    slope, icpt = np.polyfit(k, da, 1)
    assert slope == pytest.approx(2.0, abs=0.002)
    # and it agrees with the sidecar's mapping of A's true downbeats
    t0 = side["output_start_in_first_song_s"]
    true_grid = a_down - t0
    assert np.min(np.abs(true_grid - icpt)) < 0.01
    # B's downbeats where B is audible (second half of the overlap and after)
    db = band_onsets(y, sr, 1000, rel=0.1)     # stretched bursts vary in level (phasiness)
    half = side["overlap_start_in_output_s"] + side["seconds"] / 2
    db = db[db > half]
    assert len(db) >= 4
    err = np.abs((db - icpt) - np.round((db - icpt) / slope) * slope)
    print("B downbeat errors (ms):", np.round(err * 1000, 2))
    assert err.max() < 0.010, err
    assert side["b_downbeat_in_output_s"] == pytest.approx(side["overlap_start_in_output_s"])


def rendered(style: str, bpm: float, chords: str, bass: str, seed: int, seconds: float):
    """A piece of the corpus generator (a seed the corpus does not use), steady tempo, no
    augmentation, rendered by this machine's General MIDI soundfont; and its annotations."""
    piece = dataclasses.replace(
        draw_piece((78, seed), seconds=seconds), style=style, metre="4/4", bpm=bpm,
        tempo_end=bpm, tempo_curve="steady", chords=chords, bass=bass, fade_in=False,
        fade_out=False, drumless_intro=0, breakdown=(0, 0), halftime=(0, 0), swing=0.0,
        bars=int(seconds * bpm / 240), ending=False, lead_in=0.3)
    mid, truth = piece_midi(piece)
    return render(mid, soundfont()), truth


def test_the_plan_mixes_on_true_downbeats_of_rendered_songs(tmp_path):
    """Off-beat chords and hats (house) into a pop song 3 % slower: the planner's mix point is
    a true downbeat of A, B enters on a true downbeat of B, B's stretch is the tempo ratio."""
    a, truth_a = rendered("house", 124.0, "offbeat", "offbass", 1, 48.0)
    b, truth_b = rendered("pop", 120.0, "332", "synco", 2, 48.0)
    sr = 22050
    save_audio(tmp_path / "a.flac", a, sr)
    save_audio(tmp_path / "b.flac", b, sr)
    out = tmp_path / "mix.wav"
    assert crossfade_cli.main(["simple", str(tmp_path / "a.flac"), str(tmp_path / "b.flac"),
                               "-o", str(out), "--beat-sync", "--beats", "16"]) == 0
    side = json.loads(out.with_suffix(".json").read_text())
    plan = side["plan"]
    assert plan["mode"] == "beat_sync" and plan["tracker_a"] == plan["tracker_b"] == "model"
    # the plan's times are in the silence-trimmed songs
    a_down = plan["a_downbeat_s"] + side["trims"]["a"]["start_cut_s"]
    b_down = plan["b_downbeat_s"] + side["trims"]["b"]["start_cut_s"]
    assert np.abs(np.asarray(truth_a["downbeats"]) - a_down).min() < 0.03
    assert np.abs(np.asarray(truth_b["downbeats"]) - b_down).min() < 0.03
    assert plan["stretch_rate"] == pytest.approx(124 / 120, rel=0.005)
    assert plan["beats_per_bar_a"] == plan["beats_per_bar_b"] == 4


def test_beat_sync_cut_when_tempi_far_apart():
    a = {"tempo_a": 120.0, "mode": "cut", "stretch_rate": 1.0, "overlap_start_s": 9.75,
         "overlap_s": 0.25, "a_downbeat_s": 10.0, "b_downbeat_s": 1.0}
    x = np.ones((1, 12 * SR), np.float32)
    y = 2 * np.ones((1, 12 * SR), np.float32)
    out = render_beat_sync(x, y, SR, a, context=2.0)
    assert out["audio"].shape[1] == int(round(4.25 * SR))
    i0, n = out["overlap_start"], out["overlap"]
    np.testing.assert_allclose(out["audio"][0, :i0], 1.0)
    np.testing.assert_allclose(out["audio"][0, i0 + n:], 2.0)
    assert out["report"]["b_downbeat_in_output_s"] == pytest.approx(2.25, abs=1e-3)
