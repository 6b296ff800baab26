"""Training data for the WaveNet autoencoder: the first and last seconds of every song of a
folder, trimmed, in one HDF5 file (``crossfade.py prep``), as DeepBass fine-tuned NSynth on
song beginnings and endings."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import h5py
import numpy as np
from tqdm import tqdm

from deepaudio.core.audio import find_audio_files, load_audio
from deepaudio.core.errors import ToolkitError
from deepaudio.crossfade import render as cr


def prep_clips(songs_dir, out_path, *, seconds: float = 4.0, sr: int = 16000,
               min_duration: float | None = None, threshold: float = 0.15,
               log=print) -> dict:
    """The first and last ``seconds`` of every trimmed song at least ``min_duration`` long
    (default 3x ``seconds``) into HDF5 (``clips`` (N, T) float32, ``sources`` (N, 2) of
    path and "begin"/"end"); unreadable or too-short songs are skipped with the reason."""
    min_duration = 3 * seconds if min_duration is None else min_duration
    t = int(round(seconds * sr))
    clips, sources, skipped = [], [], []
    for path in tqdm(find_audio_files(Path(os.path.expanduser(songs_dir))), desc="prep",
                     unit="song", disable=None):
        try:
            audio, _ = load_audio(path, sr=sr, mono=True)
            audio, _ = cr.trim_silence(audio, sr, threshold=threshold, what=str(path))
        except ToolkitError as e:
            skipped.append({"path": str(path), "reason": str(e)})
            log(f"skipped {path}: {e}")
            continue
        if audio.shape[1] < min_duration * sr:
            reason = f"{audio.shape[1] / sr:.1f} s after trimming, shorter than {min_duration:g} s"
            skipped.append({"path": str(path), "reason": reason})
            log(f"skipped {path}: {reason}")
            continue
        clips += [audio[0, :t], audio[0, -t:]]
        sources += [(str(path), "begin"), (str(path), "end")]
    if not clips:
        raise ToolkitError(f"{songs_dir}: no usable songs (need audio files of at least "
                           f"{min_duration:g} s)")
    out_path = Path(os.path.expanduser(out_path))
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out_path.parent, prefix=f".{out_path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        with h5py.File(tmp, "w") as f:
            f.create_dataset("clips", data=np.stack(clips).astype(np.float32))
            f.create_dataset("sources", data=np.array(sources, dtype=object),
                             dtype=h5py.string_dtype())
            f.attrs["sr"], f.attrs["clip_seconds"] = sr, seconds
        os.replace(tmp, out_path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return {"clips": len(clips), "songs": len(clips) // 2, "skipped": skipped,
            "path": str(out_path)}
