"""``python api.py``: serve the playground (the JSON API and the three pages) with waitress.

    python api.py [--host 127.0.0.1] [--port 5000] [--data DIR] [--fma DIR] [--models DIR]
"""

from __future__ import annotations

import argparse
import logging
import os

from deepaudio.core.errors import user_errors_exit_2
from deepaudio.web.app import ServerConfig, create_app


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="Serve the playground (API + demo/) with waitress.")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=5000)
    p.add_argument("--data", default="data", help="data folder: database, uploads, caches")
    p.add_argument("--fma", default="datasets/fma", help="FMA (or sample set) folder")
    p.add_argument("--models", default="models/runs", help="folder of trained runs")
    p.add_argument("--max-upload-mb", type=float, default=200.0)
    p.add_argument("--max-duration-minutes", type=float, default=20.0,
                   help="longest upload accepted (checked before decoding)")
    p.add_argument("--crossfade-cache-mb", type=float, default=1024.0,
                   help="disk kept for rendered crossfades; the least recently used go first")
    p.add_argument("--stem-cache-mb", type=float, default=ServerConfig.stem_cache_mb,
                   help="memory kept for decoded stems, so re-rendering a mix only mixes")
    p.add_argument("--timeline-memory-mb", type=float, default=ServerConfig.timeline_memory_mb,
                   help="memory kept for feature timelines")
    p.add_argument("--timeline-cache-mb", type=float, default=ServerConfig.timeline_cache_mb,
                   help="feature timelines kept in the database; the oldest go first")
    p.add_argument("--cors-origin", action="append", default=[],
                   help="allow this origin cross-site (repeatable); default same-origin only")
    p.add_argument("--allowed-host", action="append", default=[],
                   help="a host name or address the server answers to besides localhost "
                        "(repeatable; needed to serve beyond this machine)")
    p.add_argument("--mixer-backend", choices=["auto", "dsp", "demucs"], default="auto",
                   help="auto: Demucs when its weights are here or can be fetched, else DSP")
    p.add_argument("--demucs-repo", help="local folder with Demucs weights (offline)")
    p.add_argument("--demucs-model", default="htdemucs")
    p.add_argument("--redis", help="redis://... to run jobs on separate Huey workers")
    p.add_argument("--max-jobs-per-user", type=int, default=ServerConfig.max_jobs_per_user,
                   help="separation jobs a user may have queued or running (more answer 429)")
    p.add_argument("--worker-heartbeat-timeout", type=float,
                   default=ServerConfig.worker_heartbeat_timeout,
                   help="seconds without a heartbeat after which a Redis worker's job is "
                        "queued again")
    p.add_argument("--training-folder",
                   help="a folder of songs users may train a model on from the page (with "
                        "their uploads; default: uploads only)")
    p.add_argument("--threads", type=int, default=8)
    return p


@user_errors_exit_2
def main(argv: list[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    os.umask(0o077)                     # what the server writes is readable by its user only
    hosts = ["localhost", "127.0.0.1", "::1"] + args.allowed_host
    if args.host not in ("0.0.0.0", "::", ""):
        hosts.append(args.host)
    app = create_app({"allowed_hosts": hosts, "data_dir": args.data, "fma_dir": args.fma,
                      "models_dir": args.models,
                      "max_upload_mb": args.max_upload_mb, "cors_origins": args.cors_origin,
                      "max_duration_minutes": args.max_duration_minutes,
                      "crossfade_cache_mb": args.crossfade_cache_mb,
                      "stem_cache_mb": args.stem_cache_mb,
                      "timeline_memory_mb": args.timeline_memory_mb,
                      "timeline_cache_mb": args.timeline_cache_mb,
                      "mixer_backend": args.mixer_backend, "demucs_repo": args.demucs_repo,
                      "demucs_model": args.demucs_model, "redis_url": args.redis,
                      "max_jobs_per_user": args.max_jobs_per_user,
                      "worker_heartbeat_timeout": args.worker_heartbeat_timeout,
                      "training_folder": args.training_folder})
    from waitress import serve
    print(f"Playground at http://{args.host}:{args.port}/  (Ctrl-C stops)", flush=True)
    serve(app, host=args.host, port=args.port, threads=args.threads, ident="playground")
    return 0
