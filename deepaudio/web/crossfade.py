"""The crossfade page's HTTP side: render a transition between two tracks and serve it.

``/api/crossfade`` (JSON in and out, errors as ``{"error": ...}`` with a 4xx status):

    GET  /api/crossfade/styles      simple and neural styles, beat counts, defaults, WaveNet
                                    runs
    POST /api/crossfade             CrossfadeRequest -> {id, audio_url, duration, sidecar
                                    (with the gain ``curves``), measures, cached}; a neural
                                    fade not rendered yet -> 202 and its job {id, state,
                                    progress, stage, eta_seconds, message}
    GET  /api/crossfade/<id>        the same JSON for a rendered transition; 202 and the job
                                    while a neural one renders, 422 when it failed
    GET  /api/crossfade/<id>/audio  the OGG (or FLAC) file, with HTTP Range support

Neural fades decode sample by sample (minutes for a few seconds with NSynth's full-size
model on a CPU), so they render as jobs on the server's job runner
(:meth:`deepaudio.web.jobs.JobQueue.local_task`), never inside the request: the page polls
the id for the progress. A second request for the same transition joins the job. Each user may
have ``max_jobs_per_user`` neural renders queued or running (429 past that). A server restart
fails the unfinished ones (request them again).

A transition is rendered once: its id is the SHA-256 of the normalised request (the track ids
are content hashes, so the same request means the same audio), the files live under
``<data>/crossfades/<id>/`` and are written atomically, audio first and the JSON sidecar last
(a sidecar on disk means a finished render), and a per-id lock makes concurrent identical
requests wait for the one render instead of repeating it. Renders are a cache: past
``crossfade_cache_mb`` (server config) the least recently used ones are deleted after a new
render, never one in progress.

The gain curves come from the render itself (the per-sample gains of
:func:`deepaudio.crossfade.render.place`, averaged into ``CURVE_POINTS`` bins over the output),
so what the page draws is the ramp the server applied; for ``random_linear`` the bin means are
the expected gains. Roughness, dissonance and the loudness dip are computed with the render
when the overlap is at most ``MEASURE_MAX_SECONDS`` long (about 0.1 s per second of overlap on
one core); longer ones only with ``"measures": true``, which re-renders a cached transition to
measure it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import json
import logging
import os
import re
import shutil
import time
import typing as tp
from pathlib import Path

import numpy as np
from flask import Blueprint, Flask, current_app, jsonify

from deepaudio.core.cache import KeyLocks
from deepaudio.core.config import ConfigError, load_config
from deepaudio.core.errors import ToolkitError
from deepaudio.crossfade import render as cr
from deepaudio.crossfade.measures import loudness_dip_db, transition_measures
from deepaudio.crossfade.neural import NEURAL_STYLES, crossfade_neural
from deepaudio.crossfade.schedules import SCHEDULES
from deepaudio.crossfade.songs import SIMPLE_STYLES, crossfade_songs, write_output
from deepaudio.mixer.stems import stem_source
from deepaudio.web.catalog import track_path, track_row
from deepaudio.web.db import connect, db
from deepaudio.web.http import (
    ApiError,
    data_dir,
    ensure_user,
    json_body,
    public_message,
    send_media,
)
from deepaudio.web.jobs import JobLimitError
from deepaudio.web.mixer import track_stems
from deepaudio.web.runs import wavenet_runs

bp = Blueprint("crossfade", __name__)
log = logging.getLogger("crossfade")

BEATS = (8, 16, 32)
MAX_SECONDS = 30.0          # overlap cap: a preview, not a mix
MAX_CONTEXT = 30.0          # seconds of A before and of B after the overlap
MAX_NEURAL_SECONDS = 4.0    # WaveNet decoding is sample by sample: ~seconds per second on a CPU
MEASURE_MAX_SECONDS = 8.0   # overlaps up to this long are measured with the render
CURVE_POINTS = 600          # gain-curve bins returned for the whole output
OUTPUT_SR = 44100
CACHE_VERSION = 3           # bump when the rendering changes, so old renders are not served
MAX_CANDIDATE = 63          # the planner finds at most 6 x 3 candidates
ID = re.compile(r"^[0-9a-f]{64}$")
MIME = {".ogg": "audio/ogg", ".flac": "audio/flac"}


@dataclasses.dataclass
class CrossfadeRequest:
    """What the page sends; validated like every config in the repo (keys are named)."""
    track_a: str                              # track ids (GET /api/tracks); may be equal
    track_b: str
    style: str = "equal_power"                # a simple style, or a neural one with ``run``
    seconds: float = 4.0                      # overlap; ignored by beat_sync (the plan decides)
    beat_sync: bool = False                   # stretch B to A's tempo, align the downbeats
    beats: tp.Literal[8, 16, 32] = 16         # overlap length in A's beats (beat_sync)
    context: float = 5.0                      # seconds of A before / of B after the overlap
    seed: int = 0                             # random_linear's per-sample switch
    format: tp.Literal["ogg", "flac"] = "ogg"  # OGG is ~10x smaller; FLAC is lossless
    run: str | None = None                    # a WaveNet run (GET /styles): the neural fade
    measures: bool | None = None              # None: when the overlap is short; not in the id
    key_match: bool = False                   # shift B by up to 2 semitones to a compatible key
    schedule: str | dict | None = None        # per-stem gains: a named schedule or custom JSON
    candidate: int = 0                        # the planner's candidate to render (0: the best)
    shift: int | None = None                  # shift B by this many semitones (-2..2) by hand

    def validate(self) -> None:
        neural = self.run is not None
        styles = NEURAL_STYLES if neural else SIMPLE_STYLES
        if self.style not in styles:
            raise ConfigError(f"key 'style' must be one of {', '.join(styles)}"
                              f"{' (neural styles, with run)' if neural else ''}, "
                              f"got {self.style!r}")
        top = MAX_NEURAL_SECONDS if neural else MAX_SECONDS
        if not self.beat_sync and not (np.isfinite(self.seconds) and 0 < self.seconds <= top):
            raise ConfigError(f"key 'seconds' must be in (0, {top:g}]"
                              f"{' for a neural fade' if neural else ''}, got {self.seconds:g}")
        if not (np.isfinite(self.context) and 0 <= self.context <= MAX_CONTEXT):
            raise ConfigError(f"key 'context' must be in [0, {MAX_CONTEXT:g}] seconds, "
                              f"got {self.context:g}")
        if neural and self.beat_sync:
            raise ConfigError("key 'beat_sync' must be false for a neural fade (run is set)")
        if neural and self.key_match:
            raise ConfigError("key 'key_match' must be false for a neural fade (run is set)")
        if not 0 <= self.seed < 2**32:
            raise ConfigError(f"key 'seed' must be in [0, 2**32), got {self.seed}")
        if self.schedule is not None:
            if not self.beat_sync:
                raise ConfigError("key 'schedule' needs beat_sync: true (a stem schedule is "
                                  "counted in beats)")
            if isinstance(self.schedule, str) and self.schedule not in SCHEDULES:
                raise ConfigError(f"key 'schedule' must be one of {', '.join(SCHEDULES)} or "
                                  f"a custom schedule object, got {self.schedule!r}")
        if not 0 <= self.candidate <= MAX_CANDIDATE:
            raise ConfigError(f"key 'candidate' must be in [0, {MAX_CANDIDATE}], "
                              f"got {self.candidate}")
        if self.shift is not None and not -2 <= self.shift <= 2:
            raise ConfigError(f"key 'shift' must be in [-2, 2] semitones, got {self.shift}")
        if self.shift and (neural or self.key_match):
            raise ConfigError("key 'shift' must be null with run or key_match")
        if self.candidate and not self.beat_sync:
            raise ConfigError("key 'candidate' needs beat_sync: true (the planner's "
                              "candidates are beat-synchronous)")

    def render_key(self) -> dict:
        """The settings that change the audio: what the id is the hash of."""
        key = dataclasses.asdict(self)
        key.pop("measures")
        if self.beat_sync:
            key.pop("seconds")
        else:
            key.pop("beats")
        if self.style != "random_linear" or self.run is not None:
            key.pop("seed")
        for name, default in (("schedule", None), ("candidate", 0), ("shift", None)):
            if key[name] == default:
                key.pop(name)
        return key


def crossfade_request(body: dict) -> CrossfadeRequest:
    return load_config(CrossfadeRequest, body, where="crossfade request")


def _bin_means(x: np.ndarray, points: int) -> list[float]:
    """``x`` (N,) averaged into ``points`` equal bins (fewer when N is smaller)."""
    edges = np.linspace(0, len(x), min(points, len(x)) + 1).astype(int)
    sums = np.add.reduceat(np.asarray(x, np.float64), edges[:-1])
    return [round(float(v), 4) for v in sums / np.diff(edges)]


def _measures(out: dict, sr: int) -> dict:
    i0, n = out["overlap_start"], out["overlap"]
    res = {k: round(v, 4) for k, v in transition_measures(out["audio"][:, i0:i0 + n],
                                                          sr).items()}
    try:
        res["loudness_dip_db"] = round(loudness_dip_db(out["audio"], out["part_a"],
                                                       out["part_b"], sr, center=i0 + n // 2), 2)
    except ValueError:          # shorter than one 400 ms loudness block
        res["loudness_dip_db"] = None
    return res


def _neural_parts(out: dict) -> None:
    """Unfaded A and B on the output timeline of a neural render, for the loudness dip."""
    i0, t = out["overlap_start"], out["overlap"]
    n = out["audio"].shape[1]
    a, b = out["x1"], out["x2"]
    part_a, part_b = np.zeros((1, n), np.float32), np.zeros((1, n), np.float32)
    part_a[0, :i0] = out["audio"][0, :i0]
    part_a[0, i0:i0 + t] = a
    part_b[0, i0:i0 + t] = b
    part_b[0, i0 + t:] = out["audio"][0, i0 + t:]
    out["part_a"], out["part_b"] = part_a, part_b


def _lanes(out: dict, stems: dict | None) -> dict | None:
    """Each stem's gain over the output, binned like the curves: the schedule's curve, or the
    whole-mix ramp for a stem it leaves alone (and for every stem without a schedule)."""
    if not stems:
        return None
    gains = out.get("stem_gains") or {}
    return {song: {name: _bin_means(gains.get(song, {}).get(name, out[default]), CURVE_POINTS)
                   for name in stems[song]}
            for song, default in (("a", "g_out"), ("b", "g_in"))}


def render(req: CrossfadeRequest, path_a: Path, path_b: Path, *,
           run_dir: Path | None = None,
           progress: tp.Callable[[float], None] | None = None,
           stems: tuple[Path, Path] | None = None) -> dict:
    """Render the transition; returns ``crossfade``'s output dict with ``sidecar`` replaced by
    the page's JSON (no server paths in it) and ``measures`` (None when not measured).
    ``stems`` (both tracks' stem folders) lets the planner hear the vocals and the keys come
    from the chords, and a ``schedule`` apply."""
    if run_dir is None:
        out = crossfade_songs(path_a, path_b, sr=OUTPUT_SR, style=req.style,
                              seconds=req.seconds, context=req.context,
                              beat_sync=req.beat_sync, beats=req.beats, seed=req.seed,
                              key_match=req.key_match, schedule=req.schedule,
                              candidate=req.candidate, shift=req.shift or None,
                              stems_a=stem_source(stems[0]) if stems else None,
                              stems_b=stem_source(stems[1]) if stems else None)
        curves = {"g_out": _bin_means(out["g_out"], CURVE_POINTS),
                  "g_in": _bin_means(out["g_in"], CURVE_POINTS), "applied_to": "audio"}
    else:
        out = crossfade_neural(path_a, path_b, run_dir, style=req.style,
                               seconds=req.seconds, context=req.context, progress=progress)
        _neural_parts(out)
        # the ramp fades the encodings, not the audio: drawn over the decoded part
        g_out, g_in = cr.NEURAL_RAMPS[req.style](out["sidecar"]["frames"])
        curves = {"g_out": [round(float(v), 4) for v in g_out],
                  "g_in": [round(float(v), 4) for v in g_in], "applied_to": "encodings"}
    sr = out["sr"]
    s = out["sidecar"]
    ov0 = out["overlap_start"] / sr
    ov1 = ov0 + out["overlap"] / sr
    plan = s.get("plan")
    rate = float(s.get("stretch_rate", 1.0))
    timeline = {"duration_s": out["audio"].shape[1] / sr, "overlap_start_s": ov0,
                "overlap_end_s": ov1}
    for k in ("a_downbeat_in_output_s", "b_downbeat_in_output_s", "beat_period_s"):
        if k in s:
            timeline[k.replace("_in_output", "")] = s[k]
    out["sidecar"] = {
        "track_a": req.track_a, "track_b": req.track_b, "mode": s["mode"],
        "style": s["style"], "seconds": s["seconds"], "seed": s["seed"],
        "sr": sr, "channels": int(out["audio"].shape[0]), "context_s": req.context,
        "tempi": ({"a": plan["tempo_a"], "b": plan["tempo_b"]} if plan else None),
        "stretch_rate": rate, "stretch_percent": round(100 * (rate - 1), 3),
        "plan": plan, "trims": s["trims"], "loudness": s["loudness"], "timeline": timeline,
        "output_start_in_first_song_s": s.get("output_start_in_first_song_s"),
        "run": req.run, "curves": {"points": len(curves["g_in"]), **curves,
                                   "span": "output" if run_dir is None else "overlap"},
        "generation": s.get("generation"), "keys": s.get("keys"),
        "candidates": s.get("candidates"), "candidate": s.get("candidate"),
        "schedule": s.get("schedule"), "stems": s.get("stems"),
        "lanes": _lanes(out, s.get("stems")) if run_dir is None else None,
        "fallback_reason": s.get("fallback_reason"),
        "request": req.render_key(), "cache_version": CACHE_VERSION,
    }
    wanted = req.measures
    if wanted is None:
        wanted = out["overlap"] / sr <= MEASURE_MAX_SECONDS
    out["measures"] = _measures(out, sr) if wanted else None
    return out




def prune_renders(root: Path, limit_bytes: int, locks: KeyLocks, *,
                  keep: str | None = None) -> list[str]:
    """Delete the least recently used renders under ``root`` until they fit in
    ``limit_bytes``. Renders are a cache (the same request renders them again), so nothing a
    user saved is lost; ``keep`` and renders in progress (their lock is held) are never
    deleted. Returns the deleted ids."""
    entries = []
    for folder in root.iterdir() if root.is_dir() else ():
        try:
            files = [f.stat() for f in folder.iterdir()]
            used = (folder / "transition.json").stat().st_mtime   # touched on every use
        except (FileNotFoundError, NotADirectoryError):
            continue
        entries.append((used, sum(st.st_size for st in files), folder))
    total = sum(size for _, size, _ in entries)
    deleted = []
    for _, size, folder in sorted(entries, key=lambda e: e[0]):
        if total <= limit_bytes:
            break
        if folder.name == keep:
            continue
        with locks.hold(folder.name, blocking=False) as free:
            if free:
                shutil.rmtree(folder, ignore_errors=True)
                total -= size
                deleted.append(folder.name)
    return deleted


def init_app(app: Flask) -> None:
    app.extensions["crossfade_locks"] = KeyLocks()
    app.extensions["crossfade_renders"] = 0      # renders done (tests, logs)
    con = connect(app.config["DB_PATH"])
    try:
        con.execute("UPDATE crossfade_jobs SET state = 'failed', finished = ?, message = "
                    "'interrupted by a server restart; request it again' WHERE state IN "
                    "('queued', 'running')", (time.time(),))
    finally:
        con.close()
    queue = app.extensions["mixer_jobs"]
    app.extensions["crossfade_enqueue"] = queue.local_task(
        f"crossfade_neural_{id(app)}", functools.partial(_render_job, app))


PROGRESS_EVERY_S = 0.5          # how often a render job writes its progress


def _render_job(app: Flask, payload: dict) -> None:
    """A neural render, in a consumer thread of the job runner: the request, the tracks' files
    and the run folder travel in the payload; state and progress go to ``crossfade_jobs``."""
    key = payload["key"]
    con = connect(app.config["DB_PATH"])
    try:
        if con.execute("UPDATE crossfade_jobs SET state = 'running', started = ?, stage = "
                       "'encoding', progress = 0 WHERE key = ? AND state = 'queued'",
                       (time.time(), key)).rowcount == 0:
            return                                  # failed meanwhile (a restart), or gone
        last = [0.0]

        def progress(fraction: float) -> None:
            now = time.monotonic()
            if now - last[0] >= PROGRESS_EVERY_S or fraction >= 1.0:
                last[0] = now
                con.execute("UPDATE crossfade_jobs SET progress = ?, stage = 'decoding' WHERE "
                            "key = ?", (round(0.02 + 0.96 * fraction, 4), key))

        req = crossfade_request(payload["request"])
        try:
            with app.app_context():
                out = render(req, Path(payload["path_a"]), Path(payload["path_b"]),
                             run_dir=Path(payload["run_dir"]), progress=progress)
                con.execute("UPDATE crossfade_jobs SET stage = 'writing', progress = 0.99 "
                            "WHERE key = ?", (key,))
                locks = app.extensions["crossfade_locks"]
                root = Path(app.config["DATA_DIR"]) / "crossfades"
                with locks.hold(key):
                    write_output(root / key / f"transition.{req.format}", out,
                                 {"measures": out["measures"]})
                app.extensions["crossfade_renders"] += 1
                prune_renders(root, app.config["CROSSFADE_CACHE_BYTES"], locks, keep=key)
        except ToolkitError as e:
            names = {payload["path_a"]: "track A", payload["path_b"]: "track B",
                     payload["run_dir"]: f"run {req.run}"}
            _job_failed(con, key, public_message(str(e), names))
            return
        except Exception:
            log.exception("crossfade render %s failed", key)
            _job_failed(con, key, "the render failed on the server (logged); request it again")
            return
        con.execute("UPDATE crossfade_jobs SET state = 'done', progress = 1, stage = '', "
                    "finished = ? WHERE key = ?", (time.time(), key))
    finally:
        con.close()


def _job_failed(con, key: str, message: str) -> None:
    con.execute("UPDATE crossfade_jobs SET state = 'failed', message = ?, finished = ? "
                "WHERE key = ?", (message[:1000], time.time(), key))


def _job_json(row) -> dict:
    p = float(row["progress"])
    eta = None
    if row["state"] == "running" and row["started"] and p >= 0.05:
        eta = round((time.time() - row["started"]) * (1 - p) / p, 1)
    return {"id": row["key"], "state": row["state"], "stage": row["stage"],
            "progress": round(p, 4), "eta_seconds": eta, "message": row["message"],
            "status_url": f"/api/crossfade/{row['key']}"}


def _submit_job(key: str, req: CrossfadeRequest, path_a: Path, path_b: Path, run_dir: Path):
    """Queue the neural render ``key`` (or join the one queued or running): 202 and its job."""
    con = db()
    user = ensure_user()
    con.execute("BEGIN IMMEDIATE")
    try:
        row = con.execute("SELECT * FROM crossfade_jobs WHERE key = ?", (key,)).fetchone()
        if row is not None and row["state"] in ("queued", "running"):
            con.execute("COMMIT")
            return jsonify(_job_json(row)), 202
        limit = current_app.config["SERVER_CONFIG"].max_jobs_per_user
        mine = con.execute("SELECT COUNT(*) FROM crossfade_jobs WHERE user_id = ? AND state IN "
                           "('queued', 'running')", (user,)).fetchone()[0]
        if mine >= limit:
            raise JobLimitError(limit, "neural crossfades")
        con.execute("INSERT OR REPLACE INTO crossfade_jobs (key, user_id, track_a, track_b, "
                    "state, stage, progress, message, created) VALUES (?, ?, ?, ?, 'queued', "
                    "'', 0, '', ?)", (key, user, req.track_a, req.track_b, time.time()))
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    current_app.extensions["crossfade_enqueue"](
        {"key": key, "request": dataclasses.asdict(req), "path_a": str(path_a),
         "path_b": str(path_b), "run_dir": str(run_dir)}, priority=-mine)
    row = con.execute("SELECT * FROM crossfade_jobs WHERE key = ?", (key,)).fetchone()
    return jsonify(_job_json(row)), 202


def _job_of(key: str):
    """The render job of ``key`` if this user may see it (both tracks theirs to use)."""
    row = db().execute("SELECT * FROM crossfade_jobs WHERE key = ?", (key,)).fetchone()
    if row is None:
        return None
    try:
        track_row(row["track_a"])
        track_row(row["track_b"])
    except ApiError:
        return None
    return row


def _root() -> Path:
    return data_dir() / "crossfades"


def _touch(path: Path) -> None:
    """Mark a render as used now: pruning deletes the least recently used first."""
    with contextlib.suppress(FileNotFoundError):
        os.utime(path)


def _files(key: str) -> tuple[Path | None, Path]:
    folder = _root() / key
    sidecar = folder / "transition.json"
    audio = next((p for p in (folder / "transition.ogg", folder / "transition.flac")
                  if p.is_file()), None)
    return audio, sidecar


def _result(key: str, sidecar: dict, *, cached: bool) -> dict:
    measures = sidecar.pop("measures", None)
    return {"id": key, "audio_url": f"/api/crossfade/{key}/audio",
            "duration": sidecar["timeline"]["duration_s"], "cached": cached,
            "sidecar": sidecar, "measures": measures,
            "measures_skipped": (None if measures is not None else
                                 "not measured (overlaps longer than "
                                 f"{MEASURE_MAX_SECONDS:g} s are measured on request): "
                                 "send \"measures\": true")}


def _run_dir(run_id: str) -> Path:
    for r in wavenet_runs(current_app.config["MODELS_DIR"]):
        if r["id"] == run_id:
            return r["path"]
    raise ApiError(404, f"unknown WaveNet run {run_id!r} (GET /api/crossfade/styles lists them)")


def _known(key: str) -> tuple[Path, Path, dict]:
    """A render this user may hear: both of its tracks must be theirs to use (sample tracks or
    their own uploads); any other id answers 404 as an unknown one does."""
    if not ID.match(key or ""):
        raise ApiError(404, f"unknown crossfade {key!r}")
    audio_path, sidecar_path = _files(key)
    try:
        if audio_path is None:
            raise FileNotFoundError
        sidecar = json.loads(sidecar_path.read_text())   # pruned meanwhile: FileNotFoundError
        track_row(sidecar["track_a"])
        track_row(sidecar["track_b"])
    except (FileNotFoundError, ApiError):
        raise ApiError(404, f"unknown crossfade {key!r}") from None
    return audio_path, sidecar_path, sidecar


def _stems_for(req: CrossfadeRequest) -> tuple[tuple[Path, str], tuple[Path, str]] | None:
    """Both tracks' stems (folder, cache key) from this user's separations, for a
    beat-synchronous transition; a schedule without them is a 409 that names the tracks to
    separate first (POST /api/mixer/jobs)."""
    if not req.beat_sync or req.run is not None:
        return None
    found = {t: track_stems(t) for t in (req.track_a, req.track_b)}
    missing = [t for t, v in found.items() if v is None]
    if missing and req.schedule is not None:
        raise ApiError(409, "a stem schedule needs both tracks' stems: separate "
                       + " and ".join(f"track {t}" for t in missing)
                       + " first (a stem mixer job for each), then ask again",
                       extra={"needs_stems": missing})
    a, b = found[req.track_a], found[req.track_b]
    return None if a is None or b is None else (a, b)


@bp.get("/styles")
def styles():
    runs = wavenet_runs(current_app.config["MODELS_DIR"])
    defaults = {k: v for k, v in dataclasses.asdict(
        CrossfadeRequest(track_a="", track_b="")).items() if k not in ("track_a", "track_b")}
    return jsonify(simple=list(SIMPLE_STYLES), neural=list(NEURAL_STYLES) if runs else [],
                   beats=list(BEATS), defaults=defaults, schedules=list(SCHEDULES),
                   limits={"seconds": MAX_SECONDS, "neural_seconds": MAX_NEURAL_SECONDS,
                           "context": MAX_CONTEXT, "measure_seconds": MEASURE_MAX_SECONDS},
                   runs=[{k: v for k, v in r.items() if k != "path"} for r in runs])


@bp.post("")
def create():
    try:
        req = crossfade_request(json_body())
    except ConfigError as e:
        raise ApiError(400, str(e)) from None
    path_a, path_b = track_path(req.track_a), track_path(req.track_b)
    rdir = _run_dir(req.run) if req.run is not None else None
    ident = req.render_key()
    if rdir is not None:            # retraining a run must not serve its old renders
        st = (rdir / "last.pt").stat()
        ident["weights"] = [st.st_size, st.st_mtime_ns]
    ident["cache_version"] = CACHE_VERSION
    stems = _stems_for(req)
    if stems is not None:          # another separation of a track is another render
        ident["stems"] = [key for _, key in stems]
    key = hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()
    locks = current_app.extensions["crossfade_locks"]
    with locks.hold(key):
        audio_path, sidecar_path = _files(key)      # after the lock: another render's files
        if sidecar_path.is_file() and audio_path is not None:
            sidecar = json.loads(sidecar_path.read_text())
            if not (req.measures and sidecar.get("measures") is None):
                _touch(sidecar_path)
                return jsonify(_result(key, sidecar, cached=True))
        if rdir is not None:
            return _submit_job(key, req, path_a, path_b, rdir)
        try:
            out = render(req, path_a, path_b, run_dir=rdir,
                         stems=None if stems is None else (stems[0][0], stems[1][0]))
        except ConfigError as e:        # a custom schedule's field, a candidate past the last
            raise ApiError(400, str(e)) from None
        except ToolkitError as e:       # no steady beat, a song too short, ...
            raise ApiError(422, str(e)) from None
        write_output(_root() / key / f"transition.{req.format}", out,
                     {"measures": out["measures"]})
        current_app.extensions["crossfade_renders"] += 1
        sidecar = json.loads(sidecar_path.read_text())
    prune_renders(_root(), current_app.config["CROSSFADE_CACHE_BYTES"], locks, keep=key)
    return jsonify(_result(key, sidecar, cached=False))


@bp.get("/<key>")
def get(key: str):
    try:
        _, sidecar_path, sidecar = _known(key)
    except ApiError:
        row = _job_of(key) if ID.match(key or "") else None
        if row is None or row["state"] == "done":      # done: the render was pruned since
            raise
        if row["state"] == "failed":
            raise ApiError(422, f"the neural crossfade failed: {row['message']}") from None
        return jsonify(_job_json(row)), 202
    _touch(sidecar_path)
    return jsonify(_result(key, sidecar, cached=True))


@bp.get("/<key>/audio")
def audio(key: str):
    audio_path, sidecar_path, _ = _known(key)
    try:
        response = send_media(audio_path, mimetype=MIME[audio_path.suffix], max_age=86400,
                              download_name=f"crossfade-{key[:12]}{audio_path.suffix}")
    except FileNotFoundError:
        raise ApiError(404, f"unknown crossfade {key!r}") from None
    _touch(sidecar_path)
    return response
