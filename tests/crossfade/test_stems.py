"""Stem schedules and the mix-point planner on sample-generator songs with true stems: each
named schedule's per-stem gains (the bass swap on one downbeat, never two vocals at once, B's
drums first), a custom JSON schedule and its errors naming the field, the planner's ranked
candidates in the sidecar, the fallback for a song without a beat, and the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

from deepaudio.cli import crossfade as crossfade_cli
from deepaudio.core.audio import save_audio
from deepaudio.core.config import ConfigError
from deepaudio.crossfade.render import window_rms
from deepaudio.crossfade.schedules import (
    REST,
    SWITCH_SECONDS,
    StemRamp,
    apply_schedule,
    custom_schedule,
    named_schedule,
)
from deepaudio.crossfade.songs import crossfade_songs
from deepaudio.data.samples import STYLES, render_track
from deepaudio.mixer.stems import stem_source

SR = 22050
# two Pop songs of the sample generator 4.3 % apart in tempo (116.6 and 121.6 bpm)
PAIR = (("a", "Pop", 8), ("b", "Pop", 9))


@pytest.fixture(scope="module")
def stem_songs(tmp_path_factory):
    d = tmp_path_factory.mktemp("stem_songs")
    out = {}
    for name, genre, tid in PAIR:
        stems, _ = render_track(genre, tid, seed=0, seconds=30.0, sr=SR)
        folder = d / f"{name}_stems"
        folder.mkdir()
        for s, x in stems.items():
            save_audio(folder / f"{s}.flac", x, SR, sample_format="pcm24")
        out[name] = save_audio(d / f"{name}.flac", np.sum(list(stems.values()), axis=0), SR,
                               sample_format="pcm24")
        out[f"{name}_stems"] = folder
    return out


def _render(stem_songs, schedule, **kw):
    return crossfade_songs(stem_songs["a"], stem_songs["b"], sr=SR, beat_sync=True,
                           schedule=schedule, stems_a=stem_source(stem_songs["a_stems"]),
                           stems_b=stem_source(stem_songs["b_stems"]), context=3.0, **kw)


def _beat_sample(out, beat: float) -> int:
    """Output sample of beat ``beat`` of the overlap (A's grid, as the plan has it)."""
    s = out["sidecar"]
    times = np.asarray(s["plan"]["overlap_beat_times_s"])
    t = np.interp(beat, np.arange(len(times)), times)
    return int(round((t - s["plan"]["overlap_start_s"]) * SR + out["overlap_start"]))


@pytest.mark.parametrize("name", ["bass_swap", "vocal_handoff"])
def test_the_bass_swaps_on_one_downbeat(stem_songs, name):
    out = _render(stem_songs, name)
    s = out["sidecar"]
    plan, g = s["plan"], out["stem_gains"]
    beats = plan["beats"]
    assert s["schedule"]["name"] == name and s["mode"] == "beat_sync"
    assert set(s["stems"]["a"]) == set(s["stems"]["b"]) == {"drums", "bass", "other", "vocals"}
    # the swap beat is the middle of the overlap, and it is a downbeat of A
    mid = beats // 2
    assert (plan["a_beat"] + mid - plan["downbeat_phase_a"]) % 4 == 0
    k = _beat_sample(out, mid)
    w = int(round(SWITCH_SECONDS * SR))
    ga, gb = g["a"]["bass"], g["b"]["bass"]
    assert np.all(ga[:k] == 1.0) and np.all(ga[k + w + 1:] == 0.0)
    assert np.all(gb[:k] == 0.0) and np.all(gb[k + w + 1:] == 1.0)
    assert np.allclose(ga[k:k + w] ** 2 + gb[k:k + w] ** 2, 1.0, atol=1e-6)   # equal power
    # the downbeat of B lands there too: B's grid is aligned to A's at the overlap start
    assert s["b_downbeat_in_output_s"] == pytest.approx(out["overlap_start"] / SR, abs=1e-3)
    # unnamed stems follow the whole-mix ramp
    assert g["a"]["drums"] is out["g_out"] and g["b"]["other"] is out["g_in"]


def test_vocal_handoff_never_stacks_two_vocals(stem_songs):
    out = _render(stem_songs, "vocal_handoff")
    g = out["stem_gains"]
    assert np.max(g["a"]["vocals"] * g["b"]["vocals"]) == 0.0
    mid = _beat_sample(out, out["sidecar"]["plan"]["beats"] // 2)
    assert g["a"]["vocals"][mid] == 0.0 and g["a"]["vocals"][out["overlap_start"]] == 1.0
    # heard: the gained vocal stems are never both above -20 dB of their loud level at once
    va = out["parts_a"]["vocals"] * g["a"]["vocals"].astype(np.float32)
    vb = out["parts_b"]["vocals"] * g["b"]["vocals"].astype(np.float32)
    ra, rb = (window_rms(v, SR, window=0.1, step=0.05)[0] for v in (va, vb))
    both = (ra > 0.1 * np.percentile(ra, 95)) & (rb > 0.1 * np.percentile(rb, 95))
    assert both.sum() <= 2            # at most the 0.1 s window that straddles the handoff
    best = out["sidecar"]["candidates"][0]
    assert best["parts"]["vocal_overlap_s"] == 0.0


def test_drums_first_brings_b_drums_in_before_the_rest(stem_songs):
    out = _render(stem_songs, "drums_first")
    g = out["stem_gains"]
    beats = out["sidecar"]["plan"]["beats"]
    quarter = _beat_sample(out, beats // 4)
    start = out["overlap_start"]
    assert g["b"]["drums"][quarter + 2] == 1.0 and g["b"]["bass"][quarter - 2] == 0.0
    assert g["b"]["drums"][start + (quarter - start) // 2] > 0.3
    assert g["a"]["drums"][_beat_sample(out, beats // 2) - 2] == 1.0   # A's drums stay a while
    assert out["sidecar"]["schedule"]["stems"]["b"]["vocals"] == {
        "shape": "equal_power", "start": beats / 4, "end": float(beats)}


def test_the_scheduled_mix_is_the_sum_of_its_gained_parts():
    """apply_schedule on known parts: every sample is sum(gain x part)."""
    n, sr = 1000, 1000
    plan = {"beats": 8, "overlap_beat_times_s": list(0.2 + 0.05 * np.arange(9))}
    ones = np.ones((1, n), np.float32)
    out = {"audio": np.zeros((1, n), np.float32), "timeline_start": 0,
           "g_out": np.linspace(1, 0, n), "g_in": np.linspace(0, 1, n),
           "parts_a": {"bass": ones * 2, REST: ones}, "parts_b": {"bass": ones * 3, REST: ones}}
    sched = named_schedule("bass_swap", 8)
    resolved = apply_schedule(out, sched, plan, sr, stems={"a": ["bass"], "b": ["bass"]})
    g = out["stem_gains"]
    expect = 2 * g["a"]["bass"] + out["g_out"] + 3 * g["b"]["bass"] + out["g_in"]
    assert np.allclose(out["audio"][0], expect, atol=1e-6)
    assert g["a"]["bass"][399] == 1.0 and g["a"]["bass"][411] == 0.0   # beat 4 at 0.4 s
    assert resolved["stems"]["a"]["bass"] == {"shape": "equal_power", "start": 4.0, "end": 4.0}


def test_a_custom_schedule_from_json(stem_songs, tmp_path):
    path = tmp_path / "mine.json"
    path.write_text(json.dumps({"beats": 8, "stems": {
        "vocals": {"a": {"start": 0, "end": 2}, "b": {"shape": "linear", "start": 6, "end": 8}},
        "drums": {"b": {"start": 0, "end": 0}}}}))
    out = _render(stem_songs, str(path))
    s = out["sidecar"]
    assert s["plan"]["beats"] == 8 and s["schedule"]["name"] == "custom"
    assert s["schedule"]["stems"]["b"]["vocals"] == {"shape": "linear", "start": 6.0,
                                                      "end": 8.0}
    g = out["stem_gains"]
    k2, k6 = _beat_sample(out, 2), _beat_sample(out, 6)
    assert g["a"]["vocals"][k2 + 1] == 0.0 and g["b"]["vocals"][k6 - 1] == 0.0
    assert g["b"]["drums"][out["overlap_start"] + int(SWITCH_SECONDS * SR) + 1] == 1.0


@pytest.mark.parametrize("spec, field", [
    ({"stems": {"guitar": {"a": {"start": 0, "end": 4}}}}, "schedule.stems.guitar.a"),
    ({"stems": {"bass": {"a": {"start": 0, "end": 40}}}, "beats": 16},
     "schedule.stems.bass.a.end"),
    ({"stems": {"bass": {"b": {"start": 4, "end": 2}}}}, "schedule.stems.bass.b"),
    ({"stems": {"bass": {"b": {"shape": "wobble"}}}}, "schedule.stems.bass.b"),
    ({"stems": {"bass": {"c": {}}}}, "schedule.stems.bass"),
    ({"stems": {}, "beats": 10}, "schedule.beats"),
    ({"stems": {}, "default": {"shape": "random_linear"}}, "schedule.default"),
])
def test_custom_schedule_errors_name_the_field(spec, field):
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        custom_schedule(spec, stems_a=["drums", "bass", "other", "vocals"],
                        stems_b=["drums", "bass", "other", "vocals"])


def test_a_schedule_past_the_overlap_or_without_stems_is_an_error(stem_songs):
    with pytest.raises(ConfigError, match=r"schedule\.stems\.bass\.a\.end"):
        _render(stem_songs, {"stems": {"bass": {"a": {"start": 0, "end": 20}}}}, beats=16)
    with pytest.raises(ConfigError, match="needs the stems of both songs"):
        crossfade_songs(stem_songs["a"], stem_songs["b"], sr=SR, beat_sync=True,
                        schedule="bass_swap")
    with pytest.raises(ConfigError, match="beat-sync"):
        crossfade_songs(stem_songs["a"], stem_songs["b"], sr=SR, schedule="bass_swap",
                        stems_a=stem_source(stem_songs["a_stems"]),
                        stems_b=stem_source(stem_songs["b_stems"]))
    with pytest.raises(ConfigError, match="unknown schedule"):
        _render(stem_songs, "wobble")
    with pytest.raises(ConfigError, match="whole bars"):
        named_schedule("bass_swap", 6)
    assert StemRamp(1, 2).to_json() == {"shape": "equal_power", "start": 1, "end": 2}


def test_the_planner_ranks_candidates_and_renders_the_chosen_one(stem_songs):
    out = crossfade_songs(stem_songs["a"], stem_songs["b"], sr=SR, beat_sync=True, context=3.0)
    s = out["sidecar"]
    cands = s["candidates"]
    assert len(cands) >= 3 and s["candidate"] == 0
    scores = [c["score"] for c in cands]
    assert scores == sorted(scores, reverse=True)
    for c in cands:
        assert set(c["parts"]) == {"roughness_ratio", "dissonance_ratio", "loudness_dip_db",
                                   "vocal_overlap_s", "key_score", "stretch", "skipped_s"}
        assert c["score"] == pytest.approx(1 - sum(c["penalties"].values()), abs=1e-3)
        assert c["parts"]["vocal_overlap_s"] is None           # no stems: unknown
    # every candidate starts on a downbeat of A; the rendered plan is the best one's
    assert all(round((c["a_start_in_song_s"] - cands[0]["a_start_in_song_s"]) / (60 / s[
        "plan"]["tempo_a"])) % 4 == 0 for c in cands)
    a_song0 = s["output_start_in_first_song_s"] - out["timeline_start"] / SR
    assert a_song0 + s["plan"]["overlap_start_s"] == pytest.approx(
        cands[0]["a_start_in_song_s"], abs=1e-3)
    second = crossfade_songs(stem_songs["a"], stem_songs["b"], sr=SR, beat_sync=True,
                             context=3.0, candidate=1)
    p2 = second["sidecar"]
    assert p2["candidate"] == 1 and p2["candidates"] == cands
    assert a_song0 + p2["plan"]["overlap_start_s"] == pytest.approx(
        cands[1]["a_start_in_song_s"], abs=1e-3)
    with pytest.raises(ConfigError, match="candidate must be below"):
        crossfade_songs(stem_songs["a"], stem_songs["b"], sr=SR, beat_sync=True,
                        candidate=len(cands))


def test_stems_show_the_vocal_overlap_of_a_whole_mix_fade(stem_songs):
    """With stems but no schedule, the planner measures how long two vocals overlap."""
    out = crossfade_songs(stem_songs["a"], stem_songs["b"], sr=SR, beat_sync=True, context=3.0,
                          stems_a=stem_source(stem_songs["a_stems"]),
                          stems_b=stem_source(stem_songs["b_stems"]))
    overlaps = [c["parts"]["vocal_overlap_s"] for c in out["sidecar"]["candidates"]]
    assert all(v is not None for v in overlaps) and max(overlaps) > 1.0
    assert out["sidecar"]["schedule"] is None
    # with stems the keys come from the chords (the "other" stem): the keys the generator drew
    keys = out["sidecar"]["keys"]
    assert keys["a_from"] == keys["b_from"] == "other stem"
    for song, (genre, tid) in (("a", PAIR[0][1:]), ("b", PAIR[1][1:])):
        _, drawn = render_track(genre, tid, seed=0, seconds=0.1, sr=8000)
        assert keys[song]["tonic"] == drawn["root_midi"] % 12
        assert keys[song]["mode"] == STYLES[genre].scale


def test_no_beat_falls_back_to_an_equal_power_fade(stem_songs, tmp_path):
    rng = np.random.default_rng(0)
    t = np.arange(20 * SR) / SR
    drone = (0.2 * np.sin(2 * np.pi * 110 * t) + 0.01 * rng.standard_normal(len(t)))
    path = save_audio(tmp_path / "drone.flac", np.stack([drone, drone]).astype(np.float32), SR)
    stems_dir = tmp_path / "drone_stems"
    stems_dir.mkdir()
    for s in ("drums", "bass", "other", "vocals"):
        save_audio(stems_dir / f"{s}.flac", np.stack([drone, drone]).astype(np.float32) *
                   (1.0 if s == "other" else 0.0), SR)
    out = crossfade_songs(stem_songs["a"], path, sr=SR, beat_sync=True, schedule="bass_swap",
                          stems_a=stem_source(stem_songs["a_stems"]),
                          stems_b=stem_source(stems_dir), seconds=3.0, context=2.0)
    s = out["sidecar"]
    assert s["mode"] == "simple" and s["style"] == "equal_power" and s["seconds"] == 3.0
    assert "no steady beat" in s["fallback_reason"]
    assert s["candidates"] is None and s["schedule"] is None


def test_cli_renders_a_scheduled_transition(stem_songs, tmp_path, capsys):
    out = tmp_path / "swap.wav"
    assert crossfade_cli.main([
        "simple", str(stem_songs["a"]), str(stem_songs["b"]), "-o", str(out), "--beat-sync",
        "--schedule", "bass_swap", "--stems-a", str(stem_songs["a_stems"]),
        "--stems-b", str(stem_songs["b_stems"]), "--sr", str(SR), "--context", "2"]) == 0
    printed = capsys.readouterr().out
    assert "planner: candidate 0 of" in printed and "schedule bass_swap" in printed
    side = json.loads(out.with_suffix(".json").read_text())
    assert side["schedule"]["stems"]["a"]["bass"]["start"] == 8.0
    assert side["candidates"][0]["rank"] == 0
    # separated on demand (DSP here: offline), cached by content for the next run
    cache = tmp_path / "cache"
    args = ["simple", str(stem_songs["a"]), str(stem_songs["b"]), "-o", str(out),
            "--beat-sync", "--schedule", "vocal_handoff", "--stems-a",
            str(stem_songs["a_stems"]), "--backend", "dsp", "--stems-cache", str(cache),
            "--sr", str(SR), "--context", "2"]
    assert crossfade_cli.main(args) == 0
    (folder,) = cache.iterdir()
    assert folder.name.endswith("-dsp-htdemucs") and (folder / "stems.json").is_file()
    stamp = (folder / "stems.json").stat().st_mtime
    assert crossfade_cli.main(args) == 0
    assert (folder / "stems.json").stat().st_mtime == stamp
    capsys.readouterr()
    rc = crossfade_cli.main(["simple", str(stem_songs["a"]), str(stem_songs["b"]), "-o",
                             str(out), "--beat-sync", "--schedule", "bass_swap", "--stems-a",
                             str(tmp_path / "nowhere"), "--stems-b", str(stem_songs["b_stems"])])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "stems folder not found" in err[0]

