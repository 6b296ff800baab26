"""Training the beat network from a JSON config: the corpus' pieces in, a run folder out, exact
resume, torchrun, export to the weights file the tracker loads; bad configs and bad weights
are errors that name them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from deepaudio.analysis import frontend
from deepaudio.analysis.beats import analyse_beats
from deepaudio.analysis.tracker import load_tracker
from deepaudio.cli import train as train_cli
from deepaudio.core.config import load_config
from deepaudio.core.errors import ToolkitError
from deepaudio.data import beatcorpus
from deepaudio.data.beatset import soundfont
from deepaudio.training.beats import BeatTrainConfig, export_weights, targets, train_beats

ROOT = Path(__file__).resolve().parents[2]
SMALL = {"channels": 8, "front_channels": 4, "dilations": [1, 2, 4, 8]}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("beats")
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(beatcorpus.SPLITS, "train", {"soundfonts": (soundfont().name,),
                                                "synth_share": 0.25, "seed": 2})
        beatcorpus.write_corpus(out, "train", shards=2, pieces_per_shard=4, seconds=8.0,
                                augmentation=False, progress=False)
    return out


def config(corpus: Path, runs: Path, **kw) -> dict:
    return {"name": "run", "model": "beat_tcn", "corpus": str(corpus), "models_dir": str(runs),
            "num_epochs": 2, "batch_size": 3, "crop_frames": 300, "cv_share": 0.25,
            "model_params": SMALL, **kw}


def test_targets_mark_the_beat_frames_and_their_neighbours():
    y = targets(np.array([0.1, 0.5]), 40, 0.5)
    assert y[[5, 25]].tolist() == [1.0, 1.0]
    assert y[[4, 6, 24, 26]].tolist() == [0.5] * 4
    assert y.sum() == 4.0


def test_a_run_trains_resumes_exactly_and_exports(corpus, tmp_path):
    whole = load_config(BeatTrainConfig, config(corpus, tmp_path / "a"))
    row = train_beats(whole)
    assert row["epoch"] == 2 and 0 <= row["cv_beat_f"] <= 1 and row["frames_per_s"] > 0
    run = whole.run_dir
    assert {"config.json", "last.pt", "best.pt", "metrics.csv", "learning_curve.png"} <= {
        p.name for p in run.iterdir()}
    split = load_config(BeatTrainConfig, config(corpus, tmp_path / "b"))
    train_beats(split, stop_after_epochs=1)
    train_beats(split, resume=True)
    a = torch.load(run / "last.pt", weights_only=False)["model"]
    b = torch.load(split.run_dir / "last.pt", weights_only=False)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    with pytest.raises(ToolkitError, match="already holds a run"):
        train_beats(whole)
    changed = load_config(BeatTrainConfig, config(corpus, tmp_path / "a", lr=0.1))
    with pytest.raises(ToolkitError, match="differs in 'lr'"):
        train_beats(changed, resume=True)
    out = export_weights(whole, tmp_path / "w.pt")
    assert out.stat().st_size < (run / "best.pt").stat().st_size / 2   # no optimizer state
    tracker = load_tracker(out)
    act = tracker.activations(np.zeros((200, frontend.N_MELS), np.float32))
    assert act.shape == (200, 2) and ((act >= 0) & (act <= 1)).all()
    assert load_tracker(run).info["epoch"] >= 1                  # a run folder loads too


def test_train_py_runs_beat_configs_and_names_bad_keys(corpus, tmp_path, capsys):
    path = tmp_path / "c.json"
    path.write_text(json.dumps(config(corpus, tmp_path / "runs", num_epochs=1)))
    assert train_cli.main(["-c", str(path)]) == 0
    assert "beat F" in capsys.readouterr().out
    assert train_cli.main(["export", "-c", str(path), "--to", str(tmp_path / "w.pt")]) == 0
    assert (tmp_path / "w.pt").is_file()
    for patch, key in (({"crop_frames": 0}, "crop_frames"), ({"widen": "0.5"}, "widen"),
                       ({"model_params": {"kernel": 1}}, "kernel"), ({"lrate": 1}, "lrate")):
        path.write_text(json.dumps({**config(corpus, tmp_path / "x"), **patch}))
        assert train_cli.main(["-c", str(path)]) == 2
        assert key in capsys.readouterr().err
    path.write_text(json.dumps(config(tmp_path / "empty", tmp_path / "y")))
    assert train_cli.main(["-c", str(path)]) == 2
    assert "beat-corpus" in capsys.readouterr().err


def test_torchrun_two_processes(corpus, tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps(config(corpus, tmp_path / "runs", num_epochs=1)))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                          "--nproc_per_node", "2", str(ROOT / "train.py"), "-c", str(path)],
                         cwd=ROOT, capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert (tmp_path / "runs" / "run" / "best.pt").is_file()


def test_weights_that_are_not_a_beat_model_are_named(tmp_path):
    with pytest.raises(ToolkitError, match="weights not found"):
        load_tracker(tmp_path / "none.pt")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(ToolkitError, match="junk.pt: unreadable checkpoint"):
        load_tracker(junk)
    other = tmp_path / "other.pt"
    torch.save({"model_name": "conv_autoencoder", "model": {}}, other)
    with pytest.raises(ToolkitError, match="is not a beat model"):
        load_tracker(other)
    torch.save({"model_name": "beat_tcn", "model_params": SMALL, "model": {"x": torch.ones(1)}},
               other)
    with pytest.raises(ToolkitError, match="damaged beat model"):
        load_tracker(other)
    sr = 22050
    clicks = np.zeros((1, sr * 12), np.float32)
    for t in np.arange(0.25, 11.5, 0.5):                       # 120 bpm
        clicks[0, int(t * sr):int(t * sr) + 200] = np.hanning(200)
    with pytest.raises(ToolkitError, match="other.pt: damaged beat model"):
        analyse_beats(clicks, sr, backend="model", weights=other)
    grid = analyse_beats(clicks, sr, weights=other)            # auto: the DSP fallback
    assert grid.backend == "dsp" and "damaged beat model" in grid.backend_reason
    assert grid.tempo == pytest.approx(120, rel=0.02)
