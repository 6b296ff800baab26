"""Stem folders: what separation writes and everything else reads.

A stem folder holds ``<stem>.flac`` (24-bit) for each of the model's sources and
``stems.json`` (``sources``, ``sample_rate``, ``frames``, ``backend``, ``model``, ``scale``...),
optionally ``<stem>.ogg`` previews for the browser. Stems are summable: at unity gain they add
up to the (resampled, stereo) input. When a stem would clip in 24-bit FLAC, *all* stems are
scaled by the same ``scale`` (< 1, recorded in the manifest and undone by :func:`load_stems`),
so the sum stays the mix; per-stem rescaling (Demucs' ``--clip-mode rescale``) would break that.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
import typing as tp
from pathlib import Path

import numpy as np
import soundfile as sf

from deepaudio.core.audio import load_audio, read_blocks, to_channels, write_audio_blocks
from deepaudio.core.errors import ToolkitError
from deepaudio.core.files import atomic_write_json
from deepaudio.mixer.render import stack_stems

STEMS = ("drums", "bass", "other", "vocals")
                                # and longer crash libsndfile's Vorbis encoder
ProgressFn = tp.Callable[[float, str], None]


class SeparationError(ToolkitError):
    """Separation cannot run: missing or broken weights, unknown backend, unreadable song."""


class UnknownModelError(SeparationError):
    """A Demucs model name that neither demucs' own tables nor any local folder knows."""


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


def stems_sum(stems: dict[str, np.ndarray]) -> np.ndarray:
    """The stems added at unity gain: the mix they came from."""
    return np.sum(list(stems.values()), axis=0)


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

PREVIEW_QUALITY = 0.6       # libsndfile Vorbis compression level: ~100 kb/s stereo


def write_previews(stems_dir: Path, manifest: dict) -> dict:
    """Compressed OGG previews of each stem for the browser (lossless FLAC stays for export)."""
    previews = {}
    for s, f in manifest["files"].items():
        write_audio_blocks(stems_dir / f"{s}.ogg", read_blocks(stems_dir / f), manifest[
            "sample_rate"], manifest["channels"], compression_level=PREVIEW_QUALITY)
        previews[s] = f"{s}.ogg"
    return previews

_STEM_CACHE: dict[str, tuple[float, tp.Any]] = {}
_STEM_CACHE_LOCK = threading.Lock()


def cached_stems(stems_dir: Path, items: int = 2):
    """``(stack (S, 2, N), names, sr)`` of a stem folder, decoded once and kept in memory for
    the last ``items`` folders, so re-rendering a mix costs only the mixing."""
    key = str(stems_dir)
    stamp = (stems_dir / "stems.json").stat().st_mtime
    with _STEM_CACHE_LOCK:
        hit = _STEM_CACHE.get(key)
        if hit is not None and hit[0] == stamp:
            _STEM_CACHE[key] = _STEM_CACHE.pop(key)      # most recently used last
            return hit[1]
    stems, sr = load_stems(stems_dir)
    value = (stack_stems(stems), list(stems), sr)
    with _STEM_CACHE_LOCK:
        _STEM_CACHE[key] = (stamp, value)
        while len(_STEM_CACHE) > items:
            _STEM_CACHE.pop(next(iter(_STEM_CACHE)))
    return value
