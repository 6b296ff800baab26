"""The beat corpus: annotations exact to the MIDI tempo map, pieces across styles and metres,
rendered onsets on the annotated beats, shards that resume."""

from __future__ import annotations

import mido
import numpy as np
import pytest

from deepaudio.analysis import frontend
from deepaudio.core.datasets import read_shards
from deepaudio.core.errors import ToolkitError
from deepaudio.data import beatcorpus
from deepaudio.data.beatcorpus import (
    METRES,
    STYLES,
    draw_piece,
    piece_midi,
    write_corpus,
)
from deepaudio.data.beatset import soundfont


def tick_seconds(mid: mido.MidiFile, tick: int) -> float:
    """Seconds at ``tick`` by the file's tempo map (the meta track's set_tempo events)."""
    t, last, tempo, now = 0.0, 0, 500000, 0
    for msg in mid.tracks[0]:
        now += msg.time
        if now > tick:
            break
        if msg.type == "set_tempo":
            t += mido.tick2second(now - last, mid.ticks_per_beat, tempo)
            last, tempo = now, msg.tempo
    return t + mido.tick2second(tick - last, mid.ticks_per_beat, tempo)


@pytest.mark.parametrize("curve", ["steady", "ramp", "step"])
def test_beat_times_are_the_midi_tempo_maps(curve):
    seed = next(s for s in range(500) if draw_piece((3, s)).tempo_curve == curve)
    piece = draw_piece((3, seed))
    mid, truth = piece_midi(piece)
    m = METRES[piece.metre]
    beat_ticks = int(round(m.beat_quarters * beatcorpus.TPB))
    lead = int(round(piece.lead_in * 1e6 / mid.tracks[0][1].tempo * beatcorpus.TPB))
    expect = [tick_seconds(mid, lead + k * beat_ticks) for k in range(len(truth["beats"]))]
    assert np.allclose(truth["beats"], expect, atol=1e-6)
    assert np.allclose(truth["downbeats"], truth["beats"][::m.beats])
    ibi = np.diff(truth["beats"])
    if curve == "steady":
        assert np.allclose(ibi, 60 / piece.bpm)
    else:                                  # the tempo moves from bpm to tempo_end
        assert ibi[0] == pytest.approx(60 / piece.bpm, rel=1e-6)
        assert ibi[-1] == pytest.approx(60 / piece.tempo_end, rel=0.02)


def test_pieces_span_the_styles_metres_tempi_and_textures():
    pieces = [draw_piece((5, s)) for s in range(400)]
    assert {p.style for p in pieces} == set(STYLES)
    assert {p.metre for p in pieces} == set(METRES)
    bpms = [p.bpm for p in pieces]
    assert min(bpms) < 70 and max(bpms) > 180 and all(60 <= b <= 200 for b in bpms)
    assert {p.tempo_curve for p in pieces} == {"steady", "ramp", "step"}
    assert any(p.drumless_intro for p in pieces) and any(p.breakdown[1] for p in pieces)
    assert any(p.halftime[1] for p in pieces) and any(p.fade_out for p in pieces)
    assert any(p.chords in ("offbeat", "skank") for p in pieces)
    assert any(p.ending for p in pieces) and not all(p.ending for p in pieces)
    assert max(p.lead_in for p in pieces) > 2 and min(p.lead_in for p in pieces) == 0.3
    assert draw_piece((5, 7)) == draw_piece((5, 7)) != draw_piece((5, 8))


@pytest.fixture
def test_split(monkeypatch):
    """A split on whatever General MIDI soundfont this machine has (the tests install one)."""
    monkeypatch.setitem(beatcorpus.SPLITS, "test", {"soundfonts": (soundfont().name,),
                                                     "synth_share": 0.3, "seed": 4})
    return "test"


def test_rendered_onsets_fall_on_the_annotated_beats(test_split):
    seed = next(s for s in range(200) if draw_piece((4, 0, s)).style in ("rock", "house")
                and draw_piece((4, 0, s)).tempo_curve == "steady"
                and not draw_piece((4, 0, s)).drumless_intro)
    mid, truth = piece_midi(draw_piece((4, 0, seed)))
    y = beatcorpus.render(mid, soundfont())
    mel = frontend.log_mel(frontend.spectrogram(y))
    flux = np.maximum(np.diff(mel, axis=0, prepend=mel[:1]), 0).mean(1)
    beats = truth["beats"][truth["beats"] < len(y) / frontend.SR - 1]
    f = np.round(beats * frontend.FPS).astype(int)
    on = np.array([flux[k - 1:k + 2].max() for k in f])
    between = np.array([flux[k - 1:k + 2].max() for k in (f[:-1] + f[1:]) // 2])
    # a kick or a snare on every beat: the flux there is larger than between the beats
    assert np.median(on) > 1.5 * np.median(between)


def test_shards_hold_frames_and_annotations_and_resume(tmp_path, test_split):
    paths = write_corpus(tmp_path, test_split, shards=2, pieces_per_shard=2, seconds=6.0,
                         workers=1, progress=False)
    assert [p.name for p in paths] == ["test-00000.h5", "test-00001.h5"]
    pieces = read_shards(paths)
    assert len(pieces) == 4
    for p in pieces:
        assert p.mel.shape[1] == frontend.N_MELS and abs(len(p.mel) - 6.0 * frontend.FPS) <= 1
        assert len(p.beats) >= 2 and p.beats.max() < 6.0
        assert set(np.round(p.downbeats, 6)) <= set(np.round(p.beats, 6))
        assert p.meta["seconds"] == pytest.approx(6.0, abs=0.01) and "augment" in p.meta
    stamp = paths[0].stat().st_mtime_ns
    paths[1].unlink()                                       # as if killed before shard 1
    again = write_corpus(tmp_path, test_split, shards=2, pieces_per_shard=2, seconds=6.0,
                         progress=False)
    assert paths[0].stat().st_mtime_ns == stamp            # kept, not redone
    assert np.array_equal(read_shards([again[1]])[0].mel, pieces[2].mel)   # the same draw
    assert not list(tmp_path.glob(".*"))                   # no partial files left


def test_shard_selection_and_missing_soundfonts_are_clear_errors(tmp_path, monkeypatch):
    with pytest.raises(ToolkitError, match="--shard I/N"):
        write_corpus(tmp_path, "train", shards=2, shard_of=(2, 2))
    with pytest.raises(ToolkitError, match="split must be one of"):
        write_corpus(tmp_path, "dev", shards=2)
    monkeypatch.setitem(beatcorpus.SPLITS, "test", {"soundfonts": ("Nope.sf2",),
                                                     "synth_share": 0.0, "seed": 4})
    with pytest.raises(ToolkitError, match="Nope.sf2 not found"):
        write_corpus(tmp_path, "test", shards=1)
    with pytest.raises(ToolkitError, match="not a readable corpus shard"):
        (tmp_path / "x.h5").write_bytes(b"junk")
        read_shards([tmp_path / "x.h5"])


def test_negative_pieces_have_sound_and_no_beats(monkeypatch):
    monkeypatch.setitem(beatcorpus.SPLITS, "test", {"soundfonts": (soundfont().name,),
                                                     "synth_share": 0.0, "seed": 4,
                                                     "negative_share": 1.0})
    for index in range(4):
        mel, truth = beatcorpus.make_piece("test", 0, index, seconds=6.0, augmentation=False)
        assert truth["meta"]["source"] == "negative" and len(truth["beats"]) == 0
        assert mel.max() > 0.5                          # there is sound, just no beat
