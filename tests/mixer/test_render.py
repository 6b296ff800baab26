"""Mixing: gains, pans, mute and solo, peak and LUFS normalisation with the true-peak
limiter, export formats."""

from __future__ import annotations

import numpy as np
import pyloudnorm as pyln
import pytest
import soundfile as sf

from deepaudio.core.config import ConfigError
from deepaudio.core.gain import db_to_gain
from deepaudio.core.loudness import (
    MAKEUP_MAX_DB,
    integrated_loudness,
    true_peak,
    true_peak_limiter,
)
from deepaudio.data.samples import render_track
from deepaudio.mixer.render import (
    FORMATS,
    NORMALIZE,
    export_mix,
    mix_settings,
    mix_stems,
    render_mix,
)
from deepaudio.mixer.stems import STEMS

SR = 44100


def _stems(seconds=6.0):
    stems, _ = render_track("Pop", 2, seed=3, seconds=seconds)
    return stems


def test_loudness_matches_pyloudnorm_and_lufs_hits_target():
    stems = _stems()
    mix = mix_stems(stems, mix_settings({}))
    assert integrated_loudness(mix, SR) == pytest.approx(
        pyln.Meter(SR).integrated_loudness(mix.T.astype(np.float64)), abs=0.01)
    for target in (-14.0, -23.0):
        out, report = render_mix(stems, SR, mix_settings({"target_lufs": target,
                                                                "gains": {"vocals": 4}}))
        assert "limited_by_true_peak" not in report
        assert pyln.Meter(SR).integrated_loudness(out.T) == pytest.approx(target, abs=0.5)
    assert integrated_loudness(np.zeros((2, SR)), SR) == float("-inf")


def _peaky(seconds=8.0, seed=0):
    """Drum-like transients (5 ms decaying noise bursts, left louder than right) every 0.5 s
    over a quiet two-tone pad: at -14 LUFS the bursts would peak ~10 dB over -1 dBTP."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    pad = 0.08 * np.stack([np.sin(2 * np.pi * 220 * t), np.sin(2 * np.pi * 330 * t)])
    hits = np.zeros_like(pad)
    burst = rng.standard_normal(int(0.005 * SR)) * np.exp(-np.arange(int(0.005 * SR)) / 60)
    for start in range(SR // 10, t.size - burst.size, SR // 2):
        hits[:, start:start + burst.size] += np.array([[0.5], [0.3]]) * burst
    return {"drums": hits.astype(np.float32), "other": pad.astype(np.float32)}


def test_lufs_limiter_hits_target_under_the_ceiling():
    stems = _peaky()
    out, report = render_mix(stems, SR, mix_settings({}))
    assert pyln.Meter(SR).integrated_loudness(out.T.astype(np.float64)) == pytest.approx(
        -14, abs=0.5)
    assert 20 * np.log10(true_peak(out)) <= -1.0 + 0.1
    assert 6 < report["limiter_max_reduction_db"] < 14          # transients only: the
    assert 0 < report["limiter_limited_percent"] < 75           # release spans 0.1 dB ~0.25 s
    assert "limited_by_true_peak" not in report
    # the loudness the report gives (estimated through the gain curve) is the real one
    assert report["output_lufs"] == pytest.approx(
        pyln.Meter(SR).integrated_loudness(out.T.astype(np.float64)), abs=0.05)
    mix = mix_stems(stems, mix_settings({}))
    loud = np.abs(mix).min(axis=0) > 1e-3
    ratio = out[:, loud] / mix[:, loud]
    np.testing.assert_allclose(ratio[0], ratio[1], rtol=1e-5)   # one gain for both channels
    assert ratio.max() / ratio.min() > 2                        # and it moved


def test_lufs_without_limiter_lowers_the_gain():
    stems = _peaky()
    out, report = render_mix(stems, SR, mix_settings({"limiter": False}))
    assert report["limited_by_true_peak"] and "limiter_max_reduction_db" not in report
    assert 20 * np.log10(true_peak(out)) == pytest.approx(-1.0, abs=0.01)
    loudness = pyln.Meter(SR).integrated_loudness(out.T.astype(np.float64))
    assert loudness < -14 - 6 and report["output_lufs"] == pytest.approx(loudness, abs=0.05)
    mix = mix_stems(stems, mix_settings({}))
    np.testing.assert_allclose(out, mix * np.float32(10 ** (report["gain_db"] / 20)),
                               rtol=2e-3, atol=1e-7)            # a static gain
    clicks = np.zeros((2, SR * 4), np.float32)
    clicks[:, ::SR // 4] = 0.5                               # very peaky: -14 LUFS would clip
    out, report = render_mix({"drums": clicks}, SR, mix_settings({"limiter": False}))
    assert report["limited_by_true_peak"]
    assert 20 * np.log10(true_peak(out)) == pytest.approx(-1.0, abs=0.01)
    # the limiter cannot make lone clicks loud, but it still holds the ceiling (also on
    # the click at sample 0) and stops at 6 dB of make-up
    out, report = render_mix({"drums": clicks}, SR, mix_settings({}))
    assert 20 * np.log10(true_peak(out)) <= -1.0 + 0.1
    assert report["output_lufs"] < -20 and report["gain_db"] == pytest.approx(
        -14 - report["input_lufs"] + MAKEUP_MAX_DB, abs=0.02)
    # true peak sees an intersample peak that sample peak misses
    t = np.arange(SR) / SR
    tone = np.sin(2 * np.pi * SR / 4 * t + np.pi / 4).astype(np.float32)[None]
    assert np.abs(tone).max() == pytest.approx(0.707, abs=1e-3) and true_peak(tone) > 0.95


def test_limiter_leaves_quiet_material_alone():
    t = np.arange(4 * SR) / SR
    pad = (0.1 * np.stack([np.sin(2 * np.pi * 220 * t), np.sin(2 * np.pi * 277 * t)])
           ).astype(np.float32)
    for target in (-14.0, -23.0):
        out, report = render_mix({"other": pad}, SR, mix_settings({"target_lufs": target}))
        assert report["limiter_max_reduction_db"] == 0 and report["limiter_limited_percent"] == 0
        gain = db_to_gain(report["gain_db"])
        np.testing.assert_allclose(out, pad * np.float32(gain), rtol=2e-3, atol=1e-6)
        plain, _ = render_mix({"other": pad}, SR, mix_settings({"target_lufs": target,
                                                                      "limiter": False}))
        np.testing.assert_array_equal(out, plain)           # the limiter did nothing at all
        assert report["output_lufs"] == pytest.approx(target, abs=0.01)
    assert true_peak_limiter(pad, SR, 0.5) is None






def test_peak_and_rescale():
    stems = _stems(2.0)
    out, _ = render_mix(stems, SR, mix_settings({"normalize": "peak"}))
    assert np.abs(out).max() == pytest.approx(1.0, abs=1e-6)
    quiet = {k: v * 0.05 for k, v in stems.items()}
    out, report = render_mix(quiet, SR, mix_settings({"normalize": "rescale"}))
    np.testing.assert_array_equal(out, mix_stems(quiet, mix_settings({})))  # never up
    loud = {k: v * 4 for k, v in stems.items()}
    out, _ = render_mix(loud, SR, mix_settings({"normalize": "rescale"}))
    assert np.abs(out).max() == pytest.approx(0.99, abs=1e-6)
    silent = {"drums": np.zeros((2, SR), np.float32)}
    for mode in NORMALIZE:
        out, _ = render_mix(silent, SR, mix_settings({"normalize": mode}))
        assert not out.any()                                 # the reference divided by zero


def test_gains_pan_mute_solo_math():
    rng = np.random.default_rng(1)
    stems = {s: rng.standard_normal((2, 1000)).astype(np.float32) for s in STEMS}
    none = {"normalize": "none"}
    out = mix_stems(stems, mix_settings({**none, "gains": {"vocals": -6}, "mutes":
                                                ["drums", "bass", "other"]}))
    np.testing.assert_allclose(out, stems["vocals"] * 10 ** (-6 / 20), rtol=1e-5)
    out = mix_stems(stems, mix_settings({**none, "solos": ["bass"], "gains": {"bass": 3}}))
    np.testing.assert_allclose(out, stems["bass"] * 10 ** (3 / 20), rtol=1e-5)
    out = mix_stems(stems, mix_settings({**none, "solos": ["bass"], "pans": {"bass": -1}}))
    np.testing.assert_allclose(out[0], stems["bass"].sum(0), rtol=1e-5, atol=1e-6)
    assert np.abs(out[1]).max() < 1e-6                       # hard left, as StereoPannerNode
    short = {"drums": np.ones((2, 10), np.float32), "bass": np.ones((2, 4), np.float32)}
    assert mix_stems(short, mix_settings(none)).shape == (2, 10)   # aligned lengths


@pytest.mark.parametrize("bad, match", [
    ({"gains": {"vocals": 13}}, r"must be in \[-60, 12\]"),
    ({"gains": {"vocals": -61}}, r"must be in \[-60, 12\]"),
    ({"gains": {"vocals": "3"}}, "must be a number"),
    ({"gains": {"vocals": True}}, "must be a number"),
    ({"gains": {"voice": 0}}, "unknown stem 'voice'"),
    ({"pans": {"bass": 2}}, r"pan of 'bass' must be a number in \[-1, 1\]"),
    ({"normalize": "loud"}, "key 'normalize'"),
    ({"format": "aac"}, "key 'format'"),
    ({"volume": 1}, "unknown key 'volume'"),
])
def test_bad_mix_settings(bad, match):
    with pytest.raises(ConfigError, match=match):
        mix_settings(bad, STEMS)


@pytest.mark.parametrize("fmt, subtype", [("wav16", "PCM_16"), ("wav24", "PCM_24"),
                                          ("flac", "PCM_24"), ("mp3", None)])
def test_export_formats(tmp_path, fmt, subtype):
    audio = (0.3 * np.sin(np.linspace(0, 2000, SR))).astype(np.float32)[None].repeat(2, 0)
    path = export_mix(tmp_path / f"m{FORMATS[fmt][0]}", audio, SR, fmt)
    info = sf.info(path)
    assert info.samplerate == SR and info.channels == 2
    if subtype:
        assert info.subtype == subtype and info.frames == SR


@pytest.mark.parametrize("raw", [{"gains": {"drums": 12, "bass": 9}},          # limiter works
                                 {"gains": {"drums": 12}, "limiter": False},
                                 {"normalize": "peak", "pans": {"vocals": -0.5}},
                                 {"normalize": "none", "mutes": ["other"]}])
def test_render_from_a_stem_folder_block_by_block(tmp_path, monkeypatch, raw):
    """A folder mixed and exported block by block (small blocks here) gives the samples of
    the in-memory render, its gain plan applied slice by slice."""
    from deepaudio.core import loudness
    from deepaudio.mixer import render
    from deepaudio.mixer import stems as stems_mod
    from deepaudio.mixer.render import plan_mix, render_to_file
    from deepaudio.mixer.stems import StemWriter, open_stems
    stems = _stems(seconds=8.0)
    writer = StemWriter(tmp_path / "st", SR)
    writer.write(np.stack([stems[s] for s in STEMS]))
    writer.close({"backend": "test"})
    for mod, name in ((stems_mod, "STEM_BLOCK"), (render, "BLOCK"), (loudness, "K_BLOCK"),
                      (loudness, "SCAN_BLOCK")):
        monkeypatch.setattr(mod, name, 30011)
    folder = open_stems(tmp_path / "st")
    settings = mix_settings({**raw, "format": "wav24"})
    expected, report = render_mix(dict(zip(folder.names, folder.stack())), SR, settings)
    if raw.get("gains", {}).get("bass"):
        assert report["limiter_max_reduction_db"] > 1
    got = render_to_file(folder, SR, settings, tmp_path / "mix.wav")
    assert got == report
    audio, sr = sf.read(tmp_path / "mix.wav", dtype="float32", always_2d=True)
    np.testing.assert_allclose(audio.T, np.clip(expected, -1, 1), atol=2 ** -22)
    plan, _ = plan_mix(render.mix_source(folder, settings), SR, settings)
    whole = plan.apply(render.mix_source(folder, settings))
    cuts = [0, 1, 4099, 200000, folder.frames]
    np.testing.assert_array_equal(
        np.concatenate([plan.block(render.mix_source(folder, settings), a, b)
                        for a, b in zip(cuts[:-1], cuts[1:])], axis=1), whole)


def test_render_memory_is_the_mix_and_its_loudness(tmp_path, long_song, peak_rss):
    """A 10-minute export from its stem folder holds the float mix (8 bytes a frame, 212 MB)
    and its K-weighted energy (4 bytes a frame), not the stems (four times the mix) nor
    copies of it: the render used to peak at 1.6 GB."""
    from deepaudio.mixer.stems import StemWriter
    song = long_song(tmp_path / "song.flac", 10)
    writer = StemWriter(tmp_path / "st", SR)
    for block in sf.blocks(str(song), blocksize=SR * 30, dtype="float32"):
        x = block.T
        writer.write(np.stack([x * 0.5, x * 0.3, x * 0.1, x * 0.1]))
    writer.close({"backend": "test"})
    short = tmp_path / "short"
    writer = StemWriter(short, SR)
    writer.write(np.stack([x * 0.5, x * 0.3, x * 0.1, x * 0.1]))
    writer.close({"backend": "test"})
    setup = ("from deepaudio.mixer.render import mix_settings, render_to_file\n"
             "from deepaudio.mixer.stems import open_stems\n"
             "def go(d):\n"
             "    f = open_stems(d)\n"
             "    render_to_file(f, f.sr, mix_settings({'gains': {'drums': 12}}), "
             f"{str(tmp_path / 'mix.wav')!r})")
    r = peak_rss(setup, warm=f"go({str(short)!r})", long=f"go({str(tmp_path / 'st')!r})")
    frames = sf.info(str(song)).frames
    assert r["long"] < 1.25 * 12 * frames / 2 ** 20, r


def test_m4a_export_is_gapless_aac(tmp_path):
    """M4A (AAC through FFmpeg): decodes back to the mix's length (the encoder's priming and
    padding are in the file) and to the mix within AAC's tolerance."""
    from deepaudio.core.audio import audio_info, load_audio
    rng = np.random.default_rng(0)
    t = np.arange(int(3.3 * SR)) / SR
    audio = np.stack([0.3 * np.sin(2 * np.pi * 440 * t), 0.2 * np.sin(2 * np.pi * 660 * t)
                      + 0.01 * rng.standard_normal(t.size)]).astype(np.float32)
    path = export_mix(tmp_path / "mix.m4a", audio, SR, "m4a")
    assert audio_info(path).codec == "aac" and not list(tmp_path.glob(".*"))
    y, sr = load_audio(path, mono=False)
    assert sr == SR and abs(y.shape[1] - audio.shape[1]) <= 1024     # within one AAC frame
    n = min(y.shape[1], audio.shape[1])
    err = y[:, :n] - audio[:, :n]
    assert 10 * np.log10((audio[:, :n] ** 2).mean() / (err ** 2).mean()) > 25
    with pytest.raises(ConfigError, match=r"must be saved as \.m4a"):
        export_mix(tmp_path / "mix.mp3", audio, SR, "m4a")
