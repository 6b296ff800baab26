"""A run exported to ONNX (encoder + scaler + mapping in one graph) gives, in onnxruntime, the
values the server's timeline is made of."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from deepaudio.core.audio import load_audio
from deepaudio.core.errors import ToolkitError
from deepaudio.core.features import apply_scaler, mfcc_segments, spectrum_segments
from deepaudio.mapping.encode import get_run
from deepaudio.mapping.mappings import get_mapping
from deepaudio.mapping.onnx_export import export_onnx


@pytest.fixture(scope="module")
def song(sample_set):
    return sorted((sample_set / "fma_small").rglob("*.mp3"))[0]


def features_of(run_dir, song) -> np.ndarray:
    run = get_run(run_dir)
    c = run.config
    y, sr = load_audio(song, sr=run.sr, mono=True)
    if run.mode == "mfcc":
        return mfcc_segments(y.reshape(-1), sr, num_mfcc=c["num_mfcc"], n_mels=c["n_mels"],
                             hop_length=c["mfcc_hops"], n_fft=c["n_fft"],
                             frames_per_segment=c["frames_per_segment"], segment_hop=24)
    return spectrum_segments(y.reshape(-1), window_size=c["window_size"], hop_length=4410)


@pytest.mark.parametrize("which, method, layer", [
    ("ae_run", "pca", None), ("ae_run", "kmeans-pca", None), ("spectrum_run", "pca", None),
    ("classifier_run", "kmeans", "L10")])
def test_onnx_graph_matches_the_server(request, song, which, method, layer, tmp_path):
    import onnxruntime as ort
    run_dir = request.getfixturevalue(which)
    out = export_onnx(run_dir, method=method, layer=layer, out_dir=tmp_path)
    spec = json.loads((out / "frontend.json").read_text())
    assert spec["method"] == method and spec["outputs"] == 10
    feats = features_of(run_dir, song)
    run = get_run(run_dir)
    mapping = get_mapping(run_dir, method, layer=layer or run.model.default_layer)
    want = mapping.transform(run.encode(apply_scaler(feats, run.scaler), layer))
    sess = ort.InferenceSession(str(out / "encoder.onnx"))
    got = sess.run(None, {"features": feats.astype(np.float32)})[0]
    assert got.shape == want.shape == (len(feats), 10)
    assert np.abs(got - want).max() < 1e-3
    assert 0.05 < want.std() and 0 < want.mean() < 1     # values that move, inside [0, 1]
    one = sess.run(None, {"features": feats[:1].astype(np.float32)})[0]   # any batch size
    np.testing.assert_allclose(one, got[:1], atol=1e-4)


def test_export_is_reused_until_the_run_changes(ae_run, tmp_path):
    import shutil
    run = tmp_path / "run"
    shutil.copytree(ae_run, run)
    out = export_onnx(run)
    assert out == run / "onnx" / "code" / "pca-standard-features"
    first = (out / "encoder.onnx").stat().st_mtime_ns
    assert export_onnx(run) == out and (out / "encoder.onnx").stat().st_mtime_ns == first
    stamp = json.loads((out / "frontend.json").read_text())["stamp"]
    os.utime(run / "best.pt", ns=(first + 10**9, first + 10**9))      # retrained
    export_onnx(run)
    assert json.loads((out / "frontend.json").read_text())["stamp"] != stamp
    with pytest.raises(ToolkitError, match="unknown layer"):
        export_onnx(run, layer="L99")


def test_a_run_that_cannot_be_exported(ae_run, sample_set, tmp_path, monkeypatch, capsys,
                                       make_app):
    """torch.onnx cannot export it (here: made to fail): one clear error from the function,
    the CLI (exit 2, one line) and the API (422), and no half-written graph."""
    import shutil

    import torch

    from deepaudio.cli.mapping import main
    runs = tmp_path / "runs"
    shutil.copytree(ae_run, runs / "sample" / "conv_ae")      # nothing exported yet

    def refuse(*args, **kwargs):
        raise RuntimeError("Unsupported: aten::weird_op\nlong trace")
    monkeypatch.setattr(torch.onnx, "export", refuse)
    with pytest.raises(ToolkitError, match="cannot be exported.*weird_op"):
        export_onnx(runs / "sample" / "conv_ae")
    assert not list((runs / "sample" / "conv_ae").rglob("encoder.onnx"))
    assert main(["onnx", "--run", str(runs / "sample" / "conv_ae"), "-o",
                 str(tmp_path / "web")]) == 2
    err = capsys.readouterr().err.strip()
    assert "cannot be exported" in err and len(err.splitlines()) == 1
    client = make_app(tmp_path / "data", sample_set, runs).test_client()
    resp = client.get("/api/onnx/frontend.json?run=sample/conv_ae")
    assert resp.status_code == 422 and "cannot be exported" in resp.json["error"]
