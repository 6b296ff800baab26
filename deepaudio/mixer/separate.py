"""Separating a song into a stem folder with either backend: the one entry point."""

from __future__ import annotations

import os
import time
from pathlib import Path

from deepaudio.core.audio import AudioError, audio_info
from deepaudio.core.download import offline_requested
from deepaudio.mixer.demucs_backend import (
    demucs_separate,
    hub_reachable,
    legacy_reachable,
    weights_on_machine,
)
from deepaudio.mixer.dsp_backend import dsp_separate
from deepaudio.mixer.stems import ProgressFn, SeparationError, StemWriter

BACKENDS = ("auto", "demucs", "dsp")


def choose_backend(model: str = "htdemucs", repo: str | os.PathLike | None = None, *,
                   offline: bool | None = None) -> tuple[str, str]:
    """What ``auto`` runs, and why: demucs when its weights are here (``repo`` or a cache)
    or may be fetched (online, and the hub or demucs' legacy repo answers), the DSP backend
    otherwise."""
    if weights_on_machine(model, repo):
        return "demucs", f"the weights of {model} are on this machine"
    where = f"in {repo}" if repo is not None else "on this machine"
    if repo is None and not offline_requested(offline):
        if hub_reachable(model) or legacy_reachable(model):
            return "demucs", f"the weights of {model} will be fetched (online)"
        return "dsp", (f"the weights of {model} are not {where} and neither the Hugging Face "
                       "hub nor demucs' legacy repo can be reached; the DSP separator ran "
                       "instead")
    return "dsp", (f"the weights of {model} are not {where} and fetching is off "
                   "(--offline); the DSP separator ran instead")


def separate(song_path: str | os.PathLike, out_dir: str | os.PathLike, *,
             backend: str = "demucs", model: str = "htdemucs",
             repo: str | os.PathLike | None = None, device: str = "cpu", shifts: int = 1,
             overlap: float = 0.25, segment: float | None = None,
             progress: ProgressFn | None = None, offline: bool | None = None,
             two_stems: str | None = None) -> dict:
    """Separate a song into ``out_dir`` (created; existing stems there are replaced).

    ``backend`` ``demucs`` (weights from ``repo``, the Hugging Face cache or the torch hub
    cache, fetched from the hub when missing and online; resampled to the model rate, mono
    copied to stereo, >2 channels cut to the first two, as Demucs does), ``dsp`` (no
    weights), or ``auto`` (:func:`choose_backend`; a failed fetch falls back to dsp too, and
    the manifest's ``backend_reason`` says why). ``progress(fraction, stage)`` is called
    often; raising inside it aborts the separation. ``two_stems`` (e.g. ``vocals``) writes
    that stem and the sum of the others as ``no_vocals``, as demucs' ``--two-stems``. Returns
    the manifest written to ``stems.json``.
    """
    song = Path(song_path)
    if backend not in BACKENDS:
        raise SeparationError(f"unknown backend {backend!r}; use one of {', '.join(BACKENDS)}")
    report = progress or (lambda f, s: None)
    info = audio_info(song)
    if info.frames == 0:
        raise AudioError(song, "contains no audio samples")

    def writer_factory(sr: int, sources: list[str]) -> StemWriter:
        return StemWriter(out_dir, sr, 2, sources, two_stems=two_stems)

    t0 = time.time()
    reason = f"{backend} asked for"
    run = None
    if backend == "auto":
        backend, reason = choose_backend(model, repo, offline=offline)
        if backend == "demucs":
            try:
                run = demucs_separate(song, writer_factory, model=model, repo=repo,
                                      device=device, shifts=shifts, overlap=overlap,
                                      segment=segment, progress=report, offline=offline)
            except SeparationError as e:
                backend, reason = "dsp", f"Demucs failed ({e}); the DSP separator ran instead"
    elif backend == "demucs":
        run = demucs_separate(song, writer_factory, model=model, repo=repo, device=device,
                              shifts=shifts, overlap=overlap, segment=segment, progress=report,
                              offline=offline)
    if run is None:
        run = dsp_separate(song, writer_factory, progress=report)
        model = "dsp-v1"
    writer = run.pop("writer")
    report(0.96, "writing")
    manifest = writer.close({"backend": backend, "backend_reason": reason, "model": model,
                             "two_stems": two_stems,
                             "source_file": song.name,
                             "source_sample_rate": info.samplerate,
                             "source_channels": info.channels,
                             "seconds": round(time.time() - t0, 3),
                             **{k: (round(v, 3) if isinstance(v, float) else v)
                                for k, v in run.items()}})
    report(1.0, "done")
    return manifest
