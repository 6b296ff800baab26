"""The WaveNet embedding fade: the glue around a stand-in model, and a tiny real one."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from deepaudio.cli import crossfade as crossfade_cli
from deepaudio.core.audio import load_audio
from deepaudio.core.errors import ToolkitError
from deepaudio.crossfade import neural
from deepaudio.crossfade.neural import embedding_crossfade
from deepaudio.networks.checkpoint import load_wavenet
from deepaudio.networks.wavenet import HOP


@pytest.fixture
def fake_wavenet(monkeypatch):
    calls = {}

    def embedding_crossfade(model, a, b, g_out, g_in, sampling="greedy", seed=0,
                            method="fast", batch=True, progress=None):
        calls.update(a=a, b=b, g_out=g_out[0], g_in=g_in[0], seed=seed)    # (fades, F)
        f = a.shape[0] // 512
        enc_a, enc_b = np.zeros((16, f)), np.ones((16, f))
        return {"audio": (0.5 * a + 0.5 * b).astype(np.float32)[None], "enc_a": enc_a,
                "enc_b": enc_b, "enc_mix": (enc_a * g_out[0] + enc_b * g_in[0])[None],
                "generation": {"samples": a.size, "seconds": 0.0, "samples_per_s": 0.0,
                               "batch": 1}}

    class Model:                                   # what the sidecar asks of the model
        def parameters(self):
            return iter([torch.zeros(1)])

    def load_wavenet(run_dir, device="cpu"):
        calls["run"] = str(run_dir)
        return Model()

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


def test_embedding_crossfade(tiny_run):
    m = load_wavenet(tiny_run)
    rng = np.random.default_rng(0)
    t = 2 * HOP + 100
    a, b = (0.3 * rng.standard_normal(t)).astype(np.float32), np.zeros(t, np.float32)
    b[::50] = 0.9
    out = embedding_crossfade(m, a, b, np.ones(2), np.zeros(2))
    assert out["audio"].shape == (t,) and out["audio"].dtype == np.float32
    assert all(out[k].shape == (m.cfg.bottleneck, 2) for k in ("enc_a", "enc_b", "enc_mix"))
    assert np.array_equal(out["enc_mix"], out["enc_a"])
    assert not np.allclose(out["enc_a"], out["enc_b"])
    assert np.allclose(out["enc_a"], m.encode(a[None, :2 * HOP])[0].numpy())
    half = embedding_crossfade(m, a, b, np.full(2, 0.5), np.full(2, 0.5), batch=False,
                                  sampling="sample", seed=3)
    assert np.allclose(half["enc_a"], out["enc_a"], atol=1e-6)
    assert np.allclose(half["enc_mix"], (out["enc_a"] + out["enc_b"]) / 2, atol=1e-6)
    codes = torch.from_numpy(half["enc_mix"])[None]
    assert np.array_equal(half["audio"], m.generate(codes, t, sampling="sample", seed=3)[0])
    # several fades of the pair decode in one batch, each as it would alone
    seen = []
    both = embedding_crossfade(m, a, b, np.stack([np.ones(2), np.full(2, 0.5)]),
                               np.stack([np.zeros(2), np.full(2, 0.5)]), progress=seen.append)
    assert both["audio"].shape == (2, t) and both["generation"]["batch"] == 2
    assert both["generation"]["samples"] == 2 * t and both["generation"]["samples_per_s"] > 0
    assert np.array_equal(both["audio"][0], out["audio"])                   # greedy
    assert np.array_equal(both["audio"][1], m.generate(codes, t)[0])
    assert np.allclose(both["enc_mix"][0], out["enc_a"])
    assert seen[-1] == 1.0 and seen == sorted(seen) and len(seen) == 3
    with pytest.raises(ToolkitError, match="g_in"):
        embedding_crossfade(m, a, b, np.ones(2), np.zeros(3))
    with pytest.raises(ToolkitError, match="equal length"):
        embedding_crossfade(m, a, b[:-1], np.ones(2), np.zeros(2))
