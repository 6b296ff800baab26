"""Shared fixtures: a tiny FMA-format sample set synthesized once per test process, datasets
and trained runs made from it, app and config factories, and a tiny Demucs repo.

Test modules never import each other or this file: what they share is a fixture here (a
factory fixture where a test needs to make several)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import threading
import typing as tp
import warnings
from pathlib import Path

# librosa compiles some functions with numba and caches the machine code next to its own
# files; two fresh pytest-xdist workers writing that cache at once once crashed a CI run with a
# segmentation fault. Each worker gets a cache of its own (set before anything imports numba).
if "PYTEST_XDIST_WORKER" in os.environ:
    worker = f"deepaudio-numba-{os.getuid()}-{os.environ['PYTEST_XDIST_WORKER']}"
    os.environ.setdefault("NUMBA_CACHE_DIR", os.path.join(tempfile.gettempdir(), worker))

import numpy as np
import pytest
import torch
from waitress import create_server, wasyncore

# no test reaches the internet: code that would fetch (Demucs weights, NSynth, FMA) is offline
# unless a test points it at a local stand-in host (the file_host fixture lifts this)
os.environ["DEEPAUDIO_OFFLINE"] = "1"

from deepaudio.core.config import load_config
from deepaudio.data.config import DatasetConfig
from deepaudio.data.process import process_dataset
from deepaudio.data.samples import write_sample_set
from deepaudio.mixer.stems import STEMS
from deepaudio.training.fma import TrainConfig, train
from deepaudio.web.app import create_app
from deepaudio.web.jobs import shutdown


@pytest.fixture(scope="session")
def sample_set(tmp_path_factory) -> Path:
    """3 tracks per genre, 6 s each, with true stems: 24 tracks, seed 0."""
    out = tmp_path_factory.mktemp("fma")
    write_sample_set(out, tracks_per_genre=3, seconds=6.0, stems=True, seed=0, workers=1)
    return out


@pytest.fixture
def sample_copy(sample_set, tmp_path) -> Path:
    """A private copy of the sample set, for tests that damage files."""
    dst = tmp_path / "fma"
    shutil.copytree(sample_set, dst, ignore=shutil.ignore_patterns("fma_stems"))
    return dst


def _dataset_config(fma: Path, out: Path, **overrides) -> dict:
    cfg = {"name": "ds", "mode": "mfcc", "fma_audio_dir": str(fma / "fma_small"),
           "fma_meta_dir": str(fma / "fma_metadata"), "fma_type": "small",
           "datasets_dir": str(out), "seed": 0, "cv_split": 0.125, "test_split": 0.125,
           "num_train_partitions": 2, "scaler": "standard"}
    cfg.update(overrides)
    return cfg


@pytest.fixture(scope="session")
def dataset_config():
    """``dataset_config(fma, out, **overrides)``: a dataset config dict over a sample set."""
    return _dataset_config


def _write_config(path: Path, cfg: dict) -> Path:
    path.write_text(json.dumps(cfg))
    return path


@pytest.fixture(scope="session")
def write_config():
    """``write_config(path, cfg)``: the config written as JSON; returns the path."""
    return _write_config


def _processed(sample_set, root, **overrides) -> Path:
    cfg = load_config(DatasetConfig, _dataset_config(sample_set, root, **overrides))
    process_dataset(cfg, workers=1)
    return cfg.h5_path


@pytest.fixture(scope="session")
def processed():
    """``processed(sample_set, out, **dataset_config)``: a processed dataset's HDF5 path."""
    return _processed


@pytest.fixture(scope="session")
def mfcc_ae_h5(sample_set, tmp_path_factory) -> Path:
    """MFCC 64×96 segments, minmax-scaled (autoencoder data), 4 segments per track."""
    return _processed(sample_set, tmp_path_factory.mktemp("ae"), name="mfcc_ae",
                      scaler="minmax", segments_per_track=4)


@pytest.fixture(scope="session")
def mfcc_cls_h5(sample_set, tmp_path_factory) -> Path:
    """MFCC 64×96 segments, standard-scaled (classifier data), 5 segments per track."""
    return _processed(sample_set, tmp_path_factory.mktemp("cls"), name="mfcc_cls",
                      scaler="standard", segments_per_track=5)


@pytest.fixture(scope="session")
def spectrum_h5(sample_set, tmp_path_factory) -> Path:
    return _processed(sample_set, tmp_path_factory.mktemp("spec"), name="spectrum",
                      mode="spectrum", sr=22050, scaler="standard", segments_per_track=4)


def _train_config(h5: Path, models_dir: Path, model: str, **overrides) -> dict:
    params = {"conv_autoencoder": {"num_init_filters": 2, "num_pools": 4, "num_fc": 2,
                                   "kernel_size": 3, "padding": 1},
              "cnn_classifier": {"arch": "vgg11", "batchnorm": True, "width": 0.0625,
                                 "fc_units": 32},
              # the playground's spectrum model, narrower
              "dense_autoencoder": {"widths": [64, 16, 10], "activation": "relu",
                                    "linear_path": True}}[model]
    cfg = {"name": "run", "model": model, "dataset_path": str(h5),
           "models_dir": str(models_dir), "num_epochs": 2, "batch_size": 16, "seed": 0,
           "lr": 1e-3, "model_params": params}
    cfg.update(overrides)
    return cfg


@pytest.fixture(scope="session")
def train_config():
    """``train_config(h5, models_dir, model, **overrides)``: a tiny training config dict."""
    return _train_config


def _trained(h5: Path, root: Path, model: str, **overrides) -> Path:
    cfg = load_config(TrainConfig, _train_config(h5, root, model, **overrides))
    train(cfg)
    return cfg.run_dir


@pytest.fixture(scope="session")
def ae_run(mfcc_ae_h5, tmp_path_factory) -> Path:
    """A tiny conv autoencoder trained for 2 epochs on the sample set."""
    return _trained(mfcc_ae_h5, tmp_path_factory.mktemp("ae_run"), "conv_autoencoder")


@pytest.fixture(scope="session")
def classifier_run(mfcc_cls_h5, tmp_path_factory) -> Path:
    return _trained(mfcc_cls_h5, tmp_path_factory.mktemp("cls_run"), "cnn_classifier")


@pytest.fixture(scope="session")
def spectrum_run(spectrum_h5, tmp_path_factory) -> Path:
    return _trained(spectrum_h5, tmp_path_factory.mktemp("spec_run"), "dense_autoencoder")


@pytest.fixture(scope="session")
def playground_models(ae_run, classifier_run, spectrum_run, tmp_path_factory) -> Path:
    """A models folder as the playground sees it: the MFCC autoencoder, the classifier and the
    spectrum autoencoder."""
    root = tmp_path_factory.mktemp("runs")
    shutil.copytree(ae_run, root / "sample" / "conv_ae")
    shutil.copytree(classifier_run, root / "sample" / "classifier")
    shutil.copytree(spectrum_run, root / "sample" / "spectrum_ae")
    return root


def _make_app(data_dir: Path, sample_set: Path, models: Path, **overrides):
    cfg = {"data_dir": str(data_dir), "fma_dir": str(sample_set), "models_dir": str(models),
           "testing": True}
    cfg.update(overrides)
    return create_app(cfg)


@pytest.fixture(scope="session")
def make_app():
    """``make_app(data_dir, sample_set, models_dir, **server_config)``: a playground app."""
    return _make_app


SIX_STEMS = ("drums", "bass", "other", "vocals", "guitar", "piano")     # htdemucs_6s's


def _tiny_htdemucs(sources: tp.Sequence[str], *, seed: int):
    """A randomly initialised HTDemucs of ~70 k parameters with 2 s segments."""
    from demucs.htdemucs import HTDemucs
    torch.manual_seed(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return HTDemucs(list(sources), channels=8, depth=4, nfft=1024, segment=2, t_layers=1,
                        t_heads=2, t_hidden_scale=1.0, dconv_depth=1, dconv_comp=4)


def _tiny_demucs_repo(folder: Path, name: str = "tinyht",
                      sources: tuple[str, ...] = STEMS, *, bag: int = 1) -> Path:
    """A randomly initialised HTDemucs (70 k parameters, 2 s segments) saved exactly as demucs
    expects a local repo: ``<sig>-<sha256[:8]>.th`` (klass/args/kwargs/state) + ``<name>.yaml``;
    ``sources`` gives it another stem set (``SIX_STEMS``: htdemucs_6s's); ``bag`` models of
    different seeds make a bag."""
    from demucs.htdemucs import HTDemucs
    from demucs.states import get_state, save_with_checksum
    folder.mkdir(parents=True, exist_ok=True)
    sigs = []
    for k in range(bag):
        model = _tiny_htdemucs(sources, seed=k)
        args, kwargs = model._init_args_kwargs
        sig = ("0a1b2c3d" if len(sources) == 4 else f"0a1b2c{len(sources):02d}")
        sig = sig if bag == 1 else f"{name[:6]}{k:02d}"
        save_with_checksum({"klass": HTDemucs, "args": args, "kwargs": kwargs,
                            "state": get_state(model, None, half=False)}, folder / f"{sig}.th")
        sigs.append(sig)
    (folder / f"{name}.yaml").write_text(f"models: {sigs}\n")
    return folder


@pytest.fixture(scope="session")
def make_demucs_repo():
    """``make_demucs_repo(folder, name="tinyht", sources=STEMS)``: a tiny Demucs model in a
    local repo folder (``sources=SIX_STEMS`` for a six-stem one)."""
    return _tiny_demucs_repo


@pytest.fixture(scope="module")
def tiny_repo(tmp_path_factory):
    return _tiny_demucs_repo(tmp_path_factory.mktemp("demucs_repo"))


@pytest.fixture(scope="module")
def one_torch_thread():
    """Sample-by-sample loops are thousands of tiny ops; on a busy 2-core machine intra-op
    threads only wait on each other (naive WaveNet generation ran 100x slower with 2)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@contextlib.contextmanager
def _serve(app):
    """``app`` served by waitress on a free local port; yields the base URL."""
    srv = create_server(app, host="127.0.0.1", port=0, threads=8)
    loop = threading.Thread(target=srv.run, daemon=True)
    loop.start()
    try:
        yield f"http://127.0.0.1:{srv.effective_port}"
    finally:
        # the sockets are closed by the loop's own thread (closing them from here, while it
        # waits in select(), made that select fail on a closed descriptor), then it ends
        srv.trigger.pull_trigger(lambda: wasyncore.close_all(srv._map))
        loop.join(timeout=30)
        srv.task_dispatcher.shutdown()
        shutdown(app)


@pytest.fixture(scope="session")
def serve():
    """``with serve(app) as url``: the app served by waitress in a thread."""
    return _serve


def _long_song(path: Path, minutes: float, sr: int = 44100) -> Path:
    """A stereo FLAC song of ``minutes`` (tones that change every 10 s over noise, pulsing
    twice a second), written block by block."""
    import soundfile as sf
    rng = np.random.default_rng(0)
    with sf.SoundFile(str(path), "w", sr, 2, format="FLAC") as f:
        for b in range(int(round(minutes * 6))):
            t = (np.arange(sr * 10) + b * sr * 10) / sr
            x = 0.2 * np.sin(2 * np.pi * (220 + 20 * (b % 5)) * t) \
                + 0.05 * rng.standard_normal(len(t))
            x *= 0.5 + 0.5 * (np.sin(2 * np.pi * 2 * t) > 0)
            f.write(np.stack([x, 0.8 * x], 1).astype(np.float32))
    return path


def _click_track(bpm: float, seconds: float, sr: int = 22050) -> np.ndarray:
    """Clicks on every beat over quiet noise; a low thump under every fourth (the downbeat)."""
    rng = np.random.default_rng(0)
    y = 0.01 * rng.standard_normal(int(seconds * sr))
    t = np.arange(int(0.05 * sr)) / sr
    click = 0.5 * np.exp(-t / 0.01) * np.sin(2 * np.pi * 2000 * t)
    thump = 0.8 * np.exp(-t / 0.03) * np.sin(2 * np.pi * 60 * t)
    for k in range(int(seconds * bpm / 60) + 1):
        s = int(round(k * 60 / bpm * sr))
        n = min(len(t), len(y) - s)
        if n > 0:
            y[s:s + n] += click[:n] + (thump[:n] if k % 4 == 0 else 0)
    return y.astype(np.float32)


@pytest.fixture(scope="session")
def click_track():
    """``click_track(bpm, seconds, sr=22050)``: clicks on the beats, a thump on each bar."""
    return _click_track


@pytest.fixture(scope="session")
def long_song():
    """``long_song(path, minutes)``: write a long stereo FLAC song."""
    return _long_song


_RSS = """
def _status(key):
    for line in open('/proc/self/status'):
        if line.startswith(key + ':'):
            return int(line.split()[1]) / 1024
"""


def _peak_rss(setup: str, **runs: str) -> dict[str, float]:
    """Peak RSS growth in MB of each statement in ``runs`` (name=statement), run in order
    after ``setup`` in a fresh interpreter, each measured from the resident memory before it
    to the kernel's high-water mark (VmHWM, reset before each with ``clear_refs``). Give the
    small input first: it loads the models and libraries, and the figures compare what a
    longer input adds. Not ``ru_maxrss``: a child inherits its parent's, so under pytest it
    starts at pytest's."""
    import subprocess
    import sys
    lines = ["import json, warnings", "warnings.simplefilter('ignore')", _RSS, setup,
             "growth = {}"]
    for name, statement in runs.items():
        lines += ["open('/proc/self/clear_refs', 'w').write('5')", "base = _status('VmRSS')",
                  statement, f"growth[{name!r}] = _status('VmHWM') - base"]
    lines.append("print(json.dumps(growth))")
    out = subprocess.run([sys.executable, "-c", "\n".join(lines)], capture_output=True,
                         text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="session")
def peak_rss():
    """``peak_rss(setup, short=..., long=...)``: see :func:`_peak_rss`."""
    return _peak_rss


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory):
    """A private Redis server (Debian's redis-server, which 'make test' installs) on a free
    port, without persistence; stopped after the module."""
    import socket
    import subprocess
    import time
    exe = shutil.which("redis-server")
    assert exe, "redis-server is missing: 'make test' installs it (apt-get install redis-server)"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    folder = tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen([exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--dir", str(folder)],
                            stdout=open(folder / "redis.log", "w"), stderr=subprocess.STDOUT)
    import redis
    client = redis.Redis(port=port)
    deadline = time.monotonic() + 30
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            assert proc.poll() is None, (folder / "redis.log").read_text()
            assert time.monotonic() < deadline, "redis-server did not answer"
            time.sleep(0.05)
    yield f"redis://127.0.0.1:{port}/0"
    proc.terminate()
    proc.wait(timeout=30)


class FileHost:
    """A local HTTP server standing in for a download host (Magenta's storage, FMA's, the
    Hugging Face hub): ``files`` maps a URL path to bytes. It honours ``Range`` and
    ``If-Range`` (ETag) as real hosts do, counts requests, and can misbehave on purpose:
    ``drop_after[path] = n`` sends the full length in its headers, then only ``n`` bytes and
    closes the connection (once; ``drop_every`` on every request); ``no_range`` ignores
    Range (always a whole 200); ``headers_for(path, body)`` adds response headers."""

    def __init__(self):
        import hashlib
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        host = self
        self.files: dict[str, bytes] = {}
        self.drop_after: dict[str, int] = {}
        self.drop_every: dict[str, int] = {}         # like drop_after, on every request
        self.no_range = False
        self.requests: list[tuple[str, str | None]] = []        # (path, Range header)
        # extra response headers per path (e.g. the Hugging Face hub's X-Repo-Commit)
        self.headers_for: tp.Callable[[str, bytes], dict[str, str]] = lambda path, body: {}
        self.not_found_headers: dict[str, str] = {}

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def not_found(self):
                self.send_response(404)
                self.send_header("Content-Length", "0")
                for k, v in host.not_found_headers.items():
                    self.send_header(k, v)
                self.end_headers()

            def do_HEAD(self):
                path = self.path.split("?")[0]
                host.requests.append((f"HEAD {path}", None))
                body = host.files.get(path)
                if body is None:
                    self.not_found()
                    return
                self.send_response(200)
                self.send_header("ETag", f'"{hashlib.sha1(body).hexdigest()[:16]}"')
                self.send_header("Content-Length", str(len(body)))
                for k, v in host.headers_for(path, body).items():
                    self.send_header(k, v)
                self.end_headers()

            def do_GET(self):
                path = self.path.split("?")[0]
                host.requests.append((path, self.headers.get("Range")))
                body = host.files.get(path)
                if body is None:
                    self.not_found()
                    return
                etag = f'"{hashlib.sha1(body).hexdigest()[:16]}"'
                start, status = 0, 200
                rng = self.headers.get("Range")
                if_range = self.headers.get("If-Range")
                if rng and not host.no_range and (if_range is None or if_range == etag):
                    start = int(rng.split("=")[1].split("-")[0])
                    if start >= len(body):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(body)}")
                        self.end_headers()
                        return
                    status = 206
                self.send_response(status)
                self.send_header("ETag", etag)
                for k, v in host.headers_for(path, body).items():
                    self.send_header(k, v)
                self.send_header("Accept-Ranges", "bytes")
                self.send_header("Content-Length", str(len(body) - start))
                if status == 206:
                    self.send_header("Content-Range",
                                     f"bytes {start}-{len(body) - 1}/{len(body)}")
                self.end_headers()
                drop = host.drop_after.pop(path, host.drop_every.get(path))
                if drop is not None:
                    self.wfile.write(body[start:start + drop])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body[start:])

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def file_host(monkeypatch):
    """A stand-in download host on localhost (see :class:`FileHost`), stopped afterwards;
    fetching is switched on for the test (it only reaches this host)."""
    monkeypatch.delenv("DEEPAUDIO_OFFLINE", raising=False)
    host = FileHost()
    yield host
    host.stop()


def _pyav_encode(path: Path, audio: np.ndarray, sr: int, codec: str, *,
                 container: str | None = None, bitrate: int = 192_000, video: bool = False,
                 audio_track: bool = True) -> Path:
    """Write (C, N) float32 ``audio`` with FFmpeg's encoder ``codec`` into ``container`` (by
    default from the extension), optionally beside a small MPEG-4 video track, or a video
    alone (``audio_track=False``): the files a music library holds, made here."""
    import fractions

    import av
    out = av.open(str(path), "w", format=container)
    try:
        vs = None
        if video:
            vs = out.add_stream("mpeg4", rate=10)
            vs.width, vs.height, vs.pix_fmt = 64, 48, "yuv420p"
        if audio_track:
            st = out.add_stream(codec, rate=sr)
            st.layout = "mono" if audio.shape[0] == 1 else "stereo"
            st.bit_rate = bitrate
            res = av.AudioResampler(format=st.format.name, layout=st.layout.name, rate=sr)
            frames = []
            for i in range(0, audio.shape[1], 4096):
                fr = av.AudioFrame.from_ndarray(np.ascontiguousarray(audio[:, i:i + 4096],
                                                                     np.float32),
                                                format="fltp", layout=st.layout.name)
                fr.sample_rate, fr.pts, fr.time_base = sr, i, fractions.Fraction(1, sr)
                frames += res.resample(fr)
            frames += res.resample(None)
            for fr in [*frames, None]:
                for pkt in st.encode(fr):
                    out.mux(pkt)
        if vs is not None:
            for k in range(max(1, int(audio.shape[1] / sr * 10))):
                img = np.full((48, 64, 3), k * 20 % 255, np.uint8)
                for pkt in vs.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                    out.mux(pkt)
            for pkt in vs.encode(None):
                out.mux(pkt)
    finally:
        out.close()
    return path


@pytest.fixture(scope="session")
def pyav_encode():
    """``pyav_encode(path, audio, sr, codec, container=None, bitrate=192000, video=False,
    audio_track=True)``: an M4A, WebM, WMA, MP4 video... file made with PyAV's encoders."""
    return _pyav_encode


# the model the stand-in hub serves
HUB_MODEL, HUB_SIG, HUB_REPO = "tinyhub", "5e1f0c2b", "adefossez/Demucs-tinyhub"
HUB_BAG, HUB_BAG_SIGS = "tinybag", ("ba90000a", "ba90000b")
HUB_BAG_REPO = "adefossez/Demucs-tinybag"
LEGACY_MODEL = "tinyold"           # only in demucs' legacy repo (its tables name it)


def _safetensors_model(seed: int = 1) -> bytes:
    """A tiny HTDemucs saved as demucs' hub export does: tensors plus klass/args/kwargs."""
    from safetensors.torch import save
    model = _tiny_htdemucs(STEMS, seed=seed)
    args, kwargs = model._init_args_kwargs
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    return save(state, metadata={"klass": "demucs.htdemucs.HTDemucs", "args": json.dumps(args),
                                 "kwargs": json.dumps(kwargs)})


@pytest.fixture
def demucs_hub(file_host, monkeypatch, tmp_path):
    """A stand-in for the Hugging Face hub (``HF_ENDPOINT``) serving a tiny randomly
    initialised HTDemucs in the hub's layout as Demucs model ``tinyhub``
    (``adefossez/Demucs-tinyhub``: ``tinyhub.yaml`` + one ``.safetensors``, SHA-256 ETag) and a
    bag of two as ``tinybag``; and for demucs' legacy repo, serving the bag ``tinyold`` (two
    ``<sig>-<sha256[:8]>.th``) that demucs' tables (patched) list; an empty Hugging Face cache
    and torch hub dir, and no loaded models."""
    import huggingface_hub.constants as hf_constants

    from deepaudio.mixer import demucs_backend
    weights = _safetensors_model()
    base = f"/{HUB_REPO}/resolve/main"
    file_host.files[f"{base}/{HUB_MODEL}.yaml"] = f"models: ['{HUB_SIG}']\n".encode()
    file_host.files[f"{base}/{HUB_SIG}.safetensors"] = weights
    # a bag of two models on the hub, as htdemucs_ft is a bag of four
    bag_base = f"/{HUB_BAG_REPO}/resolve/main"
    file_host.files[f"{bag_base}/{HUB_BAG}.yaml"] = f"models: {list(HUB_BAG_SIGS)}\n".encode()
    for k, sig in enumerate(HUB_BAG_SIGS):
        file_host.files[f"{bag_base}/{sig}.safetensors"] = _safetensors_model(seed=2 + k)
    # demucs' legacy repo: its tables (a copy of demucs' own, plus a bag the hub does not
    # have) point at the stand-in, which serves <sig>-<sha256[:8]>.th files
    import demucs.pretrained as pretrained
    tables = tmp_path / "demucs-remote"
    shutil.copytree(pretrained.REMOTE_ROOT, tables)
    legacy = _tiny_demucs_repo(tmp_path / "legacy-files", LEGACY_MODEL, bag=2)
    names = sorted(p.name for p in legacy.glob("*.th"))
    for name in names:
        file_host.files[f"/legacy/{name}"] = (legacy / name).read_bytes()
    with open(tables / "files.txt", "a") as f:
        f.write("\nroot: legacy/\n" + "\n".join(names) + "\n")
    shutil.copy(legacy / f"{LEGACY_MODEL}.yaml", tables)
    monkeypatch.setattr(pretrained, "REMOTE_ROOT", tables)
    monkeypatch.setattr(pretrained, "ROOT_URL", f"{file_host.url}/")
    file_host.legacy_files = names

    def headers(path, body):
        out = {"X-Repo-Commit": "0123456789abcdef0123456789abcdef01234567"}
        if path.endswith(".safetensors"):               # an LFS file: ETag = SHA-256
            out.update({"X-Linked-Etag": f'"{hashlib.sha256(body).hexdigest()}"',
                        "X-Linked-Size": str(len(body))})
        return out

    file_host.headers_for = headers
    file_host.not_found_headers = {"X-Error-Code": "RepoNotFound",
                                   "X-Error-Message": "Repository not found"}
    monkeypatch.setenv("HF_ENDPOINT", file_host.url)
    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    # read at import: another test of this process may have imported it with HF_HUB_OFFLINE
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "torch-hub"))
    monkeypatch.setattr(demucs_backend, "_DEMUCS_CACHE", {})
    file_host.weights = weights
    file_host.model, file_host.sig, file_host.repo_id = HUB_MODEL, HUB_SIG, HUB_REPO
    return file_host
