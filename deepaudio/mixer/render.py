"""Mixing stems: per-stem gain (dB) / mute / solo / pan, loudness normalisation, export.

The server render uses the same math as the browser's Web Audio graph (gain in dB, then a
``StereoPannerNode``), so an export sounds like the preview. Normalisation:

- ``none``: the plain sum.
- ``peak``: the Human Audio Mixer's behaviour, sample peak to 0 dBFS (``mix / max|mix|``);
  kept for comparison, and safe on silence (the original divided by zero).
- ``rescale``: Demucs' clip mode, only ever scales *down*, to a peak of 0.99.
- ``lufs``: integrated loudness (ITU-R BS.1770-4, the K-weighting filters of pyloudnorm) to
  ``target_lufs`` (default -14 LUFS, streaming level) under a true-peak ceiling (default
  -1 dBTP, EBU R128). With ``limiter`` (the default) a look-ahead true-peak limiter
  (:func:`true_peak_limiter`: 3 ms attack, 60 ms release, one gain curve for both channels)
  holds the 4x-oversampled peaks at the ceiling, and the gain is raised again for the
  loudness the limiting took (at most 3 passes), so the export lands on the target.
  Without it the whole gain is lowered until the peak meets the ceiling: the dynamics stay
  untouched, but peaky material ends far below the target (the synthetic sample music came
  out near -19 LUFS for a -14 export, quieter than the browser preview). The report says
  ``output_lufs`` and what the limiter did (largest reduction in dB, share of samples
  reduced by more than 0.1 dB).

Speed: a 4-stem, 4-minute render is a handful of vectorised passes (about 0.4 s on 2 busy
cores when nothing needs limiting, about 1 s when the limiter works on every drum hit):
the gating of BS.1770 runs on 100 ms sub-block sums, not in a Python loop; the true peak is
only interpolated next to samples that could reach the ceiling; the limiter runs only on the
stretches it reduces; and each limiting pass estimates its output loudness from the
K-weighted mix and the gain curve instead of filtering the output again.
"""

from __future__ import annotations

import dataclasses
import math
import typing as tp
from pathlib import Path

import numpy as np

from deepaudio.core.audio import write_audio_blocks
from deepaudio.core.config import ConfigError, load_config
from deepaudio.core.gain import db_to_gain
from deepaudio.core.loudness import GainPlan, loudness_plan, sample_peak
from deepaudio.mixer.stems import StemFolder

GAIN_MIN_DB, GAIN_MAX_DB = -60.0, 12.0
NORMALIZE = ("none", "peak", "rescale", "lufs")
FORMATS = {"wav16": (".wav", "PCM_16"), "wav24": (".wav", "PCM_24"), "flac": (".flac", "PCM_24"),
           "mp3": (".mp3", None), "m4a": (".m4a", None)}
MIME = {".wav": "audio/wav", ".flac": "audio/flac", ".mp3": "audio/mpeg", ".ogg": "audio/ogg",
        ".m4a": "audio/mp4"}


@dataclasses.dataclass
class MixSettings:
    """What a mix is: one JSON object, validated like every config in the repo."""
    gains: dict = dataclasses.field(default_factory=dict)    # stem -> dB in [-60, 12]; default 0
    pans: dict = dataclasses.field(default_factory=dict)     # stem -> [-1 (left), 1 (right)]
    mutes: list[str] = dataclasses.field(default_factory=list)
    solos: list[str] = dataclasses.field(default_factory=list)  # any solo: only solos play
    master_db: float = 0.0                 # applied before normalisation (matters for none)
    normalize: tp.Literal["none", "peak", "rescale", "lufs"] = "lufs"
    target_lufs: float = -14.0             # streaming level; EBU R128 broadcast is -23
    ceiling_dbtp: float = -1.0             # true-peak ceiling for lufs (EBU R128: -1 dBTP)
    limiter: bool = True                   # lufs: limit peaks over the ceiling (false: lower
                                           # the whole gain instead, missing the target)
    format: tp.Literal["wav16", "wav24", "flac", "mp3", "m4a"] = "wav16"   # m4a: AAC

    def validate(self) -> None:
        for name, db in self.gains.items():
            if isinstance(db, bool) or not isinstance(db, (int, float)) or not _finite(db):
                raise ConfigError(f"gain of {name!r} must be a number of dB, got {db!r}")
            if not GAIN_MIN_DB <= db <= GAIN_MAX_DB:
                raise ConfigError(f"gain of {name!r} must be in [{GAIN_MIN_DB:g}, "
                                  f"{GAIN_MAX_DB:g}] dB (or mute the stem), got {db:g}")
        for name, pan in self.pans.items():
            if isinstance(pan, bool) or not isinstance(pan, (int, float)) or not -1 <= pan <= 1:
                raise ConfigError(f"pan of {name!r} must be a number in [-1, 1], got {pan!r}")
        if not -60 <= self.master_db <= 12:
            raise ConfigError(f"master_db must be in [-60, 12], got {self.master_db:g}")
        if not -40 <= self.target_lufs <= -5:
            raise ConfigError(f"target_lufs must be in [-40, -5], got {self.target_lufs:g}")
        if not -12 <= self.ceiling_dbtp <= 0:
            raise ConfigError(f"ceiling_dbtp must be in [-12, 0], got {self.ceiling_dbtp:g}")

    def check_stems(self, stems: tp.Iterable[str]) -> None:
        known = set(stems)
        for what, names in (("gains", self.gains), ("pans", self.pans), ("mutes", self.mutes),
                            ("solos", self.solos)):
            unknown = sorted(set(names) - known)
            if unknown:
                raise ConfigError(f"{what}: unknown stem {unknown[0]!r} (stems: "
                                  f"{', '.join(sorted(known))})")


def _finite(x: int | float) -> bool:
    try:
        return math.isfinite(x)
    except OverflowError:           # an integer beyond any float
        return False


def mix_settings(source: dict, stems: tp.Iterable[str] | None = None) -> MixSettings:
    settings = load_config(MixSettings, source, where="mix settings")
    if stems is not None:
        settings.check_stems(stems)
    return settings


def pan_matrix(pan: float) -> np.ndarray:
    """(2, 2) matrix of Web Audio's StereoPannerNode for a stereo input (equal-power law):
    pan <= 0 folds part of the right channel into the left, pan > 0 the reverse."""
    if pan <= 0:
        x = (pan + 1) * np.pi / 2
        return np.array([[1.0, np.cos(x)], [0.0, np.sin(x)]])
    x = pan * np.pi / 2
    return np.array([[np.cos(x), 0.0], [np.sin(x), 1.0]])


def stem_matrices(settings: MixSettings, names: tp.Sequence[str]) -> np.ndarray:
    """(S, 2, 2) linear map of each stem's (L, R) into the mix: gain, mute/solo, pan, master."""
    solos = set(settings.solos)
    mats = np.zeros((len(names), 2, 2))
    for k, name in enumerate(names):
        if name in settings.mutes or (solos and name not in solos):
            continue
        g = db_to_gain(settings.gains.get(name, 0.0) + settings.master_db)
        mats[k] = g * pan_matrix(float(settings.pans.get(name, 0.0)))
    return mats


def stack_stems(stems: dict[str, np.ndarray]) -> np.ndarray:
    """(S, 2, N) float32 array of equal-length stereo stems (zero-padded to the longest)."""
    n = max(a.shape[1] for a in stems.values())
    out = np.zeros((len(stems), 2, n), np.float32)
    for k, a in enumerate(stems.values()):
        out[k, :, :a.shape[1]] = a
    return out


def _mix_matrix(settings: MixSettings, names: tp.Sequence[str]) -> np.ndarray:
    """(2, 2S) float32: the mix as one matrix product with the (2S, N) stacked stems."""
    mats = stem_matrices(settings, names).astype(np.float32)          # (S, out, in)
    return np.ascontiguousarray(mats.transpose(1, 0, 2).reshape(2, -1))


def mix_stack(stack: np.ndarray, names: tp.Sequence[str], settings: MixSettings) -> np.ndarray:
    """The (2, N) float32 sum of a (S, 2, N) stem stack under ``settings`` (no normalisation):
    one (2, 2S) @ (2S, N) matrix product."""
    return _mix_matrix(settings, names) @ stack.reshape(-1, stack.shape[-1])


def mix_stems(stems: dict[str, np.ndarray], settings: MixSettings) -> np.ndarray:
    return mix_stack(stack_stems(stems), list(stems), settings)


Source = dict | tuple | StemFolder


def mix_source(source: Source, settings: MixSettings) -> np.ndarray:
    """The (2, N) un-normalised mix of stems given as a dict, a ``(stack, names)`` pair or a
    :class:`StemFolder` (read block by block: memory holds the mix and one block)."""
    if isinstance(source, StemFolder):
        settings.check_stems(source.names)
        m2 = _mix_matrix(settings, source.names)
        mix = np.empty((2, source.frames), np.float32)
        for start, block in source.blocks():
            np.matmul(m2, block.reshape(-1, block.shape[-1]),
                      out=mix[:, start:start + block.shape[-1]])
        return mix
    stack, names = (stack_stems(source), list(source)) if isinstance(source, dict) else source
    settings.check_stems(names)
    return mix_stack(stack, names, settings)


BLOCK = 1 << 20         # samples per block when a plan is applied for a peak or an export


def plan_mix(mix: np.ndarray, sr: int, settings: MixSettings) -> tuple[GainPlan, dict]:
    """The gain of ``settings.normalize`` for ``mix`` and a report (gain, loudness, peaks,
    and in ``lufs`` mode the output loudness and what the limiter did)."""
    mode = settings.normalize
    report: dict = {"normalize": mode}
    if mode == "lufs":
        plan, lufs = loudness_plan(mix, sr, target_lufs=settings.target_lufs,
                                   ceiling_dbtp=settings.ceiling_dbtp, limiter=settings.limiter)
        report.update(lufs)
    else:
        gain = 1.0
        if mode in ("peak", "rescale"):
            peak = sample_peak(mix) if mix.size else 0.0
            if peak > 0:
                gain = 1.0 / peak if mode == "peak" else min(1.0, 0.99 / peak)
        plan = GainPlan(gain)
        report["gain_db"] = round(float(20 * np.log10(gain)), 2)
    peak = max((float(np.abs(plan.block(mix, a, a + BLOCK)).max())
                for a in range(0, mix.shape[1], BLOCK)), default=0.0)
    report["sample_peak_dbfs"] = round(float(20 * np.log10(max(peak, 1e-12))), 2)
    return plan, report


def normalize_mix(mix: np.ndarray, sr: int, settings: MixSettings) -> tuple[np.ndarray, dict]:
    """Apply ``settings.normalize``; returns the audio and :func:`plan_mix`'s report."""
    plan, report = plan_mix(mix, sr, settings)
    return plan.apply(mix), report


def render_mix(stems: Source, sr: int, settings: MixSettings) -> tuple[np.ndarray, dict]:
    """Mix and normalise stems given as a dict, a ``(stack, names)`` pair (the server keeps
    stacks in memory) or a :class:`StemFolder`; :func:`render_to_file` writes an export
    without the normalised copy."""
    return normalize_mix(mix_source(stems, settings), sr, settings)


def render_to_file(stems: Source, sr: int, settings: MixSettings, path) -> dict:
    """Mix, normalise and export to ``path`` in ``settings.format``; returns the report.
    Memory: the mix (8 bytes per stereo frame), its K-weighted energy for ``lufs`` (4 bytes
    per frame) and one block; the normalised audio is written block by block."""
    mix = mix_source(stems, settings)
    plan, report = plan_mix(mix, sr, settings)
    export_mix(path, mix, sr, settings.format, plan)
    return report


def export_mix(path, audio: np.ndarray, sr: int, fmt: str, plan: GainPlan | None = None):
    """Write a rendered mix atomically in ``fmt`` (wav16, wav24, flac, mp3, m4a; MP3 at LAME's
    highest VBR quality on all cores, M4A as 256 kb/s AAC through FFmpeg with its priming and
    padding in the file), applying ``plan`` block by block when given."""
    ext, subtype = FORMATS[fmt]
    if Path(path).suffix.lower() != ext:
        raise ConfigError(f"{path}: a {fmt} mix must be saved as {ext}")
    plan = plan or GainPlan()

    def blocks() -> tp.Iterator[np.ndarray]:
        for a in range(0, audio.shape[1], BLOCK):
            block = plan.block(audio, a, a + BLOCK)
            yield np.clip(block, -1.0, 1.0, out=block) if subtype else block

    return write_audio_blocks(path, blocks(), sr, audio.shape[0], subtype=subtype,
                              compression_level=0.0 if fmt == "mp3" else None)
