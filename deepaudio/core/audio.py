"""Audio I/O in one place: decode, downmix/upmix, resample, save.

Arrays are float32 shaped ``(channels, samples)`` and travel with their sample rate. Decoding
is libsndfile through soundfile (WAV, FLAC, AIFF, OGG/Vorbis/Opus, MP3 via mpg123) and,
for everything else a music library holds, FFmpeg through PyAV (AAC and ALAC in M4A/MP4,
WebM/Matroska, WMA, raw AAC, the audio track of MP4/MKV/MOV videos; :mod:`._pyav`): a file
libsndfile cannot open goes to FFmpeg, by content, whatever its name. Resampling is soxr's
high-quality mode (the same engine librosa uses by default). Anything a user can get wrong, a
missing, empty, corrupt or non-audio file, a video without sound, raises :class:`AudioError`
naming the file and the reason. Saving is libsndfile for WAV, FLAC and OGG, and FFmpeg's
encoders for MP3 (LAME on all cores, gapless) and M4A (AAC).
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
import typing as tp
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from deepaudio.core import _pyav
from deepaudio.core.errors import ToolkitError
from deepaudio.core.files import file_mode

# what find_audio_files picks up in a folder (decoding itself goes by content, not by name)
AUDIO_EXTENSIONS = (".mp3", ".ogg", ".oga", ".opus", ".flac", ".wav", ".aif", ".aiff", ".m4a",
                    ".m4b", ".mp4", ".aac", ".webm", ".mka", ".mkv", ".mov", ".wma")
_SAVE_FORMATS = {".wav": "WAV", ".flac": "FLAC", ".mp3": "MP3", ".ogg": "OGG"}
_SUBTYPES = {"pcm16": "PCM_16", "pcm24": "PCM_24", "float": "FLOAT"}


class AudioError(ToolkitError):
    """A file that cannot be used as audio. ``path`` and ``reason`` are kept for reports."""

    def __init__(self, path: str | os.PathLike, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


def _open_error(path: Path, exc: Exception) -> AudioError:
    if not path.exists():
        return AudioError(path, "file not found")
    if not path.is_file():
        return AudioError(path, "not a regular file")
    if path.stat().st_size == 0:
        return AudioError(path, "empty file (0 bytes)")
    detail = str(exc).split(": ", 1)[-1].strip() or type(exc).__name__
    return AudioError(path, f"not a readable audio file ({detail})")


@dataclasses.dataclass(frozen=True)
class AudioInfo:
    """What a file holds, read from its headers without decoding it."""
    samplerate: int
    channels: int               # as decoded: FFmpeg downmixes more than 2 to stereo
    frames: int                 # the header's count (FFmpeg: the container's duration
    #                             estimate, 0 when it gives none)
    format: str                 # libsndfile's format name, or FFmpeg's container name
    backend: str                # "libsndfile" or "ffmpeg"
    codec: str = ""

    @property
    def duration(self) -> float:
        return self.frames / self.samplerate if self.samplerate else 0.0


def audio_info(path: str | os.PathLike) -> AudioInfo:
    """Sample rate, channels and frame count without decoding; AudioError if unreadable."""
    path = Path(path)
    try:
        i = sf.info(str(path))
        return AudioInfo(int(i.samplerate), int(i.channels), int(i.frames), i.format,
                         "libsndfile", i.subtype)
    except Exception as e:  # libsndfile reports missing, empty and corrupt files alike
        first = e
    if path.is_file() and path.stat().st_size > 0:
        try:
            d = _pyav.info(path)
            return AudioInfo(d["samplerate"], d["channels"], d["frames"], d["format"],
                             "ffmpeg", d["codec"])
        except _pyav.PyAVError as e:
            if str(e).startswith("no audio track"):
                raise AudioError(path, f"contains {e} (a video without sound?)") from None
    raise _open_error(path, first) from None


@dataclasses.dataclass
class AudioScan:
    """What decoding a whole file found (the header's frame count may not be the truth)."""
    samplerate: int
    channels: int
    header_frames: int          # what the header claims
    frames: int                 # what actually decodes

    @property
    def seconds(self) -> float:
        return self.frames / self.samplerate


def scan_audio(path: str | os.PathLike, *, max_seconds: float | None = None,
               block_seconds: float = 10.0) -> AudioScan:
    """Decode the whole file block by block (memory: one block) and count its frames.

    Raises AudioError when the header already claims more than ``max_seconds`` (before any
    decoding), when decoding goes past ``max_seconds``, when a block fails to decode, holds
    NaN or infinity, or when the file holds less audio than its header promises by more than
    a second and 2 % (a truncated download or copy).
    """
    path = Path(path)
    info = audio_info(path)
    sr = int(info.samplerate)
    if sr <= 0:
        raise AudioError(path, "contains no audio samples")
    if max_seconds is not None and info.frames > max_seconds * sr:
        raise AudioError(path, f"it is {info.frames / sr / 60:.1f} min long; the limit is "
                               f"{max_seconds / 60:g} min")
    frames = 0
    limit = None if max_seconds is None else int(max_seconds * sr) + sr
    for data in _file_blocks(path, max(1, int(block_seconds * sr)), info=info):
        frames += data.shape[1]
        if limit is not None and frames > limit:
            raise AudioError(path, f"it decodes to more than {limit / sr / 60:.1f} min, "
                                   "past the limit")
    if frames == 0:
        raise AudioError(path, "contains no audio samples")
    missing = info.frames - frames
    if info.frames and missing > sr and missing > 0.02 * info.frames:
        raise AudioError(path, f"the file is truncated: its header promises "
                               f"{info.frames / sr:.1f} s but only {frames / sr:.1f} s decode")
    return AudioScan(sr, int(info.channels), int(info.frames), frames)


def to_channels(audio: np.ndarray, channels: int) -> np.ndarray:
    """Downmix to mono by averaging, or upmix mono by copying. ``audio`` is (C, N)."""
    if audio.shape[0] == channels:
        return audio
    if channels == 1:
        return audio.mean(axis=0, keepdims=True)
    if audio.shape[0] == 1:
        return np.repeat(audio, channels, axis=0)
    raise AudioError("<array>", f"cannot map {audio.shape[0]} channels to {channels}")


def resample(audio: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """Resample (C, N) float32 audio with soxr HQ; a no-op when the rates match."""
    if sr_in == sr_out:
        return audio
    out = soxr.resample(np.ascontiguousarray(audio.T), sr_in, sr_out, quality="HQ")
    return np.ascontiguousarray(out.T.reshape(audio.shape[0], -1), dtype=np.float32)


def load_audio(path: str | os.PathLike, *, sr: int | None = None, mono: bool = True,
               channels: int | None = None, offset: float = 0.0,
               duration: float | None = None) -> tuple[np.ndarray, int]:
    """Decode an audio file to float32 ``(channels, samples)`` and its sample rate.

    Parameters
    ----------
    sr : target sample rate, or None to keep the file's.
    mono : downmix to one channel (ignored when ``channels`` is given).
    channels : force this many channels (1 or 2; mono files are copied to stereo).
    offset, duration : seconds; only that part is decoded.
    """
    path = Path(path)
    info = audio_info(path)
    if (info.frames == 0 and info.backend == "libsndfile") or info.samplerate <= 0:
        raise AudioError(path, "contains no audio samples")
    start = int(round(offset * info.samplerate))
    frames = -1 if duration is None else int(round(duration * info.samplerate))
    file_sr = info.samplerate
    if info.backend == "ffmpeg":
        stop = None if frames < 0 else start + frames
        parts = list(_file_blocks(path, 30 * file_sr, info=info, start=start, stop=stop))
        data = (np.concatenate(parts, axis=1) if parts
                else np.zeros((info.channels, 0), np.float32)).T
    else:
        try:
            data, file_sr = sf.read(str(path), start=start, frames=frames, dtype="float32",
                                    always_2d=True)
        except Exception as e:
            raise _open_error(path, e) from None
    if data.shape[0] == 0:
        raise AudioError(path, "contains no audio samples" if start == 0
                         else f"offset {offset:.3f} s is past the end of the file")
    if not np.isfinite(data).all():
        raise AudioError(path, "decoded samples contain NaN or infinity")
    audio = np.ascontiguousarray(data.T)
    if channels is None:
        channels = 1 if mono else audio.shape[0]
    audio = to_channels(audio, channels)
    if sr is not None:
        audio = resample(audio, file_sr, sr)
        file_sr = sr
    return audio, int(file_sr)


def save_audio(path: str | os.PathLike, audio: np.ndarray, sr: int, *,
               sample_format: str = "pcm16", compression_level: float | None = None) -> Path:
    """Write (C, N) or (N,) audio; the format follows the extension (.wav .flac .mp3 .ogg).

    ``sample_format`` is pcm16, pcm24 or float (WAV/FLAC only; FLAC has no float).
    ``compression_level`` in [0, 1] (FLAC, MP3, OGG): 0 is the highest quality. The write is
    atomic: a temp file in the same folder is renamed over the target, so a crash never leaves
    a truncated file under the final name.
    """
    path = Path(path)
    ext = path.suffix.lower()
    if ext not in _SAVE_FORMATS:
        raise AudioError(path, f"cannot save {ext or 'files without an extension'}; "
                               f"use one of {', '.join(_SAVE_FORMATS)}")
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim == 1:
        audio = audio[None]
    if audio.ndim != 2 or (audio.shape[0] > 8 and audio.shape[1] <= 8):
        raise AudioError(path, f"expected audio shaped (channels, samples), got {audio.shape}")
    if sample_format not in _SUBTYPES:
        raise AudioError(path, f"sample_format must be one of {', '.join(_SUBTYPES)}")
    subtype = None
    if ext in (".wav", ".flac"):
        subtype = _SUBTYPES[sample_format]
        if ext == ".flac" and subtype == "FLOAT":
            raise AudioError(path, "FLAC cannot store float samples; use pcm16 or pcm24")
    return write_audio_blocks(path, (audio[:, i:i + WRITE_BLOCK]
                                     for i in range(0, audio.shape[1], WRITE_BLOCK)),
                              sr, audio.shape[0], subtype=subtype,
                              compression_level=compression_level)


def find_audio_files(folder: str | os.PathLike) -> list[Path]:
    """All audio files under ``folder`` (recursively), sorted for a stable order."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ToolkitError(f"{folder}: audio folder not found")
    return sorted(p for p in folder.rglob("*")
                  if p.suffix.lower() in AUDIO_EXTENSIONS and p.is_file()
                  and not p.name.startswith("."))


MP3_DEFAULT_LEVEL = 2 / 9       # compression level 0..1 -> LAME -V 0..9; default -V 2
WRITE_BLOCK = 10 * 44100        # frames per soundfile write: one-shot OGG/Vorbis writes of
                                # about a minute crash libsndfile's encoder (a segfault)


def write_audio_blocks(path: str | os.PathLike, blocks: tp.Iterable[np.ndarray], sr: int,
                       channels: int, *, subtype: str | None = None,
                       compression_level: float | None = None) -> Path:
    """Write (C, n) blocks to one file atomically (temp file + rename), in bounded pieces.

    The format follows the extension (.wav .flac .ogg .mp3, and .m4a: AAC through FFmpeg).
    Unlike a one-shot write this works on files of any length: nothing is held in memory but
    the current block.
    """
    path = Path(path)
    ext = path.suffix.lower()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=path.suffix)
    os.close(fd)
    try:
        if ext == ".m4a":           # AAC through FFmpeg (PyAV): libsndfile has no AAC
            _pyav.write(Path(tmp), blocks, sr, channels)
        elif ext == ".mp3":         # LAME through FFmpeg (PyAV), on every core, gapless
            _pyav.write_mp3(Path(tmp), blocks, sr, channels, vbr_quality=round(
                9 * (MP3_DEFAULT_LEVEL if compression_level is None else compression_level)))
        else:
            fmt = {".wav": "WAV", ".flac": "FLAC", ".ogg": "OGG"}[ext]
            with sf.SoundFile(tmp, "w", sr, channels, format=fmt, subtype=subtype,
                              compression_level=compression_level) as f:
                for block in blocks:
                    for i in range(0, block.shape[-1], WRITE_BLOCK):
                        f.write(np.ascontiguousarray(block[:, i:i + WRITE_BLOCK].T))
        os.chmod(tmp, file_mode())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_blocks(path: str | os.PathLike, *, frames: int = 30 * 44100,
                scale: float = 1.0) -> tp.Iterator[np.ndarray]:
    """Yield a file's audio as float32 (C, n) blocks."""
    for block in _file_blocks(Path(path), frames):
        yield block * np.float32(scale)


def stream_audio(source: str | os.PathLike | tuple[np.ndarray, int], sr: int, *,
                 channels: int = 1, block_seconds: float = 10.0) -> tp.Iterator[np.ndarray]:
    """A song as float32 ``(channels, n)`` blocks at ``sr``, decoded, mixed to ``channels``
    and resampled block by block (soxr's streaming resampler, HQ, the engine of
    :func:`resample`): memory holds one block whatever the song's length.

    ``source`` is a path or ``(audio (C, N), rate)``. A file that stops decoding part-way or
    holds NaN or infinity raises AudioError naming it, like :func:`load_audio`.
    """
    if isinstance(source, tuple):
        audio, rate = source
        audio = np.atleast_2d(np.asarray(audio, np.float32))
        step = max(1, int(block_seconds * rate))
        blocks: tp.Iterator[np.ndarray] = (audio[:, i:i + step]
                                           for i in range(0, audio.shape[1], step))
        name: Path | str = "<array>"
    else:
        name = Path(source)
        info = audio_info(name)
        rate = info.samplerate
        blocks = _file_blocks(name, max(1, int(block_seconds * rate)), info=info)
    rate = int(rate)
    stream = None if rate == sr else soxr.ResampleStream(rate, sr, channels, dtype="float32",
                                                         quality="HQ")
    produced = 0
    for block in blocks:
        block = to_channels(block, channels)
        produced += block.shape[1]
        if stream is None:
            yield np.ascontiguousarray(block, np.float32)
            continue
        out = stream.resample_chunk(np.ascontiguousarray(block.T))
        if len(out):
            yield np.ascontiguousarray(out.T)
    if produced == 0:
        raise AudioError(name, "contains no audio samples")
    if stream is not None:
        out = stream.resample_chunk(np.zeros((0, channels), np.float32), last=True)
        if len(out):
            yield np.ascontiguousarray(out.T)


def _file_blocks(path: Path, frames: int, *, info: AudioInfo | None = None, start: int = 0,
                 stop: int | None = None) -> tp.Iterator[np.ndarray]:
    """A file's audio (samples ``[start, stop)``) as float32 ``(C, <= frames)`` blocks, from
    whichever backend opens it; NaN, infinity or a decoder error part-way raise AudioError."""
    info = info or audio_info(path)
    done = 0
    try:
        if info.backend == "ffmpeg":
            source: tp.Iterator[np.ndarray] = _pyav.blocks(path, frames, start=start, stop=stop)
        else:
            source = _sndfile_blocks(path, frames, start, stop)
        for data in source:
            if not np.isfinite(data).all():
                raise AudioError(path, f"decoded samples contain NaN or infinity near "
                                       f"{(start + done) / info.samplerate:.1f} s")
            done += data.shape[1]
            yield data
    except AudioError:
        raise
    except Exception as e:      # a decoder error part-way: a corrupt file
        if done == 0 and not isinstance(e, _pyav.PyAVError):
            raise _open_error(path, e) from None
        raise AudioError(path, f"decoding fails after {done / info.samplerate:.1f} s "
                               f"({str(e).split(': ', 1)[-1].strip() or type(e).__name__})") \
            from None


def _sndfile_blocks(path: Path, frames: int, start: int, stop: int | None
                    ) -> tp.Iterator[np.ndarray]:
    with sf.SoundFile(str(path)) as f:
        if start:
            f.seek(start)
        left = None if stop is None else stop - start
        while left is None or left > 0:
            n = frames if left is None else min(frames, left)
            data = f.read(n, dtype="float32", always_2d=True)
            if not len(data):
                return
            if left is not None:
                left -= len(data)
            yield np.ascontiguousarray(data.T)


DECODE_BLOCK_SECONDS = 20.0


def decode_in_blocks(song: Path, sr: int, progress: tp.Callable[[float, str], None], *,
                     share: float = 0.05,
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
