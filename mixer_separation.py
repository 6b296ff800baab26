"""Stem separation for the mixer: Demucs (the ``demucs`` 4.1 package) or an offline DSP
separator, both writing the same stem folder; plus SDR evaluation against true stems.

A stem folder holds ``{drums,bass,other,vocals}.flac`` (24-bit) and ``stems.json``
(``sources``, ``sample_rate``, ``frames``, ``backend``, ``model``, ``scale``...). Stems are
summable: at unity gain they add up to the (resampled, stereo) input. When a stem would clip
in 24-bit FLAC, *all* stems are scaled by the same ``scale`` (< 1, recorded in the manifest and
undone by :func:`load_stems`), so the sum stays the mix; per-stem rescaling (Demucs'
``--clip-mode rescale``) would break that.

Memory is bounded on long songs. ``demucs.api.Separator.separate_tensor`` holds the track,
the normalised copy, the shifted copy and 4 stems (plus temporaries) in memory at once, which
is how Demucs reaches ~7 GiB for an hour of audio. Here the model is loaded through
``Separator`` (the real loading code: Hugging Face cache, torch hub cache, or a local repo
folder), but the chunk loop of ``demucs.apply.apply_model`` runs here, chunk by chunk on the
same grid with the same triangular blending and the same shift trick, and every finished
stretch of output is appended to the stem files at once. The result equals ``apply_model`` on
the whole track (checked in the tests); memory is the input plus a few chunks.
"""

from __future__ import annotations

import json
import math
import os
import random
import shutil
import tempfile
import time
import typing as tp
from pathlib import Path

import numpy as np
import soundfile as sf

from audio_io import AudioError, audio_info, load_audio, resample, to_channels
from config import ToolkitError, atomic_write_json

STEMS = ("drums", "bass", "other", "vocals")
BACKENDS = ("demucs", "dsp")
DSP_SAMPLE_RATE = 44100
WRITE_BLOCK = 10 * 44100        # frames per soundfile write: one-shot OGG writes of ~60 s
                                # and longer crash libsndfile's Vorbis encoder
ProgressFn = tp.Callable[[float, str], None]


class SeparationError(ToolkitError):
    """Separation cannot run: missing or broken weights, unknown backend, unreadable song."""


class UnknownModelError(SeparationError):
    """A Demucs model name that neither demucs' own tables nor any local folder knows."""


# ---------------------------------------------------------------------------------------------
# Writing stems

def write_audio_blocks(path: str | os.PathLike, blocks: tp.Iterable[np.ndarray], sr: int,
                       channels: int, *, subtype: str | None = None,
                       compression_level: float | None = None) -> Path:
    """Write (C, n) blocks to one file atomically (temp file + rename), in bounded pieces.

    The format follows the extension (.wav .flac .ogg .mp3). Unlike a one-shot write this
    works on files of any length: nothing is held in memory but the current block.
    """
    path = Path(path)
    fmt = {".wav": "WAV", ".flac": "FLAC", ".ogg": "OGG", ".mp3": "MP3"}[path.suffix.lower()]
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=path.suffix)
    os.close(fd)
    try:
        with sf.SoundFile(tmp, "w", sr, channels, format=fmt, subtype=subtype,
                          compression_level=compression_level) as f:
            for block in blocks:
                for i in range(0, block.shape[-1], WRITE_BLOCK):
                    f.write(np.ascontiguousarray(block[:, i:i + WRITE_BLOCK].T))
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_blocks(path: str | os.PathLike, *, frames: int = 30 * 44100,
                scale: float = 1.0) -> tp.Iterator[np.ndarray]:
    """Yield a file's audio as float32 (C, n) blocks."""
    with sf.SoundFile(str(path)) as f:
        while True:
            data = f.read(frames, dtype="float32", always_2d=True)
            if not len(data):
                return
            yield np.ascontiguousarray(data.T) * np.float32(scale)


class StemWriter:
    """Collects stems block by block in float WAV scratch files, then writes the final 24-bit
    FLAC stems (shared anti-clipping scale) and the manifest into ``out_dir``.

    The scratch files live in a hidden folder inside ``out_dir`` and are removed on
    :meth:`close` or :meth:`abort`; every final file is written atomically.
    """

    def __init__(self, out_dir: str | os.PathLike, sr: int, channels: int = 2,
                 sources: tp.Sequence[str] = STEMS):
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.sr, self.channels, self.sources = sr, channels, tuple(sources)
        self._scratch = Path(tempfile.mkdtemp(dir=self.out_dir, prefix=".scratch-"))
        self._files = {s: sf.SoundFile(str(self._scratch / f"{s}.wav"), "w", sr, channels,
                                       format="WAV", subtype="FLOAT") for s in self.sources}
        self.frames = 0
        self.peak = 0.0

    def write(self, block: np.ndarray) -> None:
        """Append one block shaped (sources, channels, n)."""
        for s, audio in zip(self.sources, block):
            self._files[s].write(np.ascontiguousarray(audio.T, dtype=np.float32))
        self.frames += block.shape[-1]
        if block.size:
            self.peak = max(self.peak, float(np.abs(block).max()))

    def close(self, meta: dict) -> dict:
        for f in self._files.values():
            f.close()
        # 24-bit FLAC holds [-1, 1); keep a 1 % margin like Demucs' rescale
        scale = 1.0 if self.peak < 0.99 else 0.99 / self.peak
        try:
            for s in self.sources:
                write_audio_blocks(self.out_dir / f"{s}.flac",
                                   read_blocks(self._scratch / f"{s}.wav", scale=scale),
                                   self.sr, self.channels, subtype="PCM_24")
        finally:
            shutil.rmtree(self._scratch, ignore_errors=True)
        manifest = {"sources": list(self.sources), "sample_rate": self.sr,
                    "channels": self.channels, "frames": self.frames,
                    "duration": self.frames / self.sr, "scale": scale,
                    "files": {s: f"{s}.flac" for s in self.sources}, **meta}
        atomic_write_json(self.out_dir / "stems.json", manifest)
        return manifest

    def abort(self) -> None:
        for f in self._files.values():
            f.close()
        shutil.rmtree(self._scratch, ignore_errors=True)


def load_stems(stems_dir: str | os.PathLike, *, sources: tp.Sequence[str] | None = None
               ) -> tuple[dict[str, np.ndarray], int]:
    """Stems of a folder as float32 (2, N) arrays of equal length, and their sample rate.

    Reads our ``stems.json`` (undoing its anti-clipping ``scale``) or, for any other folder
    (Demucs' CLI output, the sample set's true stems), files named ``<stem>.<ext>``. Mono stems
    become stereo; stems of different lengths are zero-padded to the longest; all stems must
    share one sample rate.
    """
    stems_dir = Path(stems_dir)
    if not stems_dir.is_dir():
        raise SeparationError(f"{stems_dir}: stems folder not found")
    manifest_path = stems_dir / "stems.json"
    scale = 1.0
    if manifest_path.is_file():
        manifest = json.loads(manifest_path.read_text())
        files = {s: stems_dir / f for s, f in manifest["files"].items()}
        scale = float(manifest.get("scale", 1.0))
    else:
        files = {}
        for p in sorted(stems_dir.iterdir()):
            if p.suffix.lower() in (".wav", ".flac", ".ogg", ".mp3") and not p.name.startswith("."):
                files.setdefault(p.stem, p)
    if sources is not None:
        missing = [s for s in sources if s not in files]
        if missing:
            raise SeparationError(f"{stems_dir}: no stem file for {', '.join(missing)}")
        files = {s: files[s] for s in sources}
    if not files:
        raise SeparationError(f"{stems_dir}: no stem files (expected e.g. vocals.wav, "
                              "drums.flac)")
    stems, rates = {}, set()
    for name, path in files.items():
        audio, sr = load_audio(path, mono=False)
        if audio.shape[0] > 2:
            audio = audio[:2]
        stems[name] = to_channels(audio, 2)
        rates.add(sr)
    if len(rates) > 1:
        raise SeparationError(f"{stems_dir}: stems have different sample rates "
                              f"({', '.join(map(str, sorted(rates)))} Hz)")
    n = max(a.shape[1] for a in stems.values())
    for name, a in stems.items():
        if a.shape[1] < n:
            a = np.pad(a, ((0, 0), (0, n - a.shape[1])))
        stems[name] = a / np.float32(scale) if scale != 1.0 else a
    return stems, rates.pop()


# ---------------------------------------------------------------------------------------------
# Demucs

_DEMUCS_CACHE: dict[tuple, tp.Any] = {}


def _remote_files(model: str) -> tuple[list[str], dict[str, str]]:
    """The signatures of a named Demucs model and the download URL of each weights file,
    from the tables shipped inside the demucs package."""
    import yaml
    from demucs.pretrained import REMOTE_ROOT, _parse_remote_files
    urls = _parse_remote_files(REMOTE_ROOT / "files.txt")
    bag = REMOTE_ROOT / f"{model}.yaml"
    sigs = yaml.safe_load(bag.read_text())["models"] if bag.is_file() else [model]
    return sigs, {s: urls[s] for s in sigs if s in urls}


def _repo_has(repo: Path, model: str) -> tuple[bool, list[str]]:
    import yaml
    weights = {p.stem.rsplit("-", 1)[0] if "-" in p.stem else p.stem
               for p in repo.glob("*.th")}
    bag = repo / f"{model}.yaml"
    if bag.is_file():
        try:
            sigs = yaml.safe_load(bag.read_text())["models"]
        except Exception:
            return False, [f"{bag.name} (unreadable: expected 'models: [...]')"]
        missing = [s for s in sigs if s not in weights]
        return not missing, [f"{s}-*.th" for s in missing]
    return model in weights, [f"{model}.yaml"]


def check_demucs_weights(model: str = "htdemucs", repo: str | os.PathLike | None = None
                         ) -> None:
    """Raise SeparationError, saying which files to put where, when the weights of ``model``
    are not on this machine (a local ``repo`` folder, the Hugging Face cache or the torch hub
    cache). Checking first avoids a download attempt that can only fail offline."""
    sigs, urls = _remote_files(model)
    files = [u.rsplit("/", 1)[1] for u in urls.values()]
    how = (f"Put {model}.yaml (containing: models: {sigs}) and "
           + ", ".join(f"{f} (from {u})" for f, u in zip(files, urls.values()))
           + " in one folder and pass it with --demucs-repo; or copy "
           + ", ".join(files) + " into " + str(Path(_torch_hub_dir()) / "checkpoints")
           + "; or use the offline 'dsp' backend.") if urls else (
           "Pass the folder holding its .th file (and .yaml for a bag) with --demucs-repo, "
           "or use the offline 'dsp' backend.")
    if repo is not None:
        repo = Path(repo)
        if not repo.is_dir():
            raise SeparationError(f"Demucs repo folder {repo} not found. {how}")
        ok, missing = _repo_has(repo, model)
        if not ok:
            raise SeparationError(f"Demucs model {model!r} is not in {repo} (missing "
                                  f"{', '.join(missing)}). {how}")
        return
    if _hf_cached(model, sigs) or (urls and all(
            (Path(_torch_hub_dir()) / "checkpoints" / f).is_file() for f in files)):
        return
    if not urls:
        raise UnknownModelError(f"unknown Demucs model {model!r}: it is not a model or "
                                f"signature demucs knows. {how}")
    raise SeparationError(f"Demucs weights for {model!r} are not on this machine and cannot "
                          f"be downloaded offline. {how}")


def _torch_hub_dir() -> str:
    import torch
    return torch.hub.get_dir()


def _hf_cached(model: str, sigs: list[str]) -> bool:
    try:
        from demucs.hf import DEFAULT_NAMESPACE, hf_repo_name
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return False
    repo_id = f"{DEFAULT_NAMESPACE}/{hf_repo_name(model)}"
    names = [f"{model}.yaml"] + [f"{s}.safetensors" for s in sigs]
    return all(isinstance(try_to_load_from_cache(repo_id, n), str) for n in names)


def load_demucs(model: str = "htdemucs", repo: str | os.PathLike | None = None,
                device: str = "cpu"):
    """A ``demucs.api.Separator`` for ``model`` (kept per process: weights load once)."""
    key = (model, str(Path(repo).resolve()) if repo else None, device)
    if key in _DEMUCS_CACHE:
        return _DEMUCS_CACHE[key]
    check_demucs_weights(model, repo)
    import threading

    from demucs.api import Separator
    try:
        separator = Separator(model=model, repo=Path(repo) if repo else None, device=device,
                              progress=False)
    except SystemExit as e:     # demucs' fatal() exits on a bad repo folder
        raise SeparationError(f"cannot load Demucs model {model!r}: {e}") from None
    except Exception as e:      # ModelLoadingError (checksum), corrupt pickles, bad yaml
        raise SeparationError(f"cannot load Demucs model {model!r}"
                              f"{f' from {repo}' if repo else ''}: {e}") from None
    separator.lock = threading.Lock()   # one run per model at a time: bounded memory
    if len(_DEMUCS_CACHE) >= 2:
        _DEMUCS_CACHE.pop(next(iter(_DEMUCS_CACHE)))
    _DEMUCS_CACHE[key] = separator
    return separator


def _model_segment(model) -> float:
    from demucs.apply import BagOfModels
    if isinstance(model, BagOfModels):
        return min(m.segment for m in model.models)
    return model.segment


class _PassAccumulator:
    """Triangle-weighted overlap-add of one shift pass, over a sliding window of positions."""

    def __init__(self, n_sources: int, channels: int):
        self.base = 0
        self.acc = np.zeros((n_sources, channels, 0), np.float32)
        self.wsum = np.zeros(0, np.float32)

    def add(self, pos: int, out: np.ndarray, w: np.ndarray) -> None:
        end = pos + out.shape[-1]
        if end - self.base > self.wsum.shape[0]:
            grow = end - self.base - self.wsum.shape[0]
            self.acc = np.concatenate([self.acc, np.zeros(self.acc.shape[:2] + (grow,),
                                                          np.float32)], axis=-1)
            self.wsum = np.concatenate([self.wsum, np.zeros(grow, np.float32)])
        self.acc[..., pos - self.base:end - self.base] += w * out
        self.wsum[pos - self.base:end - self.base] += w

    def take(self, start: int, end: int) -> np.ndarray:
        """The finished output on [start, end) (positions), then forget everything before end."""
        a, b = start - self.base, end - self.base
        out = self.acc[..., a:b] / self.wsum[a:b]
        self.acc, self.wsum = self.acc[..., b:].copy(), self.wsum[b:].copy()
        self.base = end
        return out


def demucs_stream(model, mix, *, shifts: int = 1, overlap: float = 0.25,
                  segment: float | None = None, device: str = "cpu",
                  on_output: tp.Callable[[np.ndarray], None],
                  on_progress: tp.Callable[[float], None] | None = None) -> None:
    """Run ``model`` over ``mix`` (1, C, L) exactly as ``apply_model(model, mix, shifts,
    split=True, overlap, segment)`` would, but emit the output as soon as it is final:
    ``on_output`` receives consecutive (sources, C, n) float32 blocks covering [0, L).

    The chunk grid, the triangular weights and the shift offsets (``random.randint(0,
    max_shift)`` per pass, in order) are apply_model's, so with the same ``random`` state the
    result is the same. Passes are interleaved in time order, so only a few chunks are held.
    Progress comes from Demucs' own per-chunk callback.
    """
    import torch
    from demucs.apply import TensorChunk, apply_model

    sr = model.samplerate
    length = mix.shape[-1]
    seg = segment if segment is not None else _model_segment(model)
    seg_len = int(sr * seg)
    stride = int((1 - overlap) * seg_len)
    weight = torch.cat([torch.arange(1, seg_len // 2 + 1),
                        torch.arange(seg_len - seg_len // 2, 0, -1)]).float()
    weight = (weight / weight.max()).numpy()
    if shifts:
        max_shift = int(0.5 * sr)
        padded = TensorChunk(mix).padded(length + 2 * max_shift)
        offsets = [random.randint(0, max_shift) for _ in range(shifts)]
        tracks = [TensorChunk(padded, o, length + max_shift - o) for o in offsets]
    else:
        max_shift, offsets, tracks = 0, [0], [TensorChunk(mix)]
    # every chunk of every pass, in order of its start in padded coordinates
    chunks = sorted(((o + off, i, off) for i, (o, t) in enumerate(zip(offsets, tracks))
                     for off in range(0, t.length, stride)))
    passes = [_PassAccumulator(len(model.sources), mix.shape[1]) for _ in tracks]
    for p, o in zip(passes, offsets):
        p.base = o
    next_start = [o for o in offsets]           # per pass: first position not yet final
    pending = {i: [c for c in chunks if c[1] == i] for i in range(len(tracks))}
    flushed = max_shift                         # padded coordinate of original sample 0
    state = {"done": 0}

    def callback(d: dict) -> None:
        if on_progress is not None and d["state"] == "end":
            within = (d["model_idx_in_bag"] + 1) / d["models"]
            on_progress((state["done"] + within) / len(chunks))

    for start, i, off in chunks:
        chunk = TensorChunk(tracks[i], off, seg_len)
        out = apply_model(model, chunk, shifts=0, split=False, overlap=overlap,
                          device=device, segment=segment, callback=callback)
        out = out[0].to("cpu").numpy()
        passes[i].add(start, out, weight[:out.shape[-1]])
        state["done"] += 1
        pending[i].pop(0)
        next_start[i] = pending[i][0][0] if pending[i] else offsets[i] + tracks[i].length
        final = min(min(next_start), max_shift + length)
        if final > flushed:
            block = sum(p.take(flushed, final) for p in passes) / len(passes)
            # passes whose windows start later than `flushed` cannot have data there:
            on_output(block.astype(np.float32, copy=False))
            flushed = final


def _demucs_separate(song: Path, writer_factory, *, model: str, repo, device: str,
                     shifts: int, overlap: float, segment: float | None,
                     progress: ProgressFn) -> dict:
    import torch
    progress(0.0, "loading model")
    separator = load_demucs(model, repo, device)
    m = separator.model
    audio = decode_in_blocks(song, m.samplerate, progress, share=0.02)
    audio = audio[:2] if audio.shape[0] > 2 else to_channels(audio, m.audio_channels)
    wav = torch.from_numpy(audio)
    ref = wav.mean(0)
    mean, std = ref.mean(), ref.std() + 1e-8       # as Separator.separate_tensor
    wav -= mean
    wav /= std
    del ref, audio
    writer = writer_factory(m.samplerate, list(m.sources))
    t0 = time.time()
    try:
        with separator.lock:
            demucs_stream(m, wav[None], shifts=shifts, overlap=overlap, segment=segment,
                          device=device,
                          on_output=lambda b: writer.write(b * std.item() + mean.item()),
                          on_progress=lambda f: progress(0.02 + 0.93 * f, "separating"))
    except BaseException:
        writer.abort()
        raise
    return {"writer": writer, "separation_seconds": time.time() - t0,
            "shifts": shifts, "overlap": overlap}


# ---------------------------------------------------------------------------------------------
# DSP backend

def repeating_spectrum(S: np.ndarray, *, min_distance: int, k: int = 12,
                       batch: int = 256) -> np.ndarray:
    """REPET-SIM's model of the repeating accompaniment: for each frame of the magnitude
    spectrogram ``S`` (F, T), the element-wise median of its ``k`` most similar frames
    (cosine similarity) at least ``min_distance`` frames away, capped by ``S``.

    Vectorised in batches of frames (librosa's ``nn_filter`` builds a sparse recurrence matrix
    element by element and took ~80 % of the time). Short blocks fall back to the nearest
    allowed distance; blocks too short for any neighbour get an empty model (no vocals).
    """
    n = S.shape[1]
    min_distance = min(min_distance, max(1, n // 3))
    k = min(k, n - 2 * min_distance - 1)
    if k < 2:
        return np.zeros_like(S)
    unit = S / (np.linalg.norm(S, axis=0, keepdims=True) + 1e-10)
    out = np.empty_like(S)
    t = np.arange(n)
    for a in range(0, n, batch):
        b = min(a + batch, n)
        sim = unit[:, a:b].T @ unit                                  # (batch, T)
        sim[np.abs(t[a:b, None] - t[None, :]) < min_distance] = -np.inf
        nearest = np.argpartition(-sim, k - 1, axis=1)[:, :k]        # (batch, k)
        out[:, a:b] = np.median(S[:, nearest], axis=2)               # (F, batch)
    return np.minimum(S, out)


def dsp_separate_block(y: np.ndarray, sr: int, *,
                       on_step: tp.Callable[[float], None] | None = None) -> np.ndarray:
    """Separate a (2, N) block into (4, 2, N) drums, bass, other, vocals without weights.

    Masks come from the mono magnitude and are applied to each channel, so the stereo image
    survives and the four masks sum to one:
      - drums: the percussive part of harmonic/percussive median filtering (HPSS);
      - bass: the harmonic part below ~120 Hz, fading out by 250 Hz;
      - vocals: in the harmonic part from 150 Hz to 8 kHz, what is *not* repeating: a
        REPET-SIM filter (median of the most similar frames, cosine similarity, at least 2 s
        away) models the repeating accompaniment, a soft mask keeps the remainder;
      - other: the residual, so the stems add up to the input exactly.
    Quality is far below Demucs (see README, "Stem mixer"); it keeps the mixer usable offline.
    ``on_step(fraction)`` reports the share of the block done after each step (weights
    measured on a 30 s block: HPSS and REPET-SIM take three quarters).
    """
    import librosa
    step = on_step or (lambda f: None)
    n_fft = 2048 if sr > 32000 else 1024
    hop = n_fft // 4
    n = y.shape[-1]
    X = librosa.stft(y, n_fft=n_fft, hop_length=hop)             # (2, F, T)
    S = np.abs(X).mean(axis=0)                                     # (F, T)
    step(0.05)
    mask_h, mask_p = librosa.decompose.hpss(S, kernel_size=(31, 17), mask=True, margin=1.0)
    step(0.45)
    freqs = librosa.fft_frequencies(sr=sr, n_fft=n_fft)[:, None]
    low = np.clip((250.0 - freqs) / (250.0 - 120.0), 0, 1)
    low = 0.5 - 0.5 * np.cos(np.pi * low)                          # raised-cosine crossover
    band = ((freqs >= 150) & (freqs <= 8000)).astype(np.float32)
    harm = S * mask_h * (1 - low)
    rep = repeating_spectrum(harm, min_distance=int(round(2.0 * sr / hop)))
    step(0.75)
    mask_v = librosa.util.softmask(harm - rep, 2.0 * rep, power=2)
    m_drums = mask_p
    m_bass = mask_h * low
    m_vocals = mask_h * (1 - low) * mask_v * band
    out = np.empty((4, y.shape[0], n), np.float32)
    for k, m in enumerate((m_drums, m_bass, m_vocals)):
        out[k if k < 2 else 3] = librosa.istft(X * m[None], hop_length=hop, n_fft=n_fft,
                                               length=n)
        step(0.75 + 0.25 * (k + 1) / 3)
    out[2] = y - out[0] - out[1] - out[3]
    return out


DECODE_SHARE = 0.05              # progress given to decoding (the rest: separating, writing)
DECODE_BLOCK_SECONDS = 20.0


def decode_in_blocks(song: Path, sr: int, progress: ProgressFn, *,
                     share: float = DECODE_SHARE,
                     block_seconds: float = DECODE_BLOCK_SECONDS) -> np.ndarray:
    """``load_audio(song, sr=sr, mono=False)`` read ``block_seconds`` at a time (at the
    file's rate, resampled once at the end: the same samples), reporting
    ``progress(share * done, "decoding")`` after each block and the resampling; the last
    block reads to the end of the file, so a frame count that the header overstates by less
    than a block is harmless."""
    info = audio_info(song)
    rate = info.samplerate
    step = max(1, int(block_seconds * rate))
    starts = list(range(0, max(info.frames - step, 0) + 1, step))
    parts = []
    for k, s in enumerate(starts):
        last = k == len(starts) - 1
        part, _ = load_audio(song, mono=False, offset=s / rate,
                             duration=None if last else step / rate)
        parts.append(part)
        progress(share * (k + 1) / (len(starts) + 1), "decoding")
    audio = parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1)
    del parts
    audio = resample(audio, rate, sr)
    progress(share, "decoding")
    return audio


def _dsp_separate(song: Path, writer_factory, *, block_seconds: float = 30.0,
                  fade_seconds: float = 1.0, progress: ProgressFn) -> dict:
    """Blocks of ``block_seconds`` overlapping by ``fade_seconds`` with complementary linear
    fades: memory stays bounded and, as each block's stems sum to its input, so do the
    crossfaded ones.

    Progress: decoding takes the first ``DECODE_SHARE``, separation runs to 0.95, reported
    within each block too (a 6 s song is one block, and its first one also pays for
    importing librosa, several seconds on a cold process).
    """
    sr = DSP_SAMPLE_RATE
    progress(0.0, "decoding")
    audio = decode_in_blocks(song, sr, progress)
    audio = audio[:2] if audio.shape[0] > 2 else to_channels(audio, 2)
    n = audio.shape[1]
    writer = writer_factory(sr, list(STEMS))
    block, fade = int(block_seconds * sr), int(fade_seconds * sr)
    stride = block - fade
    starts = list(range(0, max(n - fade, 1), stride))
    ramp = np.linspace(0, 1, fade, endpoint=False, dtype=np.float32)
    tail = None
    t0 = time.time()
    share = 0.95 - DECODE_SHARE
    progress(DECODE_SHARE, "separating")
    try:
        for k, s in enumerate(starts):
            def on_step(f: float, k: int = k) -> None:
                progress(DECODE_SHARE + share * (k + f) / len(starts), "separating")
            stems = dsp_separate_block(audio[:, s:s + block], sr, on_step=on_step)
            if tail is not None:
                m = min(fade, stems.shape[-1])
                stems[..., :m] = stems[..., :m] * ramp[:m] + tail[..., :m] * (1 - ramp[:m])
            last = k == len(starts) - 1
            keep = stems.shape[-1] if last else stems.shape[-1] - fade
            writer.write(stems[..., :keep])
            tail = None if last else stems[..., keep:]
            progress(DECODE_SHARE + share * (k + 1) / len(starts), "separating")
    except BaseException:
        writer.abort()
        raise
    return {"writer": writer, "separation_seconds": time.time() - t0,
            "block_seconds": block_seconds}


# ---------------------------------------------------------------------------------------------
# The one entry point

def separate(song_path: str | os.PathLike, out_dir: str | os.PathLike, *,
             backend: str = "demucs", model: str = "htdemucs",
             repo: str | os.PathLike | None = None, device: str = "cpu", shifts: int = 1,
             overlap: float = 0.25, segment: float | None = None,
             progress: ProgressFn | None = None) -> dict:
    """Separate a song into ``out_dir`` (created; existing stems there are replaced).

    ``backend`` ``demucs`` (weights from ``repo``, the Hugging Face cache or the torch hub
    cache; resampled to the model rate, mono copied to stereo, >2 channels cut to the first
    two, as Demucs does) or ``dsp`` (no weights). ``progress(fraction, stage)`` is called
    often; raising inside it aborts the separation. Returns the manifest written to
    ``stems.json``.
    """
    song = Path(song_path)
    if backend not in BACKENDS:
        raise SeparationError(f"unknown backend {backend!r}; use one of {', '.join(BACKENDS)}")
    report = progress or (lambda f, s: None)
    from audio_io import audio_info
    info = audio_info(song)
    if info.frames == 0:
        raise AudioError(song, "contains no audio samples")

    def writer_factory(sr: int, sources: list[str]) -> StemWriter:
        return StemWriter(out_dir, sr, 2, sources)

    t0 = time.time()
    if backend == "demucs":
        run = _demucs_separate(song, writer_factory, model=model, repo=repo, device=device,
                               shifts=shifts, overlap=overlap, segment=segment, progress=report)
    else:
        run = _dsp_separate(song, writer_factory, progress=report)
        model = "dsp-v1"
    writer = run.pop("writer")
    report(0.96, "writing")
    manifest = writer.close({"backend": backend, "model": model, "source_file": song.name,
                             "source_sample_rate": info.samplerate,
                             "source_channels": info.channels,
                             "seconds": round(time.time() - t0, 3),
                             **{k: (round(v, 3) if isinstance(v, float) else v)
                                for k, v in run.items()}})
    report(1.0, "done")
    return manifest


# ---------------------------------------------------------------------------------------------
# Evaluation

def new_sdr(reference: np.ndarray, estimate: np.ndarray, eps: float = 1e-7) -> float:
    """The MDX challenge's SDR over the whole track and all channels (no distortion filter):
    10 log10((sum s^2 + eps) / (sum (s - s_hat)^2 + eps))."""
    ref = reference.astype(np.float64)
    err = ref - estimate.astype(np.float64)
    return float(10 * np.log10((np.sum(ref ** 2) + eps) / (np.sum(err ** 2) + eps)))


def framewise_sdr(reference: np.ndarray, estimate: np.ndarray, sr: int, *,
                  window: float = 1.0, eps: float = 1e-7) -> float:
    """Median over 1 s frames of the same SDR (the SiSEC/MUSDB aggregation, without BSSEval's
    distortion filter); frames where the reference is silent are skipped, as museval does.
    NaN if every frame is silent."""
    w = int(window * sr)
    n = reference.shape[-1] // w
    if n == 0:
        return float("nan")
    ref = reference[..., :n * w].astype(np.float64).reshape(reference.shape[0], n, w)
    err = ref - estimate[..., :n * w].astype(np.float64).reshape(reference.shape[0], n, w)
    num = (ref ** 2).sum(axis=(0, 2))
    den = (err ** 2).sum(axis=(0, 2))
    voiced = num > 1e-10 * w
    if not voiced.any():
        return float("nan")
    return float(np.median(10 * np.log10((num[voiced] + eps) / (den[voiced] + eps))))


def find_stem_folders(root: str | os.PathLike) -> list[Path]:
    """Folders under ``root`` that hold all four true stems (any audio extension)."""
    root = Path(root)
    if not root.is_dir():
        raise SeparationError(f"{root}: stems root folder not found")
    found = []
    for d in sorted({p.parent for p in root.rglob("*")
                     if p.is_file() and p.stem in STEMS and not p.name.startswith(".")}):
        names = {p.stem for p in d.iterdir() if p.is_file()}
        if all(s in names for s in STEMS):
            found.append(d)
    return found


def evaluate(stems_root: str | os.PathLike, *, backend: str = "dsp", model: str = "htdemucs",
             repo: str | os.PathLike | None = None, max_tracks: int | None = None,
             work_dir: str | os.PathLike | None = None,
             on_track: tp.Callable[[dict], None] | None = None) -> dict:
    """Separate the mix (the sum of the true stems) of every stem folder under ``stems_root``
    and score each estimated stem: new SDR and framewise median SDR, in dB.

    Returns ``{"tracks": [{track, seconds, sdr: {stem: x}, sdr_median: {stem: x}}],
    "mean": {stem: x, "all": x}, "mean_median": {...}}``.
    """
    folders = find_stem_folders(stems_root)[:max_tracks]
    if not folders:
        raise SeparationError(f"{stems_root}: no folder with {', '.join(STEMS)} stems")
    rows = []
    with tempfile.TemporaryDirectory(dir=work_dir) as tmp:
        for folder in folders:
            truth, sr = load_stems(folder, sources=STEMS)
            mix = sum(truth[s] for s in STEMS)
            mix_path = Path(tmp) / "mix.wav"
            from audio_io import save_audio
            save_audio(mix_path, mix, sr, sample_format="float")
            out = Path(tmp) / "est"
            t0 = time.time()
            separate(mix_path, out, backend=backend, model=model, repo=repo)
            seconds = time.time() - t0
            est, est_sr = load_stems(out, sources=STEMS)
            if est_sr != sr:
                from audio_io import resample
                est = {s: resample(a, est_sr, sr) for s, a in est.items()}
            n = min(mix.shape[1], *(a.shape[1] for a in est.values()))
            row = {"track": str(folder.relative_to(stems_root)), "seconds": round(seconds, 3),
                   "duration": mix.shape[1] / sr,
                   "sdr": {s: new_sdr(truth[s][:, :n], est[s][:, :n]) for s in STEMS},
                   "sdr_median": {s: framewise_sdr(truth[s][:, :n], est[s][:, :n], sr)
                                  for s in STEMS}}
            rows.append(row)
            if on_track is not None:
                on_track(row)
            shutil.rmtree(out, ignore_errors=True)

    def means(key: str) -> dict:
        out = {s: float(np.nanmean([r[key][s] for r in rows])) for s in STEMS}
        out["all"] = float(np.nanmean([out[s] for s in STEMS]))
        return out
    total = sum(r["duration"] for r in rows)
    return {"backend": backend, "model": model if backend == "demucs" else "dsp-v1",
            "tracks": rows, "mean": means("sdr"), "mean_median": means("sdr_median"),
            "real_time_factor": sum(r["seconds"] for r in rows) / total if total else math.nan}
