"""Crossfades between two songs: DeepBass-compatible ``config.ini`` runs and subcommands.

::

    python crossfade.py -config_fname config.ini          # DeepBass' interface
    python crossfade.py init-config [config.ini]          # write a default config
    python crossfade.py simple A B -o OUT.wav [--style equal_power] [--seconds 4]
                        [--beat-sync [--beats 16]] [--context 5|full] [--sr 44100]
    python crossfade.py neural A B -o OUT.wav --weights RUN [--style linear|hann|equal_power]
    python crossfade.py prep SONGS_DIR -o clips.h5 [--seconds 4]
    python crossfade.py train --data clips.h5 --run RUN [--preset small] [--steps N]
    python crossfade.py evaluate A B [-o DIR] [--weights RUN]

Both interfaces run the same code (:mod:`crossfade_render` holds the DSP). Every output comes
with a JSON sidecar (``OUT.json``): trims, loudness gain, tempi, offsets, stretch, mode, style
and seeds. Output audio is float32 ``(channels, samples)``, stereo when a song is.

Beat-synchronous mode decodes only the end of A and the start of B (``EDGE_SECONDS``), so
silence thresholds and loudness are measured on those parts; ``--context full`` decodes all.

DeepBass' outputs and ours (config run, in ``Save Directory``; ``<name>`` is ``Save Name``):

=================================  ==============================================================
DeepBass                           here
=================================  ==============================================================
``end_trim.wav``                   ``end_trim.wav``: the last ``Time`` s of A after trimming
``begin_trim.wav``                 ``begin_trim.wav``: the first ``Time`` s of B, trimmed, matched
``end_faded.wav``                  ``end_faded.wav``: ``end_trim`` times g_out
``begin_faded.wav``                ``begin_faded.wav``: ``begin_trim`` times g_in
``<name>_simple.wav`` (overlap)    ``<name>_simple.wav``: ``Context`` s of A, the overlap,
                                   ``Context`` s of B (DeepBass wrote only the overlap)
``<name>_simple_roughness.txt``    same: mean Vassilakis roughness of the overlap, ``%f``
``<name>_NSynth.wav``              ``<name>_NSynth.wav``: the decoded fade spliced into context
``begin_enc.npy`` (held A's end)   ``a_end_enc.npy``: encoding of the end of A, (16, F)
``end_enc.npy`` (held B's start)   ``b_begin_enc.npy``: encoding of the start of B, (16, F)
``end.wav`` / ``begin.wav``        same: the 16 kHz inputs of the WaveNet (end of A / start of B)
``<name>_nsynth_roughness.txt``    same, over the decoded part
``static/*.pdf``                   ``<name>_simple.png``, ``<name>_NSynth.png`` (``[Plot] Flag``)
=================================  ==============================================================

DeepBass trimmed the songs for the NSynth path and then used the untrimmed ones; here both
paths use the trimmed songs.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

import crossfade_render as cr
from audio_io import audio_info, find_audio_files, load_audio, save_audio
from config import ToolkitError, atomic_write_bytes, atomic_write_json, user_errors_exit_2
from mixer_render import db_to_gain

EDGE_SECONDS = 60.0            # analysed end of A / start of B in beat-synchronous mode
SIMPLE_STYLES = tuple(cr.RAMPS)
NEURAL_STYLES = tuple(cr.NEURAL_RAMPS)
LOUDNESS_SECONDS = 60.0        # end of A / start of B measured for loudness matching
JOIN_SECONDS = 0.05            # equal-power joins around the decoded neural part


# --------------------------------------------------------------------------------------------
# Songs

def load_song(path: str | os.PathLike, sr: int, *, edge: str | None = None,
              seconds: float | None = None, mono: bool = False) -> tuple[np.ndarray, float]:
    """Decode a song (or only its ``edge`` "head"/"tail" of ``seconds``) at ``sr``; returns
    the audio and its offset in seconds within the song."""
    path = Path(os.path.expanduser(path))
    offset, duration = 0.0, None
    if edge is not None and seconds is not None:
        info = audio_info(path)
        total = info.frames / info.samplerate
        if seconds < total:
            duration = seconds
            offset = total - seconds if edge == "tail" else 0.0
    audio, _ = load_audio(path, sr=sr, mono=mono, offset=offset, duration=duration)
    return audio, offset


def prepare_pair(a_path, b_path, sr: int, *, edge_seconds: float | None = None,
                 threshold: float = 0.15, threshold_db: float | None = None,
                 max_trim: float | None = None, mono: bool = False) -> dict:
    """Both songs decoded, A's trailing and B's leading silence trimmed (both edges when whole
    songs are decoded), channels matched and B gained to A's integrated loudness."""
    kw = {"threshold": threshold, "threshold_db": threshold_db, "max_seconds": max_trim}
    a, a_off = load_song(a_path, sr, edge="tail", seconds=edge_seconds, mono=mono)
    b, _ = load_song(b_path, sr, edge="head", seconds=edge_seconds, mono=mono)
    a, trim_a = cr.trim_silence(a, sr, leading=a_off == 0, what=str(a_path), **kw)
    b, trim_b = cr.trim_silence(b, sr, trailing=edge_seconds is None, what=str(b_path), **kw)
    a, b = cr.match_channels(a, b)
    n = int(LOUDNESS_SECONDS * sr)     # the loudness that matters is the one near the fade
    loud = cr.loudness_match_gain_db(a[:, -n:], b[:, :n], sr)
    b = (b * np.float32(db_to_gain(loud["gain_db"]))).astype(np.float32)
    return {"a": a, "b": b, "sr": sr, "trims": {"a": trim_a, "b": trim_b}, "loudness": loud,
            "a_offset_s": a_off}


def plan_pair(a: np.ndarray, b: np.ndarray, sr: int, *, beats: int) -> dict:
    """Beat grids of the last ``EDGE_SECONDS`` of A and the first of B, and the plan."""
    from crossfade_beats import analyse_beats, plan_beat_sync
    n = int(EDGE_SECONDS * sr)
    a_start = max(0, a.shape[1] - n)
    grid_a = analyse_beats(a[:, a_start:], sr, start=a_start / sr)
    grid_b = analyse_beats(b[:, :n], sr)
    return plan_beat_sync(grid_a, grid_b, a_duration=a.shape[1] / sr,
                          b_duration=b.shape[1] / sr, beats=beats)


def crossfade_songs(a_path, b_path, *, sr: int = 44100, style: str = "equal_power",
                    seconds: float = 4.0, context: float | None = 5.0, beat_sync: bool = False,
                    beats: int = 16, seed: int = 0, threshold: float = 0.15,
                    threshold_db: float | None = None, max_trim: float | None = None) -> dict:
    """Render a simple or beat-synchronous crossfade; the result of
    :func:`crossfade_render.place` plus ``sidecar`` (everything a listener may ask about)."""
    if style not in cr.RAMPS:
        raise ToolkitError(f"unknown style {style!r} (styles: {', '.join(cr.RAMPS)})")
    if beat_sync:
        edge = None if context is None else EDGE_SECONDS + context + 30.0
    else:
        edge = None if context is None else seconds + context + 30.0
    pair = prepare_pair(a_path, b_path, sr, edge_seconds=edge, threshold=threshold,
                        threshold_db=threshold_db, max_trim=max_trim)
    a, b = pair["a"], pair["b"]
    plan = None
    if beat_sync:
        plan = plan_pair(a, b, sr, beats=beats)
        out = cr.render_beat_sync(a, b, sr, plan, style=style, context=context, seed=seed)
    else:
        out = cr.render_simple(a, b, sr, style=style, seconds=seconds, context=context,
                               seed=seed)
    a_song0 = pair["a_offset_s"] + pair["trims"]["a"]["start_cut_s"]
    out["sr"] = sr
    out["sidecar"] = {"first_song": str(a_path), "second_song": str(b_path), "sr": sr,
                      "channels": int(out["audio"].shape[0]),
                      "duration_s": out["audio"].shape[1] / sr,
                      "context_s": context if context is not None else "full",
                      "trims": pair["trims"], "loudness": pair["loudness"],
                      "output_start_in_first_song_s": a_song0 + out["timeline_start"] / sr,
                      **out["report"], "plan": plan}
    return out


def write_output(path: str | os.PathLike, out: dict, extra: dict | None = None) -> Path:
    """The audio (float WAV/FLAC/MP3 by extension) and its JSON sidecar ``<path>.json``."""
    path = Path(os.path.expanduser(path))
    fmt = "float" if path.suffix.lower() == ".wav" else "pcm16"
    save_audio(path, out["audio"], out["sr"], sample_format=fmt)
    atomic_write_json(path.with_suffix(".json"), {**out["sidecar"], **(extra or {})})
    return path


# --------------------------------------------------------------------------------------------
# Neural (WaveNet autoencoder) fades

def embedding_fade(model, x1: np.ndarray, x2: np.ndarray, *, style: str = "linear",
                   sampling: str = "greedy", seed: int = 0, method: str = "fast") -> dict:
    """Decode the encodings of ``x1`` (end of A) and ``x2`` (start of B), both (T,) at 16 kHz,
    faded by our ramp evaluated at the code frame rate (F = T // 512 frames)."""
    import wavenet
    if style not in cr.NEURAL_RAMPS:
        raise ToolkitError(f"unknown neural style {style!r} (styles: {', '.join(NEURAL_STYLES)})")
    frames = x1.shape[-1] // wavenet.HOP
    if frames < 1:
        raise ToolkitError(f"the neural fade needs at least {wavenet.HOP} samples")
    g_out, g_in = cr.NEURAL_RAMPS[style](frames)
    return wavenet.embedding_crossfade(model, x1, x2, g_out.astype(np.float32),
                                       g_in.astype(np.float32), sampling=sampling, seed=seed,
                                       method=method, batch=True)


def splice_decoded(a: np.ndarray, b: np.ndarray, decoded: np.ndarray, sr: int, *,
                   context: float | None) -> dict:
    """Put the decoded transition (replacing A's last T and B's first T samples) between the
    rest of A and of B, with short equal-power joins inside its first and last samples."""
    t = decoded.shape[-1]
    j = max(1, min(int(JOIN_SECONDS * sr), t // 4))
    g_out, g_in = cr.equal_power_ramp(j)
    mid = np.asarray(decoded, np.float32).reshape(1, -1).repeat(a.shape[0], axis=0)
    x1, x2 = a[:, -t:], b[:, :t]
    mid[:, :j] = x1[:, :j] * g_out + mid[:, :j] * g_in
    mid[:, -j:] = mid[:, -j:] * g_out + x2[:, -j:] * g_in
    ctx_a = a.shape[1] - t if context is None else min(a.shape[1] - t, int(context * sr))
    ctx_b = b.shape[1] - t if context is None else min(b.shape[1] - t, int(context * sr))
    audio = np.concatenate([a[:, a.shape[1] - t - ctx_a:a.shape[1] - t], mid,
                            b[:, t:t + ctx_b]], axis=1).astype(np.float32)
    return {"audio": audio, "overlap_start": ctx_a, "overlap": t, "sr": sr}


def crossfade_neural(a_path, b_path, weights, *, style: str = "linear", seconds: float = 4.0,
                     context: float | None = 5.0, seed: int = 0, sampling: str = "greedy",
                     device: str = "cpu", threshold: float = 0.15,
                     max_trim: float | None = None, model=None, pair: dict | None = None
                     ) -> dict:
    """The NSynth-style fade at 16 kHz mono: trimmed songs, x1 = last ``seconds`` of A,
    x2 = first ``seconds`` of B, decoded from faded encodings, spliced into context.
    ``model`` and ``pair`` (:func:`prepare_pair` at 16 kHz mono) may be passed to reuse them."""
    import wavenet
    sr = wavenet.SR
    if pair is None:
        pair = prepare_pair(a_path, b_path, sr, threshold=threshold, max_trim=max_trim,
                            mono=True)
    a, b = pair["a"], pair["b"]
    t = (int(round(seconds * sr)) // wavenet.HOP) * wavenet.HOP
    if t < wavenet.HOP or t > min(a.shape[1], b.shape[1]):
        raise ToolkitError(f"a {seconds:g} s neural fade needs both songs at least that long "
                           f"after trimming ({a.shape[1] / sr:.2f} s, {b.shape[1] / sr:.2f} s)")
    if model is None:
        model = wavenet.load_wavenet(Path(os.path.expanduser(weights)), device=device)
    x1, x2 = a[0, -t:], b[0, :t]
    res = embedding_fade(model, x1, x2, style=style, sampling=sampling, seed=seed)
    out = splice_decoded(a, b, np.asarray(res["audio"]), sr, context=context)
    out.update(x1=x1, x2=x2, decoded=np.asarray(res["audio"], np.float32), enc_a=res["enc_a"],
               enc_b=res["enc_b"], enc_mix=res["enc_mix"])
    out["sidecar"] = {"first_song": str(a_path), "second_song": str(b_path), "sr": sr,
                      "mode": "neural", "style": style, "seconds": t / sr, "seed": seed,
                      "sampling": sampling, "weights": str(weights), "trims": pair["trims"],
                      "loudness": pair["loudness"], "frames": int(res["enc_mix"].shape[-1]),
                      "overlap_start_in_output_s": out["overlap_start"] / sr,
                      "context_s": context if context is not None else "full"}
    return out


# --------------------------------------------------------------------------------------------
# Data prep and training for the WaveNet

def prep_clips(songs_dir, out_path, *, seconds: float = 4.0, sr: int = 16000,
               min_duration: float | None = None, threshold: float = 0.15,
               log=print) -> dict:
    """The first and last ``seconds`` of every trimmed song at least ``min_duration`` long
    (default 3x ``seconds``) into HDF5 (``clips`` (N, T) float32, ``sources`` (N, 2) of
    path and "begin"/"end"); unreadable or too-short songs are skipped with the reason."""
    import h5py
    from tqdm import tqdm
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


# --------------------------------------------------------------------------------------------
# DeepBass config run

def _roughness_txt(path: Path, audio: np.ndarray, sr: int) -> float:
    from crossfade_measures import roughness
    value = roughness(audio, sr)["roughness"]
    atomic_write_bytes(path, f"{value:f}\n".encode())
    return value


def run_deepbass(config_path, *, log=print) -> list[Path]:
    """DeepBass' main_simple (+ main_NSynth when ``Model Weights`` is set) from a config.ini."""
    from crossfade_deepbass import NSYNTH_STYLES, SIMPLE_STYLES, read_ini
    from crossfade_plots import plot_transitions
    cfg = read_ini(config_path)
    save, name, sr = cfg.save_dir, cfg.io.save_name, cfg.default.samplingrate
    style = SIMPLE_STYLES[cfg.simple.style.lower()]
    out = crossfade_songs(cfg.first_song, cfg.second_song, sr=sr, style=style,
                          seconds=cfg.simple.time, context=cfg.simple.context,
                          seed=cfg.simple.seed, threshold=cfg.preprocess.threshold,
                          max_trim=cfg.preprocess.sr_window_duration)
    i0, n = out["overlap_start"], out["overlap"]
    ov = slice(i0, i0 + n)
    parts = {"end_trim.wav": out["part_a"][:, ov], "begin_trim.wav": out["part_b"][:, ov],
             "end_faded.wav": out["part_a"][:, ov] * out["g_out"][ov].astype(np.float32),
             "begin_faded.wav": out["part_b"][:, ov] * out["g_in"][ov].astype(np.float32)}
    written = [save_audio(save / f, x, sr, sample_format="float") for f, x in parts.items()]
    written.append(write_output(save / f"{name}_simple.wav", out, {"config": str(config_path)}))
    rough = save / f"{name}_simple_roughness.txt"
    _roughness_txt(rough, out["audio"][:, ov], sr)
    written += [rough, save / f"{name}_simple.json"]
    if cfg.plot.flag:
        written.append(plot_transitions({style: out}, save / f"{name}_simple.png"))
    if cfg.weights is not None:
        nstyle = NSYNTH_STYLES[cfg.nsynth.style.lower()]
        neural = crossfade_neural(cfg.first_song, cfg.second_song, cfg.weights, style=nstyle,
                                  seconds=cfg.nsynth.time, context=cfg.simple.context,
                                  threshold=cfg.preprocess.threshold,
                                  max_trim=cfg.preprocess.sr_window_duration)
        neural_sr = neural["sr"]
        if sr != neural_sr:     # the WaveNet works at 16 kHz; outputs follow SamplingRate
            from audio_io import resample
            neural["audio"] = resample(neural["audio"], neural_sr, sr)
            neural["sr"] = sr
            neural["sidecar"]["sr"] = sr
        written.append(write_output(save / f"{name}_NSynth.wav", neural))
        np.save(save / "a_end_enc.npy", np.asarray(neural["enc_a"]))
        np.save(save / "b_begin_enc.npy", np.asarray(neural["enc_b"]))
        written += [save / "a_end_enc.npy", save / "b_begin_enc.npy",
                    save_audio(save / "end.wav", neural["x1"], neural_sr, sample_format="float"),
                    save_audio(save / "begin.wav", neural["x2"], neural_sr,
                               sample_format="float")]
        rough = save / f"{name}_nsynth_roughness.txt"
        _roughness_txt(rough, neural["decoded"][None], neural_sr)
        written.append(rough)
        if cfg.plot.flag:
            from crossfade_plots import plot_encodings
            written.append(plot_encodings(neural, save / f"{name}_NSynth.png"))
    for p in written:
        log(f"wrote {p}")
    return written


# --------------------------------------------------------------------------------------------
# CLI

def _context(value: str) -> float | None:
    if value == "full":
        return None
    try:
        seconds = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be seconds or 'full', got {value!r}") from None
    if not seconds >= 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value!r}")
    return seconds


def _positive(value: str) -> float:
    try:
        x = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {value!r}") from None
    if not x > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {value!r}")
    return x


def _rate(value: str) -> int:
    try:
        sr = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer in Hz, got {value!r}") from None
    if not 8000 <= sr <= 192000:
        raise argparse.ArgumentTypeError(f"must be 8000..192000 Hz, got {value!r}")
    return sr


def _fraction(value: str) -> float:
    x = _positive(value)
    if not x < 1:
        raise argparse.ArgumentTypeError(f"must be in (0, 1), got {value!r}")
    return x


def get_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="crossfade.py", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)

    p = sub.add_parser("init-config", help="write a default DeepBass config.ini")
    p.add_argument("path", nargs="?", default="config.ini")
    p.add_argument("--force", action="store_true", help="overwrite an existing file")

    def common(p, styles, default_style, sr):
        p.add_argument("first_song")
        p.add_argument("second_song")
        p.add_argument("--style", choices=styles, default=default_style)
        p.add_argument("--seconds", type=_positive, default=4.0, help="overlap (default 4)")
        p.add_argument("--context", type=_context, default=5.0,
                       help="seconds of A before and of B after the overlap, or 'full'")
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--threshold", type=_fraction, default=0.15,
                       help="silence below this fraction of the song's RMS (default 0.15)")
        if sr:
            p.add_argument("--threshold-db", type=float, default=None,
                           help="absolute silence threshold in dBFS (replaces --threshold)")
            p.add_argument("--sr", type=_rate, default=sr, help=f"output rate (default {sr})")

    p = sub.add_parser("simple", help="ramp crossfade, optionally beat-synchronous")
    common(p, SIMPLE_STYLES, "equal_power", 44100)
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--beat-sync", action="store_true",
                   help="stretch B to A's tempo and align downbeats")
    p.add_argument("--beats", type=int, choices=(8, 16, 32), default=16)

    p = sub.add_parser("neural", help="WaveNet-autoencoder (NSynth-style) crossfade, 16 kHz")
    common(p, NEURAL_STYLES, "linear", None)
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--weights", required=True, help="a wavenet run folder")
    p.add_argument("--sampling", choices=("greedy", "sample"), default="greedy")
    p.add_argument("--device", default="cpu")

    p = sub.add_parser("prep", help="cut begin/end clips of a song folder into HDF5")
    p.add_argument("songs_dir")
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--seconds", type=_positive, default=4.0)
    p.add_argument("--sr", type=_rate, default=16000)
    p.add_argument("--min-duration", type=_positive, default=None,
                   help="seconds after trimming (default 3x --seconds)")

    p = sub.add_parser("train", help="train the WaveNet autoencoder on prep's clips")
    p.add_argument("--data", required=True)
    p.add_argument("--run", required=True)
    p.add_argument("--preset", choices=("small", "nsynth"), default="small")
    p.add_argument("--steps", type=int, default=1000,
                   help="training steps in all (with --resume: up to this many)")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--crop", type=int, default=6144, help="samples per training crop")
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resume", action="store_true")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")

    p = sub.add_parser("evaluate", help="render every style; roughness, dissonance, dip")
    common(p, SIMPLE_STYLES, "equal_power", 44100)
    p.add_argument("-o", "--output-dir", default="crossfade_eval")
    p.add_argument("--weights", default=None, help="also evaluate the neural styles")
    p.add_argument("--device", default="cpu")
    return ap


def get_config_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="crossfade.py", description="DeepBass-compatible run")
    ap.add_argument("-config_fname", "--config-fname", dest="config_fname", required=True)
    return ap


@user_errors_exit_2
def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0].split("=")[0] in ("-config_fname", "--config-fname", "--config_fname"):
        run_deepbass(get_config_parser().parse_args(argv).config_fname)
        return 0
    args = get_parser().parse_args(argv)
    if args.command == "init-config":
        from crossfade_deepbass import write_default_ini
        path = Path(os.path.expanduser(args.path))
        if path.exists() and not args.force:
            raise ToolkitError(f"{path} exists; pass --force to overwrite it")
        print(f"wrote {write_default_ini(path)}")
    elif args.command == "simple":
        out = crossfade_songs(args.first_song, args.second_song, sr=args.sr, style=args.style,
                              seconds=args.seconds, context=args.context,
                              beat_sync=args.beat_sync, beats=args.beats, seed=args.seed,
                              threshold=args.threshold, threshold_db=args.threshold_db)
        path = write_output(args.output, out)
        s = out["sidecar"]
        print(f"wrote {path} ({s['duration_s']:.2f} s, {s['mode']}, {s['style']}, "
              f"overlap {s['seconds']:.2f} s at {s['overlap_start_in_output_s']:.2f} s)")
    elif args.command == "neural":
        out = crossfade_neural(args.first_song, args.second_song, args.weights,
                               style=args.style, seconds=args.seconds, context=args.context,
                               seed=args.seed, sampling=args.sampling, device=args.device,
                               threshold=args.threshold)
        path = write_output(args.output, out)
        np.save(path.with_name("a_end_enc.npy"), np.asarray(out["enc_a"]))
        np.save(path.with_name("b_begin_enc.npy"), np.asarray(out["enc_b"]))
        print(f"wrote {path} and its encodings a_end_enc.npy, b_begin_enc.npy")
    elif args.command == "prep":
        rep = prep_clips(args.songs_dir, args.output, seconds=args.seconds, sr=args.sr,
                         min_duration=args.min_duration)
        print(f"wrote {rep['path']}: {rep['clips']} clips from {rep['songs']} songs, "
              f"{len(rep['skipped'])} skipped")
    elif args.command == "train":
        import wavenet
        rep = wavenet.train_wavenet(args.data, args.run, preset=args.preset, steps=args.steps,
                                    batch_size=args.batch_size, crop=args.crop, lr=args.lr,
                                    seed=args.seed, resume=args.resume, device=args.device)
        print(json.dumps(rep, indent=2, default=str))
    elif args.command == "evaluate":
        from crossfade_plots import evaluate
        evaluate(args.first_song, args.second_song, args.output_dir, sr=args.sr,
                 seconds=args.seconds, context=args.context, seed=args.seed,
                 threshold=args.threshold, weights=args.weights, device=args.device)
    return 0


if __name__ == "__main__":
    sys.exit(main())
