"""The beat tracker on music with exact beat times: the hand-written MIDI pieces, rendered by
FluidSynth (Debian's fluidsynth with whatever General MIDI soundfont is there; 'make test'
installs TimGM6mb), one per metre. The annotations come from the MIDI; the learned tracker
(which never trained on these pieces) finds the beats within mir_eval's +-70 ms in 4/4, 3/4
and 6/8, the metre (bars of 4, 3 and 2 dotted-quarter beats) and the downbeats; the DSP
fallback, tuned on these pieces, finds every beat."""

from __future__ import annotations

import mido
import mir_eval
import numpy as np
import pytest

from deepaudio.analysis.beats import analyse_beats
from deepaudio.core.audio import load_audio
from deepaudio.data.beatset import LEAD_IN_S, PIECES, load_truth, piece_midi, write_beat_set

BY_METRE = {p.metre: p for p in reversed(PIECES)}        # one piece per metre


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    out = tmp_path_factory.mktemp("beatset")
    return write_beat_set(out, seconds=16.0, pieces=tuple(BY_METRE.values()))


def test_annotations_follow_the_midi_tempo_map(tmp_path):
    for metre, piece in BY_METRE.items():
        mid, truth = piece_midi(piece, 10.0)
        beats = np.asarray(truth["beats"])
        per_bar = {"4/4": 4, "3/4": 3, "6/8": 2}[metre]
        assert np.allclose(np.diff(beats), 60.0 / piece.bpm)
        assert truth["downbeats"] == truth["beats"][::per_bar]
        assert abs(beats[0] - LEAD_IN_S) < 0.01 and beats[-1] >= 10.0 - 60 / piece.bpm
        path = tmp_path / f"{piece.name}.mid"
        mid.save(str(path))
        back = mido.MidiFile(str(path))
        first_on = min(sum(m.time for m in t[:i + 1]) for t in back.tracks
                       for i, m in enumerate(t) if m.type == "note_on")
        assert abs(mido.tick2second(first_on, back.ticks_per_beat,
                                    mid.tracks[0][0].tempo) - beats[0]) < 1e-6


@pytest.mark.parametrize("metre", ["4/4", "3/4", "6/8"])
def test_every_beat_is_found(rendered, metre):
    wav = next(w for w in rendered if w.stem == BY_METRE[metre].name)
    truth = load_truth(wav)
    y, sr = load_audio(wav, mono=True)
    assert y.shape[1] / sr > 16.0
    grid = analyse_beats(y, sr)
    assert grid.backend == "model"
    ref, est = (mir_eval.beat.trim_beats(np.asarray(x)) for x in (truth["beats"], grid.times))
    assert mir_eval.beat.f_measure(ref, est) >= 0.95
    assert np.median(np.abs(est - ref[np.abs(ref[:, None] - est).argmin(0)])) < 0.02
    assert grid.beats_per_bar == {"4/4": 4, "3/4": 3, "6/8": 2}[metre]
    assert mir_eval.beat.f_measure(mir_eval.beat.trim_beats(np.asarray(
        truth["downbeats"])), mir_eval.beat.trim_beats(grid.downbeats)) >= 0.9
    dsp = analyse_beats(y, sr, backend="dsp")
    assert mir_eval.beat.f_measure(ref, mir_eval.beat.trim_beats(dsp.times)) == 1.0
