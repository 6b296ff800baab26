"""The FFmpeg side of the one audio loader (:mod:`deepaudio.core.audio`), through PyAV.

libsndfile reads WAV, FLAC, OGG (Vorbis, Opus) and MP3; everything else a music library holds
(AAC and ALAC in M4A/MP4, Opus and Vorbis in WebM/Matroska, WMA, raw AAC, and the audio track of
a video file) is decoded here, with FFmpeg's libraries inside PyAV's wheel. Only
:mod:`deepaudio.core.audio` calls this module; its callers see one loader.

Decoded audio is float32 ``(channels, n)`` at the stream's own rate; more than two channels
are downmixed to stereo by FFmpeg's resampler (libswresample's standard matrix). A start
offset seeks where the container's timestamps count samples (MP4/M4A/MOV: to the key frame
before it, less a pre-roll, then decodes forward), so a part near the end of a long file does
not decode the whole file; WebM/Matroska/ASF timestamps count milliseconds, so those decode
from the beginning to land on the exact sample.
"""

from __future__ import annotations

import typing as tp
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from deepaudio.core import _lame

RAW_STREAMS = {"aac", "ac3", "eac3", "dts", "mp3", "truehd", "mlp"}
PREROLL = 8192          # samples decoded and dropped before a seek target (> AAC's 2048)


class PyAVError(Exception):
    """The file cannot be decoded by FFmpeg either (the message is FFmpeg's)."""


def _audio_stream(container):
    streams = [s for s in container.streams if s.type == "audio"]
    if not streams:
        kinds = sorted({s.type for s in container.streams}) or ["none"]
        raise PyAVError(f"no audio track (streams: {', '.join(kinds)})")
    return streams[0]


def _open(path: Path):
    try:
        return av.open(str(path), mode="r")
    except Exception as e:
        raise PyAVError(str(e).split(": ", 1)[-1].strip() or type(e).__name__) from None


def info(path: Path) -> dict:
    """Sample rate, channels (after the stereo downmix), estimated frames (0 when the
    container does not say), format and codec names, without decoding."""
    with _open(path) as c:
        stream = _audio_stream(c)
        ctx = stream.codec_context
        sr = int(ctx.sample_rate or 0)
        channels = int(ctx.channels or 0)
        if sr <= 0 or channels <= 0:
            raise PyAVError("the audio track has no sample rate or channels")
        seconds = 0.0
        if stream.duration is not None and stream.time_base is not None:
            seconds = float(stream.duration * stream.time_base)
        elif c.duration is not None:
            seconds = c.duration / 1_000_000
        fmt = c.format.name.split(",")[0]
        # raw streams (ADTS AAC, AC-3, ...) have no length in a header: FFmpeg estimates it
        # from the bit rate, so it cannot tell a truncated file
        frames = 0 if fmt in RAW_STREAMS else max(0, int(round(seconds * sr)))
        return {"samplerate": sr, "channels": min(channels, 2), "frames": frames,
                "format": fmt, "codec": ctx.name}


def blocks(path: Path, frames: int, *, start: int = 0, stop: int | None = None
           ) -> tp.Iterator[np.ndarray]:
    """The audio of samples ``[start, stop)`` as float32 ``(channels, <= frames)`` blocks."""
    with _open(path) as c:
        stream = _audio_stream(c)
        ctx = stream.codec_context
        sr = int(ctx.sample_rate)
        layout = "mono" if int(ctx.channels) == 1 else "stereo"
        resampler = av.AudioResampler(format="fltp", layout=layout, rate=sr)
        pos: int | None = 0
        tb = stream.time_base
        if start > PREROLL and tb is not None and tb <= Fraction(1, sr):
            # sample-exact timestamps (MP4/M4A/MOV): seek to a key frame before the start,
            # less a pre-roll (a decoder's first frames after a seek are not yet right), and
            # drop what comes before the start; coarser ones (WebM/Matroska/ASF count in ms)
            # decode from the beginning, the only way to land on the exact sample
            try:
                c.seek(int((start - PREROLL) / sr / tb), stream=stream, backward=True)
                pos = None            # known from the first frame decoded after the seek
            except Exception:         # an unseekable stream decodes from the start
                c.seek(0)
                pos = 0
        pending: list[np.ndarray] = []
        held = 0

        def take(arr: np.ndarray) -> tp.Iterator[np.ndarray]:
            nonlocal held, pending
            pending.append(arr)
            held += arr.shape[1]
            while held >= frames:
                joined = np.concatenate(pending, axis=1)
                yield np.ascontiguousarray(joined[:, :frames])
                rest = joined[:, frames:]
                pending, held = ([rest] if rest.shape[1] else []), rest.shape[1]

        try:
            done = False
            for packet in c.demux(stream):
                for frame in packet.decode():
                    if pos is None:       # after a seek: where this frame starts
                        pts = frame.pts if frame.pts is not None else 0
                        pos = int(round(float(pts * stream.time_base) * sr))
                    for out in resampler.resample(frame):
                        arr = out.to_ndarray().astype(np.float32, copy=False)
                        lo, hi = pos, pos + arr.shape[1]
                        pos = hi
                        a, b = max(lo, start), hi if stop is None else min(hi, stop)
                        if b > a:
                            yield from take(arr[:, a - lo:b - lo])
                        if stop is not None and pos >= stop:
                            done = True
                            break
                    if done:
                        break
                if done:
                    break
            if not done:
                for out in resampler.resample(None):
                    arr = out.to_ndarray().astype(np.float32, copy=False)
                    lo = pos or 0
                    hi = lo + arr.shape[1]
                    pos = hi
                    a, b = max(lo, start), hi if stop is None else min(hi, stop)
                    if b > a:
                        yield from take(arr[:, a - lo:b - lo])
        except av.error.FFmpegError as e:
            raise PyAVError(f"decoding fails ({str(e).split(': ', 1)[-1].strip()})") from None
        if held:
            yield np.ascontiguousarray(np.concatenate(pending, axis=1))


def write(path: Path, blocks: tp.Iterable[np.ndarray], sr: int, channels: int, *,
          codec: str = "aac", container: str = "ipod", bitrate: int | None = 256_000,
          options: dict[str, str] | None = None) -> None:
    """Encode (C, n) float32 blocks with FFmpeg's ``codec`` (and its ``options``) into
    ``container`` at ``path`` (the caller renames it into place). The MP4 family records the
    encoder's priming and padding in an edit list, so the file decodes back to the input's
    length."""
    layout = "mono" if channels == 1 else "stereo"
    out = av.open(str(path), "w", format=container)
    try:
        st = tp.cast("av.audio.stream.AudioStream",
                     out.add_stream(codec, rate=sr, options=options or {}))
        st.layout = layout
        if bitrate:
            st.bit_rate = bitrate
        res = av.AudioResampler(format=st.format.name, layout=layout, rate=sr)
        pts = 0
        for block in blocks:
            block = np.ascontiguousarray(block[:2] if channels > 1 else block[:1], np.float32)
            if not block.shape[1]:
                continue
            fr = av.AudioFrame.from_ndarray(block, format="fltp", layout=layout)
            fr.sample_rate, fr.pts, fr.time_base = sr, pts, Fraction(1, sr)
            pts += block.shape[1]
            for f in res.resample(fr):
                for pkt in st.encode(f):
                    out.mux(pkt)
        for f in res.resample(None):
            for pkt in st.encode(f):
                out.mux(pkt)
        for pkt in st.encode(None):
            out.mux(pkt)
    finally:
        out.close()


MP3_CHUNK_FRAMES = 768          # frames per encoder run (~20 s)
MP3_MARGIN_FRAMES = 16          # context encoded and dropped on each side of a chunk


def mp3_frame_samples(sr: int) -> int:
    """Samples per Layer III frame: 1152 in MPEG-1 (32-48 kHz), 576 in MPEG-2 and 2.5 (8-24
    kHz)."""
    return 1152 if sr >= 32000 else 576


def _mp3_context(sr: int, layout: str, vbr_quality: int, algorithm: int, ctx=None):
    """FFmpeg's libmp3lame with the runs' settings, as the file's stream. It encodes nothing;
    opening it tells the muxer LAME's delay, which its Xing/LAME header records."""
    ctx = ctx or av.CodecContext.create("libmp3lame", "w")
    ctx.sample_rate, ctx.layout, ctx.format = sr, layout, "fltp"
    ctx.flags = ctx.flags | av.codec.context.Flags.qscale          # VBR: -V vbr_quality
    ctx.global_quality = vbr_quality * 118                          # FF_QP2LAMBDA
    ctx.options = {"compression_level": str(algorithm), "reservoir": "0"}
    return ctx


def mp3_frames(data: bytes) -> list[bytes]:
    """Split a Layer III stream into its frames (FFmpeg's MPEG audio parser)."""
    return [bytes(p) for p in av.CodecContext.create("mp3", "r").parse(data)]


def _mp3_run(audio: np.ndarray, sr: int, vbr_quality: int, algorithm: int,
             first: int, count: int | None) -> list[bytes]:
    """One LAME run over ``audio``; its frames ``[first, first + count)`` (all from ``first``
    when ``count`` is None). Runs in a worker thread: LAME runs without the GIL."""
    frames = mp3_frames(_lame.encode(audio, sr, vbr_quality=vbr_quality, algorithm=algorithm))
    return frames[first:] if count is None else frames[first:first + count]


def _skip_samples(start: int, end: int):
    """Packet side data that tells the MP3 muxer, whose Xing/LAME header records them, how
    many samples the first frame delays the song by (on the first packet) and how many of the
    last frame are padding (on the last): AV_PKT_DATA_SKIP_SAMPLES, start and end as
    little-endian u32 and two reason bytes. PyAV makes side data only by copying a packet's,
    so the template comes from a one-frame encode."""
    import struct
    ctx = _mp3_context(44100, "mono", 9, 9)
    ctx.open()
    fr = av.AudioFrame.from_ndarray(np.zeros((1, 64), np.float32), format="fltp",
                                    layout="mono")
    fr.sample_rate, fr.pts, fr.time_base = 44100, 0, Fraction(1, 44100)
    last = (ctx.encode(fr) + ctx.encode(None))[-1]
    side = av.packet.PacketSideData.from_packet(last, "skip_samples")
    side.update(struct.pack("<IIBB", start, end, 0, 0))
    return side


def write_mp3(path: Path, blocks: tp.Iterable[np.ndarray], sr: int, channels: int, *,
              vbr_quality: int = 0, algorithm: int = 5, workers: int | None = None) -> None:
    """Encode (C, n) float32 blocks as VBR MP3 (LAME ``-V vbr_quality -q algorithm``) at
    ``path`` on ``workers`` cores (default: all) with a LAME/Xing header that records the
    encoder delay and the padding, so the file decodes to the input's length.

    The song is cut into ~20 s chunks on MP3's frame grid. Each chunk is encoded by its own
    LAME run that also sees 16 frames of the audio before and after it (so its frames come out
    of the same encoder state and look-ahead as one long run's would) and keeps only its own
    frames; without the bit reservoir every frame is self-contained, so the chunks' frames
    join into one stream as if one encoder had made it. Memory: a few chunks."""
    import collections
    import concurrent.futures
    import os

    layout = "mono" if channels == 1 else "stereo"
    workers = max(1, workers or os.cpu_count() or 1)
    frame = mp3_frame_samples(sr)
    chunk, margin = MP3_CHUNK_FRAMES * frame, MP3_MARGIN_FRAMES * frame
    out = av.open(str(path), "w", format="mp3")
    try:
        st = out.add_stream("libmp3lame", rate=sr)
        st.layout = layout
        _mp3_context(sr, layout, vbr_quality, algorithm, st.codec_context)
        pending: collections.deque = collections.deque()
        frame_no = samples = 0
        delay = _lame.ENCODER_DELAY + _lame.DECODER_DELAY

        def mux(fut, last: bool = False) -> None:
            nonlocal frame_no
            frames = fut.result()
            for i, data in enumerate(frames):
                pkt = av.Packet(data)
                pkt.stream = st
                pkt.pts = pkt.dts = frame_no * frame
                pkt.duration, pkt.time_base = frame, Fraction(1, sr)
                frame_no += 1
                end = last and i == len(frames) - 1      # padding after the song's end
                if frame_no == 1 or end:
                    pkt.set_sidedata(_skip_samples(
                        delay if frame_no == 1 else 0,
                        frame_no * frame - delay - samples if end else 0))
                out.mux(pkt)

        with concurrent.futures.ThreadPoolExecutor(workers) as pool:
            buf = np.zeros((channels, 0), np.float32)    # audio from (start - head)
            head = 0                                      # context kept before the chunk
            ended = False
            it = iter(blocks)
            while not ended:
                while buf.shape[1] < head + chunk + margin:
                    block = next(it, None)
                    if block is None:
                        ended = True
                        break
                    block = np.asarray(block[:channels], np.float32)
                    samples += block.shape[1]
                    buf = np.concatenate([buf, block], axis=1) if block.shape[1] else buf
                if ended and buf.shape[1] <= head:
                    break
                last = ended and buf.shape[1] <= head + chunk + margin
                n = buf.shape[1] if last else head + chunk + margin
                pending.append(pool.submit(
                    _mp3_run, buf[:, :n].copy(), sr, vbr_quality, algorithm,
                    head // frame, None if last else MP3_CHUNK_FRAMES))
                while len(pending) > workers:
                    mux(pending.popleft())
                if last:
                    break
                keep = head + chunk - margin
                buf, head = buf[:, keep:], margin
            while pending:
                mux(pending.popleft(), last=not pending)
    finally:
        out.close()
