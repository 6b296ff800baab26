"""``python mapping_utils.py``: fit a mapping on a run's train partitions, or write a song's
parameter timeline (JSON) for the visualizations.

    python mapping_utils.py fit --run models/runs/playground/conv_ae --method pca
    python mapping_utils.py timeline SONG.mp3 --run models/runs/playground/conv_ae \
        --method pca --fps 30 --smoothing 0.3 --assign random --seed 7 -o timeline.json
    python mapping_utils.py sources SONG.mp3 [--stems STEMS_DIR] --fps 30 -o sources.json
    python mapping_utils.py onnx --run models/runs/playground/conv_ae --method pca -o web/
    python mapping_utils.py video SONG.mp3 --run models/runs/playground/conv_ae --viz spheres \
        -o out.mp4 [--size 1920x1080] [--fps 60] [--seed 7]
    python mapping_utils.py site -o site/ [--fma datasets/fma] [--models models/runs]

``onnx`` writes the run, its dataset scaler and the mapping as one ONNX graph
(``encoder.onnx``: unscaled features → 10 values in [0, 1]) and what a client needs to compute
those features (``frontend.json``): :mod:`deepaudio.mapping.onnx_export`; the playground's
live input and the static site run it in the browser.

``site`` writes the visualizer as a static site (``make site``): the page, the sample tracks
with their precomputed timelines and sources, and each model in ONNX for uploads and live input
(:mod:`deepaudio.web.site`).

``sources`` writes the beat-grid source (tempo, beat and bar phase, beat and downbeat pulses)
and, with a stem folder (``mixer_api.py separate``'s output), the stem source (drum onsets,
bass and vocal energy, vocal pitch, brightness of the rest): :mod:`deepaudio.mapping.sources`.
"""

from __future__ import annotations

import argparse

from deepaudio.core.audio import load_audio
from deepaudio.core.errors import ToolkitError, user_errors_exit_2
from deepaudio.core.files import atomic_write_json
from deepaudio.mapping.mappings import METHODS, fit_mapping, mapping_path
from deepaudio.mapping.onnx_export import export_onnx
from deepaudio.mapping.sources import beat_timeline, stem_timeline
from deepaudio.mapping.timeline import BLUR_SIZES, mapped_timeline
from deepaudio.mapping.video import parse_size, render_video
from deepaudio.mixer.stems import load_stems


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description="Fit feature mappings of a trained run; write a song's parameter timeline.")
    sub = p.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--run", required=True, help="a trained run folder")
    common.add_argument("--method", default="pca", choices=METHODS)
    common.add_argument("--layer", help="tap layer (classifiers: e.g. L10); default the model's")
    common.add_argument("--scaling", default="standard", choices=["standard", "minmax"])
    common.add_argument("--per", default="features", choices=["features", "across"])
    common.add_argument("--seed", type=int)
    f = sub.add_parser("fit", parents=[common], help="fit a mapping on the train partitions")
    f.add_argument("--max-segments", type=int, default=20000)
    t = sub.add_parser("timeline", parents=[common], help="a song's parameter timeline (JSON)")
    t.add_argument("song")
    t.add_argument("--fps", type=float, default=30.0)
    t.add_argument("--smoothing", type=float, default=0.0,
                   help="EWMA smoothing in [0, 1): alpha = 1 - smoothing")
    t.add_argument("--assign", default="deterministic",
                   choices=["deterministic", "random", "ranked"])
    t.add_argument("--hop", type=float, help="seconds between encoded segments")
    t.add_argument("--blur", type=int, help="box blur over this many frames, then min-max "
                   f"per song (the spectrum model used {', '.join(map(str, BLUR_SIZES))})")
    t.add_argument("-o", "--out", required=True)
    s = sub.add_parser("sources", help="a song's beat-grid (and, with --stems, stem) feature "
                       "timelines (JSON)")
    s.add_argument("song")
    s.add_argument("--stems", help="the song's stem folder (mixer_api.py separate's output)")
    s.add_argument("--fps", type=float, default=30.0)
    s.add_argument("-o", "--out", required=True)
    v = sub.add_parser("video", parents=[common], help="a music video (MP4 or WebM) of a song, "
                       "rendered frame by frame in headless Chromium")
    v.add_argument("song")
    v.add_argument("--viz", default="spheres", help="visualization id (bars, spheres, "
                   "crystals, clouds, waves, particles, lights, kaleidoscope)")
    v.add_argument("--size", default="1920x1080", help="WIDTHxHEIGHT, even sides")
    v.add_argument("--fps", type=int, default=60)
    v.add_argument("--smoothing", type=float, default=0.5,
                   help="the page's smoothing: weight kept per 1/60 s, in [0, 1)")
    v.add_argument("--assign", default="random", choices=["deterministic", "random", "ranked"])
    v.add_argument("--seconds", type=float, help="render only the first SECONDS")
    v.add_argument("-o", "--out", required=True, help=".mp4 (H.264 + AAC) or .webm (VP9)")
    o = sub.add_parser("onnx", parents=[common], help="the run and mapping as an ONNX graph "
                       "for the browser (encoder.onnx + frontend.json)")
    o.add_argument("-o", "--out", required=True, help="folder to write into")
    w = sub.add_parser("site", help="the visualizer as a static site (any static file host)")
    w.add_argument("-o", "--out", required=True, help="the site's folder (replaced if it is a "
                   "site this command built)")
    w.add_argument("--fma", default="datasets/fma", help="FMA (or sample set) folder")
    w.add_argument("--subset", default="small", help="FMA subset to index")
    w.add_argument("--models", default="models/runs", help="folder of trained runs")
    w.add_argument("--max-tracks", type=int, help="only the first N tracks")
    w.add_argument("--max-upload-mb", type=float, default=200.0,
                   help="the page refuses bigger uploads (it decodes them in memory)")
    w.add_argument("--max-upload-minutes", type=float, default=20.0,
                   help="the page refuses longer uploads")
    return p


@user_errors_exit_2
def main(argv: list[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    if args.command == "fit":
        m = fit_mapping(args.run, args.method, layer=args.layer, scaling=args.scaling,
                        per=args.per, seed=args.seed or 0, max_segments=args.max_segments)
        print(f"fitted {args.method} on layer {m.layer}: "
              f"{mapping_path(args.run, args.method, m.layer or '', args.scaling, args.per)}")
        if m.explained_variance:
            print(f"explained variance of {len(m.explained_variance)} components: "
                  f"{sum(m.explained_variance):.3f} "
                  f"({', '.join(f'{v:.3f}' for v in m.explained_variance)})")
    elif args.command == "video":
        from tqdm import tqdm
        size = parse_size(args.size)
        if args.seconds is not None and args.seconds <= 0:
            raise ToolkitError(f"--seconds must be positive, got {args.seconds}")
        with tqdm(unit="frame", desc="rendering") as bar:
            def progress(done: int, total: int) -> None:
                bar.total = total
                bar.update(done - bar.n)
            res = render_video(args.song, args.run, args.out, viz=args.viz, size=size,
                               fps=args.fps, method=args.method, layer=args.layer,
                               scaling=args.scaling, per=args.per, smoothing=args.smoothing,
                               assign=args.assign, seed=args.seed, max_seconds=args.seconds,
                               progress=progress)
        print(f"{args.out}: {res['frames']} frames at {res['fps']} fps ({res['seconds']:.2f} s, "
              f"{size[0]}x{size[1]}, {res['video_codec']} + {res['audio_codec']}); "
              f"seed {res['seed']}")
    elif args.command == "site":
        from tqdm import tqdm

        from deepaudio.web.site import build_site
        if args.max_tracks is not None and args.max_tracks < 1:
            raise ToolkitError(f"--max-tracks must be >= 1, got {args.max_tracks}")
        bars: list[tqdm] = []       # the bar starts with the first step (errors come first)

        def step(done: int, total: int, what: str) -> None:
            if not bars:
                bars.append(tqdm(total=total, unit="step", desc="building the site"))
            bars[0].update(done - bars[0].n)
        try:
            info = build_site(args.out, fma_dir=args.fma, models_dir=args.models,
                              fma_subset=args.subset, max_tracks=args.max_tracks,
                              max_upload_mb=args.max_upload_mb,
                              max_upload_minutes=args.max_upload_minutes, progress=step)
        finally:
            for bar in bars:
                bar.close()
        no_onnx = [r for r, e in info["runs"].items() if not e["onnx"]]
        print(f"{args.out}: {info['tracks']} tracks, {len(info['runs'])} models"
              + (f" ({', '.join(no_onnx)} without ONNX: uploads cannot use them)"
                 if no_onnx else "")
              + f"; serve it with any static file server, e.g. "
                f"python -m http.server -d {args.out}")
    elif args.command == "onnx":
        folder = export_onnx(args.run, method=args.method, layer=args.layer,
                             scaling=args.scaling, per=args.per, out_dir=args.out)
        nbytes = (folder / "encoder.onnx").stat().st_size
        print(f"{folder}/encoder.onnx ({nbytes / 1e6:.1f} MB) and {folder}/frontend.json")
    elif args.command == "sources":
        y, sr = load_audio(args.song, mono=False)
        beats = beat_timeline(y, sr, fps=args.fps)
        out = {"beats": beats.to_json()}
        line = (f"beats: {beats.meta['bpm']:.1f} bpm, {beats.meta['beats']} beats in bars of "
                f"{beats.meta['beats_per_bar']} ({beats.meta['backend']} tracker"
                + (f": {beats.meta['backend_reason']}" if beats.meta["backend_reason"] else "")
                + ")" if beats.meta["bpm"] else f"beats: none ({beats.meta['reason']})")
        if args.stems:
            stems, stem_sr = load_stems(args.stems)
            tl = stem_timeline(stems, stem_sr, fps=args.fps)
            out["stems"] = tl.to_json()
            line += f"; stems: {', '.join(tl.names)}"
        atomic_write_json(args.out, out)
        print(f"{args.out}: {len(beats.frames)} frames at {beats.fps:g} fps; {line}")
    else:
        tl = mapped_timeline(args.song, args.run, method=args.method, layer=args.layer,
                             scaling=args.scaling, per=args.per, fps=args.fps,
                             smoothing=args.smoothing, assign=args.assign, seed=args.seed,
                             hop_seconds=args.hop, blur=args.blur)
        atomic_write_json(args.out, tl.to_json())
        print(f"{args.out}: {len(tl.frames)} frames at {tl.fps:g} fps "
              f"(assignment {tl.meta['assignment']}, seed {tl.meta['seed']})")
    return 0
