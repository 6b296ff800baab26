"""Separating a song into a stem folder with either backend: the one entry point."""

from __future__ import annotations

import os
import time
from pathlib import Path

from deepaudio.core.audio import AudioError, audio_info
from deepaudio.mixer.demucs_backend import demucs_separate
from deepaudio.mixer.dsp_backend import dsp_separate
from deepaudio.mixer.stems import ProgressFn, SeparationError, StemWriter

BACKENDS = ("demucs", "dsp")


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
    info = audio_info(song)
    if info.frames == 0:
        raise AudioError(song, "contains no audio samples")

    def writer_factory(sr: int, sources: list[str]) -> StemWriter:
        return StemWriter(out_dir, sr, 2, sources)

    t0 = time.time()
    if backend == "demucs":
        run = demucs_separate(song, writer_factory, model=model, repo=repo, device=device,
                               shifts=shifts, overlap=overlap, segment=segment, progress=report)
    else:
        run = dsp_separate(song, writer_factory, progress=report)
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
