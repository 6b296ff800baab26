"""A trained run as one ONNX graph for the browser: the run's dataset features (unscaled MFCC
segments or 0.5 s log spectra) → the dataset's scaler → the encoder (eval mode) → the fitted
mapping → 10 values in [0, 1], exactly what :func:`~deepaudio.mapping.timeline.mapped_timeline`
computes per segment before it interpolates, smooths and assigns.

Beside the graph, ``frontend.json`` holds what a client needs to compute the features from
audio: the mode, the sample rate, frame and hop sizes, the Slaney mel filterbank (as the
dataset used it) and the segment length. ``demo/js/live/frontend.js`` implements the front end
in JavaScript; ``onnxruntime-web`` runs the graph.

Exports are written once per (run, layer, mapping) into the run folder
(``onnx/<layer>/<method>-<scaling>-<per>/``) and reused while the run's weights and the mapping
are unchanged.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from deepaudio.core.errors import ToolkitError
from deepaudio.core.files import atomic_write_bytes, atomic_write_json
from deepaudio.mapping.encode import get_run
from deepaudio.mapping.mappings import Mapping, get_mapping, mapping_path
from deepaudio.networks.tracing import TRACING

FORMAT = "deepaudio-onnx/1"
OPSET = 18


class MappedEncoder(nn.Module):
    """Unscaled features (B, ...) → mapped values (B, n_out) in [0, 1]."""

    in_shift: torch.Tensor      # buffers, declared for the type checker
    in_div: torch.Tensor
    out_w: torch.Tensor
    out_b: torch.Tensor

    def __init__(self, model: nn.Module, layer: str, scaler: dict, mapping: Mapping):
        super().__init__()
        self.model = model.eval()
        self.layer = layer
        f32 = lambda a: torch.as_tensor(np.asarray(a, np.float64), dtype=torch.float32)  # noqa: E731
        if "mean" in scaler:
            self.register_buffer("in_shift", f32(scaler["mean"]))
            self.register_buffer("in_div", f32(scaler["std"]))
        elif "min" in scaler:
            self.register_buffer("in_shift", f32(scaler["min"]))
            self.register_buffer("in_div", f32(scaler["scale"]))
        else:
            self.register_buffer("in_shift", torch.zeros(()))
            self.register_buffer("in_div", torch.ones(()))
        # the mapping's steps as (kind, tensors): affine (MinMaxScaler, PCA) or k-means similarity
        self.kinds: list[str] = []
        for k, step in enumerate(mapping.steps):
            if hasattr(step, "cluster_centers_"):
                self.kinds.append("kmeans")
                self.register_buffer(f"s{k}_c", f32(step.cluster_centers_))
            elif hasattr(step, "components_"):      # PCA: (x - mean) @ components.T
                self.kinds.append("affine")
                comps = np.asarray(step.components_, np.float64)
                self.register_buffer(f"s{k}_w", f32(comps.T))
                self.register_buffer(f"s{k}_b", f32(-np.asarray(step.mean_) @ comps.T))
            elif hasattr(step, "scale_") and hasattr(step, "min_"):   # MinMaxScaler
                self.kinds.append("affine")
                self.register_buffer(f"s{k}_w", f32(np.diag(step.scale_)))
                self.register_buffer(f"s{k}_b", f32(step.min_))
            else:
                raise ToolkitError(f"mapping step {type(step).__name__} cannot be exported")
        p = mapping.out_params
        if mapping.scaling == "standard":   # clip(0.4 z + 0.5)
            self.register_buffer("out_w", f32(0.4 / np.asarray(p["std"])))
            self.register_buffer("out_b", f32(0.5 - 0.4 * np.asarray(p["mean"])
                                              / np.asarray(p["std"])))
        else:
            self.register_buffer("out_w", f32(1.0 / np.asarray(p["span"])))
            self.register_buffer("out_b", f32(-np.asarray(p["min"]) / np.asarray(p["span"])))

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        x = (feats - self.in_shift) / self.in_div
        y = self.model._features(x, self.layer).flatten(1)   # type: ignore[operator]
        for k, kind in enumerate(self.kinds):
            if kind == "kmeans":
                c = getattr(self, f"s{k}_c")
                d = torch.sqrt(((y[:, None, :] - c[None]) ** 2).sum(-1))
                y = 1.0 / torch.clamp(d, min=1e-6)
            else:
                y = y @ getattr(self, f"s{k}_w") + getattr(self, f"s{k}_b")
        return torch.clamp(y * self.out_w + self.out_b, 0.0, 1.0)


def frontend_spec(run_dir: str | Path) -> dict:
    """What a client needs to turn audio into the run's (unscaled) model input."""
    run = get_run(run_dir)
    c = run.config
    spec = {"format": FORMAT, "mode": run.mode, "sr": run.sr,
            "segment_seconds": run.segment_length(),
            "hop_seconds": float(run.info.get("hop_seconds") or run.segment_length()),
            "input_shape": list(run.info["input_shape"])}
    if run.mode == "mfcc":
        import librosa
        n_fft, n_mels = int(c["n_fft"]), int(c["n_mels"])
        mel = librosa.filters.mel(sr=run.sr, n_fft=n_fft, n_mels=n_mels).astype(np.float64)
        bands = []
        for row in mel:             # each triangle as its first bin and its non-zero weights
            nz = np.flatnonzero(row)
            lo, hi = (int(nz[0]), int(nz[-1]) + 1) if len(nz) else (0, 0)
            bands.append({"start": lo, "weights": [float(w) for w in row[lo:hi]]})
        spec.update(n_fft=n_fft, hop_length=int(c["mfcc_hops"]), n_mels=n_mels,
                    num_mfcc=int(c["num_mfcc"]), frames_per_segment=int(c["frames_per_segment"]),
                    top_db=80.0, amin=1e-10, mel_bands=bands)
    else:
        spec.update(window_size=int(c["window_size"]), amin=1e-5)
    return spec


def _stamp(run_dir: Path, mapping_file: Path) -> str:
    """Changes when the weights or the mapping change (a retrained run, a refitted mapping)."""
    parts = []
    for f in ("best.pt", "last.pt"):
        if (run_dir / f).is_file():
            st = (run_dir / f).stat()
            parts.append(f"{f}:{st.st_size}:{st.st_mtime_ns}")
            break
    st = mapping_file.stat()
    parts.append(f"mapping:{st.st_size}:{st.st_mtime_ns}")
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def export_onnx(run_dir: str | os.PathLike, *, method: str = "pca", layer: str | None = None,
                scaling: str = "standard", per: str = "features",
                out_dir: str | os.PathLike | None = None) -> Path:
    """Write ``encoder.onnx`` and ``frontend.json`` for a run and mapping; returns their
    folder. Without ``out_dir`` they go into the run folder and are reused while the run and
    the mapping are unchanged."""
    run_dir = Path(run_dir)
    run = get_run(run_dir)
    layer = layer or run.model.default_layer
    if layer not in run.layers:
        raise ToolkitError(f"unknown layer {layer!r}; this model has {', '.join(run.layers)}")
    mapping = get_mapping(run_dir, method, layer=layer, scaling=scaling,   # type: ignore[arg-type]
                          per=per)                                        # type: ignore[arg-type]
    stamp = _stamp(run_dir, mapping_path(run_dir, method, layer, scaling, per))
    out = Path(out_dir) if out_dir is not None else (
        run_dir / "onnx" / layer / f"{method}-{scaling}-{per}")
    meta_path = out / "frontend.json"
    if out_dir is None and meta_path.is_file() and (out / "encoder.onnx").is_file():
        try:
            if json.loads(meta_path.read_text()).get("stamp") == stamp:
                return out
        except (OSError, json.JSONDecodeError):
            pass
    module = MappedEncoder(run.model, layer, run.scaler, mapping)
    example = torch.zeros((2, *run.info["input_shape"]), dtype=torch.float32)
    out.mkdir(parents=True, exist_ok=True)
    with run.lock, TRACING, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            program = torch.onnx.export(
                module, (example,), input_names=["features"], output_names=["values"],
                dynamic_shapes={"feats": {0: torch.export.Dim("batch", min=1, max=4096)}},
                opset_version=OPSET, dynamo=True, verbose=False, optimize=True)
        except Exception as e:     # torch.export's errors are long; the cause is what matters
            raise ToolkitError(f"{run_dir}: this run cannot be exported to ONNX "
                               f"({type(e).__name__}: {str(e).splitlines()[0][:200]})") from None
        if program is None:
            raise ToolkitError(f"{run_dir}: the ONNX export produced no graph")
        atomic_write_bytes(out / "encoder.onnx", program.model_proto.SerializeToString())
    spec = frontend_spec(run_dir) | {
        "run": run_dir.name, "layer": layer, "method": method, "scaling": scaling, "per": per,
        "outputs": mapping.n_out, "feature_variance": mapping.feature_variance,
        "stamp": stamp}
    atomic_write_json(meta_path, spec)
    return out
