"""Stem folders: what separation writes and everything else reads.

A stem folder holds ``<stem>.flac`` (24-bit) for each of the model's sources and
``stems.json`` (``sources``, ``sample_rate``, ``frames``, ``backend``, ``model``, ``scale``...),
optionally ``<stem>.ogg`` previews for the browser. Stems are summable: at unity gain they add
up to the (resampled, stereo) input. When a stem would clip in 24-bit FLAC, *all* stems are
scaled by the same ``scale`` (< 1, recorded in the manifest and undone by :func:`load_stems`),
so the sum stays the mix; per-stem rescaling (Demucs' ``--clip-mode rescale``) would break that.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
import typing as tp
from pathlib import Path

import numpy as np
import soundfile as sf

from deepaudio.core.audio import (
    audio_info,
    load_audio,
    read_blocks,
    to_channels,
    write_audio_blocks,
)
from deepaudio.core.cache import MemoryLRU
from deepaudio.core.errors import ToolkitError
from deepaudio.core.files import atomic_write_json

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

    ``two_stems`` (a source name, as demucs' ``--two-stems``) keeps that stem and writes the
    sum of all the others as ``no_<name>`` (vocals + no_vocals: a karaoke track).
    """

    def __init__(self, out_dir: str | os.PathLike, sr: int, channels: int = 2,
                 sources: tp.Sequence[str] = STEMS, *, two_stems: str | None = None):
        self.out_dir = Path(out_dir)
        self._pick: int | None = None
        if two_stems is not None:
            if two_stems not in sources:
                raise SeparationError(f"--two-stems {two_stems!r}: the model's stems are "
                                      f"{', '.join(sources)}")
            self._pick = list(sources).index(two_stems)
            sources = (two_stems, f"no_{two_stems}")
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.sr, self.channels, self.sources = sr, channels, tuple(sources)
        self._scratch = Path(tempfile.mkdtemp(dir=self.out_dir, prefix=".scratch-"))
        self._files = {s: sf.SoundFile(str(self._scratch / f"{s}.wav"), "w", sr, channels,
                                       format="WAV", subtype="FLOAT") for s in self.sources}
        self.frames = 0
        self.peak = 0.0

    def write(self, block: np.ndarray) -> None:
        """Append one block shaped (sources, channels, n)."""
        if self._pick is not None:
            keep = block[self._pick]
            block = np.stack([keep, block.sum(axis=0) - keep])
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


STEM_BLOCK = 1 << 18        # frames per block when stems are read block by block


@dataclasses.dataclass
class StemFolder:
    """A stem folder opened for reading (headers only): the stems' files, their shared sample
    rate, the longest stem's length and the anti-clipping ``scale`` to undo. Read it whole
    with :meth:`stack` or block by block with :meth:`blocks`."""
    path: Path
    files: dict[str, Path]
    sr: int
    frames: int
    scale: float = 1.0

    @property
    def names(self) -> list[str]:
        return list(self.files)

    @property
    def nbytes(self) -> int:
        """Memory of the whole stack as float32."""
        return len(self.files) * 2 * self.frames * 4

    def blocks(self, frames: int = STEM_BLOCK) -> tp.Iterator[tuple[int, np.ndarray]]:
        """``(start, (S, 2, k) float32)`` blocks: stereo (mono copied, extra channels
        dropped), scale undone, shorter stems padded with silence, ``self.frames`` long."""
        handles = [sf.SoundFile(str(p)) for p in self.files.values()]
        try:
            for start in range(0, self.frames, frames):
                k = min(frames, self.frames - start)
                block = np.zeros((len(handles), 2, k), np.float32)
                for i, f in enumerate(handles):
                    data = f.read(k, dtype="float32", always_2d=True)[:, :2]
                    block[i, :, :len(data)] = to_channels(np.ascontiguousarray(data.T), 2) \
                        if len(data) else 0.0
                if self.scale != 1.0:
                    block /= np.float32(self.scale)
                yield start, block
        except SeparationError:
            raise
        except Exception as e:
            raise SeparationError(f"{self.path}: a stem file does not decode ({e})") from None
        finally:
            for f in handles:
                f.close()

    def stack(self) -> np.ndarray:
        """All stems as one (S, 2, N) float32 array."""
        out = np.empty((len(self.files), 2, self.frames), np.float32)
        for start, block in self.blocks():
            out[:, :, start:start + block.shape[-1]] = block
        return out


def open_stems(stems_dir: str | os.PathLike, *, sources: tp.Sequence[str] | None = None
               ) -> StemFolder:
    """A stem folder's stems, from our ``stems.json`` (with its anti-clipping ``scale``) or,
    for any other folder (Demucs' CLI output, the sample set's true stems), files named
    ``<stem>.<ext>``; all stems must share one sample rate."""
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
    infos = {name: audio_info(path) for name, path in files.items()}
    rates = {int(i.samplerate) for i in infos.values()}
    if len(rates) > 1:
        raise SeparationError(f"{stems_dir}: stems have different sample rates "
                              f"({', '.join(map(str, sorted(rates)))} Hz)")
    frames = max(int(i.frames) for i in infos.values())
    if frames <= 0:
        raise SeparationError(f"{stems_dir}: the stems hold no audio")
    return StemFolder(stems_dir, files, rates.pop(), frames, scale)


def load_stems(stems_dir: str | os.PathLike, *, sources: tp.Sequence[str] | None = None
               ) -> tuple[dict[str, np.ndarray], int]:
    """Stems of a folder (see :func:`open_stems`) as float32 (2, N) arrays of equal length,
    and their sample rate."""
    folder = open_stems(stems_dir, sources=sources)
    stack = folder.stack()
    return dict(zip(folder.names, stack)), folder.sr


def stem_source(stems_dir: str | os.PathLike
                ) -> tp.Callable[[float, float, int], dict[str, np.ndarray]]:
    """A stem folder as the crossfade's stem source: ``(offset_s, duration_s, sr) ->
    {stem: (2, N) float32}``, only that window decoded (seeking), at ``sr``, scale undone."""
    folder = open_stems(stems_dir)

    def window(offset: float, duration: float, sr: int) -> dict[str, np.ndarray]:
        out = {}
        for name, path in folder.files.items():
            try:
                audio, _ = load_audio(path, sr=sr, channels=2, offset=max(0.0, offset),
                                      duration=duration)
            except ToolkitError as e:
                raise SeparationError(f"{folder.path}: stem {name!r} does not decode ({e})"
                                      ) from None
            out[name] = audio / np.float32(folder.scale) if folder.scale != 1.0 else audio
        return out
    return window


class StemCache:
    """Decoded stem stacks of recently mixed folders, bounded in bytes, so re-rendering a mix
    costs only the mixing; a folder whose stack does not fit is read block by block at each
    render instead."""

    def __init__(self, max_bytes: int):
        self.memory = MemoryLRU(max_bytes, max_item_fraction=1.0)

    def source(self, folder: StemFolder) -> StemFolder | tuple[np.ndarray, list[str]]:
        """What to mix: the cached ``(stack, names)``, or the folder itself if it is too
        long to keep."""
        stamp = (folder.path / "stems.json").stat().st_mtime \
            if (folder.path / "stems.json").is_file() else 0.0
        key = f"{folder.path}@{stamp}"
        hit = self.memory.get(key)
        if hit is not None:
            return hit
        if folder.nbytes > self.memory.max_bytes:
            return folder
        value = (folder.stack(), folder.names)
        self.memory.put(key, value, folder.nbytes)
        return value


PREVIEW_QUALITY = 0.6       # libsndfile Vorbis compression level: ~100 kb/s stereo


def write_previews(stems_dir: Path, manifest: dict) -> dict:
    """Compressed OGG previews of each stem for the browser (lossless FLAC stays for export)."""
    previews = {}
    for s, f in manifest["files"].items():
        write_audio_blocks(stems_dir / f"{s}.ogg", read_blocks(stems_dir / f), manifest[
            "sample_rate"], manifest["channels"], compression_level=PREVIEW_QUALITY)
        previews[s] = f"{s}.ogg"
    return previews
