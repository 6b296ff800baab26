"""crossfade.py, crossfade_render.py, crossfade_deepbass.py, crossfade_plots.py: ramps,
silence trimming, loudness matching, beat-synchronous alignment, the DeepBass config.ini run,
evaluate, the CLI's user errors, and the neural/prep glue around a stand-in WaveNet."""

from __future__ import annotations

import configparser
import json

import numpy as np
import pytest
import soundfile as sf

from deepaudio.cli import crossfade as crossfade_cli
from deepaudio.core.audio import load_audio, save_audio
from deepaudio.core.beats import ANALYSIS_SR, HOP, _global_tempo, dp_beats
from deepaudio.core.config import ConfigError
from deepaudio.core.errors import ToolkitError
from deepaudio.core.loudness import integrated_loudness
from deepaudio.crossfade import neural
from deepaudio.crossfade.clips import prep_clips
from deepaudio.crossfade.deepbass import read_ini
from deepaudio.crossfade.render import (
    NEURAL_RAMPS,
    RAMPS,
    equal_power_ramp,
    logarithmic_ramp,
    ramp,
    random_linear_ramp,
    render_beat_sync,
    trim_silence,
)
from deepaudio.crossfade.songs import crossfade_songs
from deepaudio.networks.checkpoint import load_wavenet, save_weights
from deepaudio.networks.wavenet import WaveNetAutoencoder, make_config

SR = 22050


# --------------------------------------------------------------------------------------------
# signals

def tone_song(seconds: float, sr: int = SR, *, f0: float = 220.0, level_db: float = -12.0,
              seed: int = 0, channels: int = 2) -> np.ndarray:
    """A few detuned partials with amplitude modulation plus a little noise: music-like,
    steady loudness."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    y = sum(np.sin(2 * np.pi * f0 * k * t + rng.uniform(0, 6)) / k for k in (1, 2, 3, 5))
    y = y * (1 + 0.3 * np.sin(2 * np.pi * 2 * t)) + 0.05 * rng.standard_normal(len(t))
    y *= 10 ** (level_db / 20) / np.sqrt(np.mean(y ** 2))
    return np.repeat(y[None], channels, axis=0).astype(np.float32)


def click(sr: int, freq: float, amp: float, kick: bool) -> np.ndarray:
    t = np.arange(int(0.03 * sr)) / sr
    y = amp * np.sin(2 * np.pi * freq * t) * np.exp(-t / 0.004)
    if kick:   # a low thump on the downbeat: bar-start evidence for the downbeat tracker
        tk = np.arange(int(0.15 * sr)) / sr
        k = 0.8 * np.sin(2 * np.pi * np.cumsum(60 + 90 * np.exp(-tk / 0.02)) / sr)
        k *= np.exp(-tk / 0.05)
        y = np.pad(y, (0, len(k) - len(y))) + k
    return y


def click_track(bpm: float, seconds: float, sr: int, *, down_hz: float, beat_hz: float,
                first: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Clicks on every beat, accented downbeats (every 4th, louder, other pitch, kick);
    returns the audio (1, N) and the downbeat times."""
    n = int(seconds * sr)
    y = np.zeros(n + sr)
    times = np.arange(first, seconds, 60.0 / bpm)
    for i, t in enumerate(times):
        c = click(sr, down_hz, 0.9, True) if i % 4 == 0 else click(sr, beat_hz, 0.5, False)
        k = int(round(t * sr))
        y[k:k + len(c)] += c
    return y[None, :n].astype(np.float32), times[::4]


def band_onsets(y: np.ndarray, sr: int, freq: float, *, rel: float = 0.25) -> np.ndarray:
    """Times of the energy peaks of bursts near ``freq``: zero-phase FFT band-pass (+-120 Hz),
    squared, 2 ms box-smoothed, local maxima above ``rel`` of the largest, 0.2 s apart."""
    spec = np.fft.rfft(y)
    f = np.fft.rfftfreq(len(y), 1 / sr)
    band = np.fft.irfft(spec * (np.abs(f - freq) < 120), len(y))
    w = max(1, int(0.002 * sr))
    env = np.convolve(band ** 2, np.ones(w) / w, mode="same")
    thr = rel * env.max()
    peaks, last = [], -np.inf
    hop = int(0.1 * sr)
    for k in np.flatnonzero((env[1:-1] > env[:-2]) & (env[1:-1] >= env[2:]) &
                            (env[1:-1] > thr)) + 1:
        lo, hi = max(0, k - hop), k + hop
        if env[k] < env[lo:hi].max() or k / sr - last < 0.2:
            continue
        peaks.append(k / sr)
        last = k / sr
    return np.array(peaks)


@pytest.fixture(scope="module")
def songs(tmp_path_factory):
    """Two 12 s stereo songs (FLAC), B 12 dB quieter than A, each with silence at both ends."""
    d = tmp_path_factory.mktemp("songs")
    pad = np.zeros((2, SR // 2), np.float32)
    a = np.concatenate([pad, tone_song(12, f0=220, level_db=-14, seed=1), pad], axis=1)
    b = np.concatenate([pad, tone_song(12, f0=330, level_db=-26, seed=2), pad], axis=1)
    save_audio(d / "a.flac", a, SR, sample_format="pcm24")
    save_audio(d / "b.flac", b, SR, sample_format="pcm24")
    return d / "a.flac", d / "b.flac"


# --------------------------------------------------------------------------------------------
# ramps

@pytest.mark.parametrize("style", ["linear", "s_curve", "sigmoid"])
def test_equal_gain_ramps_sum_to_one(style):
    g_out, g_in = ramp(style, 1001)
    np.testing.assert_allclose(g_out + g_in, 1.0, atol=1e-12)
    assert np.all(np.diff(g_in) >= 0) and np.all(np.diff(g_out) <= 0)
    if style == "sigmoid":      # t = linspace(-6, 6, N), as DeepBass
        np.testing.assert_allclose([g_out[0], g_out[-1]], [0.99753, 0.00247], atol=1e-5)
    else:
        assert (g_in[0], g_in[-1], g_out[0], g_out[-1]) == (0.0, 1.0, 1.0, 0.0)
        np.testing.assert_allclose(g_in[500], 0.5, atol=1e-12)


def test_equal_power_ramp_keeps_power():
    g_out, g_in = equal_power_ramp(777)
    np.testing.assert_allclose(g_out ** 2 + g_in ** 2, 1.0, atol=1e-12)
    assert (g_in[0], g_out[-1]) == (0.0, pytest.approx(0.0, abs=1e-15))
    np.testing.assert_allclose(g_in[388], np.sqrt(0.5), atol=1e-12)     # -3 dB at x = 1/2


def test_logarithmic_ramp_is_linear_in_db():
    g_out, g_in = logarithmic_ramp(101, range_db=60.0)
    assert g_in[0] == 0.0 and g_in[-1] == 1.0 and g_out[-1] == 0.0 and g_out[0] == 1.0
    assert np.all(np.diff(g_in) > 0) and np.all(np.diff(g_out) < 0)
    db = 20 * np.log10(g_in[1:])
    np.testing.assert_allclose(np.diff(db), 60.0 / 100, atol=1e-9)       # equal dB steps
    np.testing.assert_allclose(db[0], -60.0 * 99 / 100, atol=1e-9)
    np.testing.assert_allclose(g_out, g_in[::-1])


def test_random_linear_expected_gains_and_seed():
    n, seeds = 11, 4000
    x = np.linspace(0, 1, n)
    outs = np.array([random_linear_ramp(n, seed=s) for s in range(seeds)])  # (S, 2, n)
    np.testing.assert_allclose(outs[:, 0].mean(axis=0), (1 - x) ** 2, atol=0.03)
    np.testing.assert_allclose(outs[:, 1].mean(axis=0), x ** 2, atol=0.03)
    # per sample exactly one song sounds, with its linear gain
    assert np.all((outs[:, 0] == 0) | (outs[:, 1] == 0))
    a, b = ramp("random_linear", 50, seed=7), ramp("random_linear", 50, seed=7)
    np.testing.assert_array_equal(a[0], b[0])
    assert not np.array_equal(a[0], ramp("random_linear", 50, seed=8)[0])


def test_neural_hann_reaches_one_and_unknown_style():
    g_out, g_in = NEURAL_RAMPS["hann"](125)
    assert g_in[-1] == 1.0 and g_out[-1] == 0.0 and g_in[0] == 0.0    # DeepBass: .99984
    with pytest.raises(ToolkitError, match="Foo"):
        ramp("Foo", 10)


# --------------------------------------------------------------------------------------------
# silence

@pytest.mark.parametrize("sr", [16000, 44100])
def test_trim_removes_edges_keeps_quiet_outro_passage(sr):
    loud = tone_song(3, sr, channels=1)
    quiet = tone_song(1.5, sr, level_db=-40, channels=1)     # a break inside the outro
    tail = tone_song(1, sr, channels=1)
    sil = np.zeros((1, sr), np.float32)
    x = np.concatenate([sil, loud, quiet, tail, sil, sil], axis=1)
    y, cuts = trim_silence(x, sr)
    win = int(0.25 * sr)
    assert abs(cuts["start_cut_s"] - 1.0) <= 0.25 + 1e-9
    assert abs(cuts["end_cut_s"] - 2.0) <= 0.25 + 1e-9
    music = 5.5 * sr
    assert music - win <= y.shape[1] <= music + 2 * win      # the quiet break stayed
    # DeepBass' end rule (the first quiet window of the tail) would have cut here
    assert y.shape[1] > (1 + 3) * sr


def test_trim_absolute_threshold_and_all_silent():
    x = np.concatenate([np.zeros((2, SR)), tone_song(2, level_db=-30)], axis=1)
    y, cuts = trim_silence(x, SR, threshold_db=-40)
    assert abs(cuts["start_cut_s"] - 1.0) <= 0.25
    with pytest.raises(ToolkitError, match="silent"):
        trim_silence(x, SR, threshold_db=-10)
    with pytest.raises(ToolkitError, match="silent"):
        trim_silence(np.zeros((2, 3 * SR), np.float32), SR)


# --------------------------------------------------------------------------------------------
# simple crossfades

def test_simple_output_in_context_and_loudness_matched(songs, tmp_path):
    a, b = songs
    out_path = tmp_path / "x.wav"
    assert crossfade_cli.main(["simple", str(a), str(b), "-o", str(out_path), "--seconds", "2",
                    "--context", "3", "--sr", str(SR)]) == 0
    y, sr = load_audio(out_path, mono=False)
    side = json.loads(out_path.with_suffix(".json").read_text())
    assert sr == SR and y.shape == (2, 8 * SR) and y.dtype == np.float32
    assert side["style"] == "equal_power" and side["overlap_start_in_output_s"] == 3.0
    assert side["loudness"]["gain_db"] == pytest.approx(12.0, abs=1.0)
    la = integrated_loudness(y[:, :3 * SR], SR)
    lb = integrated_loudness(y[:, 5 * SR:], SR)
    assert abs(la - lb) < 1.0                          # 12 dB apart in the files
    assert side["trims"]["a"]["end_cut_s"] == pytest.approx(0.5, abs=0.25)
    assert side["trims"]["b"]["start_cut_s"] == pytest.approx(0.5, abs=0.25)
    # the output's B part is B itself after its trimmed silence, gained
    b_audio, _ = load_audio(b, mono=False)
    k0 = int(round(side["trims"]["b"]["start_cut_s"] * SR))
    g = 10 ** (side["loudness"]["gain_db"] / 20)
    np.testing.assert_allclose(y[:, 5 * SR:], b_audio[:, k0 + 2 * SR:k0 + 5 * SR] * g,
                               atol=2e-4)


def test_context_full_keeps_both_songs(songs):
    a, b = songs
    out = crossfade_songs(a, b, sr=SR, style="linear", seconds=2, context=None)
    # both trimmed songs (~12 s each) minus the 2 s overlap
    assert out["audio"].shape[1] / SR == pytest.approx(22.0, abs=0.5)
    assert out["sidecar"]["context_s"] == "full"


def test_mono_and_stereo_songs_mix_in_stereo(tmp_path):
    save_audio(tmp_path / "m.wav", tone_song(6, channels=1), SR)
    save_audio(tmp_path / "s.wav", tone_song(6, f0=300, channels=2), SR)
    out = crossfade_songs(tmp_path / "m.wav", tmp_path / "s.wav", sr=16000, seconds=1,
                             context=1)
    assert out["audio"].shape == (2, 3 * 16000)


# --------------------------------------------------------------------------------------------
# beat-synchronous crossfades

def test_beat_sync_downbeats_land_on_a_grid(tmp_path):
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


# --------------------------------------------------------------------------------------------
# DeepBass config.ini

def _edit_ini(path, changes: dict):
    p = configparser.ConfigParser(interpolation=None, default_section="\0none")
    p.optionxform = str
    p.read(path)
    for (section, key), value in changes.items():
        if not p.has_section(section):
            p.add_section(section)
        p.set(section, key, value)
    with open(path, "w") as f:
        p.write(f)


def test_init_config_round_trip_with_home_paths(songs, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "songs").mkdir()
    for p in songs:
        (tmp_path / "songs" / p.name).write_bytes(p.read_bytes())
    ini = tmp_path / "config.ini"
    assert crossfade_cli.main(["init-config", str(ini)]) == 0
    cfg = read_ini(ini)                               # the default file is valid
    assert cfg.default.samplingrate == 16000 and cfg.simple.style == "Linear"
    assert crossfade_cli.main(["init-config", str(ini)]) == 2    # no silent overwrite
    _edit_ini(ini, {("IO", "Load Directory"): "~/songs", ("IO", "Save Directory"): "~/out",
                    ("IO", "FirstSong"): "a.flac", ("IO", "SecondSong"): "b.flac",
                    ("IO", "Save Name"): "mix", ("Simple XFade Settings", "Time"): "2",
                    ("Simple XFade Settings", "Context"): "1.5"})
    assert crossfade_cli.main(["-config_fname", str(ini)]) == 0
    out = tmp_path / "out"
    mix, sr = load_audio(out / "mix_simple.wav", mono=False)
    assert sr == 16000 and mix.shape == (2, 5 * 16000)
    for name in ("end_trim", "begin_trim", "end_faded", "begin_faded"):
        part, sr = load_audio(out / f"{name}.wav", mono=False)
        assert part.shape == (2, 2 * 16000) and np.abs(part).max() > 0.01
    end_trim, _ = load_audio(out / "end_trim.wav", mono=False)
    end_faded, _ = load_audio(out / "end_faded.wav", mono=False)
    np.testing.assert_allclose(end_faded, end_trim * np.linspace(1, 0, 2 * 16000), atol=1e-6)
    assert float((out / "mix_simple_roughness.txt").read_text()) > 0
    assert (out / "mix_simple.png").stat().st_size > 1000
    side = json.loads((out / "mix_simple.json").read_text())
    assert side["style"] == "linear" and side["sr"] == 16000
    assert not (tmp_path / "~").exists()


@pytest.mark.parametrize("section,key,value,fragment", [
    ("Simple XFade Settings", "Style", "Foo", "Style"),
    ("Simple XFade Settings", "Time", "-1", "Time"),
    ("NSynth XFade Settings", "Style", "Extend", "Extend"),
    ("NSynth XFade Settings", "Time", "four", "Time"),
    ("Plot", "Flag", "maybe", "Flag"),
    ("DEFAULT", "SamplingRate", "16k", "SamplingRate"),
    ("IO", "Colour", "red", "Colour"),
    ("Extras", "Key", "1", "Extras"),
])
def test_bad_config_values_name_section_and_key(tmp_path, capsys, section, key, value,
                                                fragment):
    ini = tmp_path / "config.ini"
    crossfade_cli.main(["init-config", str(ini)])
    _edit_ini(ini, {(section, key): value})
    with pytest.raises(ConfigError, match=fragment) as e:
        read_ini(ini)
    assert f"[{section}]" in str(e.value)
    capsys.readouterr()
    assert crossfade_cli.main(["-config_fname", str(ini)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and fragment in err[0]


def test_deepbass_quoted_flag_and_missing_sections(tmp_path):
    ini = tmp_path / "c.ini"
    ini.write_text("[Plot]\nFlag = 'False'\n[IO]\nFirstSong = x.mp3\n")
    cfg = read_ini(ini)
    assert cfg.plot.flag is False and cfg.io.firstsong == "x.mp3"
    assert cfg.simple.time == 4.0 and cfg.default.samplingrate == 16000


# --------------------------------------------------------------------------------------------
# evaluate

def test_evaluate_writes_table_and_figures(songs, tmp_path, capsys):
    a, b = songs
    out = tmp_path / "eval"
    assert crossfade_cli.main(["evaluate", str(a), str(b), "-o", str(out), "--seconds", "2",
                    "--context", "1", "--sr", "16000"]) == 0
    printed = capsys.readouterr().out
    assert "equal_power" in printed and "logarithmic" in printed
    rows = json.loads((out / "measures.json").read_text())["rows"]
    assert [r["style"] for r in rows] == list(RAMPS)
    by = {r["style"]: r for r in rows}
    for r in rows:
        assert r["roughness"] > 0 and r["dissonance_min"] > 0 and r["dissonance_product"] > 0
    # equal gain dips about -3 dB for uncorrelated songs, equal power about 0 dB
    assert by["linear"]["loudness_dip_db"] < by["equal_power"]["loudness_dip_db"] - 1.5
    assert abs(by["equal_power"]["loudness_dip_db"]) < 1.5
    csv = (out / "measures.csv").read_text().splitlines()
    assert csv[0].startswith("style,roughness") and len(csv) == 1 + len(RAMPS)
    assert (out / "transitions.png").read_bytes()[:4] == b"\x89PNG"


# --------------------------------------------------------------------------------------------
# CLI user errors

def test_missing_and_corrupt_inputs_exit_2(songs, tmp_path, capsys):
    a, _ = songs
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunkjunkjunk" * 10)
    for other in (tmp_path / "missing.mp3", bad):
        rc = crossfade_cli.main(["simple", str(a), str(other), "-o", str(tmp_path / "o.wav")])
        err = capsys.readouterr().err.strip().splitlines()
        assert rc == 2 and len(err) == 1 and err[0].startswith("error:")
        assert other.name in err[0]
    assert not (tmp_path / "o.wav").exists()


# --------------------------------------------------------------------------------------------
# neural glue and prep, around a stand-in WaveNet with the agreed API

@pytest.fixture
def fake_wavenet(monkeypatch):
    calls = {}
    def load_wavenet(run_dir, device="cpu"):
        calls["run"] = str(run_dir)
        return "model"

    def embedding_crossfade(model, a, b, g_out, g_in, sampling="greedy", seed=0,
                            method="fast", batch=True):
        calls.update(a=a, b=b, g_out=g_out, g_in=g_in, seed=seed)
        f = a.shape[0] // 512
        enc_a, enc_b = np.zeros((16, f)), np.ones((16, f))
        return {"audio": (0.5 * a + 0.5 * b).astype(np.float32), "enc_a": enc_a,
                "enc_b": enc_b, "enc_mix": enc_a * g_out + enc_b * g_in}

    monkeypatch.setattr(neural, "load_wavenet", load_wavenet)
    monkeypatch.setattr(neural, "embedding_crossfade", embedding_crossfade)
    return calls


def test_neural_glue_weights_at_code_rate_and_encoding_names(songs, tmp_path, fake_wavenet):
    a, b = songs
    out = tmp_path / "n.wav"
    assert crossfade_cli.main(["neural", str(a), str(b), "-o", str(out), "--weights", "RUN",
                    "--style", "hann", "--seconds", "2", "--context", "1"]) == 0
    t = (2 * 16000 // 512) * 512
    f = t // 512
    assert fake_wavenet["a"].shape == (t,) and fake_wavenet["g_in"].shape == (f,)
    assert fake_wavenet["g_in"][-1] == 1.0 and fake_wavenet["g_out"][0] == 1.0
    y, sr = load_audio(out, mono=False)
    assert sr == 16000 and y.shape == (1, 2 * 16000 + t)
    enc_a, enc_b = np.load(tmp_path / "a_end_enc.npy"), np.load(tmp_path / "b_begin_enc.npy")
    assert enc_a.shape == (16, f) and enc_a.max() == 0 and enc_b.min() == 1
    # the decoded part sits between the rest of A and of B; joins only at its edges
    mid = y[0, 16000 + 800:16000 + t - 800]
    np.testing.assert_allclose(mid, 0.5 * fake_wavenet["a"][800:-800]
                               + 0.5 * fake_wavenet["b"][800:-800], atol=1e-5)
    side = json.loads(out.with_suffix(".json").read_text())
    assert side["mode"] == "neural" and side["style"] == "hann" and side["frames"] == f


def test_prep_cuts_begin_end_clips_and_skips_bad_files(tmp_path):
    d = tmp_path / "songs"
    save_audio(d / "one.wav", tone_song(14, 44100, seed=1), 44100)
    save_audio(d / "two.flac", tone_song(13, 22050, seed=2), 22050)
    save_audio(d / "short.wav", tone_song(5, 16000, seed=3), 16000)
    (d / "broken.mp3").write_bytes(b"not an mp3 at all" * 20)
    logs = []
    rep = prep_clips(d, tmp_path / "clips.h5", seconds=4, log=logs.append)
    import h5py
    with h5py.File(tmp_path / "clips.h5") as f:
        clips, sources = f["clips"][:], f["sources"].asstr()[:]
        assert f.attrs["sr"] == 16000 and f.attrs["clip_seconds"] == 4
    assert clips.shape == (4, 64000) and clips.dtype == np.float32
    assert [s[1] for s in sources] == ["begin", "end", "begin", "end"]
    assert sources[0][0].endswith("one.wav")
    assert {s["path"].split("/")[-1] for s in rep["skipped"]} == {"short.wav", "broken.mp3"}
    assert len(logs) == 2 and not list(tmp_path.glob(".clips.h5.*"))
    assert sf.info(str(d / "one.wav")).samplerate == 44100     # inputs untouched


# --------------------------------------------------------------------------------------------
# the real WaveNet (an untrained tiny one: these check plumbing, shapes and files)

@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    import torch
    torch.manual_seed(0)
    cfg = make_config("small", {"enc_layers": 2, "enc_channels": 8, "dec_layers": 3,
                                        "residual_channels": 8, "skip_channels": 8})
    return save_weights(WaveNetAutoencoder(cfg),
                                tmp_path_factory.mktemp("wavenet") / "run")


def test_neural_with_wavenet_writes_audio_and_encodings(songs, tmp_path, tiny_run):
    a, b = songs
    out = tmp_path / "n.wav"
    assert crossfade_cli.main(["neural", str(a), str(b), "-o", str(out), "--weights", str(tiny_run),
                    "--seconds", "0.25", "--context", "0.5", "--style", "equal_power"]) == 0
    y, sr = load_audio(out, mono=False)
    t = (4000 // 512) * 512
    assert sr == 16000 and y.shape == (1, 16000 + t) and np.isfinite(y).all()
    enc_a, enc_b = np.load(tmp_path / "a_end_enc.npy"), np.load(tmp_path / "b_begin_enc.npy")
    assert enc_a.shape == enc_b.shape == (16, t // 512) and not np.allclose(enc_a, enc_b)
    # A's context before the decoded part is A itself, untouched
    a16, _ = load_audio(a, sr=16000)
    side = json.loads(out.with_suffix(".json").read_text())
    k = int(round(side["trims"]["a"]["end_cut_s"] * 16000))
    a_end = a16[0, :a16.shape[1] - k]
    np.testing.assert_allclose(y[0, :8000], a_end[-t - 8000:-t], atol=1e-4)
    # missing weights: one actionable line, exit 2
    assert crossfade_cli.main(["neural", str(a), str(b), "-o", str(tmp_path / "m.wav"), "--weights",
                    str(tmp_path / "no_run")]) == 2


def test_deepbass_config_with_model_weights(songs, tmp_path, tiny_run):
    for p in songs:
        (tmp_path / p.name).write_bytes(p.read_bytes())
    ini = tmp_path / "c.ini"
    crossfade_cli.main(["init-config", str(ini)])
    _edit_ini(ini, {("IO", "Load Directory"): str(tmp_path), ("IO", "FirstSong"): "a.flac",
                    ("IO", "SecondSong"): "b.flac", ("IO", "Save Directory"): str(tmp_path / "o"),
                    ("IO", "Save Name"): "x", ("IO", "Model Weights"): str(tiny_run),
                    ("NSynth XFade Settings", "Time"): "0.25",
                    ("NSynth XFade Settings", "Style"): "HannFade",
                    ("Simple XFade Settings", "Time"): "1"})
    assert crossfade_cli.main(["-config_fname", str(ini)]) == 0
    o = tmp_path / "o"
    for name in ("x_simple.wav", "x_NSynth.wav", "end.wav", "begin.wav", "a_end_enc.npy",
                 "b_begin_enc.npy", "x_nsynth_roughness.txt", "x_NSynth.png"):
        assert (o / name).stat().st_size > 0, name
    assert not (o / "begin_enc.npy").exists() and not (o / "end_enc.npy").exists()
    end, sr = load_audio(o / "end.wav")
    assert sr == 16000 and end.shape == (1, (4000 // 512) * 512)
    assert json.loads((o / "x_NSynth.json").read_text())["style"] == "hann"


def test_evaluate_with_weights_adds_neural_rows(songs, tmp_path, tiny_run):
    a, b = songs
    rep = crossfade_cli.main(["evaluate", str(a), str(b), "-o", str(tmp_path), "--seconds", "0.25",
                   "--context", "0.6", "--sr", "16000", "--weights", str(tiny_run)])
    assert rep == 0
    rows = json.loads((tmp_path / "measures.json").read_text())["rows"]
    assert [r["style"] for r in rows][-3:] == ["neural_linear", "neural_hann",
                                               "neural_equal_power"]
    assert (tmp_path / "encodings.png").read_bytes()[:4] == b"\x89PNG"


def test_prep_then_train_cli(tmp_path):
    d = tmp_path / "songs"
    for i in range(2):
        save_audio(d / f"s{i}.wav", tone_song(3, 16000, seed=i), 16000)
    clips, run = str(tmp_path / "c.h5"), str(tmp_path / "run")
    assert crossfade_cli.main(["prep", str(d), "-o", clips, "--seconds", "0.5"]) == 0
    assert crossfade_cli.main(["train", "--data", clips, "--run", run, "--steps", "2",
                               "--batch-size", "1", "--crop", "1024"]) == 0
    assert load_wavenet(tmp_path / "run") is not None
    assert crossfade_cli.main(["train", "--data", str(tmp_path / "missing.h5"), "--run",
                    str(tmp_path / "run2"), "--steps", "1"]) == 2


def test_dp_beats_finds_a_pulse_train_and_its_tempo():
    rng = np.random.default_rng(0)
    fps = ANALYSIS_SR / HOP
    period = fps * 60 / 128.0                      # 128 bpm in envelope frames (about 40.4)
    env = 0.05 * rng.random(int(30 * fps))
    clicks = np.round(np.arange(3 * period, len(env) - 2, period)).astype(int)
    env[clicks] += 1.0
    assert _global_tempo(env) == pytest.approx(128.0, rel=0.02)
    beats = dp_beats(env, _global_tempo(env))
    assert len(beats) >= len(clicks) - 2
    # every beat sits on a click, and no click in the middle is missed
    assert np.abs(beats[:, None] - clicks[None, :]).min(axis=1).max() <= 1
    assert set(clicks[2:-2]) <= set(beats)
    assert len(dp_beats(np.zeros(500), 120.0)) == 0
