"""Peak memory of a song's features and of a mix export against the song's length.

    python bench/memory.py [--lengths 10s,1m,5m,10m,20m] [--models models/runs]

Each measurement runs in a fresh process: it first does the same work on a 10 s song (models,
libraries and caches loaded), then resets the kernel's high-water mark and measures the peak
resident memory the long song adds (VmHWM minus the resident memory before it), with one BLAS
thread. For each length:

* features   what ``GET /api/tracks/<id>/features`` and ``/genres`` compute: the autoencoder
             run's codes at a 0.1 s hop and the classifier's genre probabilities, streamed
             (``encode_track``, ``genre_probabilities``), against the whole-song path they
             replaced (decode and resample the whole song, MFCCs of the whole song, all
             segments scaled and encoded at once);
* export     what ``POST /api/mixer/jobs/<id>/mix`` does: four 24-bit FLAC stems mixed and
             normalised to -14 LUFS under -1 dBTP with the limiter working, written as WAV,
             block by block from the stem folder (``render_to_file``), against the whole-array
             path (decode the stems, stack them, render, export).

Targets: features flat in the song's length (past the first batch), export linear in the
output only (the float mix and its loudness energy, 12 bytes per frame). Prints figures;
asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
from _timing import peak_rss_mb, reset_peak_rss, rss_mb

ROOT = Path(__file__).resolve().parents[1]
SR = 44100


def write_song(path: Path, seconds: float) -> Path:
    """Stereo FLAC music-like test signal (tones changing every 10 s, noise, a pulse)."""
    rng = np.random.default_rng(0)
    with sf.SoundFile(str(path), "w", SR, 2, format="FLAC") as f:
        done = 0
        while done < seconds * SR:
            n = int(min(10 * SR, seconds * SR - done))
            t = (np.arange(n) + done) / SR
            x = 0.2 * np.sin(2 * np.pi * (220 + 20 * (done // (10 * SR) % 5)) * t) \
                + 0.05 * rng.standard_normal(n)
            x *= 0.5 + 0.5 * (np.sin(2 * np.pi * 2 * t) > 0)
            f.write(np.stack([x, 0.8 * x], 1).astype(np.float32))
            done += n
    return path


def write_stems(folder: Path, song: Path) -> Path:
    from deepaudio.mixer.stems import StemWriter
    writer = StemWriter(folder, SR)
    for block in sf.blocks(str(song), blocksize=30 * SR, dtype="float32"):
        x = block.T
        writer.write(np.stack([x * 0.9, x * 0.3, x * 0.1, x * 0.1]))   # drums loud: limiting
    writer.close({"backend": "bench"})
    return folder


def child(what: str, way: str, small: str, big: str, models: str, out: str) -> dict:
    import torch
    torch.set_num_threads(1)
    runs = Path(models)
    ae = next(p.parent for p in sorted(runs.rglob("config.json"))
              if "autoencoder" in p.read_text())
    cls = next(p.parent for p in sorted(runs.rglob("config.json"))
               if "classifier" in p.read_text())

    def features(path: str) -> None:
        from deepaudio.mapping.encode import encode_track, genre_probabilities, get_run
        if way == "streamed":
            encode_track(path, ae, hop_seconds=0.1)
            genre_probabilities(path, cls)
            return
        from deepaudio.core.audio import load_audio
        from deepaudio.core.features import apply_scaler, mfcc_segments
        for run_dir, hop in ((ae, 0.1), (cls, None)):
            run = get_run(run_dir)
            c = run.config
            y = load_audio(path, sr=run.sr, mono=True)[0][0]
            frame = c["mfcc_hops"] / run.sr
            step = max(1, round((hop or run.segment_length()) / frame))
            segs = apply_scaler(mfcc_segments(y, run.sr, num_mfcc=c["num_mfcc"],
                                              n_mels=c["n_mels"], hop_length=c["mfcc_hops"],
                                              n_fft=c["n_fft"],
                                              frames_per_segment=c["frames_per_segment"],
                                              segment_hop=step), run.scaler)
            run.encode(segs, None)

    def export(folder: str) -> None:
        from deepaudio.mixer.render import export_mix, mix_settings, render_mix, render_to_file
        from deepaudio.mixer.stems import load_stems, open_stems
        settings = mix_settings({"normalize": "lufs"})
        if way == "streamed":
            f = open_stems(folder)
            render_to_file(f, f.sr, settings, out)
            return
        stems, sr = load_stems(folder)
        audio, _ = render_mix(stems, sr, settings)
        export_mix(out, audio, sr, "wav16")

    work = features if what == "features" else export
    work(small)
    reset_peak_rss()
    before = rss_mb()
    t = time.perf_counter()
    work(big)
    return {"seconds": time.perf_counter() - t, "growth_mb": peak_rss_mb() - before}


def measure(*args: str) -> dict:
    res = subprocess.run([sys.executable, __file__, "--child", *args], capture_output=True,
                         text=True, env={**os.environ, "OMP_NUM_THREADS": "1"},
                         cwd=ROOT)
    if res.returncode != 0:
        raise SystemExit(res.stderr[-3000:])
    return json.loads(res.stdout.strip().splitlines()[-1])


def seconds_of(text: str) -> float:
    return float(text[:-1]) * (60 if text.endswith("m") else 1)


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        print(json.dumps(child(*sys.argv[2:8])))
        return 0
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--lengths", default="10s,1m,5m,10m,20m")
    p.add_argument("--models", default=str(ROOT / "models" / "runs"))
    args = p.parse_args()
    if not any(Path(args.models).rglob("best.pt")):
        print(f"no trained runs under {args.models}: run 'make models' first", file=sys.stderr)
        return 1
    lengths = [seconds_of(x) for x in args.lengths.split(",")]
    print("peak memory added by one song (MB, fresh process, models loaded), and seconds")
    print(f"{'length':>7} | {'features':>8} {'whole':>8} {'ratio':>6} {'s':>5} | "
          f"{'export':>8} {'whole':>8} {'ratio':>6} {'s':>5} | {'float mix':>9}")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        small = write_song(tmp / "small.flac", 10.0)
        small_stems = write_stems(tmp / "small_stems", small)
        for secs in lengths:
            song = write_song(tmp / f"song{secs:.0f}.flac", secs)
            stems = write_stems(tmp / f"stems{secs:.0f}", song)
            row = {}
            for what, big, small_in in (("features", song, small),
                                        ("export", stems, small_stems)):
                for way in ("streamed", "whole"):
                    row[what, way] = measure(what, way, str(small_in), str(big), args.models,
                                             str(tmp / "mix.wav"))
            f, fw = row["features", "streamed"], row["features", "whole"]
            e, ew = row["export", "streamed"], row["export", "whole"]
            label = f"{secs / 60:.0f} min" if secs >= 60 else f"{secs:.0f} s"
            print(f"{label:>7} | {f['growth_mb']:8.0f} {fw['growth_mb']:8.0f} "
                  f"{fw['growth_mb'] / max(f['growth_mb'], 1):5.1f}x {f['seconds']:5.1f} | "
                  f"{e['growth_mb']:8.0f} {ew['growth_mb']:8.0f} "
                  f"{ew['growth_mb'] / max(e['growth_mb'], 1):5.1f}x {e['seconds']:5.1f} | "
                  f"{8 * secs * SR / 2 ** 20:9.0f}", flush=True)
            song.unlink()
    return 0


if __name__ == "__main__":
    sys.exit(main())
