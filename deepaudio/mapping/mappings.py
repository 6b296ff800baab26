"""Mappings from encoder features (T, D) to 10 values in [0, 1], fitted on the run's train
partitions only (deep-audioviz-experiments fitted them on the test set) and saved in the run
folder: ``raw``, ``pca``, ``kmeans`` or ``kmeans-pca``, then ``standard`` (0.4 z + 0.5,
clipped) or ``minmax`` (clipped; the original's was not) output scaling, across or per feature.
"""

from __future__ import annotations

import dataclasses
import io
import threading
import typing as tp
from pathlib import Path

import numpy as np

from deepaudio.core.datasets import Partitions
from deepaudio.core.errors import ToolkitError
from deepaudio.core.files import atomic_write_bytes
from deepaudio.mapping.encode import encode_partition, get_run

Scaling = tp.Literal["standard", "minmax"]
Per = tp.Literal["features", "across"]
METHODS = ("raw", "pca", "kmeans", "kmeans-pca")


@dataclasses.dataclass
class Mapping:
    """features (T, D) → 10 values in [0, 1], fitted on train-partition encodings only."""
    method: str = "pca"
    scaling: Scaling = "standard"
    per: Per = "features"
    n_out: int = 10
    seed: int = 0
    layer: str | None = None
    steps: list = dataclasses.field(default_factory=list)
    out_params: dict = dataclasses.field(default_factory=dict)
    explained_variance: list[float] | None = None
    feature_variance: list[float] | None = None

    def fit(self, x: np.ndarray) -> Mapping:
        from sklearn.cluster import KMeans
        from sklearn.decomposition import PCA
        from sklearn.preprocessing import MinMaxScaler
        if self.method not in METHODS:
            raise ToolkitError(f"method must be one of {', '.join(METHODS)}, got {self.method!r}")
        if self.method == "raw" and x.shape[1] != self.n_out:
            raise ToolkitError(f"raw mapping needs {self.n_out} features, this layer has "
                               f"{x.shape[1]}; use pca, kmeans or kmeans-pca")
        if len(x) < self.n_out:
            raise ToolkitError(f"need at least {self.n_out} training segments, got {len(x)}")
        self.steps = []
        y = x.astype(np.float64)
        if self.method in ("pca", "kmeans", "kmeans-pca"):
            self.steps.append(MinMaxScaler().fit(y))
            y = self.steps[-1].transform(y)
        if self.method in ("kmeans", "kmeans-pca"):
            km = KMeans(self.n_out, n_init=10, random_state=self.seed).fit(y)
            self.steps.append(km)
            y = _kmeans_similarity(km, y)
        if self.method == "kmeans-pca":
            self.steps.append(MinMaxScaler().fit(y))
            y = self.steps[-1].transform(y)
        if self.method in ("pca", "kmeans-pca"):
            pca = PCA(self.n_out, random_state=self.seed).fit(y)
            self.steps.append(pca)
            y = pca.transform(y)
            self.explained_variance = pca.explained_variance_ratio_.tolist()
        axis = 0 if self.per == "features" else None
        if self.scaling == "standard":
            std = y.std(axis=axis)
            self.out_params = {"mean": y.mean(axis=axis), "std": np.where(std > 0, std, 1.0)}
        else:
            lo, hi = y.min(axis=axis), y.max(axis=axis)
            self.out_params = {"min": lo, "span": np.where(hi > lo, hi - lo, 1.0)}
        self.feature_variance = self.transform(x).var(0).tolist()
        return self

    def transform(self, x: np.ndarray) -> np.ndarray:
        if not self.out_params:
            raise ToolkitError("mapping is not fitted")
        y = x.astype(np.float64)
        for step in self.steps:
            y = (_kmeans_similarity(step, y) if hasattr(step, "cluster_centers_")
                 else step.transform(y))
        p = self.out_params
        if self.scaling == "standard":   # the original's clip(0.4 z + 0.5, 0, 1)
            y = 0.4 * (y - p["mean"]) / p["std"] + 0.5
        else:                            # clipped (the original's minmax was not)
            y = (y - p["min"]) / p["span"]
        return np.clip(y, 0.0, 1.0).astype(np.float32)

    def save(self, path: str | Path) -> Path:
        """Saved as a plain dict of fields (sklearn steps inside), never as a pickled
        ``Mapping``: a class pickled from ``python mapping_utils.py`` would be ``__main__.Mapping``
        and fail to load anywhere else."""
        import joblib
        buf = io.BytesIO()
        joblib.dump({"format": "mapping/1", "fields": dataclasses.asdict(self) |
                     {"steps": self.steps, "out_params": self.out_params}}, buf)
        atomic_write_bytes(path, buf.getvalue())
        return Path(path)

    @staticmethod
    def load(path: str | Path) -> Mapping:
        import joblib
        if not Path(path).is_file():
            raise ToolkitError(f"mapping {path} not found; fit it with "
                               "'python mapping_utils.py fit --run RUN --method METHOD'")
        try:
            data = joblib.load(path)
        except (AttributeError, ModuleNotFoundError, EOFError, ValueError) as e:
            raise StaleMappingError(f"mapping {path} cannot be read ({e}); refit it with "
                                    "'python mapping_utils.py fit ...'") from None
        if not isinstance(data, dict) or data.get("format") != "mapping/1":
            raise StaleMappingError(f"mapping {path} has an old format; refit it")
        return Mapping(**data["fields"])


class StaleMappingError(ToolkitError):
    """A saved mapping from an older version, refitted automatically by :func:`get_mapping`."""


def _kmeans_similarity(km, y: np.ndarray) -> np.ndarray:
    """y_k = 1 / ‖x − c_k‖ (deep-audioviz-experiments' similarity to each centroid)."""
    d = np.linalg.norm(y[:, None, :] - km.cluster_centers_[None], axis=2)
    return 1.0 / np.maximum(d, 1e-6)


def mapping_path(run_dir: str | Path, method: str, layer: str, scaling: str, per: str) -> Path:
    return Path(run_dir) / "mappings" / layer / f"{method}-{scaling}-{per}.joblib"


def fit_mapping(run_dir: str | Path, method: str, *, layer: str | None = None,
                scaling: Scaling = "standard", per: Per = "features", seed: int = 0,
                max_segments: int = 20000) -> Mapping:
    """Fit a mapping on the run's train partitions and save it in the run folder."""
    run = get_run(run_dir)
    layer = layer or run.model.default_layer
    parts = Partitions(run.info["dataset_path"]).train
    x = np.concatenate([encode_partition(run_dir, p, layer, max_segments=max_segments, seed=seed)
                        for p in parts])
    m = Mapping(method=method, scaling=scaling, per=per, seed=seed, layer=layer).fit(x)
    m.save(mapping_path(run_dir, method, layer, scaling, per))
    return m

_MAPPINGS: dict[str, tuple[int, Mapping]] = {}   # path → (mtime, mapping), refit-aware


_MAPPINGS_LOCK = threading.Lock()


def get_mapping(run_dir: str | Path, method: str, *, layer: str | None = None,
                scaling: Scaling = "standard", per: Per = "features", seed: int = 0) -> Mapping:
    """The saved mapping, fitted (and saved) on first use."""
    layer = layer or get_run(run_dir).model.default_layer
    path = mapping_path(run_dir, method, layer, scaling, per)
    key = str(path.resolve())
    with _MAPPINGS_LOCK:
        cached = _MAPPINGS.get(key)
    if cached is not None and path.is_file() and cached[0] == path.stat().st_mtime_ns:
        return cached[1]
    try:
        m = Mapping.load(path) if path.is_file() else None
    except StaleMappingError:
        m = None
    if m is None:
        m = fit_mapping(run_dir, method, layer=layer, scaling=scaling, per=per, seed=seed)
    with _MAPPINGS_LOCK:
        _MAPPINGS[key] = (path.stat().st_mtime_ns, m)
    return m
