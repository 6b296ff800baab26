"""Magenta's published NSynth WaveNet checkpoint as a run of this project's ``nsynth`` preset.

Magenta's ``wavenet-ckpt.tar`` (TensorFlow 1, ``model.ckpt-200000``, the ``h512_bo16``
graph) is read with :mod:`deepaudio.networks.tf_checkpoint` (no TensorFlow needed) and mapped
onto :class:`~deepaudio.networks.wavenet.WaveNetAutoencoder` with ``layout="magenta"``:

==============================  ===============================================================
Magenta variable                this model
==============================  ===============================================================
``ae_startconv``                ``encoder.start`` (3 taps, non-causal)
``ae_dilatedconv_i``            ``encoder.dilated[i-1]``
``ae_res_i``                    ``encoder.mix[i-1]``
``ae_bottleneck``               ``encoder.bottleneck``
``startconv``                   ``decoder.start`` (3 taps, causal)
``skip_start``                  ``decoder.skip_start``
``dilatedconv_i``               ``decoder.gate[i-1]``, output halves swapped (Magenta's gate is
                                ``sigmoid(first) · tanh(second)``, this one
                                ``tanh(first) · sigmoid(second)``)
``cond_map_i``                  ``decoder.cond[i-1]`` (halves swapped); its bias is added to
                                the gate's bias
``res_i`` + ``skip_i``          ``decoder.res_skip[i-1]`` (stacked: residual rows, then skip)
``out1`` (+ ``cond_map_out1``)  ``decoder.head1`` (bias: both biases), ``decoder.cond_out``
``logits``                      ``decoder.head2``
==============================  ===============================================================

A kernel ``W`` of shape ``[1, taps, in, out]`` becomes a torch weight ``(out, in, taps)``
(both frameworks correlate, tap order kept). Other variables of the checkpoint (optimizer
slots, moving averages, ``global_step``) are ignored; the raw weights are those Magenta's own
``fastgen`` restores. The widths and layer counts are read from the shapes; the dilation cycle
(10 in ``h512_bo16``) cannot be, so it is a parameter.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import tarfile
import tempfile
from pathlib import Path

import numpy as np
import torch

from deepaudio.core.download import OfflineError, download
from deepaudio.core.errors import ToolkitError
from deepaudio.networks.checkpoint import save_weights
from deepaudio.networks.tf_checkpoint import Checkpoint, CheckpointError
from deepaudio.networks.wavenet import WaveNetAutoencoder, WaveNetConfig, make_config

TAPS = 3                  # h512_bo16's filter_length, encoder and decoder alike
MAGENTA_DILATION_CYCLE = 10
CHECKPOINT_URL = "http://download.magenta.tensorflow.org/models/nsynth/wavenet-ckpt.tar"
URL_ENV = "DEEPAUDIO_NSYNTH_URL"          # a mirror (or, in the tests, a local stand-in)
ARCHIVE = "wavenet-ckpt.tar"


def _count(ckpt: Checkpoint, layer: str) -> int:
    """How many ``<layer>_N/W`` variables (N = 1, 2, …) the checkpoint holds."""
    numbers = sorted(int(m.group(1)) for n in ckpt.entries
                     if (m := re.fullmatch(rf"{layer}_(\d+)/W", n)))
    if not numbers:
        raise CheckpointError(f"{ckpt.prefix}: no '{layer}_N/W' variables; not an NSynth "
                              "WaveNet checkpoint")
    missing = sorted(set(range(1, numbers[-1] + 1)) - set(numbers))
    if missing:
        raise CheckpointError(f"{ckpt.prefix}: variable '{layer}_{missing[0]}/W' is not in "
                              "the checkpoint")
    return len(numbers)


def config_of(ckpt: Checkpoint, dilation_cycle: int = MAGENTA_DILATION_CYCLE) -> WaveNetConfig:
    """The ``nsynth`` preset's config at the checkpoint's widths and layer counts."""
    def out_width(name: str) -> int:
        shape = ckpt.entry(name).shape
        if len(shape) != 4:
            raise CheckpointError(f"{ckpt.prefix}: variable {name!r} has shape {shape}, "
                                  "expected a [1, taps, in, out] kernel")
        return shape[3]

    return make_config("nsynth", {
        "enc_layers": _count(ckpt, "ae_dilatedconv"),
        "enc_channels": out_width("ae_startconv/W"),
        "dec_layers": _count(ckpt, "dilatedconv"),
        "residual_channels": out_width("startconv/W"),
        "skip_channels": out_width("skip_start/W"),
        "dilation_cycle": dilation_cycle,
        "bottleneck": out_width("ae_bottleneck/W"),
    })


class _Reader:
    """Tensors of the checkpoint, each checked against the shape the config needs."""

    def __init__(self, ckpt: Checkpoint):
        self.ckpt = ckpt

    def get(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        found = self.ckpt.entry(name).shape
        if tuple(found) != shape:
            raise CheckpointError(f"{self.ckpt.prefix}: variable {name!r} has shape "
                                  f"{tuple(found)}, expected {shape}")
        return self.ckpt.tensor(name).astype(np.float32)

    def conv(self, name: str, taps: int, n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray]:
        """(torch weight (out, in, taps), bias (out,)) of Magenta layer ``name``."""
        w = self.get(f"{name}/W", (1, taps, n_in, n_out))
        return w[0].transpose(2, 1, 0), self.get(f"{name}/biases", (n_out,))


def _swap(x: np.ndarray) -> np.ndarray:
    """Magenta's [sigmoid | tanh] gate channels as this model's [tanh | sigmoid]."""
    half = x.shape[0] // 2
    return np.concatenate([x[half:], x[:half]])


def magenta_state_dict(ckpt: Checkpoint, cfg: WaveNetConfig) -> dict[str, torch.Tensor]:
    """The model's state dict from the checkpoint's variables (see the module's table)."""
    read = _Reader(ckpt)
    c, r, s, z = cfg.enc_channels, cfg.residual_channels, cfg.skip_channels, cfg.bottleneck
    out: dict[str, np.ndarray] = {}

    def put(key: str, weight: np.ndarray, bias: np.ndarray | None = None) -> None:
        out[f"{key}.weight"] = weight
        if bias is not None:
            out[f"{key}.bias"] = bias

    put("encoder.start", *read.conv("ae_startconv", TAPS, 1, c))
    for i in range(cfg.enc_layers):
        put(f"encoder.dilated.{i}", *read.conv(f"ae_dilatedconv_{i + 1}", TAPS, c, c))
        put(f"encoder.mix.{i}", *read.conv(f"ae_res_{i + 1}", 1, c, c))
    put("encoder.bottleneck", *read.conv("ae_bottleneck", 1, c, z))
    put("decoder.start", *read.conv("startconv", TAPS, 1, r))
    put("decoder.skip_start", *read.conv("skip_start", 1, r, s))
    for i in range(cfg.dec_layers):
        w, b = read.conv(f"dilatedconv_{i + 1}", TAPS, r, 2 * r)
        cw, cb = read.conv(f"cond_map_{i + 1}", 1, z, 2 * r)
        put(f"decoder.gate.{i}", _swap(w), _swap(b + cb))
        put(f"decoder.cond.{i}", _swap(cw))
        rw, rb = read.conv(f"res_{i + 1}", 1, r, r)
        sw, sb = read.conv(f"skip_{i + 1}", 1, r, s)
        put(f"decoder.res_skip.{i}", np.concatenate([rw, sw]), np.concatenate([rb, sb]))
    w, b = read.conv("out1", 1, s, s)
    cw, cb = read.conv("cond_map_out1", 1, z, s)
    put("decoder.head1", w, b + cb)
    put("decoder.cond_out", cw)
    put("decoder.head2", *read.conv("logits", 1, s, 256))
    return {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in out.items()}


def load_magenta(prefix: str | Path, *, dilation_cycle: int = MAGENTA_DILATION_CYCLE
                 ) -> WaveNetAutoencoder:
    """The autoencoder of a Magenta NSynth checkpoint (folder, prefix or ``.index``)."""
    ckpt = Checkpoint(prefix)
    cfg = config_of(ckpt, dilation_cycle)
    model = WaveNetAutoencoder(cfg)
    state = magenta_state_dict(ckpt, cfg)
    expected = set(model.state_dict())
    if set(state) != expected:           # a mapping bug, not a user error
        raise AssertionError(f"state dict keys differ: {sorted(set(state) ^ expected)}")
    model.load_state_dict(state)
    return model.eval()


def _checkpoint_in_tar(archive: Path, into: Path) -> Path:
    """Unpack a checkpoint tar (e.g. ``wavenet-ckpt.tar``) into ``into``; the folder holding
    its ``.index``."""
    try:
        with tarfile.open(archive) as tar:
            members = [m for m in tar.getmembers() if m.isfile()
                       and re.search(r"\.(index|data-\d+-of-\d+)$|(^|/)checkpoint$", m.name)]
            if not any(m.name.endswith(".index") for m in members):
                raise CheckpointError(f"{archive}: no TensorFlow checkpoint (*.index) in the "
                                      "archive")
            tar.extractall(into, members=members, filter="data")
    except (tarfile.TarError, EOFError, OSError) as e:
        raise CheckpointError(f"{archive}: not a readable tar archive ({e}); "
                              "download it again") from None
    index = next(into.rglob("*.index"))
    return index.parent


def import_nsynth(source: str | Path, run_dir: str | Path, *,
                  dilation_cycle: int = MAGENTA_DILATION_CYCLE) -> dict:
    """Convert Magenta's checkpoint (its tar, folder, prefix or ``.index``) into a WaveNet run
    folder that :func:`~deepaudio.networks.checkpoint.load_wavenet` loads. Nothing is written
    unless every variable is found, shaped right and intact. Returns a summary."""
    source, run = Path(source), Path(run_dir)
    if not source.exists() and not Path(f"{source}.index").exists():
        raise ToolkitError(f"{source}: not found; give Magenta's wavenet-ckpt.tar, the folder "
                           "it unpacks to, or the checkpoint's prefix")
    if run.exists() and (not run.is_dir() or any(run.iterdir())):
        raise ToolkitError(f"{run} exists and is not empty; choose a new folder for the run")
    with tempfile.TemporaryDirectory(prefix="nsynth-import-") as tmp:
        prefix = (_checkpoint_in_tar(source, Path(tmp)) if source.is_file()
                  and tarfile.is_tarfile(source) else source)
        model = load_magenta(prefix, dilation_cycle=dilation_cycle)
        resolved = Checkpoint(prefix).prefix.name
    run.parent.mkdir(parents=True, exist_ok=True)
    staging = run.with_name(f".{run.name}.importing")
    shutil.rmtree(staging, ignore_errors=True)
    save_weights(model, staging, preset="nsynth",
                 imported_from={"source": str(source), "checkpoint": resolved,
                                "format": "magenta-h512_bo16"})
    if run.exists():
        run.rmdir()                                         # empty, checked above
    staging.rename(run)
    n = sum(p.numel() for p in model.parameters())
    return {"run_dir": str(run), "checkpoint": resolved, "parameters": n,
            "config": dataclasses.asdict(model.cfg)}


def default_download_dir() -> Path:
    """Where ``fetch_nsynth`` keeps the archive: ``$XDG_CACHE_HOME/deepaudio/nsynth``
    (``~/.cache/deepaudio/nsynth``)."""
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(cache) / "deepaudio" / "nsynth"


def fetch_nsynth(run_dir: str | Path, *, to: str | Path | None = None, url: str | None = None,
                 offline: bool | None = None, progress=True) -> dict:
    """Download Magenta's ``wavenet-ckpt.tar`` (resumable; kept in ``to``, by default
    :func:`default_download_dir`) and import it into ``run_dir``.

    Magenta publishes no checksum for the archive: its integrity is its length (the server's
    Content-Length), a readable tar, and each tensor's CRC-32C checked by the import. A damaged
    archive is deleted so the next run fetches it anew. Offline (``offline`` or
    ``DEEPAUDIO_OFFLINE=1``) an archive already in ``to`` is imported; else the error says
    where to put it.
    """
    url = url or os.environ.get(URL_ENV) or CHECKPOINT_URL
    archive = Path(to or default_download_dir()).expanduser() / ARCHIVE
    try:
        download(url, archive, offline=offline, progress=progress, desc="NSynth checkpoint")
    except OfflineError:
        raise OfflineError(f"offline: NSynth's checkpoint was not fetched. Download {url} on a "
                           f"connected machine and put it at {archive} (then run this again), "
                           "or import it from anywhere with: python crossfade.py "
                           f"import-nsynth {ARCHIVE} --run {run_dir}") from None
    try:
        return {**import_nsynth(archive, run_dir), "archive": str(archive)}
    except CheckpointError as e:
        archive.unlink(missing_ok=True)
        raise CheckpointError(f"{e}. The downloaded archive was deleted; run again to fetch "
                              "it anew") from None
