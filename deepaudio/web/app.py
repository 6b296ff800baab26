"""The playground server's app factory: settings, the database, the job queue, the caches,
the error handlers and the security headers, and one blueprint per page.

    /api            tracks.py (library, uploads, audio), visualizer.py (runs, features, genres)
    /api/mixer      mixer.py (separation jobs, stems, mix export, suggestions, saved mixes)
    /api/crossfade  crossfade.py (transitions between two tracks)
    /api/training   training.py (encoders trained on a user's own songs, as jobs)
    /api/videos     videos.py (music videos of a track, rendered as jobs; created at
                    /api/tracks/<id>/videos)
    /               pages.py (demo/: the three pages and their files)

Every route is documented in ``docs/openapi.json`` (served at ``/api/openapi.json``). Fixes
from the deep-audioviz-experiments server: uploads are size-limited, content-sniffed and stored
under their hash (no name collisions, no path from the client), CORS is same-origin unless
origins are configured, and the secret key is generated per install.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import logging
import os
import re
import secrets
import shutil
import time
import typing as tp
from pathlib import Path

from flask import Flask, Response, g, jsonify, request
from werkzeug.exceptions import HTTPException

from deepaudio.core.config import ConfigError, load_config
from deepaudio.core.errors import ToolkitError
from deepaudio.core.files import atomic_write_bytes
from deepaudio.mixer.stems import StemCache
from deepaudio.web import crossfade, jobs, mixer, pages, tracks, training, videos, visualizer
from deepaudio.web.catalog import index_fma
from deepaudio.web.db import close_db, init_db
from deepaudio.web.http import ApiError, public_message
from deepaudio.web.runs import list_runs, run_dir
from deepaudio.web.visualizer import TimelineCache

REPO = Path(__file__).resolve().parents[2]      # demo/ and docs/ of the checkout
log = logging.getLogger("playground")


@dataclasses.dataclass
class ServerConfig:
    """Everything the server can be told; ``create_app({...})`` or CLI flags."""
    data_dir: str = "data"                   # SQLite database, uploads, caches, secret key
    fma_dir: str | None = "datasets/fma"     # FMA layout (fma_metadata + fma_small); null: none
    fma_subset: str = "small"
    models_dir: str = "models/runs"          # searched recursively for trained runs
    demo_dir: str = str(REPO / "demo")
    max_upload_mb: float = 200.0
    max_duration_minutes: float = 20.0       # longer uploads are refused before decoding
    crossfade_cache_mb: float = 1024.0       # rendered transitions kept (least recently used go)
    cors_origins: list[str] = dataclasses.field(default_factory=list)
    # Host names the server answers to (a DNS-rebinding page reaches it under another name);
    # serving beyond this machine needs its name or address here
    allowed_hosts: list[str] = dataclasses.field(
        default_factory=lambda: ["localhost", "127.0.0.1", "::1"])
    classifier_run: str | None = None        # run id for genre probabilities; default: first
    timeline_memory_mb: float = 64.0         # timelines and their JSON kept in memory
    timeline_cache_mb: float = 256.0         # timelines kept in SQLite (oldest go first)
    stem_cache_mb: float = 1024.0            # decoded stems kept for re-renders (longer songs
                                             # are read from disk block by block)
    mixer_backend: tp.Literal["auto", "dsp", "demucs"] = "auto"   # auto: demucs if it can
    demucs_model: str = "htdemucs"
    demucs_repo: str | None = None
    redis_url: str | None = None
    max_jobs_per_user: int = 3               # separation jobs a user may have queued or running
    worker_heartbeat_timeout: float = 30.0   # a Redis worker silent this long is taken as lost
    training_folder: str | None = None       # a folder of songs users may train a model on
    testing: bool = False

    def validate(self):
        if not 0 < self.max_duration_minutes <= 600:
            raise ConfigError("key 'max_duration_minutes' must be in (0, 600], "
                              f"got {self.max_duration_minutes}")
        if not 0 < self.max_upload_mb <= 4096:
            raise ConfigError(f"key 'max_upload_mb' must be in (0, 4096], got {self.max_upload_mb}")
        if not self.crossfade_cache_mb > 0:
            raise ConfigError("key 'crossfade_cache_mb' must be > 0, "
                              f"got {self.crossfade_cache_mb}")
        if not 1 <= self.max_jobs_per_user <= 1000:
            raise ConfigError("key 'max_jobs_per_user' must be in [1, 1000], "
                              f"got {self.max_jobs_per_user}")
        if not 5 <= self.worker_heartbeat_timeout <= 3600:
            raise ConfigError("key 'worker_heartbeat_timeout' must be in [5, 3600] seconds, "
                              f"got {self.worker_heartbeat_timeout}")
        for key in ("timeline_memory_mb", "timeline_cache_mb", "stem_cache_mb"):
            if getattr(self, key) < 0:
                raise ConfigError(f"key {key!r} must be >= 0")
        if self.training_folder is not None and not Path(
                self.training_folder).expanduser().is_dir():
            raise ConfigError(f"key 'training_folder': {self.training_folder} is not a folder")


def create_app(config: dict | ServerConfig | None = None) -> Flask:
    cfg = config if isinstance(config, ServerConfig) else load_config(ServerConfig, config or {},
                                                                      where="server config")
    data = Path(cfg.data_dir).expanduser().resolve()
    data.mkdir(parents=True, exist_ok=True)
    app = Flask(__name__, static_folder=None)
    app.config.update(
        SECRET_KEY=_secret_key(data), TESTING=cfg.testing,
        SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax",
        PERMANENT_SESSION_LIFETIME=3600 * 24 * 365,
        MAX_CONTENT_LENGTH=int(cfg.max_upload_mb * 2**20) + (1 << 20),  # + multipart overhead
        SERVER_CONFIG=cfg, DATA_DIR=str(data), DB_PATH=str(data / "playground.sqlite"),
        MAX_UPLOAD_BYTES=int(cfg.max_upload_mb * 2**20), MIXER_BACKEND=cfg.mixer_backend,
        MAX_DURATION_SECONDS=cfg.max_duration_minutes * 60,
        DEMUCS_MODEL=cfg.demucs_model, DEMUCS_REPO=cfg.demucs_repo, REDIS_URL=cfg.redis_url,
        MODELS_DIR=str(Path(cfg.models_dir).expanduser().resolve()),
        CROSSFADE_CACHE_BYTES=int(cfg.crossfade_cache_mb * 2**20),
        TIMELINE_CACHE_BYTES=int(cfg.timeline_cache_mb * 2**20),
        TRUSTED_HOSTS=[h.strip("[]") for h in cfg.allowed_hosts] or None,
        OPENAPI_PATH=str(REPO / "docs" / "openapi.json"),
    )
    init_db(app.config["DB_PATH"])
    os.chmod(data, 0o700)                   # uploads, stems and the database: the server's own
    os.chmod(app.config["DB_PATH"], 0o600)
    _remove_leftovers(data)
    if cfg.fma_dir:
        n = index_fma(app.config["DB_PATH"], Path(cfg.fma_dir).expanduser(), cfg.fma_subset)
        log.info("indexed %d FMA tracks from %s", n, cfg.fma_dir)
    app.extensions["timelines"] = TimelineCache(int(cfg.timeline_memory_mb * 2**20))
    app.extensions["stems"] = StemCache(int(cfg.stem_cache_mb * 2**20))
    runs = list_runs(app.config["MODELS_DIR"])
    app.config["CLASSIFIER_RUN"] = (
        str(run_dir(app, cfg.classifier_run)) if cfg.classifier_run else
        next((str(r["path"]) for r in runs if r["kind"] == "classifier"), None))
    app.teardown_appcontext(close_db)
    _register_errors(app)
    _register_cors(app, set(cfg.cors_origins))
    _register_headers(app, Path(cfg.demo_dir))
    jobs.init_app(app)
    crossfade.init_app(app)
    training.init_app(app)
    videos.init_app(app)
    app.register_blueprint(tracks.bp, url_prefix="/api")
    app.register_blueprint(visualizer.bp, url_prefix="/api")
    app.register_blueprint(mixer.bp, url_prefix="/api/mixer")
    app.register_blueprint(crossfade.bp, url_prefix="/api/crossfade")
    app.register_blueprint(training.bp, url_prefix="/api/training")
    app.register_blueprint(videos.bp, url_prefix="/api")
    app.register_blueprint(pages.bp)
    return app


LEFTOVER_AGE_S = 600        # a temporary file this old was left by a killed process


def _remove_leftovers(data: Path) -> None:
    """Temporary files a killed server left: half-received uploads (``.upload-*.part``) and
    removals interrupted between their commit and their deletion (``.removing-*``). Only files
    older than ``LEFTOVER_AGE_S``, so another server process's work in progress is safe."""
    now = time.time()
    for pattern in ("uploads/.upload-*.part", "**/.removing-*"):
        for path in data.glob(pattern):
            try:
                if now - path.lstat().st_mtime < LEFTOVER_AGE_S:
                    continue
                if path.is_dir():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)
                log.info("removed the leftover %s", path.name)
            except FileNotFoundError:
                continue


def _secret_key(data: Path) -> bytes:
    """A random key generated on first start and kept in the data folder (mode 600)."""
    path = data / "secret_key"
    if not path.is_file():
        atomic_write_bytes(path, secrets.token_bytes(32))
        os.chmod(path, 0o600)
    return path.read_bytes()


def _register_errors(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def api_error(e: ApiError):
        return jsonify(error=public_message(e.message), **e.extra), e.status, e.headers

    @app.errorhandler(ToolkitError)
    def toolkit_error(e: ToolkitError):   # bad option values, undecodable audio, ...
        log.info("%s %s: %s", request.method, request.path, e)     # the full detail
        return jsonify(error=public_message(str(e))), 400

    @app.errorhandler(HTTPException)
    def http_error(e: HTTPException):
        if e.code == 413:
            limit = app.config["MAX_UPLOAD_BYTES"] / 2**20
            return jsonify(error=f"request too large: the upload limit is {limit:.0f} MiB"), 413
        if request.path.startswith("/api/"):
            return jsonify(error=e.description or e.name), e.code
        return e

    @app.errorhandler(Exception)
    def internal_error(e: Exception):
        log.exception("unhandled error on %s %s", request.method, request.path)
        return jsonify(error="internal server error (see the server log)"), 500


def _register_cors(app: Flask, origins: set[str]) -> None:
    """Same-origin by default. Configured origins get CORS headers; any other cross-origin
    request that changes state is refused (the session cookie must not be usable by other
    sites)."""
    @app.before_request
    def refuse_foreign_writes():
        origin = request.headers.get("Origin")
        if (origin and request.method not in ("GET", "HEAD", "OPTIONS")
                and origin not in origins and origin != request.host_url.rstrip("/")):
            return jsonify(error=f"cross-origin request from {origin} refused"), 403
        return None

    @app.after_request
    def cors_headers(resp: Response):
        origin = request.headers.get("Origin")
        if origin and origin in origins:
            resp.headers["Access-Control-Allow-Origin"] = origin
            resp.headers["Access-Control-Allow-Credentials"] = "true"
            resp.headers["Vary"] = "Origin"
        return resp


def _register_headers(app: Flask, demo: Path) -> None:
    """Security headers on every response, and one access-log line per request (method, path,
    status, bytes, milliseconds; never cookies or bodies). The pages' only inline script, the
    import map, is allowed by its hash in the Content-Security-Policy; 'wasm-unsafe-eval' lets
    onnxruntime-web compile its WebAssembly (and nothing else: no JavaScript eval)."""
    access = logging.getLogger("playground.access")
    scripts = " ".join(f"'sha256-{h}'" for h in _inline_script_hashes(demo))
    csp = ("default-src 'self'; script-src 'self' 'wasm-unsafe-eval' " + scripts +
           "; style-src 'self' "
           "'unsafe-inline'; img-src 'self' data: blob:; media-src 'self' blob:; "
           "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'")

    @app.before_request
    def start_clock():
        g.started = time.perf_counter()

    @app.after_request
    def security_headers(resp: Response):
        resp.headers.setdefault("X-Content-Type-Options", "nosniff")
        resp.headers.setdefault("X-Frame-Options", "DENY")
        resp.headers.setdefault("Referrer-Policy", "same-origin")
        resp.headers.setdefault("Content-Security-Policy", csp)
        started = g.get("started")
        access.info("%s %s %s %d %s %.1fms", request.remote_addr, request.method, request.path,
                    resp.status_code, resp.content_length if resp.content_length is not None
                    else "-", 1000 * (time.perf_counter() - started) if started else 0.0)
        return resp


def _inline_script_hashes(demo: Path) -> list[str]:
    """Base64 SHA-256 of each inline ``<script>`` of the pages (their import maps)."""
    hashes = set()
    for page in demo.glob("*.html"):
        for body in re.findall(r"<script(?![^>]*\bsrc=)[^>]*>(.*?)</script>", page.read_text(),
                               flags=re.S):
            hashes.add(base64.b64encode(hashlib.sha256(body.encode()).digest()).decode())
    return sorted(hashes)
