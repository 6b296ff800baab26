"""Training the WaveNet: resume equal to an uninterrupted run, loading the run, bad input."""

import csv
import json

import h5py
import numpy as np
import pytest
import torch

from deepaudio.core.config import ConfigError
from deepaudio.core.errors import ToolkitError
from deepaudio.networks.checkpoint import load_wavenet
from deepaudio.networks.wavenet import (
    HOP,
    SR,
    make_config,
)
from deepaudio.training.wavenet import train_wavenet

# 3 + 6 layers, dilations 1, 2, 4: encoder sees ±8 samples, decoder 16 samples back
TINY = {"enc_layers": 3, "enc_channels": 6, "dec_layers": 6, "residual_channels": 8,
        "skip_channels": 8, "dilation_cycle": 3, "bottleneck": 4}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def clips_h5(tmp_path_factory):
    path = tmp_path_factory.mktemp("wn") / "clips.h5"
    t = np.arange(3 * HOP) / SR
    rng = np.random.default_rng(0)
    clips = [0.5 * np.sin(2 * np.pi * f * t) + 0.05 * rng.standard_normal(t.size)
             for f in (220, 330, 440)]
    with h5py.File(path, "w") as f:
        f.create_dataset("clips", data=np.float32(clips))
        f.attrs["sr"], f.attrs["clip_seconds"] = SR, 3 * HOP / SR
    return path


def train(h5, run, steps, **kw):
    return train_wavenet(h5, run, steps=steps, batch_size=2, crop=2 * HOP,
                            config_overrides=TINY, progress=False, **kw)


def test_training_resume_equals_uninterrupted(clips_h5, tmp_path):
    whole = train(clips_h5, tmp_path / "whole", 3)
    train(clips_h5, tmp_path / "split", 2)
    resumed = train(clips_h5, tmp_path / "split", 3, resume=True)    # steps is the total
    assert whole["steps"] == resumed["steps"] == 3 and resumed["steps_this_call"] == 1
    again = train(clips_h5, tmp_path / "split", 3, resume=True)      # finished: nothing to do
    assert again["steps"] == 3 and again["steps_this_call"] == 0
    a = torch.load(tmp_path / "whole" / "last.pt", weights_only=False)
    b = torch.load(tmp_path / "split" / "last.pt", weights_only=False)
    assert a["step"] == b["step"] == 3
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    assert a["optimizer"]["state"][0]["exp_avg"].equal(b["optimizer"]["state"][0]["exp_avg"])
    assert {"model", "optimizer", "step", "rng"} <= set(a)
    rows_a = list(csv.DictReader(open(tmp_path / "whole" / "metrics.csv")))
    rows_b = list(csv.DictReader(open(tmp_path / "split" / "metrics.csv")))
    assert [r["step"] for r in rows_b] == ["1", "2", "3"] and set(rows_b[0]) == {
        "step", "loss", "wall_seconds"}
    assert [r["loss"] for r in rows_a] == [r["loss"] for r in rows_b]
    assert whole["final_loss"] == resumed["final_loss"]
    assert float(rows_b[0]["loss"]) == pytest.approx(np.log(256), rel=0.1)   # ~uniform at init
    stored = json.loads((tmp_path / "whole" / "config.json").read_text())
    assert stored["model"] == make_config("small", TINY).__dict__ and stored["seed"] == 0
    # a finished run is not silently overwritten, and resuming with other settings is refused
    with pytest.raises(ToolkitError, match="resume"):
        train(clips_h5, tmp_path / "whole", 1)
    with pytest.raises(ToolkitError, match="'lr'"):
        train(clips_h5, tmp_path / "whole", 1, resume=True, lr=1e-3)


def test_load_wavenet(clips_h5, tmp_path):
    with pytest.raises(ToolkitError, match="config.json"):
        load_wavenet(tmp_path / "nothing")
    train(clips_h5, tmp_path / "run", 1)
    model = load_wavenet(tmp_path / "run")
    assert not model.training and model.cfg == make_config("small", TINY)
    saved = torch.load(tmp_path / "run" / "last.pt", weights_only=False)["model"]
    assert all(torch.equal(model.state_dict()[k], saved[k]) for k in saved)
    (tmp_path / "run" / "last.pt").unlink()
    with pytest.raises(ToolkitError, match="last.pt"):
        load_wavenet(tmp_path / "run")


def test_training_rejects_bad_input(clips_h5, tmp_path):
    with pytest.raises(ToolkitError, match="not found"):
        train(tmp_path / "missing.h5", tmp_path / "run", 1)
    with pytest.raises(ToolkitError, match="shorter"):
        train_wavenet(clips_h5, tmp_path / "run", steps=1, crop=4 * HOP,
                         config_overrides=TINY, progress=False)
    with pytest.raises(ToolkitError, match="multiple of 512"):
        train_wavenet(clips_h5, tmp_path / "run", steps=1, crop=1000, progress=False)
    with pytest.raises(ConfigError, match="'layers'"):
        train_wavenet(clips_h5, tmp_path / "run", steps=1, config_overrides={"layers": 3},
                         progress=False)
    assert not (tmp_path / "run").exists()                 # nothing written on bad input


def test_fine_tuning_an_imported_checkpoint(clips_h5, tmp_path, request):
    """DeepBass' recipe: start from NSynth's weights (here the tiny Magenta-format fixture,
    imported) and train on song clips; resuming the fine-tuning continues it."""
    from deepaudio.networks.nsynth import import_nsynth
    fixture = request.config.rootpath / "tests" / "fixtures" / "nsynth_tiny"
    run = tmp_path / "nsynth"
    import_nsynth(fixture, run)
    imported = torch.load(run / "last.pt", weights_only=False)["model"]
    with pytest.raises(ToolkitError, match="'nsynth' run; --preset 'small'"):
        train_wavenet(clips_h5, run, steps=1, preset="small", batch_size=2, crop=2 * HOP,
                      resume=True, progress=False)
    first = train(clips_h5, run, 2, resume=True)       # TINY overrides do not apply
    assert first["steps"] == 2 and first["steps_this_call"] == 2
    stored = json.loads((run / "config.json").read_text())
    assert stored["preset"] == "nsynth" and stored["model"]["layout"] == "magenta"
    assert stored["fine_tuned_from"]["checkpoint"] == "model.ckpt-200000"
    tuned = load_wavenet(run)
    assert tuned.cfg.residual_channels == 16                 # the checkpoint's widths
    assert any(not torch.equal(imported[k], v) for k, v in tuned.state_dict().items())
    more = train(clips_h5, run, 3, resume=True)
    assert more["steps"] == 3 and more["steps_this_call"] == 1
    assert json.loads((run / "config.json").read_text())["fine_tuned_from"]
