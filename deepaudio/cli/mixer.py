"""``python mixer_api.py``: stem separation, mixing, evaluation, and job workers.

    python mixer_api.py separate SONG -o DIR [--backend auto|demucs|dsp] [--model NAME]
                                             [--demucs-repo DIR] [--shifts N] [--previews]
    python mixer_api.py mix STEMS_DIR --gain vocals=+3 --gain drums=-6 -o mix.flac
                                      [--normalize none|peak|rescale|lufs] [--pan bass=-0.3]
                                      [--mute other] [--solo vocals] [--target-lufs -14]
    python mixer_api.py evaluate --stems-root DIR [--backend dsp] [--max-tracks N]
    python mixer_api.py worker --data DIR --redis redis://HOST:6379/0 [--fma DIR] [--workers N]
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np
from tqdm import tqdm

from deepaudio.core.config import ConfigError
from deepaudio.core.errors import user_errors_exit_2
from deepaudio.core.files import atomic_write_json
from deepaudio.mixer.demucs_backend import models_help
from deepaudio.mixer.evaluate import evaluate
from deepaudio.mixer.jobs import run_worker
from deepaudio.mixer.render import mix_settings, render_to_file
from deepaudio.mixer.separate import BACKENDS, separate
from deepaudio.mixer.stems import STEMS, open_stems, write_previews


def _assignments(items: list[str], what: str, cast=float) -> dict:
    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise ConfigError(f"--{what} expects STEM=VALUE, got {item!r}")
        try:
            out[name.strip()] = cast(value)
        except ValueError:
            raise ConfigError(f"--{what} {item!r}: {value!r} is not a number") from None
    return out


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="Stem separation, mixing and evaluation.")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("separate", help="separate a song into stems (drums, bass, other, "
                       "vocals; six or two with some models and options)")
    s.add_argument("song")
    s.add_argument("-o", "--out", required=True, help="folder for the stems")
    s.add_argument("--backend", choices=BACKENDS, default="auto",
                   help="auto (default): demucs when its weights are here or can be fetched, "
                        "else dsp; the reason is printed")
    s.add_argument("--model", default="htdemucs",
                   help=f"Demucs model name or signature: {models_help()}; with "
                        "--two-stems vocals, any of them gives vocals + no_vocals")
    s.add_argument("--demucs-repo", help="local folder with Demucs weights (offline)")
    s.add_argument("--offline", action="store_true", default=None,
                   help="never fetch weights (also DEEPAUDIO_OFFLINE=1)")
    s.add_argument("--shifts", type=int, default=1, help="Demucs shift trick passes")
    s.add_argument("--two-stems", metavar="STEM", default=None,
                   help="keep STEM and sum the others into no_STEM (e.g. vocals: karaoke)")
    s.add_argument("--previews", action="store_true", help="also write OGG previews")

    m = sub.add_parser("mix", help="mix a stems folder into one file")
    m.add_argument("stems_dir")
    m.add_argument("-o", "--out", required=True, help=".wav, .flac, .mp3 or .m4a (AAC)")
    m.add_argument("--gain", action="append", default=[], metavar="STEM=DB")
    m.add_argument("--pan", action="append", default=[], metavar="STEM=PAN")
    m.add_argument("--mute", action="append", default=[], metavar="STEM")
    m.add_argument("--solo", action="append", default=[], metavar="STEM")
    m.add_argument("--normalize", choices=["none", "peak", "rescale", "lufs"], default="lufs")
    m.add_argument("--target-lufs", type=float, default=-14.0)
    m.add_argument("--ceiling-dbtp", type=float, default=-1.0)
    m.add_argument("--no-limiter", action="store_true",
                   help="lufs: lower the whole gain to meet the ceiling instead of limiting")
    m.add_argument("--bits", type=int, choices=[16, 24], default=16, help="WAV sample size")

    e = sub.add_parser("evaluate", help="SDR of a backend on folders with true stems")
    e.add_argument("--stems-root", required=True)
    e.add_argument("--backend", choices=BACKENDS, default="dsp")
    e.add_argument("--model", default="htdemucs")
    e.add_argument("--demucs-repo")
    e.add_argument("--max-tracks", type=int)
    e.add_argument("--json", help="also write the results here")

    w = sub.add_parser("worker", help="process jobs from a Redis queue (scale-out)")
    w.add_argument("--data", default="data",
                   help="the server's data folder, shared with it (e.g. an NFS mount)")
    w.add_argument("--fma", help="the server's FMA folder, when its sample tracks are separated "
                                 "here too")
    w.add_argument("--redis", required=True, help="redis://HOST:PORT/DB")
    w.add_argument("--workers", type=int, default=1)
    return p


def _fmt(x: float) -> str:
    return "   nan" if not np.isfinite(x) else f"{x:6.2f}"


@user_errors_exit_2
def main(argv: list[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    if args.command == "separate":
        with tqdm(total=100, unit="%", desc="separating") as bar:
            def progress(f: float, stage: str) -> None:
                bar.set_postfix_str(stage)
                bar.update(round(100 * f) - bar.n)
            manifest = separate(args.song, args.out, backend=args.backend, model=args.model,
                                repo=args.demucs_repo, shifts=args.shifts, progress=progress,
                                offline=args.offline, two_stems=args.two_stems)
        if args.previews:
            write_previews(Path(args.out), manifest)
        print(f"{', '.join(manifest['sources'])} -> {args.out} "
              f"({manifest['duration']:.1f} s of audio in {manifest['seconds']:.1f} s; "
              f"{manifest['backend']}: {manifest['backend_reason']})")
    elif args.command == "mix":
        out = Path(args.out)
        ext = out.suffix.lower()
        fmt = {".wav": f"wav{args.bits}", ".flac": "flac", ".mp3": "mp3",
               ".m4a": "m4a"}.get(ext)
        if fmt is None:
            raise ConfigError(f"{out}: the mix must be .wav, .flac, .mp3 or .m4a")
        settings = mix_settings({"gains": _assignments(args.gain, "gain"),
                                 "pans": _assignments(args.pan, "pan"), "mutes": args.mute,
                                 "solos": args.solo, "normalize": args.normalize,
                                 "target_lufs": args.target_lufs,
                                 "ceiling_dbtp": args.ceiling_dbtp,
                                 "limiter": not args.no_limiter, "format": fmt})
        folder = open_stems(args.stems_dir)
        report = render_to_file(folder, folder.sr, settings, out)
        print(f"{out}: {folder.frames / folder.sr:.1f} s, " + ", ".join(
            f"{k} {v}" for k, v in report.items()))
    elif args.command == "evaluate":
        print(f"{'track':<22} " + " ".join(f"{s:>13}" for s in STEMS) + "     s")
        print(f"{'':<22} " + " ".join(f"{'new':>6} {'med':>6}" for _ in STEMS))

        def row(r: dict) -> None:
            print(f"{r['track'][-22:]:<22} " + " ".join(
                f"{_fmt(r['sdr'][s])} {_fmt(r['sdr_median'][s])}" for s in STEMS)
                + f" {r['seconds']:5.1f}", flush=True)
        result = evaluate(args.stems_root, backend=args.backend, model=args.model,
                          repo=args.demucs_repo, max_tracks=args.max_tracks, on_track=row)
        print(f"{'mean':<22} " + " ".join(f"{_fmt(result['mean'][s])} "
                                          f"{_fmt(result['mean_median'][s])}" for s in STEMS))
        print(f"all stems: new SDR {result['mean']['all']:.2f} dB, framewise median "
              f"{result['mean_median']['all']:.2f} dB ({args.backend}, "
              f"{len(result['tracks'])} tracks, real-time factor "
              f"{result['real_time_factor']:.3f})")
        if args.json:
            atomic_write_json(args.json, result)
    elif args.command == "worker":
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
        run_worker(args.redis, args.data, fma=args.fma, workers=args.workers)
    return 0
