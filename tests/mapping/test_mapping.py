import json

import numpy as np
import pytest

from deepaudio.cli import mapping as mapping_cli
from deepaudio.core.audio import load_audio
from deepaudio.core.datasets import read_partition
from deepaudio.core.errors import ToolkitError
from deepaudio.data.fma import fma_audio_path, load_fma_tracks
from deepaudio.mapping.encode import encode_partition, encode_track
from deepaudio.mapping.mappings import METHODS, Mapping, fit_mapping
from deepaudio.mapping.timeline import (
    assign_parameters,
    dsp_band_timeline,
    ewma,
    interpolate_frames,
    mapped_timeline,
    multiscale_blur,
    scale_to_range,
)


@pytest.fixture(scope="module")
def song(sample_set):
    tid = int(load_fma_tracks(sample_set / "fma_metadata").index[0])
    return fma_audio_path(sample_set / "fma_small", tid)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("scaling, per", [("standard", "features"), ("minmax", "across")])
def test_every_mapping_is_in_unit_range_and_shaped(ae_run, song, method, scaling, per):
    m = fit_mapping(ae_run, method, scaling=scaling, per=per)
    feats = encode_track(song, ae_run)
    out = m.transform(feats.frames)
    assert out.shape == (len(feats.frames), 10) and out.dtype == np.float32
    assert out.min() >= 0 and out.max() <= 1


@pytest.mark.parametrize("method", ["pca", "kmeans", "kmeans-pca"])
def test_classifier_layers_map_to_ten(classifier_run, song, method):
    feats = encode_track(song, classifier_run, "L9")
    assert feats.frames.shape[1] == 32          # fc_units of the tiny classifier
    out = fit_mapping(classifier_run, method, layer="L9").transform(feats.frames)
    assert out.shape == (len(feats.frames), 10) and 0 <= out.min() and out.max() <= 1
    with pytest.raises(ToolkitError, match="raw mapping needs 10"):
        fit_mapping(classifier_run, "raw", layer="L9")


def test_mappings_are_fitted_on_train_only(ae_run):
    m = fit_mapping(ae_run, "pca", scaling="minmax")
    train = np.concatenate([encode_partition(ae_run, p) for p in
                            ("partition_train_0", "partition_train_1")])
    test = encode_partition(ae_run, "partition_test")
    scaler = m.steps[0]
    np.testing.assert_allclose(scaler.data_min_, train.min(0), rtol=1e-6)
    np.testing.assert_allclose(scaler.data_max_, train.max(0), rtol=1e-6)
    assert len(test) > 0 and scaler.n_samples_seen_ == len(train)
    assert m.transform(train).min() == 0.0 and m.transform(train).max() == 1.0


def test_save_load_round_trip_is_identical(ae_run, song, tmp_path):
    m = fit_mapping(ae_run, "kmeans-pca")
    x = encode_track(song, ae_run).frames
    m.save(tmp_path / "m.joblib")
    again = Mapping.load(tmp_path / "m.joblib")
    np.testing.assert_array_equal(m.transform(x), again.transform(x))
    with pytest.raises(ToolkitError, match="not found"):
        Mapping.load(tmp_path / "missing.joblib")


def test_encode_track_hop_and_array_input(ae_run, song):
    a = encode_track(song, ae_run)
    b = encode_track(song, ae_run, hop_seconds=0.48)
    assert a.fps == pytest.approx(1 / 0.96) and b.fps == pytest.approx(1 / 0.48)
    assert len(b.frames) == 2 * len(a.frames) - 1
    np.testing.assert_allclose(b.frames[::2], a.frames, atol=1e-5)  # same segments, batched
    assert a.start == pytest.approx(0.48)
    audio, sr = load_audio(song, mono=False)
    c = encode_track((audio, sr), ae_run)
    np.testing.assert_allclose(c.frames, a.frames, atol=1e-5)
    with pytest.raises(ToolkitError, match="shorter than one"):
        encode_track((audio[:, :1000], sr), ae_run)


def test_spectrum_model_timeline(spectrum_run, song):
    feats = encode_track(song, spectrum_run, hop_seconds=1 / 60)
    assert feats.fps == pytest.approx(22050 / 368) and feats.frames.shape[1] == 10
    assert len(feats.frames) > 300


def test_same_seed_same_permutation():
    p1, s1 = assign_parameters(10, "random", seed=42)
    p2, _ = assign_parameters(10, "random", seed=42)
    p3, _ = assign_parameters(10, "random", seed=43)
    assert s1 == 42 and np.array_equal(p1, p2) and not np.array_equal(p1, p3)
    assert sorted(p1) == list(range(10))
    p4, drawn = assign_parameters(10, "random")
    assert np.array_equal(p4, assign_parameters(10, "random", seed=drawn)[0])
    assert np.array_equal(assign_parameters(4, "deterministic")[0], np.arange(4))


def test_ranked_assignment():
    perm, _ = assign_parameters(4, "ranked", feature_variance=[0.1, 0.4, 0.2, 0.3],
                                   salience=[2, 0, 3, 1])
    # most varied feature (1) drives the most salient parameter (2), and so on
    assert perm.tolist() == [3, 0, 1, 2]


def test_ewma_and_interpolation_known_values():
    x = np.array([[0.0], [1.0], [1.0], [1.0]])
    np.testing.assert_allclose(ewma(x, 0.5)[:, 0], [0, 0.5, 0.75, 0.875])
    np.testing.assert_allclose(ewma(x, 1.0), x)
    times = np.array([0.5, 1.5])
    vals = np.array([[0.0, 1.0], [1.0, 3.0]])
    out = interpolate_frames(times, vals, fps=4, duration=2.0)
    assert out.shape == (9, 2)
    np.testing.assert_allclose(out[:, 0], [0, 0, 0, 0.25, 0.5, 0.75, 1, 1, 1])
    np.testing.assert_allclose(out[4, 1], 2.0)


def test_multiscale_blur():
    x = np.zeros((100, 2))
    x[50, 0] = 1.0
    blurred = multiscale_blur(x, sizes=(1, 10))
    assert set(blurred) == {"blur1", "blur10"}
    np.testing.assert_allclose(blurred["blur1"][:, 0], x[:, 0])
    b10 = blurred["blur10"][:, 0]
    assert b10.max() == 1 and b10.min() == 0 and (b10 > 0).sum() == 10
    assert (blurred["blur10"][:, 1] == 0).all()               # constant feature


def test_scale_to_range_is_monotonic():
    v = np.linspace(0, 1, 101)
    p = scale_to_range(v, 10, 70)
    assert p[0] == 10 and p[-1] == 70 and np.all(np.diff(p) > 0)


def test_mapped_timeline_honours_fps(ae_run, song, tmp_path):
    tl = mapped_timeline(song, ae_run, method="pca", fps=30, smoothing=0.4,
                            assign="random", seed=5)
    duration = tl.meta["duration"]
    assert len(tl.frames) == int(duration * 30) + 1 and tl.frames.shape[1] == 10
    assert tl.meta["seed"] == 5 and 0 <= tl.frames.min() and tl.frames.max() <= 1
    same = mapped_timeline(song, ae_run, method="pca", fps=30, smoothing=0.4,
                              assign="random", seed=5)
    np.testing.assert_array_equal(tl.frames, same.frames)
    out = tmp_path / "t.json"
    assert mapping_cli.main(["timeline", str(song), "--run", str(ae_run), "--fps", "60",
                    "--assign", "ranked", "-o", str(out)]) == 0
    d = json.loads(out.read_text())
    assert d["fps"] == 60 and len(d["frames"]) == int(duration * 60) + 1
    assert len(d["names"]) == 10 and sorted(d["permutation"]) == list(range(10))


def test_blurred_timeline_is_slower_and_spans_the_range(ae_run, song):
    sharp = mapped_timeline(song, ae_run, fps=30)
    slow = mapped_timeline(song, ae_run, fps=30, blur=50)
    assert slow.frames.shape == sharp.frames.shape and slow.meta["blur"] == 50
    assert np.allclose(slow.frames.min(0), 0) and np.allclose(slow.frames.max(0), 1)
    step = lambda x: np.abs(np.diff(x, axis=0)).mean()  # noqa: E731
    assert step(slow.frames) < step(sharp.frames)
    with pytest.raises(ToolkitError, match="blur"):
        mapped_timeline(song, ae_run, fps=30, blur=0)


def test_dsp_baseline_follows_the_bass():
    sr, fps = 22050, 30
    t = np.arange(sr * 6) / sr
    y = 0.01 * np.sin(2 * np.pi * 5000 * t)
    y[sr * 3:sr * 3 + sr // 2] += 0.5 * np.sin(2 * np.pi * 80 * t[:sr // 2])   # a bass hit at 3 s
    tl = dsp_band_timeline(y.astype(np.float32), sr, fps=fps)
    assert tl.names[:3] == ["bass", "mid", "treb"] and tl.frames.shape[1] == 6
    bass = tl.frames[:, 0]
    assert bass[int(3.2 * fps)] > 3 * np.median(bass[:int(2.5 * fps)])
    assert abs(np.median(tl.frames[:int(2.5 * fps), 2]) - 1.0) < 0.1   # steady treble ≈ 1


def test_cli_errors(ae_run, tmp_path, capsys):
    assert mapping_cli.main(["timeline", str(tmp_path / "no.mp3"), "--run", str(ae_run),
                    "-o", str(tmp_path / "o.json")]) == 2
    assert "file not found" in capsys.readouterr().err
    assert mapping_cli.main(["fit", "--run", str(tmp_path / "norun"), "--method", "pca"]) == 2
    assert "not found" in capsys.readouterr().err


def test_partition_encodings_match_stored_segments(ae_run):
    info = json.loads((ae_run / "dataset.json").read_text())
    segs = read_partition(info["dataset_path"], "partition_cv")["segment_data"]
    enc = encode_partition(ae_run, "partition_cv")
    assert enc.shape == (len(segs), 10)
