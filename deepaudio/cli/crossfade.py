"""Crossfades between two songs: DeepBass-compatible ``config.ini`` runs and subcommands.

::

    python crossfade.py -config_fname config.ini          # DeepBass' interface
    python crossfade.py init-config [config.ini]          # write a default config
    python crossfade.py simple A B -o OUT.wav [--style equal_power] [--seconds 4]
                        [--beat-sync [--beats 16] [--candidate N]] [--key-match]
                        [--schedule bass_swap|vocal_handoff|drums_first|FILE.json
                         [--stems-a DIR] [--stems-b DIR] [--backend auto|demucs|dsp]]
                        [--context 5|full] [--sr 44100]
    python crossfade.py mix SONG... -o MIX.mp3 [--order keep|auto] [--schedule NAME]
                        [--no-beat-sync] [--beats 16]     # + MIX.cue, MIX.json
    python crossfade.py neural A B -o OUT.wav --weights RUN [--style linear|hann|equal_power]
    python crossfade.py prep SONGS_DIR -o clips.h5 [--seconds 4]
    python crossfade.py train --data clips.h5 --run RUN [--preset small] [--steps N]
    python crossfade.py evaluate A B [-o DIR] [--weights RUN]
    python crossfade.py import-nsynth CKPT_DIR_OR_TAR --run RUN    # Magenta's checkpoint
    python crossfade.py fetch-nsynth [--to DIR] [--run RUN] [--offline]

Both interfaces run the same code (:mod:`deepaudio.crossfade`). Every output comes
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
import hashlib
import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

from deepaudio.core.download import OFFLINE_ENV
from deepaudio.core.errors import ToolkitError, user_errors_exit_2
from deepaudio.crossfade.clips import prep_clips
from deepaudio.crossfade.deepbass import run_deepbass, write_default_ini
from deepaudio.crossfade.evaluate import evaluate
from deepaudio.crossfade.neural import NEURAL_STYLES, crossfade_neural
from deepaudio.crossfade.playlist import ORDERS, render_mix
from deepaudio.crossfade.schedules import SCHEDULES
from deepaudio.crossfade.songs import SIMPLE_STYLES, StemSource, crossfade_songs, write_output
from deepaudio.mixer.separate import BACKENDS, separate
from deepaudio.mixer.stems import stem_source
from deepaudio.networks.nsynth import (
    CHECKPOINT_URL,
    MAGENTA_DILATION_CYCLE,
    URL_ENV,
    fetch_nsynth,
    import_nsynth,
)
from deepaudio.training.wavenet import train_wavenet


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


def _number(cast: type, lo: float, hi: float, *, lo_open: bool = False,
            hi_open: bool = False, what: str = "a number"):
    """An argparse type: ``cast(value)`` in [lo, hi] (open ends where asked), with an error
    that states the range."""
    def check(value: str):
        try:
            x = cast(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {what}, got {value!r}") from None
        if (x < lo or (lo_open and x == lo)) or (x > hi or (hi_open and x == hi)):
            if hi == float("inf"):
                rule = f"{'>' if lo_open else '>='} {lo:g}"
            else:
                rule = f"in {'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"
            raise argparse.ArgumentTypeError(f"must be {rule}, got {value!r}")
        return x
    return check


_positive = _number(float, 0, float("inf"), lo_open=True)
_rate = _number(int, 8000, 192000, what="an integer in Hz")
_fraction = _number(float, 0, 1, lo_open=True, hi_open=True)


STEMS_CACHE = "~/.cache/deepaudio/stems"


def song_stems(song: str, folder: str | None, *, backend: str = "auto",
               model: str = "htdemucs", cache: str | None = None,
               offline: bool | None = None) -> StemSource:
    """A song's stems for a stem schedule: its given folder, or the separation cached under
    ``cache/<content hash>-<backend>-<model>/`` (separated now, with a progress bar, when
    missing; into a temporary folder renamed into place, so an interrupted run leaves none)."""
    if folder is not None:
        return stem_source(os.path.expanduser(folder))
    digest = hashlib.sha256()
    with open(os.path.expanduser(song), "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    root = Path(os.path.expanduser(cache or STEMS_CACHE))
    target = root / f"{digest.hexdigest()[:20]}-{backend}-{model}"
    if not (target / "stems.json").is_file():
        partial = target.with_name(target.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        with tqdm(total=100, unit="%", desc=f"separating {Path(song).name}") as bar:
            def progress(frac: float, stage: str) -> None:
                bar.set_postfix_str(stage)
                bar.update(round(100 * frac) - bar.n)
            separate(os.path.expanduser(song), partial, backend=backend, model=model,
                     progress=progress, offline=offline)
        shutil.rmtree(target, ignore_errors=True)
        partial.rename(target)
    return stem_source(target)


def _keys_line(keys: dict) -> str:
    name = lambda k: f"{k['name']} ({k['camelot']})" if k else "none"  # noqa: E731
    line = f"{name(keys['a'])} -> {name(keys['b'])}"
    if keys.get("relation"):
        line += f", {keys['relation']}"
    if keys.get("shift_semitones"):
        line += (f"; B shifted {keys['shift_semitones']:+d} semitones to "
                 f"{name(keys.get('b_shifted'))}"
                 + (" (by hand)" if keys.get("shift_by_hand") else ""))
    if keys.get("reason"):
        line += f" ({keys['reason']})"
    return line


def get_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="crossfade.py", description="Crossfades between two songs.")
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
    p.add_argument("--key-match", action="store_true",
                   help="shift B by up to 2 semitones (Rubber Band, tempo kept) to a key "
                        "that mixes with A's (same, relative or a fifth away)")
    p.add_argument("--shift", type=_number(int, -2, 2, what="a whole number of semitones"),
                   default=None, help="shift B by this many semitones (-2..2, Rubber Band, "
                   "tempo kept) whatever the keys; instead of --key-match")
    p.add_argument("--candidate", type=_number(int, 0, 1000, what="an integer"), default=0,
                   help="with --beat-sync: render the planner's candidate of this rank "
                        "(default 0, the best; the sidecar lists them all)")
    p.add_argument("--schedule", default=None,
                   help=f"one gain curve per stem: {', '.join(SCHEDULES)}, or a JSON file "
                        "(needs --beat-sync; stems from --stems-a/--stems-b, or separated)")
    p.add_argument("--stems-a", default=None, help="the first song's stem folder "
                   "(mixer_api.py separate's output); default: separate it")
    p.add_argument("--stems-b", default=None, help="the second song's stem folder")
    p.add_argument("--backend", choices=BACKENDS, default="auto",
                   help="separator for songs without a stem folder (default auto)")
    p.add_argument("--model", default="htdemucs", help="Demucs model (default htdemucs)")
    p.add_argument("--stems-cache", default=None,
                   help=f"where separated stems are kept (default {STEMS_CACHE})")
    p.add_argument("--offline", action="store_true", default=None,
                   help=f"never fetch separation weights (also ${OFFLINE_ENV}=1)")

    p = sub.add_parser("mix", help="a continuous mix of N songs with planned transitions, "
                       "and its cue sheet")
    p.add_argument("songs", nargs="+", metavar="SONG")
    p.add_argument("-o", "--output", required=True,
                   help="the mix (.mp3 .flac .wav .ogg .m4a); OUT.cue and OUT.json beside it")
    p.add_argument("--order", choices=ORDERS, default="keep",
                   help="keep the given order, or auto: the first song first, then by key "
                        "and tempo compatibility")
    p.add_argument("--no-beat-sync", dest="beat_sync", action="store_false",
                   help="plain fades of --seconds instead of planned beat-synchronous ones")
    p.add_argument("--beats", type=int, choices=(8, 16, 32), default=16)
    p.add_argument("--style", choices=SIMPLE_STYLES, default="equal_power")
    p.add_argument("--seconds", type=_positive, default=8.0,
                   help="overlap of plain fades and fallbacks (default 8)")
    p.add_argument("--schedule", default=None,
                   help=f"a stem schedule for every transition: {', '.join(SCHEDULES)}, or a "
                        "JSON file (songs separated once and cached)")
    p.add_argument("--backend", choices=BACKENDS, default="auto")
    p.add_argument("--model", default="htdemucs", help="Demucs model (default htdemucs)")
    p.add_argument("--stems-cache", default=None,
                   help=f"where separated stems are kept (default {STEMS_CACHE})")
    p.add_argument("--offline", action="store_true", default=None,
                   help=f"never fetch separation weights (also ${OFFLINE_ENV}=1)")
    p.add_argument("--sr", type=_rate, default=44100, help="output rate (default 44100)")

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
    p.add_argument("--preset", choices=("small", "nsynth"), default=None,
                   help="model of a new run (default small); a resumed run keeps its own")
    p.add_argument("--steps", type=int, default=1000,
                   help="training steps in all (with --resume: up to this many)")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--crop", type=int, default=6144, help="samples per training crop")
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resume", action="store_true")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")

    p = sub.add_parser("import-nsynth",
                       help="convert Magenta's NSynth WaveNet checkpoint into a run")
    p.add_argument("checkpoint", help="wavenet-ckpt.tar, the folder it unpacks to, or the "
                   "checkpoint's prefix (model.ckpt-200000)")
    p.add_argument("--run", required=True, help="a new run folder to write")
    p.add_argument("--dilation-cycle", type=_number(int, 1, 14, what="an integer"),
                   default=MAGENTA_DILATION_CYCLE, help="layers per dilation cycle (10 in "
                   "Magenta's model; not stored in the checkpoint)")

    p = sub.add_parser("fetch-nsynth", help="download Magenta's NSynth checkpoint (resumable) "
                       "and import it")
    p.add_argument("--to", default=None, help="folder for the archive (default "
                   "~/.cache/deepaudio/nsynth)")
    p.add_argument("--run", default="models/runs/nsynth", help="run folder to write "
                   "(default models/runs/nsynth)")
    p.add_argument("--url", default=None, help=f"a mirror (default {CHECKPOINT_URL}, or "
                   f"${URL_ENV})")
    p.add_argument("--offline", action="store_true", default=None,
                   help=f"never connect (also ${OFFLINE_ENV}=1)")

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
        path = Path(os.path.expanduser(args.path))
        if path.exists() and not args.force:
            raise ToolkitError(f"{path} exists; pass --force to overwrite it")
        print(f"wrote {write_default_ini(path)}")
    elif args.command == "simple":
        if args.shift and args.key_match:
            raise ToolkitError("--shift and --key-match both shift B: give one of them")
        stems_a = stems_b = None
        if args.schedule is not None or args.stems_a or args.stems_b:
            stems_a, stems_b = (
                song_stems(song, folder, backend=args.backend, model=args.model,
                           cache=args.stems_cache, offline=args.offline)
                for song, folder in ((args.first_song, args.stems_a),
                                     (args.second_song, args.stems_b)))
        out = crossfade_songs(args.first_song, args.second_song, sr=args.sr, style=args.style,
                              seconds=args.seconds, context=args.context,
                              beat_sync=args.beat_sync, beats=args.beats, seed=args.seed,
                              threshold=args.threshold, threshold_db=args.threshold_db,
                              key_match=args.key_match, schedule=args.schedule,
                              stems_a=stems_a, stems_b=stems_b, candidate=args.candidate,
                              shift=args.shift)
        path = write_output(args.output, out)
        s = out["sidecar"]
        print(f"wrote {path} ({s['duration_s']:.2f} s, {s['mode']}, {s['style']}, "
              f"overlap {s['seconds']:.2f} s at {s['overlap_start_in_output_s']:.2f} s)")
        print(f"keys: {_keys_line(s['keys'])}")
        if s["fallback_reason"]:
            print(f"fallback: {s['fallback_reason']}")
        if s["candidates"]:
            c = s["candidates"][s["candidate"]]
            print(f"planner: candidate {c['rank']} of {len(s['candidates'])} (score "
                  f"{c['score']:.3f}): A from {c['a_start_in_song_s']:.2f} s, B from "
                  f"{c['b_entry_in_song_s']:.2f} s, {c['beats']} beats"
                  + (f"; schedule {s['schedule']['name']}" if s["schedule"] else ""))
    elif args.command == "mix":
        stems = None
        if args.schedule is not None:
            stems = lambda song: song_stems(  # noqa: E731
                str(song), None, backend=args.backend, model=args.model,
                cache=args.stems_cache, offline=args.offline)
        with tqdm(total=1000, desc="mixing", bar_format="{l_bar}{bar}| {elapsed}<{remaining}"
                  " {postfix}") as bar:
            def progress(frac: float, stage: str) -> None:
                bar.set_postfix_str(stage, refresh=False)
                bar.update(max(0, round(1000 * frac) - bar.n))
            rep = render_mix(args.songs, args.output, sr=args.sr, order=args.order,
                             beat_sync=args.beat_sync, beats=args.beats, style=args.style,
                             seconds=args.seconds, schedule=args.schedule, stems=stems,
                             progress=progress)
        mix = Path(rep["output"])
        print(f"wrote {mix} ({rep['duration_s'] / 60:.1f} min, {len(rep['tracks'])} songs), "
              f"{mix.with_suffix('.cue').name} and {mix.with_suffix('.json').name}")
        for t in rep["tracks"]:
            key = t["key"]["camelot"] if t["key"] else "-"
            tempo = f"{t['tempo']:.1f} bpm" if t["tempo"] else "-"
            print(f"  {t['start_s'] // 60:02.0f}:{t['start_s'] % 60:05.2f}  {t['title']}"
                  + (f"  ({key}, {tempo})" if rep["order"] == "auto" else ""))
        for tr in rep["transitions"]:
            if tr["fallback_reason"]:
                print(f"  transition {tr['from'] + 1}->{tr['to'] + 1}: {tr['fallback_reason']}")
        if rep["clipped_samples"]:
            print(f"warning: {rep['clipped_samples']} samples clipped at full scale")
    elif args.command == "neural":
        out = crossfade_neural(args.first_song, args.second_song, args.weights,
                               style=args.style, seconds=args.seconds, context=args.context,
                               seed=args.seed, sampling=args.sampling, device=args.device,
                               threshold=args.threshold)
        path = write_output(args.output, out)
        np.save(path.with_name("a_end_enc.npy"), np.asarray(out["enc_a"]))
        np.save(path.with_name("b_begin_enc.npy"), np.asarray(out["enc_b"]))
        gen = out["sidecar"]["generation"]
        print(f"wrote {path} and its encodings a_end_enc.npy, b_begin_enc.npy (decoded "
              f"{gen['samples']} samples in {gen['seconds']:.1f} s, "
              f"{gen['samples_per_s']:.0f} samples/s)")
    elif args.command == "prep":
        rep = prep_clips(args.songs_dir, args.output, seconds=args.seconds, sr=args.sr,
                         min_duration=args.min_duration)
        print(f"wrote {rep['path']}: {rep['clips']} clips from {rep['songs']} songs, "
              f"{len(rep['skipped'])} skipped")
    elif args.command == "train":
        rep = train_wavenet(args.data, args.run, preset=args.preset, steps=args.steps,
                            batch_size=args.batch_size, crop=args.crop, lr=args.lr,
                            seed=args.seed, resume=args.resume, device=args.device)
        print(json.dumps(rep, indent=2, default=str))
    elif args.command in ("import-nsynth", "fetch-nsynth"):
        if args.command == "import-nsynth":
            rep = import_nsynth(os.path.expanduser(args.checkpoint), os.path.expanduser(args.run),
                                dilation_cycle=args.dilation_cycle)
        else:
            rep = fetch_nsynth(os.path.expanduser(args.run), to=args.to, url=args.url,
                               offline=args.offline)
        print(f"wrote {rep['run_dir']}: {rep['parameters']:,} parameters from "
              f"{rep['checkpoint']}; use it with --weights {rep['run_dir']}")
    elif args.command == "evaluate":
        evaluate(args.first_song, args.second_song, args.output_dir, sr=args.sr,
                 seconds=args.seconds, context=args.context, seed=args.seed,
                 threshold=args.threshold, weights=args.weights, device=args.device)
    return 0
