"""The playground server: JSON API + the three.js client in ``demo/``.

    python api.py [--host 127.0.0.1] [--port 5000] [--data DIR] [--fma DIR] [--models DIR]

Endpoints (all JSON; documented in ``docs/openapi.json``, served at ``/api/openapi.json``):

    GET  /api/health
    GET  /api/tracks?q=&genre=&source=fma|upload|mine&page=&per_page=
    POST /api/tracks                         multipart 'file': upload a song
    GET  /api/tracks/<id>                    one track
    DELETE /api/tracks/<id>                  take an upload off your list (deleted with its
                                             caches when no other uploader has it)
    GET  /api/tracks/<id>/audio              the audio, with HTTP Range support
    GET  /api/tracks/<id>/features?run=&layer=&method=&scaling=&per=&fps=&smoothing=&blur=
                                   &assign=random|ranked|deterministic&seed=
    GET  /api/tracks/<id>/genres?run=        genre probabilities from a classifier run
    GET  /api/models                         trained runs: kind, layers, mappings
    /api/mixer/...                           the stem mixer (mixer_api.py): separation jobs,
                                   stems, mix export, suggestions (jobs[/<id>/...]), saved mixes
    /api/crossfade/...                       crossfades between two tracks (crossfade_api.py):
                                   POST /api/crossfade, GET styles, <id>, <id>/audio

Fixes from the reference server: models load once per process and timelines are computed once
and cached (memory + SQLite), the scaling options are honoured, uploads are size-limited,
content-sniffed and stored under their hash (no name collisions, no path from the client),
CORS is same-origin unless origins are configured, the secret key is generated per install,
and nothing is logged beyond the request line.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import json
import logging
import math
import os
import secrets
import sys
import threading
import time
import typing as tp
import zlib
from pathlib import Path

import numpy as np
from flask import Flask, Response, jsonify, request, send_file, send_from_directory
from werkzeug.exceptions import HTTPException

import web_common as wc
from config import ConfigError, ToolkitError, load_config, user_errors_exit_2

ROOT = Path(__file__).resolve().parent
log = logging.getLogger("playground")

STATIC_SUFFIXES = {".html", ".js", ".css", ".json", ".svg", ".png", ".ico", ".map"}
CLASSIFIER_MODELS = {"cnn_classifier"}


@dataclasses.dataclass
class ServerConfig:
    """Everything the server can be told; ``create_app({...})`` or CLI flags."""
    data_dir: str = "data"                   # SQLite database, uploads, caches, secret key
    fma_dir: str | None = "datasets/fma"     # FMA layout (fma_metadata + fma_small); null: none
    fma_subset: str = "small"
    models_dir: str = "models/runs"          # searched recursively for trained runs
    demo_dir: str = str(ROOT / "demo")
    max_upload_mb: float = 200.0
    crossfade_cache_mb: float = 1024.0       # rendered transitions kept (least recently used go)
    cors_origins: list[str] = dataclasses.field(default_factory=list)
    classifier_run: str | None = None        # run id for genre probabilities; default: first
    timeline_memory_items: int = 256
    mixer_backend: tp.Literal["dsp", "demucs"] = "dsp"
    demucs_model: str = "htdemucs"
    demucs_repo: str | None = None
    redis_url: str | None = None
    testing: bool = False

    def validate(self):
        if not 0 < self.max_upload_mb <= 4096:
            raise ConfigError(f"key 'max_upload_mb' must be in (0, 4096], got {self.max_upload_mb}")
        if not self.crossfade_cache_mb > 0:
            raise ConfigError("key 'crossfade_cache_mb' must be > 0, "
                              f"got {self.crossfade_cache_mb}")
        if self.timeline_memory_items < 0:
            raise ConfigError("key 'timeline_memory_items' must be >= 0")


# ---------------------------------------------------------------------------------------------
# App factory

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
        DEMUCS_MODEL=cfg.demucs_model, DEMUCS_REPO=cfg.demucs_repo, REDIS_URL=cfg.redis_url,
        MODELS_DIR=str(Path(cfg.models_dir).expanduser().resolve()),
        CROSSFADE_CACHE_BYTES=int(cfg.crossfade_cache_mb * 2**20),
    )
    wc.init_db(app.config["DB_PATH"])
    if cfg.fma_dir:
        n = index_fma(app.config["DB_PATH"], Path(cfg.fma_dir).expanduser(), cfg.fma_subset)
        log.info("indexed %d FMA tracks from %s", n, cfg.fma_dir)
    app.extensions["timelines"] = TimelineCache(cfg.timeline_memory_items)
    runs = list_runs(app.config["MODELS_DIR"])
    app.config["CLASSIFIER_RUN"] = (
        str(_run_dir(app, cfg.classifier_run)) if cfg.classifier_run else
        next((str(r["path"]) for r in runs if r["kind"] == "classifier"), None))
    app.teardown_appcontext(wc.close_db)
    _register_errors(app)
    _register_cors(app, set(cfg.cors_origins))
    app.register_blueprint(_api_routes(), url_prefix="/api")
    import mixer_api
    app.register_blueprint(mixer_api.create_blueprint(), url_prefix="/api/mixer")
    import crossfade_api
    app.register_blueprint(crossfade_api.create_blueprint(), url_prefix="/api/crossfade")
    _register_static(app, Path(cfg.demo_dir))
    return app


def _secret_key(data: Path) -> bytes:
    """A random key generated on first start and kept in the data folder (mode 600)."""
    path = data / "secret_key"
    if not path.is_file():
        from config import atomic_write_bytes
        atomic_write_bytes(path, secrets.token_bytes(32))
        os.chmod(path, 0o600)
    return path.read_bytes()


def _register_errors(app: Flask) -> None:
    @app.errorhandler(wc.ApiError)
    def api_error(e: wc.ApiError):
        return jsonify(error=e.message), e.status

    @app.errorhandler(ToolkitError)
    def toolkit_error(e: ToolkitError):   # bad option values, undecodable audio, ...
        return jsonify(error=str(e)), 400

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
    def headers(resp: Response):
        origin = request.headers.get("Origin")
        if origin and origin in origins:
            resp.headers["Access-Control-Allow-Origin"] = origin
            resp.headers["Access-Control-Allow-Credentials"] = "true"
            resp.headers["Vary"] = "Origin"
        resp.headers.setdefault("X-Content-Type-Options", "nosniff")
        return resp


def _register_static(app: Flask, demo: Path) -> None:
    three = demo / "node_modules" / "three"

    @app.get("/")
    def index():
        return send_from_directory(demo, "index.html")

    @app.get("/favicon.ico")
    def favicon():      # browsers ask for it on every page; no icon, and no 404 in the console
        return Response(status=204)

    @app.get("/vendor/three/<path:name>")
    def vendor_three(name: str):
        if not three.is_dir():
            return Response("three.js is not installed: run 'make playground' (npm ci in demo/)",
                            404, mimetype="text/plain")
        if not (name.startswith("build/") or name.startswith("examples/jsm/")):
            return Response("not found", 404, mimetype="text/plain")
        return send_from_directory(three, name, max_age=3600)

    @app.get("/<path:name>")
    def static_file(name: str):
        parts = Path(name).parts
        if (not parts or parts[0] in ("node_modules", "dev") or name.startswith(".")
                or Path(name).suffix not in STATIC_SUFFIXES):
            return Response("not found", 404, mimetype="text/plain")
        return send_from_directory(demo, name)


# ---------------------------------------------------------------------------------------------
# FMA index

def index_fma(db_path: str | os.PathLike, fma_dir: Path, subset: str = "small") -> int:
    """Register the FMA (or sample) set's tracks: content-hash ids, title, artist, genre.

    Incremental: a file whose size and mtime are unchanged is not hashed again, so restarts
    are instant. A missing or partial FMA folder just registers what is there."""
    from audio_io import AudioError, audio_info
    from data_processor import fma_audio_path, load_fma_tracks, select_fma_subset
    meta = fma_dir / "fma_metadata"
    audio_dir = fma_dir / f"fma_{subset}"
    if not (meta / "tracks.csv").is_file() or not audio_dir.is_dir():
        log.warning("no FMA set at %s (run 'make playground' to create the sample set)", fma_dir)
        return 0
    tracks = select_fma_subset(load_fma_tracks(meta), subset)
    con = wc.connect(db_path)
    try:
        known = {r["fma_id"]: r for r in con.execute(
            "SELECT id, fma_id, size, mtime_ns FROM tracks WHERE source = 'fma'")}
        count = 0
        for tid, row in tracks.iterrows():
            path = fma_audio_path(audio_dir, tid)
            try:
                st = path.stat()
            except FileNotFoundError:
                continue
            count += 1
            old = known.get(int(tid))
            if old is not None and old["size"] == st.st_size and old["mtime_ns"] == st.st_mtime_ns:
                continue
            try:
                info = audio_info(path)
            except AudioError as e:
                log.warning("skipping %s", e)
                continue

            def text(col: tuple[str, str], row=row) -> str:
                v = row.get(col, "")
                return "" if isinstance(v, float) and math.isnan(v) else str(v)

            with con:
                if old is not None:
                    con.execute("DELETE FROM tracks WHERE source = 'fma' AND fma_id = ?",
                                (int(tid),))
                con.execute(
                    "INSERT OR REPLACE INTO tracks (id, source, fma_id, path, format, title, "
                    "artist, genre, duration, sample_rate, channels, size, mtime_ns, added) "
                    "VALUES (?, 'fma', ?, ?, 'mp3', ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (wc.file_hash(path), int(tid), str(path.resolve()), text(("track", "title")),
                     text(("artist", "name")), text(("track", "genre_top")),
                     info.frames / info.samplerate, info.samplerate, info.channels, st.st_size,
                     st.st_mtime_ns, time.time()))
        return count
    finally:
        con.close()


# ---------------------------------------------------------------------------------------------
# Trained runs

def list_runs(models_dir: str | os.PathLike) -> list[dict]:
    """Run folders under ``models_dir`` that have weights: id (relative path), kind, model."""
    root = Path(models_dir)
    out = []
    if not root.is_dir():
        return out
    for cfg_path in sorted(root.rglob("config.json")):
        run = cfg_path.parent
        if not (run / "dataset.json").is_file() or not any(
                (run / f).is_file() for f in ("best.pt", "last.pt")):
            continue
        try:
            cfg = json.loads(cfg_path.read_text())
            mode = json.loads((run / "dataset.json").read_text()).get("mode")
        except (OSError, json.JSONDecodeError):
            continue
        if mode not in ("mfcc", "spectrum"):
            continue
        kind = "classifier" if cfg.get("model") in CLASSIFIER_MODELS else "autoencoder"
        out.append({"id": run.relative_to(root).as_posix(), "path": run, "kind": kind,
                    "model": cfg.get("model"), "name": cfg.get("name"), "mode": mode})
    return out


def _run_dir(app: Flask, run_id: str) -> Path:
    root = Path(app.config["MODELS_DIR"])
    for r in list_runs(root):
        if r["id"] == run_id:
            return r["path"]
    raise wc.ApiError(404, f"unknown run {run_id!r} (GET /api/models lists them)")


def _default_run(app: Flask) -> str:
    runs = list_runs(app.config["MODELS_DIR"])
    if not runs:
        raise wc.ApiError(404, "no trained runs yet: 'make playground' trains the sample models")
    auto = [r for r in runs if r["kind"] == "autoencoder"]
    return (auto or runs)[0]["id"]


# ---------------------------------------------------------------------------------------------
# Timelines: computed once, cached in memory and in SQLite

class TimelineCache:
    """Feature timelines keyed by every option that changes them.

    A per-key lock makes concurrent requests for the same timeline compute it once; an LRU of
    the decoded arrays and of finished JSON bodies keeps hot requests off SQLite and json."""

    def __init__(self, items: int):
        self.items = items
        self.lock = threading.Lock()
        self.key_locks: dict[str, threading.Lock] = collections.defaultdict(threading.Lock)
        self.memory: collections.OrderedDict[str, tp.Any] = collections.OrderedDict()

    def remember(self, key: str, value: tp.Any) -> None:
        if not self.items:
            return
        with self.lock:
            self.memory[key] = value
            self.memory.move_to_end(key)
            while len(self.memory) > self.items:
                self.memory.popitem(last=False)

    def recall(self, key: str) -> tp.Any:
        with self.lock:
            value = self.memory.get(key)
            if value is not None:
                self.memory.move_to_end(key)
            return value

    def lock_for(self, key: str) -> threading.Lock:
        with self.lock:
            return self.key_locks[key]


def _timeline(app: Flask, track_id: str, run_id: str, opts: dict) -> tuple[np.ndarray, dict, bool]:
    """(frames (T, D) float32 in feature order, meta, was_cached)."""
    import mapping_utils as mu
    cache: TimelineCache = app.extensions["timelines"]
    key = json.dumps({"track": track_id, "run": run_id, **opts}, sort_keys=True)
    hit = cache.recall(key)
    if hit is not None:
        return hit[0], hit[1], True
    with cache.lock_for(key):
        hit = cache.recall(key)
        if hit is not None:
            return hit[0], hit[1], True
        row = wc.db().execute("SELECT meta, frames, shape FROM timelines WHERE key = ?",
                              (key,)).fetchone()
        if row is not None:
            frames = np.frombuffer(zlib.decompress(row["frames"]), np.float32).reshape(
                json.loads(row["shape"]))
            meta = json.loads(row["meta"])
            cache.remember(key, (frames, meta))
            return frames, meta, True
        run_dir = _run_dir(app, run_id)
        path = wc.track_path(track_id)
        tl = mu.mapped_timeline(path, run_dir, method=opts["method"], layer=opts["layer"],
                                scaling=opts["scaling"], per=opts["per"], fps=opts["fps"],
                                smoothing=opts["smoothing"], blur=opts["blur"],
                                assign="deterministic")
        mapping = mu.get_mapping(run_dir, opts["method"], layer=tl.meta["layer"],
                                 scaling=opts["scaling"], per=opts["per"])
        frames = np.ascontiguousarray(tl.frames, np.float32)
        meta = {"fps": tl.fps, "start": tl.start, "layer": tl.meta["layer"],
                "duration": tl.meta["duration"], "names": tl.names,
                "feature_variance": [round(float(v), 6) for v in mapping.feature_variance],
                "explained_variance": mapping.explained_variance}
        with wc.db() as con:
            con.execute("INSERT OR REPLACE INTO timelines (key, track_id, run, meta, frames, "
                        "shape, created) VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (key, track_id, run_id, json.dumps(meta),
                         zlib.compress(frames.tobytes(), 6), json.dumps(list(frames.shape)),
                         time.time()))
        cache.remember(key, (frames, meta))
        return frames, meta, False


# ---------------------------------------------------------------------------------------------
# Routes

def _api_routes():
    from flask import Blueprint, current_app
    bp = Blueprint("api", __name__)

    @bp.before_request
    def identify():
        wc.user_id()

    @bp.get("/health")
    def health():
        n = wc.db().execute("SELECT COUNT(*) FROM tracks").fetchone()[0]
        runs = list_runs(current_app.config["MODELS_DIR"])
        return jsonify(status="ok", tracks=n, models=len(runs),
                       three_installed=(Path(current_app.config["SERVER_CONFIG"].demo_dir) /
                                        "node_modules" / "three").is_dir())

    @bp.get("/openapi.json")
    def openapi():
        return send_file(ROOT / "docs" / "openapi.json", mimetype="application/json")

    @bp.get("/tracks")
    def tracks():
        q = wc.arg("q", str, "").strip()
        genre = wc.arg("genre", str, "").strip()
        source = wc.arg("source", str, "all", choices=("all", "fma", "upload", "mine"))
        page = wc.arg("page", int, 1, lo=1)
        per_page = wc.arg("per_page", int, 50, lo=1, hi=500)
        # each upload under the title of this user's own file; u.user_id is set for their own
        base = ("FROM tracks t LEFT JOIN uploads u ON u.track_id = t.id AND u.user_id = ?")
        where, params = [], [wc.user_id()]
        if source == "fma":
            where.append("t.source = 'fma'")
        elif source in ("upload", "mine"):    # uploads are only ever listed to their uploaders
            where.append("u.user_id IS NOT NULL")
        else:   # the FMA set plus this user's uploads, never other users' uploads
            where.append("(t.source = 'fma' OR u.user_id IS NOT NULL)")
        if q:
            like = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            where.append("(COALESCE(u.title, t.title) LIKE ? ESCAPE '\\' OR t.artist LIKE ? "
                         "ESCAPE '\\' OR t.genre LIKE ? ESCAPE '\\' OR CAST(t.fma_id AS TEXT) = ?)")
            params += [like, like, like, q]
        if genre:
            where.append("t.genre = ?")
            params.append(genre)
        sql_where = " WHERE " + " AND ".join(where)
        total = wc.db().execute(f"SELECT COUNT(*) {base}{sql_where}", params).fetchone()[0]
        rows = wc.db().execute(
            f"SELECT t.*, u.title AS my_title {base}{sql_where} ORDER BY t.source = 'upload' "
            "DESC, t.genre, t.fma_id, COALESCE(u.title, t.title) LIMIT ? OFFSET ?",
            params + [per_page, (page - 1) * per_page]).fetchall()
        genres = [r[0] for r in wc.db().execute(
            "SELECT DISTINCT genre FROM tracks WHERE genre != '' ORDER BY genre")]
        return jsonify(items=[wc.track_json(r, r["my_title"]) for r in rows], total=total,
                       page=page, per_page=per_page, genres=genres)

    @bp.post("/tracks")
    def upload():
        track = wc.save_upload(request.files.get("file"))
        return jsonify(track), 201

    @bp.get("/tracks/<track_id>")
    def track(track_id: str):
        return jsonify(wc.user_track_json(wc.track_row(track_id)))

    @bp.delete("/tracks/<track_id>")
    def remove_track(track_id: str):
        return jsonify(wc.remove_upload(track_id))

    @bp.get("/tracks/<track_id>/audio")
    def audio(track_id: str):
        row = wc.track_row(track_id)
        path = wc.track_path(track_id)
        mime = {"mp3": "audio/mpeg", "wav": "audio/wav", "flac": "audio/flac",
                "ogg": "audio/ogg"}[row["format"]]
        # conditional=True: ETag/Last-Modified and Range requests (206 Partial Content)
        return send_file(path, mimetype=mime, conditional=True, etag=row["id"], max_age=86400)

    @bp.get("/models")
    def models():
        import mapping_utils as mu
        out = []
        for r in list_runs(current_app.config["MODELS_DIR"]):
            run = mu.get_run(r["path"])
            mappings_dir = Path(r["path"]) / "mappings"
            fitted = sorted(p.relative_to(mappings_dir).with_suffix("").as_posix()
                            for p in mappings_dir.rglob("*.joblib"))
            test = Path(r["path"]) / "test_metrics.json"
            out.append({"id": r["id"], "name": r["name"], "kind": r["kind"], "model": r["model"],
                        "mode": r["mode"], "layers": list(run.layers),
                        "default_layer": run.model.default_layer,
                        "genres": run.info.get("genres") if r["kind"] == "classifier" else None,
                        "segment_seconds": run.segment_length(),
                        "mappings": list(mu.METHODS), "fitted_mappings": fitted,
                        "test_metrics": json.loads(test.read_text()) if test.is_file() else None})
        return jsonify(models=out, default=out[0]["id"] if out else None,
                       classifier=next((m["id"] for m in out if m["kind"] == "classifier"), None))

    @bp.get("/tracks/<track_id>/features")
    def features(track_id: str):
        import mapping_utils as mu
        wc.track_row(track_id)
        run_id = wc.arg("run", str) or _default_run(current_app)
        _run_dir(current_app, run_id)
        opts = {"layer": wc.arg("layer", str),
                "method": wc.arg("method", str, "pca", choices=mu.METHODS),
                "scaling": wc.arg("scaling", str, "standard", choices=("standard", "minmax")),
                "per": wc.arg("per", str, "features", choices=("features", "across")),
                "fps": wc.arg("fps", float, 30.0, lo=1, hi=120),
                "smoothing": wc.arg("smoothing", float, 0.0, lo=0, hi=0.99),
                "blur": wc.arg("blur", int, None, lo=1, hi=3000)}
        assign = wc.arg("assign", str, "deterministic",
                        choices=("deterministic", "random", "ranked"))
        seed = wc.arg("seed", int, None, lo=0, hi=2**31 - 1)
        if opts["layer"] is not None:
            run = mu.get_run(_run_dir(current_app, run_id))
            if opts["layer"] not in run.layers:
                raise wc.ApiError(404, f"unknown layer {opts['layer']!r} for run {run_id!r}; "
                                       f"it has {', '.join(run.layers)}")
        if assign == "random" and seed is None:
            seed = secrets.randbelow(2**31)
        cache: TimelineCache = current_app.extensions["timelines"]
        body_key = json.dumps({"t": track_id, "r": run_id, "a": assign, "s": seed, **opts},
                              sort_keys=True)
        body = cache.recall("body:" + body_key)
        hit = body is not None
        if body is None:
            frames, meta, hit = _timeline(current_app, track_id, run_id, opts)
            perm, _ = mu.assign_parameters(frames.shape[1], assign, seed=seed,
                                           feature_variance=meta["feature_variance"])
            body = json.dumps({
                "track": track_id, "run": run_id, **opts, **meta,
                "assignment": assign, "seed": seed, "permutation": perm.tolist(),
                "frames": np.round(frames.astype(np.float64), 4).tolist()},
                separators=(",", ":")).encode()
            cache.remember("body:" + body_key, body)
        resp = Response(body, mimetype="application/json")
        resp.headers["X-Cache"] = "hit" if hit else "miss"
        return resp

    @bp.get("/tracks/<track_id>/genres")
    def genres(track_id: str):
        import mapping_utils as mu
        wc.track_row(track_id)
        run_id = wc.arg("run", str)
        if run_id is None:
            cls = current_app.config.get("CLASSIFIER_RUN")
            if not cls:
                raise wc.ApiError(404, "no classifier run: 'make playground' trains one")
            run_id = Path(cls).relative_to(current_app.config["MODELS_DIR"]).as_posix()
        run_dir = _run_dir(current_app, run_id)
        row = wc.db().execute("SELECT probabilities FROM genre_cache WHERE track_id = ? AND "
                              "run = ?", (track_id, run_id)).fetchone()
        if row is not None:
            probs = json.loads(row["probabilities"])
        else:
            probs = mu.genre_probabilities(wc.track_path(track_id), run_dir)
            with wc.db() as con:
                con.execute("INSERT OR REPLACE INTO genre_cache VALUES (?, ?, ?, ?)",
                            (track_id, run_id, json.dumps(probs), time.time()))
        top = max(probs, key=probs.get)
        return jsonify(track=track_id, run=run_id, probabilities=probs, top=top)

    return bp


# ---------------------------------------------------------------------------------------------
# CLI

def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="Serve the playground (API + demo/) with waitress.")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=5000)
    p.add_argument("--data", default="data", help="data folder: database, uploads, caches")
    p.add_argument("--fma", default="datasets/fma", help="FMA (or sample set) folder")
    p.add_argument("--models", default="models/runs", help="folder of trained runs")
    p.add_argument("--max-upload-mb", type=float, default=200.0)
    p.add_argument("--crossfade-cache-mb", type=float, default=1024.0,
                   help="disk kept for rendered crossfades; the least recently used go first")
    p.add_argument("--cors-origin", action="append", default=[],
                   help="allow this origin cross-site (repeatable); default same-origin only")
    p.add_argument("--mixer-backend", choices=["dsp", "demucs"], default="dsp")
    p.add_argument("--demucs-repo", help="local folder with Demucs weights (offline)")
    p.add_argument("--demucs-model", default="htdemucs")
    p.add_argument("--redis", help="redis://... to run jobs on separate Huey workers")
    p.add_argument("--threads", type=int, default=8)
    return p


@user_errors_exit_2
def main(argv: list[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    app = create_app({"data_dir": args.data, "fma_dir": args.fma, "models_dir": args.models,
                      "max_upload_mb": args.max_upload_mb, "cors_origins": args.cors_origin,
                      "crossfade_cache_mb": args.crossfade_cache_mb,
                      "mixer_backend": args.mixer_backend, "demucs_repo": args.demucs_repo,
                      "demucs_model": args.demucs_model, "redis_url": args.redis})
    from waitress import serve
    print(f"Playground at http://{args.host}:{args.port}/  (Ctrl-C stops)", flush=True)
    serve(app, host=args.host, port=args.port, threads=args.threads, ident="playground")
    return 0


if __name__ == "__main__":
    sys.exit(main())
