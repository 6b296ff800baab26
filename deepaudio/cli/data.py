"""``python data_processor.py``: the FMA-format sample set, processed datasets, shards.

    python data_processor.py sample --out datasets/fma --tracks-per-genre 10 [--stems]
    python data_processor.py fetch --subset metadata|small|medium|large|full --to datasets/fma
    python data_processor.py corpus --to datasets/debian [--songs 100]   # real, free music
    python data_processor.py process -c datasets/processed/samples/mfcc_ae.json [--workers 2]
    python data_processor.py process -c CONFIG --shard 0/4     # on a cluster, one per array task
    python data_processor.py merge -c CONFIG                   # after every shard has finished
    python data_processor.py info datasets/processed/sample/mfcc_ae_sample.h5
    python data_processor.py beat-corpus --split train --out datasets/beats --shards 24
"""

from __future__ import annotations

import argparse
import json
import os

from deepaudio.core.config import load_config
from deepaudio.core.datasets import dataset_summary
from deepaudio.core.download import OFFLINE_ENV
from deepaudio.core.errors import ToolkitError, user_errors_exit_2
from deepaudio.data.beatcorpus import SPLITS as BEAT_SPLITS
from deepaudio.data.beatcorpus import write_corpus
from deepaudio.data.config import DatasetConfig
from deepaudio.data.corpus import PACKAGES as CORPUS_PACKAGES
from deepaudio.data.corpus import build_corpus
from deepaudio.data.fetch import FMA_URL, SUBSETS, URL_ENV, fetch_fma
from deepaudio.data.process import merge_shards, process_dataset
from deepaudio.data.samples import write_sample_set


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description="The FMA-format sample set, processed datasets and their shards.")
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("sample", help="write the synthesized FMA-format sample set")
    s.add_argument("--out", default="datasets/fma")
    s.add_argument("--tracks-per-genre", type=int, default=10)
    s.add_argument("--seconds", type=float, default=30.0)
    s.add_argument("--stems", action="store_true", help="also write true stems (FLAC)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    s.add_argument("--overwrite", action="store_true")
    f = sub.add_parser("fetch", help="download FMA's archives (resumable, SHA-1 checked) and "
                       "unpack them into the layout process reads")
    f.add_argument("--subset", choices=SUBSETS, required=True,
                   help="an audio subset also brings fma_metadata, which process needs")
    f.add_argument("--to", default="datasets/fma", help="folder (default datasets/fma)")
    f.add_argument("--url", default=None, help=f"a mirror (default {FMA_URL}, or ${URL_ENV})")
    f.add_argument("--offline", action="store_true", default=None,
                   help=f"never connect (also ${OFFLINE_ENV}=1)")
    f.add_argument("--keep-archives", action="store_true",
                   help="keep the .zip files after unpacking them")
    c = sub.add_parser("corpus", help="a folder of real, free-licensed songs from Debian's "
                       "game-music packages (apt-get download; nothing installed)")
    c.add_argument("--to", default="datasets/debian", help="folder (default datasets/debian)")
    c.add_argument("--songs", type=int, default=100)
    c.add_argument("--min-seconds", type=float, default=30.0)
    c.add_argument("--packages", default=",".join(CORPUS_PACKAGES),
                   help="comma-separated Debian packages (default: %(default)s)")
    pr = sub.add_parser("process", help="segment a dataset into HDF5")
    pr.add_argument("-c", "--config", required=True)
    pr.add_argument("--overwrite", action="store_true", help="discard stored data and config")
    pr.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    pr.add_argument("--shard", help="I/N: process only shard I of N (merge afterwards)")
    m = sub.add_parser("merge", help="merge shard files into the dataset")
    m.add_argument("-c", "--config", required=True)
    i = sub.add_parser("info", help="summarise a processed dataset")
    i.add_argument("h5")
    b = sub.add_parser("beat-corpus", help="generated music with exact beats and downbeats "
                       "(MIDI through FluidSynth's soundfonts, the sample synthesis, "
                       "augmented) for the learned beat tracker; resumable, sharded")
    b.add_argument("--split", choices=sorted(BEAT_SPLITS), required=True,
                   help="train or eval (other seeds and soundfonts: docs/analysis.md)")
    b.add_argument("--out", default="datasets/beats")
    b.add_argument("--shards", type=int, default=24, help="shards in the split")
    b.add_argument("--pieces-per-shard", type=int, default=20)
    b.add_argument("--seconds", type=float, default=30.0, help="length of each piece")
    b.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    b.add_argument("--shard", help="I/N: build only shards I, I+N, ... (cluster array jobs)")
    b.add_argument("--no-augment", action="store_true", help="no augmentation")
    return p


def _shard_of(text: str | None) -> tuple[int, int]:
    if text is None:
        return 0, 1
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise ToolkitError(f"--shard must be I/N, e.g. 0/4, got {text!r}") from None
    return i, n


@user_errors_exit_2
def main(argv: list[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    if args.command == "sample":
        info = write_sample_set(args.out, tracks_per_genre=args.tracks_per_genre,
                                seconds=args.seconds, stems=args.stems, seed=args.seed,
                                workers=args.workers, overwrite=args.overwrite)
        print(json.dumps(info))
    elif args.command == "fetch":
        rep = fetch_fma(args.subset, args.to, url=args.url, offline=args.offline,
                        keep_archives=args.keep_archives)
        print(json.dumps(rep))
    elif args.command == "corpus":
        rep = build_corpus(args.to, songs=args.songs, min_seconds=args.min_seconds,
                           packages=tuple(p for p in args.packages.split(",") if p))
        print(f"{args.to}: {len(rep['songs'])} songs, {rep['minutes']} minutes, from "
              f"{', '.join(rep['packages'])} (see corpus.json)")
    elif args.command == "process":
        cfg = load_config(DatasetConfig, args.config)
        report = process_dataset(cfg, workers=args.workers, overwrite=args.overwrite,
                                 shard=args.shard)
        if report.get("already_done"):
            print(f"{report['output']} is complete (same config); nothing to do")
        else:
            print(f"{report['output']}: {report['tracks_processed']} tracks, "
                  f"{len(report['skipped'])} skipped (see {cfg.report_path}), "
                  f"{report['seconds']} s")
    elif args.command == "merge":
        report = merge_shards(load_config(DatasetConfig, args.config))
        print(f"{report['output']}: {report['tracks_processed']} tracks "
              f"from {report['shards']} shards")
    elif args.command == "info":
        print(json.dumps(dataset_summary(args.h5), indent=2))
    elif args.command == "beat-corpus":
        if args.shards < 1 or args.pieces_per_shard < 1 or not 4 <= args.seconds <= 600:
            raise ToolkitError("--shards and --pieces-per-shard must be >= 1, --seconds in "
                               "[4, 600]")
        paths = write_corpus(args.out, args.split, shards=args.shards,
                             pieces_per_shard=args.pieces_per_shard, seconds=args.seconds,
                             workers=args.workers, shard_of=_shard_of(args.shard),
                             augmentation=not args.no_augment)
        print(f"{args.out}: {len(paths)} {args.split} shards of {args.pieces_per_shard} "
              f"pieces ({len(paths) * args.pieces_per_shard * args.seconds / 3600:.1f} h)")
    return 0
