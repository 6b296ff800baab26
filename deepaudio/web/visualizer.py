"""``/api``: what the visualizer page asks for: trained runs, a track's feature timeline
(learned features mapped to 10 parameters), its genre probabilities, and its beat-grid and
stem feature sources (``/tracks/<id>/sources``).

Models load once per process and timelines are computed once and cached (in memory and in
SQLite); deep-audioviz-experiments reloaded the model and recomputed on every request.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import time
import zlib
from pathlib import Path
from urllib.parse import urlencode

import numpy as np
from flask import Blueprint, Flask, Response, current_app, jsonify, send_file

from deepaudio.core.audio import load_audio
from deepaudio.core.cache import KeyLocks, MemoryLRU
from deepaudio.core.errors import ToolkitError
from deepaudio.mapping.encode import genre_probabilities, get_run
from deepaudio.mapping.mappings import METHODS, get_mapping
from deepaudio.mapping.onnx_export import export_onnx
from deepaudio.mapping.sources import beat_timeline, dsp_timeline, stem_timeline
from deepaudio.mapping.timeline import assign_parameters, mapped_timeline
from deepaudio.mixer.stems import load_stems
from deepaudio.web.catalog import track_path, track_row
from deepaudio.web.db import db
from deepaudio.web.http import ApiError, arg, identify, user_id
from deepaudio.web.mixer import track_stems
from deepaudio.web.runs import USER_RUNS, default_run, list_runs, run_dir

bp = Blueprint("visualizer", __name__)
SOURCES_SR = 22050
bp.before_request(identify)


class TimelineCache:
    """Feature timelines keyed by every option that changes them: the decoded arrays and the
    finished JSON bodies in a memory LRU bounded in bytes, per-key locks so concurrent requests
    for the same timeline compute it once."""

    def __init__(self, max_bytes: int):
        self.memory = MemoryLRU(max_bytes)
        self.locks = KeyLocks()


def _timeline(app: Flask, track_id: str, run_id: str, opts: dict
              ) -> tuple[np.ndarray, dict, bool]:
    """(frames (T, D) float32 in feature order, meta, was_cached)."""
    cache: TimelineCache = app.extensions["timelines"]
    key = json.dumps({"track": track_id, "run": run_id, **opts}, sort_keys=True)
    hit = cache.memory.get(key)
    if hit is not None:
        return hit[0], hit[1], True
    with cache.locks.hold(key):
        hit = cache.memory.get(key)
        if hit is not None:
            return hit[0], hit[1], True
        row = db().execute("SELECT meta, frames, shape FROM timelines WHERE key = ?",
                           (key,)).fetchone()
        if row is not None:
            db().execute("UPDATE timelines SET created = ? WHERE key = ?", (time.time(), key))
            frames = np.frombuffer(zlib.decompress(row["frames"]), np.float32).reshape(
                json.loads(row["shape"]))
            meta = json.loads(row["meta"])
            cache.memory.put(key, (frames, meta), frames.nbytes)
            return frames, meta, True
        folder = run_dir(app, run_id)
        path = track_path(track_id)
        tl = mapped_timeline(path, folder, method=opts["method"], layer=opts["layer"],
                             scaling=opts["scaling"], per=opts["per"], fps=opts["fps"],
                             smoothing=opts["smoothing"], blur=opts["blur"],
                             assign="deterministic")
        mapping = get_mapping(folder, opts["method"], layer=tl.meta["layer"],
                              scaling=opts["scaling"], per=opts["per"])
        frames = np.ascontiguousarray(tl.frames, np.float32)
        meta = {"fps": tl.fps, "start": tl.start, "layer": tl.meta["layer"],
                "duration": tl.meta["duration"], "names": tl.names,
                "feature_variance": [round(float(v), 6) for v in mapping.feature_variance or ()],
                "explained_variance": mapping.explained_variance}
        with db() as con:
            con.execute("INSERT OR REPLACE INTO timelines (key, track_id, run, meta, frames, "
                        "shape, created) VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (key, track_id, run_id, json.dumps(meta),
                         zlib.compress(frames.tobytes(), 6), json.dumps(list(frames.shape)),
                         time.time()))
        prune_timelines(db(), int(app.config["TIMELINE_CACHE_BYTES"]), keep=key)
        cache.memory.put(key, (frames, meta), frames.nbytes)
        return frames, meta, False


def prune_timelines(con: sqlite3.Connection, limit_bytes: int, *, keep: str | None = None) -> int:
    """Delete the least recently used stored timelines, never ``keep``, until they fit in
    ``limit_bytes`` (a timeline is computed again when asked for). Returns how many went."""
    total = con.execute("SELECT COALESCE(SUM(LENGTH(frames)), 0) FROM timelines").fetchone()[0]
    deleted = 0
    if total <= limit_bytes:
        return deleted
    for key, size in con.execute("SELECT key, LENGTH(frames) FROM timelines ORDER BY created"
                                 ).fetchall():
        if key == keep:
            continue
        con.execute("DELETE FROM timelines WHERE key = ?", (key,))
        deleted += 1
        total -= size
        if total <= limit_bytes:
            break
    return deleted


@bp.get("/models")
def models():
    out = []
    for r in list_runs(current_app.config["MODELS_DIR"], user_id()):
        run = get_run(r["path"])
        mappings_dir = Path(r["path"]) / "mappings"
        fitted = sorted(p.relative_to(mappings_dir).with_suffix("").as_posix()
                        for p in mappings_dir.rglob("*.joblib"))
        test = Path(r["path"]) / "test_metrics.json"
        out.append({"id": r["id"], "name": r["name"], "kind": r["kind"], "model": r["model"],
                    "mode": r["mode"], "layers": list(run.layers),
                    "default_layer": run.model.default_layer,
                    "genres": run.info.get("genres") if r["kind"] == "classifier" else None,
                    "segment_seconds": run.segment_length(),
                    "mappings": list(METHODS), "fitted_mappings": fitted,
                    "test_metrics": json.loads(test.read_text()) if test.is_file() else None})
    # the default is the run features default to (the first shared autoencoder)
    shared = [m for m in out if not m["id"].startswith(USER_RUNS + "/")]
    default = next((m["id"] for m in shared if m["kind"] == "autoencoder"),
                   shared[0]["id"] if shared else None)
    return jsonify(models=out, default=default,
                   classifier=next((m["id"] for m in out if m["kind"] == "classifier"), None))


@bp.get("/tracks/<track_id>/features")
def features(track_id: str):
    track_row(track_id)
    run_id = arg("run", str) or default_run(current_app)
    run_dir(current_app, run_id)
    opts = {"layer": arg("layer", str),
            "method": arg("method", str, "pca", choices=METHODS),
            "scaling": arg("scaling", str, "standard", choices=("standard", "minmax")),
            "per": arg("per", str, "features", choices=("features", "across")),
            "fps": arg("fps", float, 30.0, lo=1, hi=120),
            "smoothing": arg("smoothing", float, 0.0, lo=0, hi=0.99),
            "blur": arg("blur", int, None, lo=1, hi=3000)}
    assign = arg("assign", str, "deterministic", choices=("deterministic", "random", "ranked"))
    seed = arg("seed", int, None, lo=0, hi=2**31 - 1)
    if opts["layer"] is not None:
        run = get_run(run_dir(current_app, run_id))
        if opts["layer"] not in run.layers:
            raise ApiError(404, f"unknown layer {opts['layer']!r} for run {run_id!r}; "
                                f"it has {', '.join(run.layers)}")
    if assign == "random" and seed is None:
        seed = secrets.randbelow(2**31)
    cache: TimelineCache = current_app.extensions["timelines"]
    body_key = json.dumps({"t": track_id, "r": run_id, "a": assign, "s": seed, **opts},
                          sort_keys=True)
    body = cache.memory.get("body:" + body_key)
    hit = body is not None
    if body is None:
        frames, meta, hit = _timeline(current_app, track_id, run_id, opts)
        perm, _ = assign_parameters(frames.shape[1], assign, seed=seed,
                                    feature_variance=meta["feature_variance"])
        body = json.dumps({
            "track": track_id, "run": run_id, **opts, **meta,
            "assignment": assign, "seed": seed, "permutation": perm.tolist(),
            "frames": np.round(frames.astype(np.float64), 4).tolist()},
            separators=(",", ":")).encode()
        cache.memory.put("body:" + body_key, body, len(body))
    resp = Response(body, mimetype="application/json")
    resp.headers["X-Cache"] = "hit" if hit else "miss"
    return resp


def _onnx_export(app: Flask) -> tuple[str, Path]:
    """(run id, export folder) of the run and mapping the query names, exported on first use
    (per-key lock: concurrent requests export once)."""
    run_id = arg("run", str) or default_run(app)
    folder = run_dir(app, run_id)
    run = get_run(folder)
    layer = arg("layer", str) or run.model.default_layer
    if layer not in run.layers:
        raise ApiError(404, f"unknown layer {layer!r} for run {run_id!r}; "
                            f"it has {', '.join(run.layers)}")
    opts = {"method": arg("method", str, "pca", choices=METHODS),
            "scaling": arg("scaling", str, "standard", choices=("standard", "minmax")),
            "per": arg("per", str, "features", choices=("features", "across"))}
    cache: TimelineCache = app.extensions["timelines"]
    with cache.locks.hold(json.dumps({"onnx": run_id, "layer": layer, **opts}, sort_keys=True)):
        try:
            out = export_onnx(folder, layer=layer, **opts)
        except ToolkitError as e:
            raise ApiError(422, str(e)) from None
    return run_id, out


@bp.get("/onnx/frontend.json")
def onnx_frontend():
    """What the browser needs to compute a run's features from audio (frontend.json), and
    where its ONNX graph is: ``?run=&layer=&method=&scaling=&per=`` as for features."""
    run_id, out = _onnx_export(current_app)
    spec = json.loads((out / "frontend.json").read_text())
    q = {k: v for k, v in spec.items() if k in ("layer", "method", "scaling", "per")}
    spec.update(run=run_id, graph="/api/onnx/encoder.onnx?" + urlencode({"run": run_id, **q}))
    return jsonify(spec)


@bp.get("/onnx/encoder.onnx")
def onnx_graph():
    """The run, its scaler and the mapping as one ONNX graph (features → 10 values)."""
    _, out = _onnx_export(current_app)
    return send_file(out / "encoder.onnx", mimetype="application/octet-stream", max_age=0)


@bp.get("/tracks/<track_id>/genres")
def genres(track_id: str):
    track_row(track_id)
    run_id = arg("run", str)
    if run_id is None:
        cls = current_app.config.get("CLASSIFIER_RUN")
        if not cls:
            raise ApiError(404, "no classifier run: 'make playground' trains one")
        run_id = Path(cls).relative_to(current_app.config["MODELS_DIR"]).as_posix()
    folder = run_dir(current_app, run_id)
    row = db().execute("SELECT probabilities FROM genre_cache WHERE track_id = ? AND run = ?",
                       (track_id, run_id)).fetchone()
    if row is not None:
        probs = json.loads(row["probabilities"])
    else:
        probs = genre_probabilities(track_path(track_id), folder)
        with db() as con:
            con.execute("INSERT OR REPLACE INTO genre_cache VALUES (?, ?, ?, ?)",
                        (track_id, run_id, json.dumps(probs), time.time()))
    top = max(probs, key=probs.get)
    return jsonify(track=track_id, run=run_id, probabilities=probs, top=top)


SOURCES_VERSION = 3     # raise when a source changes (3: the learned beat tracker), so stored
                        # answers of the old trackers are not served again


@bp.get("/tracks/<track_id>/sources")
def sources(track_id: str):
    """The beat-grid and DSP-baseline sources of a track and, when this user has separated it
    with the stem mixer, its stem source (:mod:`deepaudio.mapping.sources`), at ``fps``;
    computed once per track, fps, separation and ``SOURCES_VERSION``, and kept in the
    timelines' memory cache and, compressed, in their SQLite table (so a restarted server
    does not track the beats again; pruned with the timelines, removed with the track)."""
    track_row(track_id)
    fps = arg("fps", float, 30.0, lo=1, hi=120)
    stems = track_stems(track_id)
    cache: TimelineCache = current_app.extensions["timelines"]
    key = "sources:" + json.dumps({"t": track_id, "fps": fps, "v": SOURCES_VERSION,
                                   "stems": stems[1] if stems else None}, sort_keys=True)
    body = cache.memory.get(key)
    hit = body is not None
    if body is None:
        with cache.locks.hold(key):
            body = cache.memory.get(key)
            hit = body is not None
            if body is None:
                row = db().execute("SELECT frames FROM timelines WHERE key = ?",
                                   (key,)).fetchone()
                if row is not None:
                    db().execute("UPDATE timelines SET created = ? WHERE key = ?",
                                 (time.time(), key))
                    body, hit = zlib.decompress(row["frames"]), True
                    cache.memory.put(key, body, len(body))
            if body is None:
                # mono at 22.05 kHz: what the beat tracker analyses anyway (a 20-minute
                # upload is 106 MB so, not 423 MB of float stereo at 44.1 kHz)
                y, sr = load_audio(track_path(track_id), sr=SOURCES_SR, mono=True)
                beats = beat_timeline(y, sr, fps=fps)
                dsp = dsp_timeline(y, sr, fps=fps)
                del y
                out = {"track": track_id, "fps": fps, "beats": beats.to_json(),
                       "dsp": dsp.to_json(), "stems": None,
                       "stems_reason": "not separated: separate the track with the stem "
                                       "mixer to drive visuals from its stems"}
                if stems is not None:
                    arrays, stem_sr = load_stems(stems[0])
                    try:
                        out["stems"] = stem_timeline(arrays, stem_sr, fps=fps).to_json()
                        out["stems_reason"] = None
                    except ToolkitError as e:       # a stem set with none of the four
                        out["stems_reason"] = str(e)
                body = json.dumps(out, separators=(",", ":")).encode()
                with db() as con:
                    con.execute("INSERT OR REPLACE INTO timelines (key, track_id, run, meta, "
                                "frames, shape, created) VALUES (?, ?, 'sources', '{}', ?, "
                                "'[]', ?)", (key, track_id, zlib.compress(body, 6), time.time()))
                prune_timelines(db(), int(current_app.config["TIMELINE_CACHE_BYTES"]),
                                keep=key)
                cache.memory.put(key, body, len(body))
    resp = Response(body, mimetype="application/json")
    resp.headers["X-Cache"] = "hit" if hit else "miss"
    return resp
