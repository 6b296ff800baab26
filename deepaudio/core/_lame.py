"""LAME's C API through ctypes: the encoder behind the MP3 writer (:func:`._pyav.write_mp3`).

Why not FFmpeg's libmp3lame through PyAV, as before: the LAME inside PyAV's wheel is built
without optimisation and encodes 2.6-2.7x slower per core than the same LAME 3.100 inside
lameenc's wheel (frames that decode to the same samples; ``bench/decode.py``). lameenc's Python API
has no switch for the two settings the parallel writer needs (no bit reservoir, no Xing frame
per run), so this module calls the LAME library its extension module carries, whose
``lame_*`` functions are exported on Linux and macOS. Where they are not (Windows builds export
only the Python entry point), the LAME in PyAV's wheel is used, then the system's libmp3lame.

Only :mod:`deepaudio.core._pyav` calls this module. Calls into LAME release the GIL (ctypes
does so for every foreign call), so encoder runs in threads use every core.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import importlib.util
from pathlib import Path

import numpy as np

VBR_MTRH = 4                # LAME's default VBR algorithm (vbr_mtrh = vbr_default)
ENCODER_DELAY = 576         # samples LAME's MDCT lags behind its input (lame_get_encoder_delay)
DECODER_DELAY = 529         # samples a decoder's synthesis filterbank adds (528 + 1)
MP3_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)
_NEEDED = ("lame_init", "lame_init_params", "lame_close", "lame_set_disable_reservoir",
           "lame_set_bWriteVbrTag", "lame_encode_buffer_ieee_float", "lame_encode_flush")


class LameError(RuntimeError):
    """No usable LAME library, or LAME refused the settings."""


def _candidates() -> list[Path | str]:
    found: list[Path | str] = []
    spec = importlib.util.find_spec("lameenc")
    if spec and spec.origin:
        found.append(Path(spec.origin))                         # optimised LAME 3.100
    spec = importlib.util.find_spec("av")
    if spec and spec.origin:                                    # the LAME PyAV's wheel carries
        root = Path(spec.origin).parent
        for folder in (root.parent / "av.libs", root / ".dylibs"):
            found += sorted(folder.glob("*mp3lame*")) if folder.is_dir() else []
    system = ctypes.util.find_library("mp3lame")
    if system:
        found.append(system)
    return found


@functools.lru_cache(maxsize=1)
def library() -> tuple[ctypes.CDLL, str]:
    """The first LAME library that exports the functions the writer calls, and its name."""
    for candidate in _candidates():
        try:
            lib = ctypes.CDLL(str(candidate))
        except OSError:
            continue
        if all(hasattr(lib, name) for name in _NEEDED):
            lib.lame_init.restype = ctypes.c_void_p
            for name in ("lame_init_params", "lame_close", "lame_encode_flush",
                         "lame_encode_buffer_ieee_float", "lame_get_encoder_delay"):
                getattr(lib, name).argtypes = [ctypes.c_void_p] + {
                    "lame_encode_flush": [ctypes.c_char_p, ctypes.c_int],
                    "lame_encode_buffer_ieee_float": [ctypes.c_void_p, ctypes.c_void_p,
                                                      ctypes.c_int, ctypes.c_char_p,
                                                      ctypes.c_int]}.get(name, [])
            lib.lame_set_VBR_quality.argtypes = [ctypes.c_void_p, ctypes.c_float]
            return lib, Path(str(candidate)).name
    raise LameError("MP3 export needs the LAME library; install the lameenc package "
                    "(pip install lameenc)")


def encode(audio: np.ndarray, sr: int, *, vbr_quality: int, algorithm: int) -> bytes:
    """One LAME run over ``audio`` ((C, n) float32 in [-1, 1], C = 1 or 2): VBR ``-V
    vbr_quality -q algorithm`` with no bit reservoir (every frame holds its own bits, so
    frames of separate runs join) and no Xing frame (the muxer writes the file's own). The
    bytes are whole Layer III frames; the first frame's audio starts ENCODER_DELAY samples
    before the input's first sample."""
    if sr not in MP3_RATES:
        raise LameError(f"MP3 cannot hold {sr} Hz audio (rates: "
                        f"{', '.join(str(r) for r in MP3_RATES)})")
    lib, _ = library()
    channels = audio.shape[0]
    gfp = ctypes.c_void_p(lib.lame_init())
    if not gfp:
        raise LameError("LAME could not start (out of memory)")
    try:
        for setter, value in (("lame_set_in_samplerate", sr), ("lame_set_out_samplerate", sr),
                              ("lame_set_num_channels", channels),
                              ("lame_set_mode", 1 if channels == 2 else 3),  # joint / mono
                              ("lame_set_VBR", VBR_MTRH), ("lame_set_quality", algorithm),
                              ("lame_set_disable_reservoir", 1),
                              ("lame_set_bWriteVbrTag", 0),
                              ("lame_set_write_id3tag_automatic", 0)):
            getattr(lib, setter)(gfp, value)
        lib.lame_set_VBR_quality(gfp, float(vbr_quality))
        if lib.lame_init_params(gfp) < 0:
            raise LameError(f"LAME refused -V {vbr_quality} -q {algorithm} at {sr} Hz")
        left = np.ascontiguousarray(audio[0], np.float32)
        right = np.ascontiguousarray(audio[-1], np.float32)
        step = sr
        buf = ctypes.create_string_buffer(int(1.25 * step) + 7200)
        out = bytearray()
        for i in range(0, left.shape[0], step):
            n = min(step, left.shape[0] - i)
            got = lib.lame_encode_buffer_ieee_float(
                gfp, left[i:].ctypes.data, right[i:].ctypes.data, n, buf, len(buf))
            if got < 0:
                raise LameError(f"LAME failed while encoding (code {got})")
            out += buf.raw[:got]
        got = lib.lame_encode_flush(gfp, buf, len(buf))
        if got < 0:
            raise LameError(f"LAME failed while flushing (code {got})")
        out += buf.raw[:got]
        return bytes(out)
    finally:
        lib.lame_close(gfp)
