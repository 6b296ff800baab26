"""Timelines: assignments, EWMA and interpolation, blur, range scaling, fps, the DSP
baseline, the CLI's errors."""

import json

import numpy as np
import pytest

from deepaudio.cli import mapping as mapping_cli
from deepaudio.core.errors import ToolkitError
from deepaudio.mapping.timeline import (
    assign_parameters,
    dsp_band_timeline,
    ewma,
    interpolate_frames,
    mapped_timeline,
    multiscale_blur,
    scale_to_range,
)


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
