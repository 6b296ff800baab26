"""Stem mixer without HTTP: Demucs through its real loading code (a tiny random HTDemucs saved
in demucs' local-repo format), the DSP backend, SDR, mixing math, personalised gains."""

from __future__ import annotations

import random
import warnings

import numpy as np
import pyloudnorm as pyln
import pytest
import soundfile as sf
import torch

from deepaudio.cli import mixer as mixer_cli
from deepaudio.core.audio import decode_in_blocks, load_audio
from deepaudio.core.config import ConfigError
from deepaudio.core.gain import db_to_gain
from deepaudio.core.loudness import (
    MAKEUP_MAX_DB,
    _tp_filter,
    integrated_loudness,
    true_peak,
    true_peak_limiter,
)
from deepaudio.data.samples import render_track
from deepaudio.mapping.encode import genre_probabilities
from deepaudio.mixer.demucs_backend import check_demucs_weights, demucs_stream, load_demucs
from deepaudio.mixer.dsp_backend import DECODE_SHARE, dsp_separate
from deepaudio.mixer.evaluate import framewise_sdr, new_sdr
from deepaudio.mixer.preferences import (
    from_bytes,
    new_model,
    relative_gains,
    retrain,
    suggest,
    to_bytes,
    track_features,
    update_on_save,
)
from deepaudio.mixer.render import (
    FORMATS,
    NORMALIZE,
    export_mix,
    mix_settings,
    mix_stems,
    render_mix,
)
from deepaudio.mixer.separate import separate
from deepaudio.mixer.stems import STEMS, SeparationError, load_stems

SR = 44100


def make_demucs_repo(folder, name="tinyht"):
    """A randomly initialised HTDemucs (70 k parameters, 2 s segments) saved exactly as demucs
    expects a local repo: ``<sig>-<sha256[:8]>.th`` (klass/args/kwargs/state) + ``<name>.yaml``."""
    from demucs.htdemucs import HTDemucs
    from demucs.states import get_state, save_with_checksum
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = HTDemucs(list(STEMS), channels=8, depth=4, nfft=1024, segment=2, t_layers=1,
                         t_heads=2, t_hidden_scale=1.0, dconv_depth=1, dconv_comp=4)
    args, kwargs = model._init_args_kwargs
    save_with_checksum({"klass": HTDemucs, "args": args, "kwargs": kwargs,
                        "state": get_state(model, None, half=False)}, folder / "0a1b2c3d.th")
    (folder / f"{name}.yaml").write_text("models: ['0a1b2c3d']\n")
    return folder


@pytest.fixture(scope="module")
def tiny_repo(tmp_path_factory, make_demucs_repo):
    return make_demucs_repo(tmp_path_factory.mktemp("demucs_repo"))


@pytest.fixture(scope="module")
def song(tmp_path_factory):
    """6 s of the synthetic Rock genre: the true stems and the mix as a stereo WAV."""
    stems, _ = render_track("Rock", 3, seed=1, seconds=6.0)
    path = tmp_path_factory.mktemp("song") / "song.wav"
    mix = sum(stems.values())
    sf.write(path, mix.T, SR, subtype="FLOAT")
    return path, stems, mix


# ------------------------------------------------------------------------------ demucs

@pytest.mark.parametrize("shifts", [0, 1])
def test_streaming_demucs_equals_apply_model(tiny_repo, shifts):
    from demucs.apply import apply_model
    model = load_demucs("tinyht", tiny_repo).model
    torch.manual_seed(1)
    x = torch.randn(1, 2, int(4.3 * SR)) * 0.3
    random.seed(5)
    expected = apply_model(model, x, shifts=shifts, split=True, overlap=0.25)[0].numpy()
    blocks, seen = [], []
    random.seed(5)
    demucs_stream(model, x, shifts=shifts, on_output=blocks.append, on_progress=seen.append)
    assert len(blocks) > 1                                  # written as it goes, not at the end
    np.testing.assert_allclose(np.concatenate(blocks, -1), expected, atol=1e-5)
    assert seen == sorted(seen) and seen[-1] == pytest.approx(1.0)


def test_separate_demucs_matches_separator_and_writes_stems(tiny_repo, song, tmp_path):
    path, _, mix = song
    stages = []
    random.seed(7)
    manifest = separate(path, tmp_path / "out", backend="demucs", model="tinyht",
                           repo=tiny_repo, progress=lambda f, s: stages.append((f, s)))
    assert manifest["sources"] == list(STEMS) and manifest["frames"] == mix.shape[1]
    fractions = [f for f, _ in stages]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert sum(1 for _, s in stages if s == "separating") >= 3          # per-chunk progress
    assert stages[0] == (0.0, "loading model")
    assert any(0 < f <= 0.02 and s == "decoding" for f, s in stages)     # decoding moves too
    ours, sr = load_stems(tmp_path / "out")
    loaded = load_demucs("tinyht", tiny_repo)
    random.seed(7)
    _, ref = loaded.separator.separate_tensor(torch.from_numpy(mix), SR)   # same seed and shift
    for s in STEMS:
        np.testing.assert_allclose(ours[s], ref[s].numpy(), atol=2e-4)
    assert not list((tmp_path / "out").glob(".*"))                       # no scratch left


def test_demucs_resamples_and_upmixes_mono(tiny_repo, song, tmp_path):
    path, _, mix = song
    mono = tmp_path / "mono22k.flac"
    sf.write(mono, mix.mean(0)[::2], 22050)
    manifest = separate(mono, tmp_path / "out", backend="demucs", model="tinyht",
                           repo=tiny_repo, shifts=0)
    stems, sr = load_stems(tmp_path / "out")
    assert sr == SR and manifest["source_sample_rate"] == 22050
    assert all(a.shape == (2, 2 * (mix.shape[1] // 2)) for a in stems.values())


def test_missing_weights_say_where_to_put_which_files(tmp_path, monkeypatch, song, capsys):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    empty = tmp_path / "repo"
    empty.mkdir()
    with pytest.raises(SeparationError) as err:
        check_demucs_weights("htdemucs", empty)
    msg = str(err.value)
    assert "htdemucs.yaml" in msg and "955717e8-8726e21a.th" in msg and "--demucs-repo" in msg
    with pytest.raises(SeparationError, match="not on this machine"):
        check_demucs_weights("htdemucs", None)
    code = mixer_cli.main(["separate", str(song[0]), "-o", str(tmp_path / "o"),
                           "--demucs-repo", str(empty)])
    err_lines = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err_lines[-1].startswith("error: Demucs model 'htdemucs' is not in")


def test_corrupt_weights_are_a_clear_error(tiny_repo, tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "tinyht.yaml").write_text("models: ['0a1b2c3d']\n")
    (bad / "0a1b2c3d-deadbeef.th").write_bytes(b"not a checkpoint")
    with pytest.raises(SeparationError, match="cannot load Demucs model 'tinyht'.*checksum"):
        load_demucs("tinyht", bad)


# ------------------------------------------------------------------------------ dsp + sdr

def test_dsp_blocks_crossfade_and_sum_to_the_mix(song, tmp_path):
    path, true_stems, mix = song
    written = []

    class Writer:
        def write(self, block):
            written.append(block)

        def abort(self):
            pass
    dsp_separate(path, lambda sr, sources: Writer(), block_seconds=2.5, fade_seconds=0.5,
                     progress=lambda f, s: None)
    est = np.concatenate(written, -1)
    assert len(written) == 3 and est.shape == (4, 2, mix.shape[1])
    np.testing.assert_allclose(est.sum(0), mix, atol=1e-5)          # stems add up to the song
    drums = est[0]
    # the percussive stem is closer to the true drums than to the true vocals
    assert new_sdr(true_stems["drums"], drums) > new_sdr(true_stems["vocals"], drums)


def test_dsp_separate_files_and_cli_mix(song, tmp_path, capsys):
    path, _, mix = song
    assert mixer_cli.main(["separate", str(path), "-o", str(tmp_path / "st"), "--backend",
                           "dsp"]) == 0
    stems, sr = load_stems(tmp_path / "st")
    np.testing.assert_allclose(sum(stems.values()), mix, atol=1e-4)     # 24-bit FLAC
    out = tmp_path / "mix.flac"
    assert mixer_cli.main(["mix", str(tmp_path / "st"), "--gain", "vocals=+3", "--gain",
                           "drums=-6", "-o", str(out), "--normalize", "lufs"]) == 0
    audio, sr = sf.read(out)
    assert audio.shape == (mix.shape[1], 2)
    assert pyln.Meter(sr).integrated_loudness(audio) == pytest.approx(-14, abs=0.5)
    assert mixer_cli.main(["mix", str(tmp_path / "st"), "--gain", "vocals=+30", "-o",
                           str(out)]) == 2
    assert "must be in [-60, 12]" in capsys.readouterr().err


def test_dsp_progress_moves_from_the_start(song, tmp_path):
    path, _, mix = song
    short = tmp_path / "short.wav"
    sf.write(short, mix[:, :3 * SR].T, SR, subtype="FLOAT")
    seen = []
    separate(short, tmp_path / "out", backend="dsp", progress=lambda f, s: seen.append((f, s)))
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions) and fractions[0] <= 0.01 and fractions[-1] == 1.0
    assert any(0 < f < 0.2 for f, s in seen if s == "decoding")
    # a one-block song still reports progress within its block
    assert len({f for f, s in seen if s == "separating" and f < 0.95}) >= 4


def test_decode_in_blocks_equals_load_audio(song, tmp_path):
    path, _, mix = song
    low = tmp_path / "low.flac"
    sf.write(low, mix[:, ::2].T, SR // 2)                    # resampled on the way in
    seen = []
    audio = decode_in_blocks(low, SR, lambda f, s: seen.append((f, s)), block_seconds=1.0)
    expected, _ = load_audio(low, sr=SR, mono=False)
    np.testing.assert_array_equal(audio, expected)
    fractions = [f for f, _ in seen]
    assert len(seen) >= 6 and fractions == sorted(fractions) and fractions[0] > 0
    assert fractions[-1] == DECODE_SHARE and {s for _, s in seen} == {"decoding"}


def test_sdr_definitions():
    rng = np.random.default_rng(0)
    ref = rng.standard_normal((2, SR * 3)).astype(np.float32)
    assert new_sdr(ref, 0.5 * ref) == pytest.approx(20 * np.log10(2), abs=1e-6)
    assert new_sdr(ref, ref) > 60
    ref[:, :SR] = 0                                          # a silent first second is skipped
    assert framewise_sdr(ref, 0.5 * ref, SR) == pytest.approx(6.0206, abs=1e-3)
    assert np.isnan(framewise_sdr(np.zeros((2, SR)), np.zeros((2, SR)), SR))


def test_evaluate_cli_on_true_stems(sample_set, capsys):
    assert mixer_cli.main(["evaluate", "--stems-root", str(sample_set / "fma_stems"),
                           "--max-tracks", "1"]) == 0
    out = capsys.readouterr().out
    mean = next(line for line in out.splitlines() if line.startswith("mean"))
    values = [float(v) for v in mean.split()[1:]]
    assert len(values) == 8 and all(np.isfinite(values))
    assert "real-time factor" in out


# ------------------------------------------------------------------------------ mixing

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


def _reference_limiter(audio, ceiling, lookahead, release):
    """The limiter as a per-sample loop over the 4x-oversampled peaks (slow, obvious)."""
    H = _tp_filter(4)
    n = audio.shape[1]
    peak = np.abs(audio).max(axis=0).astype(np.float64)
    for ch in audio:
        x = np.concatenate([np.zeros(11, np.float32), ch, np.zeros(11, np.float32)])
        for e in range(n + 11):                  # y[4e + r] lies between x[e - 6], x[e - 5]
            p = np.abs(x[e + 11 - np.arange(12)] @ H).max()
            for m in (e - 6, e - 5):
                if 0 <= m < n:
                    peak[m] = max(peak[m], p)
    need = np.minimum(1.0, ceiling / np.maximum(peak, 1e-12))
    L = int(round(lookahead * SR))
    g1 = np.array([need[i:i + L].min() for i in range(n)])
    g2 = np.array([np.concatenate([np.full(max(0, L - 1 - i), g1[0]),   # as at sample 0
                                   g1[max(0, i - L + 1):i + 1]]).mean() for i in range(n)])
    a, d = np.exp(-1 / (release * SR)), 0.0
    out = np.empty(n)
    for i in range(n):
        d = max(1 - g2[i], a * d)
        out[i] = 1 - d
    return out


def test_true_peak_limiter_equals_the_per_sample_loop():
    rng = np.random.default_rng(2)
    x = (0.1 * rng.standard_normal((2, 3000))).astype(np.float32)
    x[:, [500, 1400, 1450, 2600]] = [[1.5, -1.2, 0.9, 2.0], [0.2, 0.3, -1.1, 0.1]]
    ceiling = 0.8
    curve = true_peak_limiter(x, SR, ceiling, lookahead=0.002, release=0.005)
    expected = _reference_limiter(x, ceiling, 0.002, 0.005)
    np.testing.assert_allclose(curve, expected, atol=1e-4)  # tails cut below 1e-4
    assert true_peak(x * curve) <= ceiling * 10 ** (0.1 / 20)
    L = int(round(0.002 * SR))
    first = np.flatnonzero(curve < 1)[0]
    assert 500 - 8 - L < first < 500                # the attack starts within the look-ahead
    x[:, 0] = 3.0                                   # a peak on the first sample is held too
    curve = true_peak_limiter(x, SR, ceiling, lookahead=0.002, release=0.005)
    np.testing.assert_allclose(curve, _reference_limiter(x, ceiling, 0.002, 0.005), atol=1e-4)
    assert true_peak(x * curve) <= ceiling * 10 ** (0.1 / 20)


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


# ------------------------------------------------------------------------------ gains

def test_track_features_are_real_and_unsaturated(song, classifier_run):
    path = song[0]
    v = track_features(path)
    assert v.shape == (23,) and v.dtype == np.float32
    assert np.all((v >= 0) & (v <= 1)) and v[13:].sum() == 0
    assert v[8:13].sum() == pytest.approx(1.0, abs=1e-5)
    assert 0.05 < v[2] < 0.95 and 0.0 < v[4] < 0.9 and 0.0 < v[7] < 1.0   # rms, centroid, tempo
    drawn = render_track("Rock", 3, seed=1, seconds=0.05)[1]["bpm"]     # the song's tempo
    assert 60 + 140 * v[7] == pytest.approx(drawn, rel=0.04)
    probs = genre_probabilities(path, classifier_run)
    g = track_features(path, genre_probabilities=probs)
    assert g[13:13 + len(probs)].sum() == pytest.approx(1.0, abs=1e-4)
    np.testing.assert_array_equal(g[:13], v[:13])


def test_preferences_neutral_then_learn_then_retrain_from_scratch():
    rng = np.random.default_rng(0)
    feats = rng.uniform(0, 1, (4, 23)).astype(np.float32)
    assert suggest(None, feats[0]) == {"gains": dict.fromkeys(STEMS, 0.0),
                                       "trained": False, "n_examples": 0}
    assert not new_model("u")(torch.from_numpy(feats)).any()      # fresh net is neutral too
    target = relative_gains({"vocals": 6, "drums": -3})
    before, model = [], None
    for k in range(4):
        model = update_on_save(model, "u", k, feats[k], target)
        model = from_bytes(to_bytes(model))                 # as the server stores it
        before.append(suggest(model, feats[0], k + 1)["gains"]["vocals"])
    assert 0 < before[0] < before[-1] and 3.0 < before[-1] < 9.0         # towards +6.75 dB
    s = suggest(model, feats[0], 4)
    assert s["trained"] and s["n_examples"] == 4 and s["gains"]["drums"] < 0
    retrained = suggest(retrain("u", feats[:2], np.stack([target, target])), feats[0], 2)
    again = suggest(retrain("u", feats[:2], np.stack([target, target])), feats[0], 2)
    assert retrained == again and retrained != s                  # from scratch: reproducible
    assert retrain("u", np.zeros((0, 23)), np.zeros((0, 4))) is None
