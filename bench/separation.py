"""Separation and mixing speed and memory: our path against Demucs' own ``apply_model``.

Same input, same weights (a randomly initialised, reduced HTDemucs saved in demucs'
local-repo format and loaded through demucs' loading code; no download), each measurement in a
fresh process so peak RSS is its own:

  * direct     demucs.pretrained.get_model + decode + apply_model(shifts=1, split=True) on the
               whole track, output kept in memory (what Separator.separate_tensor does)
  * ours       deepaudio.mixer.separate: the same chunks streamed to disk as 24-bit FLAC stems
  * dsp        the weight-free backend: real-time factor
  * mix        4-stem, 4-minute server renders (gain, pan, LUFS + true-peak ceiling; one
               drum-heavy mix with and without the limiter) with the stems cached in
               memory, and the cold decode + export times

Targets: ours within 5 % of direct in time, bounded memory on long tracks, mix < 0.5 s.
Prints figures; asserts nothing.

    python bench/separation.py [--seconds 60] [--long 600] [--channels 16]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
from _timing import peak_rss_mb

from deepaudio.core.audio import load_audio, save_audio
from deepaudio.data.samples import render_track
from deepaudio.mixer.render import FORMATS, export_mix, mix_settings, render_mix
from deepaudio.mixer.separate import separate
from deepaudio.mixer.stems import StemCache, StemWriter, open_stems

ROOT = Path(__file__).resolve().parents[1]

STEMS = ("drums", "bass", "other", "vocals")


def make_repo(folder: Path, channels: int) -> None:
    import torch
    from demucs.htdemucs import HTDemucs
    from demucs.states import get_state, save_with_checksum
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = HTDemucs(list(STEMS), channels=channels, depth=4, segment=7.8, t_layers=2)
    args, kwargs = model._init_args_kwargs
    save_with_checksum({"klass": HTDemucs, "args": args, "kwargs": kwargs,
                        "state": get_state(model, None, half=False)}, folder / "b0b0b0b0.th")
    (folder / "benchht.yaml").write_text("models: ['b0b0b0b0']\n")
    print(f"model: HTDemucs channels={channels}, depth 4, 7.8 s segments, "
          f"{sum(p.numel() for p in model.parameters()) / 1e6:.2f} M parameters "
          f"(full htdemucs: channels=48, 26.9 M)")


def make_song(path: Path, seconds: float) -> None:
    stems, _ = render_track("Pop", 1, seed=0, seconds=min(seconds, 60.0))
    mix = sum(stems.values())
    reps = int(np.ceil(seconds / (mix.shape[1] / 44100)))
    save_audio(path, np.tile(mix, reps)[:, :int(seconds * 44100)], 44100, sample_format="pcm16")


def child(mode: str, song: str, repo: str, out: str) -> dict:
    import random

    import torch
    random.seed(0)
    torch.set_num_threads(torch.get_num_threads())
    t0 = time.perf_counter()
    if mode == "direct":
        from demucs.apply import apply_model
        from demucs.pretrained import get_model

        model = get_model("benchht", Path(repo))
        t1 = time.perf_counter()
        audio, _ = load_audio(song, sr=model.samplerate, mono=False)
        wav = torch.from_numpy(audio)
        ref = wav.mean(0)
        mean, std = ref.mean(), ref.std() + 1e-8
        with torch.no_grad():
            out_t = apply_model(model, ((wav - mean) / std)[None], shifts=1, split=True,
                                overlap=0.25) * std + mean
        result = {"model_seconds": time.perf_counter() - t1, "shape": list(out_t.shape)}
    elif mode == "ours":
        manifest = separate(song, out, backend="demucs", model="benchht", repo=repo)
        result = {"model_seconds": manifest["separation_seconds"]}
    elif mode == "dsp":
        manifest = separate(song, out, backend="dsp")
        result = {"model_seconds": manifest["separation_seconds"],
                  "duration": manifest["duration"]}
    else:
        raise ValueError(mode)
    result.update(seconds=time.perf_counter() - t0, peak_rss_mb=peak_rss_mb())
    return result


def run_child(mode: str, song: Path, repo: Path, out: Path) -> dict:
    cmd = [sys.executable, __file__, "--child", mode, str(song), str(repo), str(out)]
    res = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def bench_mix(tmp: Path) -> None:
    stems, _ = render_track("Rock", 2, seed=0, seconds=60.0)
    writer = StemWriter(tmp / "mixstems", 44100)
    block = np.stack([stems[s] for s in STEMS])
    for _ in range(4):                                    # 4 minutes
        writer.write(block)
    writer.close({"backend": "bench", "model": "true stems"})
    cache = StemCache(2 << 30)
    folder = open_stems(tmp / "mixstems")
    sr = folder.sr
    t0 = time.perf_counter()
    stack, names = cache.source(folder)
    cold = time.perf_counter() - t0
    print(f"first decode of the FLAC stems {cold:.2f} s")
    # the first mix meets -14 LUFS under the ceiling with gain alone; the drum-heavy one needs
    # the true-peak limiter (what drum-heavy songs get); --no-limiter lowers the whole gain
    cases = [("lufs + true peak", {"gains": {"vocals": 3, "drums": -6}, "pans": {"bass": -0.2},
                                   "normalize": "lufs"}),
             ("drums +6 dB, limiter", {"gains": {"drums": 6}, "normalize": "lufs"}),
             ("drums +6 dB, no limiter", {"gains": {"drums": 6}, "normalize": "lufs",
                                          "limiter": False})]
    for label, raw in cases:
        settings = mix_settings(raw)
        times = []
        for _ in range(5):
            t0 = time.perf_counter()
            stack, names = cache.source(folder)
            out, report = render_mix((stack, names), sr, settings)
            times.append(time.perf_counter() - t0)
        if label == cases[0][0]:
            audio = out
        limited = (f", limiter {report['limiter_max_reduction_db']:.1f} dB max on "
                   f"{report['limiter_limited_percent']:.1f} % of samples"
                   if "limiter_max_reduction_db" in report else "")
        print(f"mix render, 4 stems x {stack.shape[-1] / sr / 60:.0f} min, {label}: "
              f"median {np.median(times):.3f} s, best {min(times):.3f} s (target < 0.5 s); "
              f"{report.get('output_lufs', float('nan')):.1f} LUFS{limited}")
    for fmt in ("wav16", "flac", "mp3"):
        t0 = time.perf_counter()
        export_mix(tmp / f"mix-{fmt}{FORMATS[fmt][0]}", audio, sr, fmt)
        print(f"  export {fmt:<5} {time.perf_counter() - t0:.2f} s")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=60.0, help="length of the test song")
    p.add_argument("--long", type=float, default=0.0,
                   help="also compare peak memory on a song this long (seconds)")
    p.add_argument("--channels", type=int, default=16, help="HTDemucs width (full size: 48)")
    p.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        print(json.dumps(child(*args.child)))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        make_repo(tmp / "repo", args.channels)
        lengths = [args.seconds] + ([args.long] if args.long else [])
        for seconds in lengths:
            song = tmp / f"song{int(seconds)}.wav"
            make_song(song, seconds)
            print(f"\n{seconds:.0f} s song, 44.1 kHz stereo, shifts=1, overlap 0.25")
            res = {m: run_child(m, song, tmp / "repo", tmp / f"out-{m}")
                   for m in ("direct", "ours")}
            for m, r in res.items():
                print(f"  {m:<7} total {r['seconds']:7.2f} s   model loop "
                      f"{r['model_seconds']:7.2f} s   peak RSS {r['peak_rss_mb']:7.0f} MB")
            d, o = res["direct"], res["ours"]
            loop = 100 * (o["model_seconds"] / d["model_seconds"] - 1)
            print(f"  overhead: model loop {loop:+.1f} %, end to end (ours writes FLAC stems) "
                  f"{100 * (o['seconds'] / d['seconds'] - 1):+.1f} %, peak RSS "
                  f"{o['peak_rss_mb'] - d['peak_rss_mb']:+.0f} MB")
        song = tmp / f"song{int(args.seconds)}.wav"
        r = run_child("dsp", song, tmp / "repo", tmp / "out-dsp")
        print(f"\ndsp backend: {r['seconds']:.2f} s for {r['duration']:.0f} s of audio: real-time "
              f"factor {r['seconds'] / r['duration']:.3f} (separation alone "
              f"{r['model_seconds'] / r['duration']:.3f}), peak RSS {r['peak_rss_mb']:.0f} MB\n")
        bench_mix(tmp)
    return 0


if __name__ == "__main__":
    sys.exit(main())
