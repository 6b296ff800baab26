"""Trained encoders → smooth feature timelines in [0, 1] that drive visual parameters.

    python mapping_utils.py fit --run models/runs/playground/conv_ae --method pca
    python mapping_utils.py timeline SONG.mp3 --run models/runs/playground/conv_ae \
        --method pca --fps 30 --smoothing 0.3 --assign random --seed 7 -o timeline.json

Pipeline: decode → the run's dataset features (MFCC or spectrum) at a chosen hop, overlapping
segments allowed → the dataset's stored scaler → ``model.encode`` in eval mode, batched →
a fitted :class:`Mapping` (``raw``, ``pca``, ``kmeans``, ``kmeans-pca`` then ``standard`` or
``minmax`` output scaling, ``across`` or per ``features``) → linear interpolation to the
requested fps → EWMA smoothing → assignment of features to visual parameters.

Fixes from the reference: mappers are fitted on the *train* partition (it fitted them on the
test set), minmax output is clipped, encoding runs in eval mode, the random assignment is a
seeded permutation whose seed is returned (it re-shuffled with a biased sort on every play),
and scaling into a parameter's range is monotonic (its two-sided scale jumped at 0.5).
"""

from __future__ import annotations

import argparse
import dataclasses
import secrets
import sys
import threading
import typing as tp
from pathlib import Path

import numpy as np
import torch

from audio_io import load_audio
from config import ToolkitError, atomic_write_json, user_errors_exit_2
from data_processor import apply_scaler, mfcc_segments, spectrum_segments

METHODS = ("raw", "pca", "kmeans", "kmeans-pca")
BLUR_SIZES = (1, 10, 50, 100, 300, 1000, 3000)   # frames, the spectrum model's blur levels


# ---------------------------------------------------------------------------------------------
# Encoding a track

@dataclasses.dataclass
class FeatureTimeline:
    """Features at regular times: ``frames[i]`` describes the audio around ``times[i]``."""
    fps: float
    names: list[str]
    frames: np.ndarray          # (T, D) float32
    start: float = 0.0          # time of frames[0] in seconds
    meta: dict = dataclasses.field(default_factory=dict)

    @property
    def times(self) -> np.ndarray:
        return self.start + np.arange(len(self.frames)) / self.fps

    def to_json(self, decimals: int = 4) -> dict:
        """The documented wire format: ``{"fps", "names", "frames", ...}``."""
        return {"fps": self.fps, "start": self.start, "names": self.names,
                "frames": np.round(self.frames.astype(np.float64), decimals).tolist(),
                **self.meta}


class EncoderRun:
    """A trained run loaded once: model (eval mode), dataset feature config, scaler."""

    def __init__(self, run_dir: str | Path, device: str = "cpu"):
        from train import load_trained
        self.run_dir = Path(run_dir)
        self.model, self.info, self.scaler = load_trained(self.run_dir, device=device)
        self.device = device
        self.config = self.info["config"]
        self.mode = self.info.get("mode") or self.config.get("mode")
        if self.mode not in ("mfcc", "spectrum"):
            raise ToolkitError(f"{run_dir}: runs on {self.mode!r} datasets produce no "
                               "visualization features (mfcc or spectrum runs do)")
        self.sr = int(self.config["sr"])
        self.lock = threading.Lock()   # torch modules are not re-entrant across threads

    @property
    def layers(self) -> tuple[str, ...]:
        return tuple(self.model.layers)

    def segment_length(self) -> float:
        return float(self.info["segment_seconds"])

    def segments(self, y: np.ndarray, hop_seconds: float) -> tuple[np.ndarray, float]:
        """Scaled model inputs at a hop; returns (segments, actual hop in seconds)."""
        c = self.config
        if self.mode == "mfcc":
            frame = c["mfcc_hops"] / self.sr
            hop = max(1, int(round(hop_seconds / frame)))
            segs = mfcc_segments(y, self.sr, num_mfcc=c["num_mfcc"], n_mels=c["n_mels"],
                                 hop_length=c["mfcc_hops"], n_fft=c["n_fft"],
                                 frames_per_segment=c["frames_per_segment"], segment_hop=hop)
            actual = hop * frame
        else:
            hop = max(1, int(round(hop_seconds * self.sr)))
            segs = spectrum_segments(y, window_size=c["window_size"], hop_length=hop)
            actual = hop / self.sr
        return apply_scaler(segs, self.scaler), actual

    def encode(self, segs: np.ndarray, layer: str | None, batch_size: int = 256) -> np.ndarray:
        with self.lock:
            return self.model.encode_array(segs, layer, batch_size=batch_size)


_RUNS: dict[tuple[str, str], EncoderRun] = {}
_RUNS_LOCK = threading.Lock()


def get_run(run_dir: str | Path, device: str = "cpu") -> EncoderRun:
    """The process-wide loaded run (models load once; concurrent callers share it)."""
    key = (str(Path(run_dir).resolve()), device)
    with _RUNS_LOCK:
        if key not in _RUNS:
            _RUNS[key] = EncoderRun(run_dir, device)
        return _RUNS[key]


def encode_track(source: str | Path | tuple[np.ndarray, int], run_dir: str | Path,
                 layer: str | None = None, *, hop_seconds: float | None = None,
                 device: str = "cpu", batch_size: int = 256) -> FeatureTimeline:
    """Encode a song (a path, or ``(audio (C, N), sr)``) with a trained run.

    ``hop_seconds`` sets the spacing of (overlapping) segments; default the dataset's hop.
    Frame ``i`` is the segment centred at ``start + i * hop``.
    """
    run = get_run(run_dir, device)
    if isinstance(source, tuple):
        audio, sr = source
        from audio_io import resample, to_channels
        y = resample(to_channels(np.asarray(audio, np.float32).reshape(-1, audio.shape[-1]), 1),
                     sr, run.sr)[0]
    else:
        y = load_audio(source, sr=run.sr, mono=True)[0][0]
    hop = hop_seconds if hop_seconds is not None else float(run.info.get("hop_seconds") or
                                                              run.segment_length())
    if hop <= 0:
        raise ToolkitError(f"hop_seconds must be positive, got {hop}")
    segs, actual = run.segments(y, hop)
    if len(segs) == 0:
        raise ToolkitError(f"the audio ({len(y) / run.sr:.2f} s) is shorter than one "
                           f"{run.segment_length():.2f} s segment")
    feats = run.encode(segs, layer, batch_size)
    layer = layer or run.model.default_layer
    return FeatureTimeline(fps=1.0 / actual, names=[f"{layer}_{k}" for k in range(feats.shape[1])],
                           frames=feats, start=run.segment_length() / 2,
                           meta={"layer": layer, "duration": len(y) / run.sr})


def genre_probabilities(source: str | Path | tuple[np.ndarray, int], run_dir: str | Path,
                        *, hop_seconds: float | None = None) -> dict[str, float]:
    """A classifier run's genre probabilities for a whole song: the softmax of each segment's
    logits (eval mode), averaged over the song's segments. Keys are the run's genre names."""
    run = get_run(run_dir)
    genres = run.info.get("genres")
    if not hasattr(run.model, "classifier") or not genres:
        raise ToolkitError(f"{run_dir}: not a genre classifier run")
    if isinstance(source, tuple):
        from audio_io import resample, to_channels
        audio, sr = source
        y = resample(to_channels(np.asarray(audio, np.float32).reshape(-1, audio.shape[-1]), 1),
                     sr, run.sr)[0]
    else:
        y = load_audio(source, sr=run.sr, mono=True)[0][0]
    segs, _ = run.segments(y, hop_seconds or run.segment_length())
    if len(segs) == 0:
        raise ToolkitError(f"the audio ({len(y) / run.sr:.2f} s) is shorter than one "
                           f"{run.segment_length():.2f} s segment")
    with run.lock, torch.inference_mode():
        run.model.eval()
        logits = torch.cat([run.model(torch.from_numpy(segs[i:i + 256]).to(run.device)).cpu()
                            for i in range(0, len(segs), 256)])
    p = torch.softmax(logits.float(), dim=1).mean(0).numpy()
    return {g: float(v) for g, v in zip(genres, p)}


def encode_partition(run_dir: str | Path, part: str, layer: str | None = None, *,
                     max_segments: int | None = None, seed: int = 0) -> np.ndarray:
    """Encodings of a stored dataset partition (already scaled), e.g. for fitting mappings."""
    from data_processor import read_partition
    run = get_run(run_dir)
    path = run.info["dataset_path"]
    if not Path(path).is_file():
        raise ToolkitError(f"{path}: the run's training dataset is needed to fit a mapping "
                           "(data_processor.py process -c ...)")
    segs = read_partition(path, part)["segment_data"]
    if max_segments and len(segs) > max_segments:
        idx = np.sort(np.random.default_rng(seed).choice(len(segs), max_segments, replace=False))
        segs = segs[idx]
    return run.encode(segs, layer)


# ---------------------------------------------------------------------------------------------
# Mappings

@dataclasses.dataclass
class Mapping:
    """features (T, D) → 10 values in [0, 1], fitted on train-partition encodings only."""
    method: str = "pca"
    scaling: tp.Literal["standard", "minmax"] = "standard"
    per: tp.Literal["features", "across"] = "features"
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
        if self.scaling == "standard":   # the reference's clip(0.4 z + 0.5, 0, 1)
            y = 0.4 * (y - p["mean"]) / p["std"] + 0.5
        else:                            # clipped (the reference's minmax was not)
            y = (y - p["min"]) / p["span"]
        return np.clip(y, 0.0, 1.0).astype(np.float32)

    def save(self, path: str | Path) -> Path:
        """Saved as a plain dict of fields (sklearn steps inside), never as a pickled
        ``Mapping``: a class pickled from ``python mapping_utils.py`` would be ``__main__.Mapping``
        and fail to load anywhere else."""
        import io

        import joblib

        from config import atomic_write_bytes
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
    """y_k = 1 / ‖x − c_k‖ (the reference's similarity to each centroid)."""
    d = np.linalg.norm(y[:, None, :] - km.cluster_centers_[None], axis=2)
    return 1.0 / np.maximum(d, 1e-6)


def mapping_path(run_dir: str | Path, method: str, layer: str, scaling: str, per: str) -> Path:
    return Path(run_dir) / "mappings" / layer / f"{method}-{scaling}-{per}.joblib"


def fit_mapping(run_dir: str | Path, method: str, *, layer: str | None = None,
                scaling: str = "standard", per: str = "features", seed: int = 0,
                max_segments: int = 20000) -> Mapping:
    """Fit a mapping on the run's train partitions and save it in the run folder."""
    from train import Partitions
    run = get_run(run_dir)
    layer = layer or run.model.default_layer
    parts = Partitions(run.info["dataset_path"]).train
    x = np.concatenate([encode_partition(run_dir, p, layer, max_segments=max_segments, seed=seed)
                        for p in parts])
    m = Mapping(method=method, scaling=scaling, per=per, seed=seed, layer=layer).fit(x)
    m.save(mapping_path(run_dir, method, layer, scaling, per))
    return m


def get_mapping(run_dir: str | Path, method: str, *, layer: str | None = None,
                scaling: str = "standard", per: str = "features", seed: int = 0) -> Mapping:
    """The saved mapping, fitted (and saved) on first use."""
    layer = layer or get_run(run_dir).model.default_layer
    path = mapping_path(run_dir, method, layer, scaling, per)
    key = str(path.resolve())
    with _RUNS_LOCK:
        cached = _MAPPINGS.get(key)
    if cached is not None and path.is_file() and cached[0] == path.stat().st_mtime_ns:
        return cached[1]
    try:
        m = Mapping.load(path) if path.is_file() else None
    except StaleMappingError:
        m = None
    if m is None:
        m = fit_mapping(run_dir, method, layer=layer, scaling=scaling, per=per, seed=seed)
    with _RUNS_LOCK:
        _MAPPINGS[key] = (path.stat().st_mtime_ns, m)
    return m


_MAPPINGS: dict[str, tuple[int, Mapping]] = {}   # path → (mtime, mapping), refit-aware


# ---------------------------------------------------------------------------------------------
# Temporal post-processing (NumPy in, NumPy out)

def interpolate_frames(times: np.ndarray, values: np.ndarray, fps: float,
                       duration: float) -> np.ndarray:
    """Linear interpolation between segment times onto frames at ``k / fps`` for
    ``0 <= k / fps <= duration``; held constant before the first and after the last segment."""
    t = np.arange(int(np.floor(duration * fps + 1e-9)) + 1) / fps
    return np.stack([np.interp(t, times, values[:, j]) for j in range(values.shape[1])],
                    axis=1).astype(np.float32)


def ewma(values: np.ndarray, alpha: float) -> np.ndarray:
    """v_t = alpha * p_t + (1 - alpha) * v_(t-1), v_0 = p_0, along axis 0."""
    from scipy.signal import lfilter
    if not 0 < alpha <= 1:
        raise ToolkitError(f"EWMA alpha must be in (0, 1], got {alpha}")
    x = np.asarray(values, np.float64)
    zi = (1 - alpha) * x[:1]
    return lfilter([alpha], [1, -(1 - alpha)], x, axis=0, zi=zi)[0].astype(np.float32)


def multiscale_blur(values: np.ndarray, sizes: tp.Sequence[int] = BLUR_SIZES) -> dict:
    """The spectrum model's blur levels: a centred box mean of b frames for each b, then
    min-max scaled per feature over the song (constant features become 0)."""
    from scipy.ndimage import uniform_filter1d
    out = {}
    for b in sizes:
        x = uniform_filter1d(np.asarray(values, np.float64), size=min(b, len(values)), axis=0,
                             mode="nearest")
        lo, hi = x.min(0), x.max(0)
        out[f"blur{b}"] = ((x - lo) / np.where(hi > lo, hi - lo, 1.0)).astype(np.float32)
    return out


# ---------------------------------------------------------------------------------------------
# Features → visual parameters

def assign_parameters(n: int, mode: str, *, seed: int | None = None,
                      feature_variance: tp.Sequence[float] | None = None,
                      salience: tp.Sequence[int] | None = None) -> tuple[np.ndarray, int | None]:
    """Which feature drives each parameter: ``perm[k]`` is the feature of parameter k.

    ``random``: a seeded permutation (a seed is drawn and returned when none is given, so a
    mapping can be shared); ``deterministic``: identity; ``ranked``: features by decreasing
    variance onto parameters by decreasing visual ``salience`` (parameter indices, most
    salient first; default 0..n-1).
    """
    if mode == "deterministic":
        return np.arange(n), None
    if mode == "random":
        seed = secrets.randbelow(2 ** 31) if seed is None else int(seed)
        return np.random.default_rng(seed).permutation(n), seed
    if mode == "ranked":
        if feature_variance is None:
            raise ToolkitError("ranked assignment needs the features' variances")
        order = np.argsort(-np.asarray(feature_variance), kind="stable")
        params = np.asarray(salience if salience is not None else np.arange(n))
        perm = np.empty(n, np.int64)
        perm[params] = order[:n]
        return perm, None
    raise ToolkitError(f"assignment must be random, deterministic or ranked, got {mode!r}")


def scale_to_range(v: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Monotonic map of [0, 1] onto a parameter's [lo, hi]."""
    return lo + np.clip(v, 0, 1) * (hi - lo)


def mapped_timeline(source, run_dir: str | Path, *, method: str = "pca",
                    layer: str | None = None, scaling: str = "standard",
                    per: str = "features", fps: float = 30.0, smoothing: float = 0.0,
                    assign: str = "deterministic", seed: int | None = None,
                    hop_seconds: float | None = None, blur: int | None = None) -> FeatureTimeline:
    """Song → 10 parameter tracks in [0, 1] at ``fps``: the playground's timeline.

    ``blur`` (frames) applies the spectrum model's centred box mean and per-song min-max
    scaling after the EWMA, e.g. 50 frames for slow, sweeping parameters.
    """
    if fps <= 0 or fps > 240:
        raise ToolkitError(f"fps must be in (0, 240], got {fps}")
    if not 0 <= smoothing < 1:
        raise ToolkitError(f"smoothing must be in [0, 1), got {smoothing}")
    feats = encode_track(source, run_dir, layer, hop_seconds=hop_seconds)
    mapping = get_mapping(run_dir, method, layer=feats.meta["layer"], scaling=scaling, per=per)
    values = mapping.transform(feats.frames)
    frames = interpolate_frames(feats.times, values, fps, feats.meta["duration"])
    if smoothing:
        frames = ewma(frames, 1 - smoothing)
    if blur is not None:
        if blur < 1:
            raise ToolkitError(f"blur must be a number of frames >= 1, got {blur}")
        frames = multiscale_blur(frames, sizes=(blur,))[f"blur{blur}"]
    perm, used_seed = assign_parameters(values.shape[1], assign, seed=seed,
                                        feature_variance=mapping.feature_variance)
    frames = frames[:, perm]
    return FeatureTimeline(fps=fps, names=[f"p{k}" for k in range(frames.shape[1])],
                           frames=np.clip(frames, 0, 1), start=0.0,
                           meta={"method": method, "layer": feats.meta["layer"],
                                 "scaling": scaling, "per": per, "smoothing": smoothing,
                                 "assignment": assign, "seed": used_seed, "blur": blur,
                                 "permutation": perm.tolist(),
                                 "duration": feats.meta["duration"]})


# ---------------------------------------------------------------------------------------------
# DSP baseline: MilkDrop / projectM relative loudness

def dsp_band_timeline(y: np.ndarray, sr: int, *, fps: float = 30.0,
                      fft_size: int = 1024) -> FeatureTimeline:
    """bass / mid / treb relative loudness as MilkDrop computes it (butterchurn's bands
    20-320, 320-2800, 2800-11025 Hz): ``imm / long`` and ``avg / long`` per band, with the
    fast-attack/slow-release averages compensated for ``fps``. Values hover around 1.0."""
    hop = sr / fps
    n = int(len(y) / hop) + 1
    window = np.hanning(fft_size)
    padded = np.pad(y, (fft_size, fft_size))
    starts = (np.arange(n) * hop).astype(int) + fft_size // 2
    frames = np.stack([padded[s:s + fft_size] for s in starts]) * window
    mag = np.abs(np.fft.rfft(frames, axis=1))
    f = np.fft.rfftfreq(fft_size, 1 / sr)
    bands = [(20, 320), (320, 2800), (2800, 11025)]
    imm = np.stack([mag[:, (f >= lo) & (f < hi)].sum(1) for lo, hi in bands], 1)
    out = np.zeros((n, 6), np.float32)
    avg = imm[0].copy()
    long = imm[0].copy()
    comp = 30.0 / np.clip(fps, 15, 144)
    for t in range(n):
        r = np.where(imm[t] > avg, 0.2, 0.5) ** comp
        avg = avg * r + imm[t] * (1 - r)
        rho = (0.9 if t < 50 else 0.992) ** comp
        long = long * rho + imm[t] * (1 - rho)
        safe = np.where(long < 1e-3, 1.0, long)
        out[t, :3] = np.where(long < 1e-3, 1.0, imm[t] / safe)
        out[t, 3:] = np.where(long < 1e-3, 1.0, avg / safe)
    return FeatureTimeline(fps=fps, names=["bass", "mid", "treb", "bass_att", "mid_att",
                                           "treb_att"], frames=out, start=0.0)


# ---------------------------------------------------------------------------------------------
# CLI

def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--run", required=True, help="a trained run folder")
    common.add_argument("--method", default="pca", choices=METHODS)
    common.add_argument("--layer", help="tap layer (classifiers: e.g. L10); default the model's")
    common.add_argument("--scaling", default="standard", choices=["standard", "minmax"])
    common.add_argument("--per", default="features", choices=["features", "across"])
    common.add_argument("--seed", type=int)
    f = sub.add_parser("fit", parents=[common], help="fit a mapping on the train partitions")
    f.add_argument("--max-segments", type=int, default=20000)
    t = sub.add_parser("timeline", parents=[common], help="a song's parameter timeline (JSON)")
    t.add_argument("song")
    t.add_argument("--fps", type=float, default=30.0)
    t.add_argument("--smoothing", type=float, default=0.0,
                   help="EWMA smoothing in [0, 1): alpha = 1 - smoothing")
    t.add_argument("--assign", default="deterministic",
                   choices=["deterministic", "random", "ranked"])
    t.add_argument("--hop", type=float, help="seconds between encoded segments")
    t.add_argument("--blur", type=int, help="box blur over this many frames, then min-max "
                   f"per song (the spectrum model used {', '.join(map(str, BLUR_SIZES))})")
    t.add_argument("-o", "--out", required=True)
    return p


@user_errors_exit_2
def main(argv: list[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    if args.command == "fit":
        m = fit_mapping(args.run, args.method, layer=args.layer, scaling=args.scaling,
                        per=args.per, seed=args.seed or 0, max_segments=args.max_segments)
        print(f"fitted {args.method} on layer {m.layer}: "
              f"{mapping_path(args.run, args.method, m.layer, args.scaling, args.per)}")
        if m.explained_variance:
            print(f"explained variance of {len(m.explained_variance)} components: "
                  f"{sum(m.explained_variance):.3f} "
                  f"({', '.join(f'{v:.3f}' for v in m.explained_variance)})")
    else:
        tl = mapped_timeline(args.song, args.run, method=args.method, layer=args.layer,
                             scaling=args.scaling, per=args.per, fps=args.fps,
                             smoothing=args.smoothing, assign=args.assign, seed=args.seed,
                             hop_seconds=args.hop, blur=args.blur)
        atomic_write_json(args.out, tl.to_json())
        print(f"{args.out}: {len(tl.frames)} frames at {tl.fps:g} fps "
              f"(assignment {tl.meta['assignment']}, seed {tl.meta['seed']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
