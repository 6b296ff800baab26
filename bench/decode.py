"""Decoding speed per format through the one loader, and the MP3 export.

Prints the seconds to decode one minute of stereo 44.1 kHz music-like audio (the sample set's
generator) with ``deepaudio.core.audio.load_audio`` for MP3, M4A (AAC), Opus, FLAC and OGG
(Vorbis), against libsndfile read directly (soundfile) for the formats libsndfile reads: the
baseline, measured in the same run. M4A goes through FFmpeg (PyAV); the others through
libsndfile inside the loader. Then the seconds to export a 4-minute mix as MP3 at LAME's
highest VBR quality (-V 0): the old path (libsndfile's LAME, one run) against the writer
(frame-aligned chunks, each encoded by the LAME in lameenc's wheel, on one core and on all
cores; and the same on all cores with the LAME in PyAV's wheel, the writer's fallback), with
each decoded length against the mix's.

    python bench/decode.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr
from _timing import timed

from deepaudio.core import _lame, _pyav
from deepaudio.core.audio import audio_info, load_audio, save_audio
from deepaudio.data.samples import render_track
from deepaudio.mixer.render import export_mix

SR = 44100


def music(seconds: float) -> np.ndarray:
    stems, _ = render_track("Rock", 2, seed=0, seconds=30.0, sr=SR)
    mix = sum(stems.values()).astype(np.float32)
    reps = int(np.ceil(seconds / 30.0))
    return np.tile(mix, (1, reps))[:, :int(seconds * SR)] * np.float32(0.5)


def pyav_write(path: Path, audio: np.ndarray, sr: int, codec: str, container: str,
               options: dict | None = None, bitrate: int | None = None) -> Path:
    """Encode with FFmpeg through the loader's own PyAV writer, one second per block."""
    _pyav.write(path, (audio[:, i:i + SR] for i in range(0, audio.shape[1], SR)), sr,
                audio.shape[0], codec=codec, container=container, bitrate=bitrate,
                options=options)
    return path


def best(fn, repeats: int) -> float:
    return min(timed(fn) for _ in range(repeats))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-decode-"))
    minute = music(60.0)
    m48 = soxr.resample(minute.T, SR, 48000).T.astype(np.float32)     # Opus runs at 48 kHz
    files = {
        "MP3": save_audio(tmp / "a.mp3", minute, SR),
        "M4A (AAC)": pyav_write(tmp / "a.m4a", minute, SR, "aac", "ipod", bitrate=192000),
        "Opus": pyav_write(tmp / "a.opus", m48, 48000, "libopus", "ogg", bitrate=160000),
        "FLAC": save_audio(tmp / "a.flac", minute, SR),
        "OGG (Vorbis)": save_audio(tmp / "a.ogg", minute, SR),
    }
    print(f"one minute of stereo music; best of {args.repeats}; seconds")
    print(f"{'format':<14}{'loader':>9}{'libsndfile':>12}{'ratio':>8}   backend")
    for name, path in files.items():
        ours = best(lambda p=path: load_audio(p, mono=False), args.repeats)
        try:
            base = best(lambda p=path: sf.read(str(p), dtype="float32"), args.repeats)
            ratio = f"{base / ours:>7.2f}x"
            base_s = f"{base:>12.3f}"
        except Exception:
            base_s, ratio = f"{'cannot':>12}", f"{'-':>8}"
        print(f"{name:<14}{ours:>9.3f}{base_s}{ratio}   {audio_info(path).backend}")

    mix = music(240.0)
    n = mix.shape[1]
    cores = os.cpu_count() or 1
    print(f"\na 4-minute stereo mix exported as MP3 (LAME -V 0); best of {args.repeats}; seconds "
          f"(decoded length vs the mix's); {cores} cores")

    def old_path(path: Path) -> None:      # what the mixer did before: libsndfile's LAME
        with sf.SoundFile(str(path), "w", SR, 2, format="MP3", compression_level=0.0) as f:
            for i in range(0, n, 10 * SR):
                f.write(np.ascontiguousarray(mix[:, i:i + 10 * SR].T))

    old = best(lambda: old_path(tmp / "old.mp3"), args.repeats)
    rows = [("old: libsndfile's LAME, one run", old, tmp / "old.mp3")]

    def writer(path: Path, workers: int) -> float:
        return best(lambda: _pyav.write_mp3(
            path, (mix[:, i:i + SR] for i in range(0, n, SR)), SR, 2, workers=workers),
            args.repeats)

    for workers in sorted({1, cores}):
        path = tmp / f"new{workers}.mp3"
        rows.append((f"new: lameenc's LAME, chunks on {workers} core{'s' * (workers > 1)}",
                     writer(path, workers), path))
    candidates = _lame._candidates()
    _lame._candidates = lambda: [c for c in candidates
                                 if not Path(str(c)).name.startswith("lameenc")]
    _lame.library.cache_clear()
    rows.append((f"fallback: PyAV's LAME, chunks on {cores} cores",
                 writer(tmp / "pyav.mp3", cores), tmp / "pyav.mp3"))
    _lame._candidates = lambda: candidates
    _lame.library.cache_clear()
    t = best(lambda: export_mix(tmp / "export.mp3", mix, SR, "mp3"), args.repeats)
    rows.append(("the mixer's export (new, all cores)", t, tmp / "export.mp3"))
    for name, seconds, path in rows:
        y, _ = load_audio(path, mono=False)
        print(f"{name:<44}{seconds:>7.2f}  {old / seconds:>5.2f}x   "
              f"{y.shape[1] - n:+d} samples")


if __name__ == "__main__":
    main()
