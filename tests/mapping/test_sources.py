"""Feature sources on signals whose answers are known: a click track's beat and bar phases
and pulses (accented downbeats), no beat in noise, and the stem features of stems with a known
envelope, pitch and brightness; the CLI writes both."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from deepaudio.cli import mapping as mapping_cli
from deepaudio.core.audio import save_audio
from deepaudio.mapping.sources import BEAT_NAMES, beat_timeline, dsp_timeline, stem_timeline

SR = 22050
BPM = 120.0
FIRST = 0.5                       # the first click
FPS = 100.0


def click_track(seconds: float = 16.0) -> tuple[np.ndarray, np.ndarray]:
    """Clicks at 120 bpm from 0.5 s; every fourth (the downbeat) louder, with a low thump."""
    rng = np.random.default_rng(0)
    y = np.zeros(int(seconds * SR), np.float32)
    times = np.arange(FIRST, seconds - 0.3, 60 / BPM)
    t = np.arange(int(0.08 * SR)) / SR
    for k, at in enumerate(times):
        i = int(round(at * SR))
        n = 300
        y[i:i + n] += 0.5 * np.hanning(n) * rng.standard_normal(n)
        if k % 4 == 0:
            y[i:i + len(t)] += 0.8 * np.sin(2 * np.pi * 60 * t) * np.exp(-t / 0.02)
    return y, times


def test_the_beat_grid_source_follows_a_click_track():
    y, clicks = click_track()
    tl = beat_timeline(y, SR, fps=FPS)
    assert tl.names == list(BEAT_NAMES) and tl.meta["reason"] is None
    assert tl.meta["bpm"] == pytest.approx(BPM, rel=0.01)
    f = dict(zip(tl.names, tl.frames.T))
    t = tl.times
    assert f["tempo"] == pytest.approx(np.full(len(t), 0.5), abs=0.01)      # 120 bpm
    # on each click the beat phase wraps to 0 and the pulse is 1; half-way it is 0.5 and
    # the pulse has decayed (exp(-0.25 / 0.1))
    for at in clicks[1:-1]:
        k = int(round(at * FPS))
        assert min(f["beat_phase"][k], 1 - f["beat_phase"][k]) < 0.06, at
        assert f["beat_pulse"][k + 1] > 0.8
        mid = int(round((at + 0.25) * FPS))
        assert f["beat_phase"][mid] == pytest.approx(0.5, abs=0.06)
        assert f["beat_pulse"][mid] < 0.12
    # the phase keeps running through the silence before the first click
    assert 0 < f["beat_phase"][int(0.25 * FPS)] < 1
    # downbeats: the accented clicks, one bar (2 s) apart
    downs = np.asarray(tl.meta["downbeat_times"])
    assert np.abs(downs - clicks[::4][:len(downs)]).max() < 0.02
    peaks = np.flatnonzero((f["downbeat_pulse"][1:] > 0.9) & (f["downbeat_pulse"][:-1] <= 0.9))
    assert len(peaks) == pytest.approx(len(clicks[::4]), abs=1)
    bar = f["bar_phase"]
    k = int(round((clicks[4] + 1.0) * FPS))                  # half a bar after a downbeat
    assert bar[k] == pytest.approx(0.5, abs=0.05)
    assert np.all((tl.frames >= 0) & (tl.frames <= 1))


def test_noise_has_no_beat_grid():
    rng = np.random.default_rng(1)
    tl = beat_timeline(0.1 * rng.standard_normal(8 * SR).astype(np.float32), SR, fps=30.0)
    assert tl.meta["bpm"] is None and "no steady beat" in tl.meta["reason"]
    assert not tl.frames.any() and len(tl.frames) == 8 * 30 + 1


def stems_with_known_features(seconds: float = 8.0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(2)
    n = int(seconds * SR)
    t = np.arange(n) / SR
    bass = (t / seconds) * np.sin(2 * np.pi * 55 * t)                  # a linear crescendo
    vocals = np.where((t > 2) & (t < 6), 0.3 * np.sin(2 * np.pi * 220 * t), 0.0)   # A3
    noise = rng.standard_normal(n)
    spec = np.fft.rfft(noise)
    freqs = np.fft.rfftfreq(n, 1 / SR)
    dark = np.fft.irfft(spec * (freqs < 400), n)
    bright = np.fft.irfft(spec * (freqs > 3000), n)
    other = np.where(t < seconds / 2, dark / dark.std(), bright / bright.std()) * 0.1
    drums, _ = click_track(seconds)
    return {k: np.stack([v, v]).astype(np.float32)
            for k, v in {"drums": drums, "bass": bass, "other": other, "vocals": vocals}.items()}


def test_stem_features_follow_known_stems():
    tl = stem_timeline(stems_with_known_features(), SR, fps=FPS)
    assert tl.names == ["drums_onset", "bass_energy", "vocals_energy", "vocals_pitch",
                        "other_brightness"]
    f = dict(zip(tl.names, tl.frames.T))
    t = tl.times
    # the bass energy follows its envelope (RMS grows linearly with the amplitude)
    inner = (t > 0.5) & (t < 7.5)
    assert np.corrcoef(f["bass_energy"][inner], t[inner])[0, 1] > 0.99
    # the vocal: energy only while it sings, its pitch A3 = MIDI 57 -> (57 - 36) / 48
    sing, rest = (t > 2.2) & (t < 5.8), (t < 1.8) | (t > 6.2)
    assert f["vocals_energy"][sing].min() > 0.8 and f["vocals_energy"][rest].max() < 0.05
    assert np.median(f["vocals_pitch"][sing]) == pytest.approx(21 / 48, abs=0.01)
    assert f["vocals_pitch"][rest].max() == 0
    # the rest of the band: dark noise, then bright noise
    assert f["other_brightness"][(t > 0.5) & (t < 3.5)].mean() < 0.4
    assert f["other_brightness"][(t > 4.5) & (t < 7.5)].mean() > 0.7
    # drum onsets peak on the clicks
    _, clicks = click_track(8.0)
    on = f["drums_onset"]
    assert np.mean([on[int(round(c * FPS)) - 1:int(round(c * FPS)) + 3].max()
                    for c in clicks]) > 4 * np.median(on)
    # a stem set without these names: a clear error; missing stems drop their columns
    with pytest.raises(Exception, match="none of the stems"):
        stem_timeline({"guitar": np.zeros((2, SR), np.float32)}, SR)
    only = stem_timeline({"bass": stems_with_known_features()["bass"]}, SR)
    assert only.names == ["bass_energy"]


def test_cli_writes_both_sources(tmp_path, capsys):
    y, _ = click_track(8.0)
    song = save_audio(tmp_path / "clicks.wav", np.stack([y, y]), SR)
    folder = tmp_path / "stems"
    folder.mkdir()
    for name, x in stems_with_known_features().items():
        save_audio(folder / f"{name}.flac", x, SR, sample_format="pcm24")
    out = tmp_path / "sources.json"
    assert mapping_cli.main(["sources", str(song), "--stems", str(folder), "--fps", "30",
                             "-o", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert doc["beats"]["names"] == list(BEAT_NAMES) and doc["beats"]["bpm"] == pytest.approx(
        BPM, rel=0.01)
    assert "vocals_pitch" in doc["stems"]["names"]
    assert len(doc["stems"]["frames"]) == len(doc["beats"]["frames"]) == 8 * 30 + 1
    line = capsys.readouterr().out
    found = re.search(r"beats: ([\d.]+) bpm, 15 beats in bars of 4 \(model tracker\); stems: "
                      r"drums_onset", line)
    assert found and float(found.group(1)) == pytest.approx(BPM, rel=0.01), line


def test_the_dsp_baseline_as_a_source():
    """MilkDrop's band levels on the sources' frames, in [0, 1]: a bass note lifts the bass
    band when it starts and the treble band stays put."""
    t = np.arange(int(6.0 * SR)) / SR
    env = np.clip((t - 3.0) / 0.05, 0, 1)                  # a 50 ms attack: no click
    y = env * 0.5 * np.sin(2 * np.pi * 80 * t) + 0.01 * np.sin(2 * np.pi * 5000 * t)
    tl = dsp_timeline(y.astype(np.float32), SR, fps=30.0)
    assert tl.names == ["bass", "mid", "treb", "bass_att", "mid_att", "treb_att"]
    assert len(tl.frames) == 6 * 30 + 1 and tl.frames.min() >= 0 and tl.frames.max() <= 1
    f = dict(zip(tl.names, tl.frames.T))
    onset = int(3.0 * 30)
    assert f["bass"][onset + 1:onset + 6].max() > 0.9 > f["bass"][onset - 10:onset].max()
    assert np.ptp(f["treb"][30:-1]) < 0.1      # (the last frame hears the cut-off end)
