"""The stem mixer: separation jobs, server-side mix export, saved mixes and personalised gain
suggestions (a Flask blueprint), and the command line.

    python mixer_api.py separate SONG -o DIR [--backend demucs|dsp] [--model NAME]
                                             [--demucs-repo DIR] [--shifts N] [--previews]
    python mixer_api.py mix STEMS_DIR --gain vocals=+3 --gain drums=-6 -o mix.flac
                                      [--normalize none|peak|rescale|lufs] [--pan bass=-0.3]
                                      [--mute other] [--solo vocals] [--target-lufs -14]
    python mixer_api.py evaluate --stems-root DIR [--backend dsp] [--max-tracks N]
    python mixer_api.py worker --data DIR --redis redis://HOST:6379/0 [--workers N]

HTTP (registered by ``api.py`` under ``/api/mixer``; JSON in and out, errors as
``{"error": ...}`` with a 4xx status):

    POST   /jobs                    {"track_id", "backend"?, "model"?} or multipart 'file'
    GET    /jobs                    my jobs, newest first
    GET    /jobs/<id>               state, progress, eta_seconds, stems (when done)
    POST   /jobs/<id>/retry         re-run a failed, retryable job
    GET    /jobs/<id>/stems/<stem>.<ogg|flac>   compressed preview or lossless stem
    POST   /jobs/<id>/mix           MixSettings -> the rendered file (attachment)
    GET    /jobs/<id>/suggestions   {"gains": {stem: dB}, "trained", "n_examples"}
    POST   /mixes                   {"job_id", "name", "settings"} -> saved mix (trains)
    GET    /mixes?page=&per_page=, GET /mixes/<id>, DELETE /mixes/<id>   (delete retrains)

The browser plays and mixes the stems itself (Web Audio); the server renders only on export,
with the same dB and pan math (``mixer_render.py``).
"""

from __future__ import annotations

import argparse
import atexit
import hashlib
import json
import re
import secrets
import sys
import time
from pathlib import Path

import numpy as np

from config import ConfigError, ToolkitError, user_errors_exit_2
from mixer_jobs import JobQueue, cached_stems, connect, job_json
from mixer_render import FORMATS, MIME, export_mix, mix_settings, render_mix
from mixer_separation import (
    BACKENDS,
    STEMS,
    UnknownModelError,
    check_demucs_weights,
    evaluate,
    load_stems,
    separate,
)

MODEL_NAME = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")
KEEP_EXPORTS = 5

MIXES_SCHEMA = """
CREATE TABLE IF NOT EXISTS mixer_mixes (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    job_id TEXT NOT NULL,
    track_id TEXT NOT NULL,
    cache_key TEXT NOT NULL,        -- which stems the mix belongs to
    name TEXT NOT NULL,
    settings TEXT NOT NULL,         -- JSON MixSettings
    created REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS mixer_mixes_user ON mixer_mixes(user_id, created);
CREATE UNIQUE INDEX IF NOT EXISTS mixer_mixes_name ON mixer_mixes(user_id, job_id, name);
"""


# ---------------------------------------------------------------------------------------------
# Blueprint

def create_blueprint():
    """The mixer's routes; the job queue starts when the blueprint is registered on an app."""
    from flask import Blueprint, current_app, jsonify, request, send_file

    import web_common as wc
    bp = Blueprint("mixer", __name__)

    @bp.record_once
    def start_queue(state):
        app = state.app
        root = Path(app.config["DATA_DIR"]) / "mixer"
        queue = JobQueue(app.config["DB_PATH"], root, redis_url=app.config.get("REDIS_URL"),
                         workers=int(app.config.get("MIXER_WORKERS", 2)))
        con = connect(app.config["DB_PATH"])
        con.executescript(MIXES_SCHEMA)
        con.close()
        app.extensions["mixer_jobs"] = queue
        atexit.register(queue.stop)

    def queue() -> JobQueue:
        return current_app.extensions["mixer_jobs"]

    def root() -> Path:
        return wc.data_dir() / "mixer"

    def my_job(job_id: str):
        row = None
        if re.fullmatch(r"[0-9a-f]{16}", job_id or ""):
            row = wc.db().execute("SELECT * FROM mixer_jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None or row["user_id"] != wc.user_id():    # another user's job is unknown
            raise wc.ApiError(404, f"unknown job {job_id!r}")
        return row

    def done_job(job_id: str):
        row = my_job(job_id)
        if row["state"] != "done":
            raise wc.ApiError(409, f"job {job_id} is {row['state']}: the stems are not ready"
                              + (f" ({row['message']})" if row["message"] else ""))
        return row

    def stems_dir(row) -> Path:
        return root() / "jobs" / row["id"] / "stems"

    def full_job(row) -> dict:
        out = job_json(row)
        out["original_url"] = f"/api/tracks/{row['track_id']}/audio"
        if row["state"] == "done":
            manifest = json.loads((stems_dir(row) / "stems.json").read_text())
            base = f"/api/mixer/jobs/{row['id']}/stems"
            out.update(sample_rate=manifest["sample_rate"], duration=manifest["duration"],
                       mix_lufs=manifest.get("mix_lufs"),
                       stems={s: {"preview": f"{base}/{s}.ogg", "lossless": f"{base}/{s}.flac"}
                              for s in manifest["sources"]})
        return out

    @bp.before_request
    def identify():
        wc.user_id()

    @bp.post("/jobs")
    def start_job():
        upload = request.files.get("file") if request.files else None
        body = request.form.to_dict() if request.mimetype == "multipart/form-data" \
            else wc.json_body()
        unknown = sorted(set(body) - {"track_id", "backend", "model", "file"})
        if unknown:
            raise wc.ApiError(400, f"unknown field {unknown[0]!r} (fields: track_id, backend, "
                                   "model)")
        # every field is checked before an upload is stored: a refused job stores nothing
        backend = body.get("backend") or wc.setting("MIXER_BACKEND", "dsp")
        if backend not in BACKENDS:
            raise wc.ApiError(400, f"backend must be one of {', '.join(BACKENDS)}, "
                                   f"got {backend!r}")
        model = body.get("model") or wc.setting("DEMUCS_MODEL", "htdemucs")
        if not isinstance(model, str) or not MODEL_NAME.match(model):
            raise wc.ApiError(400, f"model must be a Demucs model name, got {model!r}")
        repo = wc.setting("DEMUCS_REPO")
        if backend == "demucs":
            try:
                check_demucs_weights(model, repo)
            except UnknownModelError as e:       # the request is wrong, not the server
                raise wc.ApiError(400, str(e)) from None
            except ToolkitError as e:            # a known model whose weights are not here
                raise wc.ApiError(503, str(e)) from None
        if upload is not None:
            track_id = wc.save_upload(upload)["id"]
        else:
            track_id = body.get("track_id")
        if not isinstance(track_id, str):
            raise wc.ApiError(400, "send 'track_id' (JSON) or a multipart 'file' upload")
        path = wc.track_path(track_id)
        job_id = queue().submit(wc.db(), user_id=wc.user_id(), track_id=track_id,
                                track_path=path, backend=backend, model=model,
                                options={"demucs_repo": repo,
                                         "classifier_run": wc.setting("CLASSIFIER_RUN")})
        row = wc.db().execute("SELECT * FROM mixer_jobs WHERE id = ?", (job_id,)).fetchone()
        return jsonify(full_job(row)), 202

    @bp.get("/jobs")
    def list_jobs():
        rows = wc.db().execute("SELECT * FROM mixer_jobs WHERE user_id = ? ORDER BY created "
                               "DESC LIMIT 200", (wc.user_id(),)).fetchall()
        return jsonify(items=[job_json(r) for r in rows])

    @bp.get("/jobs/<job_id>")
    def get_job(job_id: str):
        return jsonify(full_job(my_job(job_id)))

    @bp.post("/jobs/<job_id>/retry")
    def retry_job(job_id: str):
        row = my_job(job_id)
        if row["state"] != "failed" or not row["retryable"]:
            raise wc.ApiError(409, f"job {job_id} is {row['state']}"
                              + ("" if row["state"] != "failed" else " and not retryable"))
        queue().retry(wc.db(), job_id)
        return jsonify(full_job(my_job(job_id))), 202

    @bp.get("/jobs/<job_id>/stems/<name>")
    def get_stem(job_id: str, name: str):
        row = done_job(job_id)
        stem, _, ext = name.rpartition(".")
        if stem not in STEMS or ext not in ("ogg", "flac"):
            raise wc.ApiError(404, f"unknown stem file {name!r} (use <stem>.ogg for the "
                                   "preview or <stem>.flac for the lossless stem)")
        path = stems_dir(row) / name
        if not path.is_file():
            raise wc.ApiError(404, f"stem file {name!r} is missing")
        return send_file(path, mimetype=MIME[f".{ext}"], conditional=True, max_age=86400,
                         download_name=f"{row['track_id']}-{name}")

    @bp.post("/jobs/<job_id>/mix")
    def render(job_id: str):
        body = wc.json_body()
        row = done_job(job_id)
        stack, names, sr = cached_stems(stems_dir(row))
        settings = mix_settings(body, names)
        audio, report = render_mix((stack, names), sr, settings)
        ext = FORMATS[settings.format][0]
        digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]
        out = root() / "jobs" / job_id / "exports" / f"mix-{digest}{ext}"
        export_mix(out, audio, sr, settings.format)
        exports = sorted(out.parent.glob("mix-*"), key=lambda p: p.stat().st_mtime)
        for old in exports[:-KEEP_EXPORTS]:
            old.unlink(missing_ok=True)
        resp = send_file(out, mimetype=MIME[ext], as_attachment=True,
                         download_name=f"mix-{row['track_id']}{ext}")
        resp.headers["X-Mix-Report"] = json.dumps(_finite(report))
        return resp

    @bp.get("/jobs/<job_id>/suggestions")
    def suggestions(job_id: str):
        import mixer_gains
        row = done_job(job_id)
        feats = _track_features(wc.db(), row)
        return jsonify(job_id=job_id, relative=True,
                       **mixer_gains.suggest(wc.db(), wc.user_id(), feats))

    def mix_json(m) -> dict:
        return {"id": m["id"], "name": m["name"], "job_id": m["job_id"],
                "track_id": m["track_id"], "settings": json.loads(m["settings"]),
                "created": m["created"]}

    def my_mix(mix_id: str):
        m = None
        if re.fullmatch(r"[0-9a-f]{16}", mix_id or ""):
            m = wc.db().execute("SELECT * FROM mixer_mixes WHERE id = ?", (mix_id,)).fetchone()
        if m is None or m["user_id"] != wc.user_id():
            raise wc.ApiError(404, f"unknown mix {mix_id!r}")
        return m

    @bp.post("/mixes")
    def save_mix():
        import mixer_gains
        body = wc.json_body()
        unknown = sorted(set(body) - {"job_id", "name", "settings"})
        if unknown:
            raise wc.ApiError(400, f"unknown field {unknown[0]!r} (fields: job_id, name, "
                                   "settings)")
        name = body.get("name")
        if not isinstance(name, str) or not name.strip() or len(name) > 200:
            raise wc.ApiError(400, "name must be a non-empty string of at most 200 characters")
        if not isinstance(body.get("settings"), dict):
            raise wc.ApiError(400, "settings must be a JSON object (gains, pans, mutes, ...)")
        row = done_job(str(body.get("job_id")))
        settings = mix_settings(body["settings"], STEMS)
        con, user = wc.db(), wc.user_id()
        feats = _track_features(con, row)
        key = (user, row["id"], name.strip())
        existing = con.execute("SELECT id FROM mixer_mixes WHERE user_id = ? AND job_id = ? AND "
                               "name = ?", key).fetchone()
        # one mix per (user, stems, name), also when two saves race: the unique index decides
        con.execute("INSERT INTO mixer_mixes VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT "
                    "(user_id, job_id, name) DO UPDATE SET settings = excluded.settings, "
                    "created = excluded.created",
                    (secrets.token_hex(8), user, row["id"], row["track_id"], row["cache_key"],
                     name.strip(), json.dumps(body["settings"], sort_keys=True), time.time()))
        mix_id = con.execute("SELECT id FROM mixer_mixes WHERE user_id = ? AND job_id = ? AND "
                             "name = ?", key).fetchone()["id"]
        if existing is None:
            mixer_gains.update_on_save(con, user, feats, _preference_target(settings))
        else:   # a replaced mix must not count twice: learn the user's mixes afresh
            _retrain_preferences(con, user)
        return jsonify(mix_json(my_mix(mix_id))), 201 if existing is None else 200

    @bp.get("/mixes")
    def list_mixes():
        page = wc.arg("page", int, 1, lo=1)
        per_page = wc.arg("per_page", int, 100, lo=1, hi=500)
        con, user = wc.db(), wc.user_id()
        total = con.execute("SELECT COUNT(*) FROM mixer_mixes WHERE user_id = ?",
                            (user,)).fetchone()[0]
        rows = con.execute("SELECT * FROM mixer_mixes WHERE user_id = ? ORDER BY created DESC, "
                           "rowid DESC LIMIT ? OFFSET ?",
                           (user, per_page, (page - 1) * per_page)).fetchall()
        return jsonify(items=[mix_json(m) for m in rows], total=total, page=page,
                       per_page=per_page)

    @bp.get("/mixes/<mix_id>")
    def get_mix(mix_id: str):
        m = my_mix(mix_id)
        job = wc.db().execute("SELECT * FROM mixer_jobs WHERE id = ?", (m["job_id"],)).fetchone()
        return jsonify(mix_json(m) | {"job": full_job(job) if job else None})

    @bp.delete("/mixes/<mix_id>")
    def delete_mix(mix_id: str):
        m = my_mix(mix_id)
        con, user = wc.db(), wc.user_id()
        con.execute("DELETE FROM mixer_mixes WHERE id = ?", (m["id"],))
        return jsonify(deleted=m["id"], retrained_on=_retrain_preferences(con, user))

    return bp


def _preference_target(settings) -> np.ndarray:
    """What a saved mix teaches: its relative gains, with muted stems, and every stem left out
    of a solo, at the -60 dB floor."""
    import mixer_gains
    silent = set(settings.mutes)
    if settings.solos:
        silent |= set(STEMS) - set(settings.solos)
    return mixer_gains.relative_gains(settings.gains, silent)


def _retrain_preferences(con, user: str) -> int:
    """Retrain ``user``'s suggestion network from scratch on their saved mixes; a mix whose
    track can no longer be analysed is left out rather than failing the request."""
    import mixer_gains
    import web_common as wc
    feats, targets = [], []
    for r in con.execute("SELECT m.settings, j.* FROM mixer_mixes m JOIN mixer_jobs j ON "
                         "j.id = m.job_id WHERE m.user_id = ? ORDER BY m.created",
                         (user,)).fetchall():
        try:
            feats.append(_track_features(con, r))
        except wc.ApiError:
            continue
        targets.append(_preference_target(mix_settings(json.loads(r["settings"]))))
    mixer_gains.retrain(con, user, np.array(feats).reshape(-1, mixer_gains.N_FEATURES),
                        np.array(targets).reshape(-1, 4))
    return len(feats)


def _finite(obj):
    """JSON-safe copy: NaN and infinities (e.g. the loudness of silence) become null."""
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    return obj


def _track_features(con, job) -> np.ndarray:
    """The job's track features (computed by the job; computed here if that failed)."""
    import web_common as wc
    from mixer_gains import track_features
    run = json.loads(job["options"]).get("classifier_run") or ""
    row = con.execute("SELECT features FROM mixer_features WHERE track_id = ? AND "
                      "classifier = ?", (job["track_id"], run)).fetchone()
    if row is not None:
        return np.array(json.loads(row["features"]), np.float32)
    try:
        v = track_features(job["track_path"])
    except ToolkitError as e:
        raise wc.ApiError(409, f"cannot analyse the track for suggestions: {e}") from None
    con.execute("INSERT OR REPLACE INTO mixer_features VALUES (?, ?, ?)",
                (job["track_id"], run, json.dumps([float(x) for x in v])))
    return v


def shutdown(app) -> None:
    """Stop an app's embedded job consumer (tests; the server stops it at exit)."""
    queue = app.extensions.get("mixer_jobs")
    if queue is not None:
        queue.stop()


# ---------------------------------------------------------------------------------------------
# CLI

def _assignments(items: list[str], what: str, cast=float) -> dict:
    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise ConfigError(f"--{what} expects STEM=VALUE, got {item!r}")
        try:
            out[name.strip()] = cast(value)
        except ValueError:
            raise ConfigError(f"--{what} {item!r}: {value!r} is not a number") from None
    return out


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="Stem separation, mixing and evaluation.")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("separate", help="separate a song into drums, bass, other, vocals")
    s.add_argument("song")
    s.add_argument("-o", "--out", required=True, help="folder for the stems")
    s.add_argument("--backend", choices=BACKENDS, default="demucs")
    s.add_argument("--model", default="htdemucs", help="Demucs model name or signature")
    s.add_argument("--demucs-repo", help="local folder with Demucs weights (offline)")
    s.add_argument("--shifts", type=int, default=1, help="Demucs shift trick passes")
    s.add_argument("--previews", action="store_true", help="also write OGG previews")

    m = sub.add_parser("mix", help="mix a stems folder into one file")
    m.add_argument("stems_dir")
    m.add_argument("-o", "--out", required=True, help=".wav, .flac or .mp3")
    m.add_argument("--gain", action="append", default=[], metavar="STEM=DB")
    m.add_argument("--pan", action="append", default=[], metavar="STEM=PAN")
    m.add_argument("--mute", action="append", default=[], metavar="STEM")
    m.add_argument("--solo", action="append", default=[], metavar="STEM")
    m.add_argument("--normalize", choices=["none", "peak", "rescale", "lufs"], default="lufs")
    m.add_argument("--target-lufs", type=float, default=-14.0)
    m.add_argument("--ceiling-dbtp", type=float, default=-1.0)
    m.add_argument("--no-limiter", action="store_true",
                   help="lufs: lower the whole gain to meet the ceiling instead of limiting")
    m.add_argument("--bits", type=int, choices=[16, 24], default=16, help="WAV sample size")

    e = sub.add_parser("evaluate", help="SDR of a backend on folders with true stems")
    e.add_argument("--stems-root", required=True)
    e.add_argument("--backend", choices=BACKENDS, default="dsp")
    e.add_argument("--model", default="htdemucs")
    e.add_argument("--demucs-repo")
    e.add_argument("--max-tracks", type=int)
    e.add_argument("--json", help="also write the results here")

    w = sub.add_parser("worker", help="process jobs from a Redis queue (scale-out)")
    w.add_argument("--data", default="data", help="the server's data folder (shared)")
    w.add_argument("--redis", required=True, help="redis://HOST:PORT/DB")
    w.add_argument("--workers", type=int, default=1)
    return p


def _fmt(x: float) -> str:
    return "   nan" if not np.isfinite(x) else f"{x:6.2f}"


@user_errors_exit_2
def main(argv: list[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    if args.command == "separate":
        from tqdm import tqdm
        with tqdm(total=100, unit="%", desc="separating") as bar:
            def progress(f: float, stage: str) -> None:
                bar.set_postfix_str(stage)
                bar.update(round(100 * f) - bar.n)
            manifest = separate(args.song, args.out, backend=args.backend, model=args.model,
                                repo=args.demucs_repo, shifts=args.shifts, progress=progress)
        if args.previews:
            from mixer_jobs import write_previews
            write_previews(Path(args.out), manifest)
        print(f"{', '.join(manifest['sources'])} -> {args.out} "
              f"({manifest['duration']:.1f} s of audio in {manifest['seconds']:.1f} s)")
    elif args.command == "mix":
        out = Path(args.out)
        ext = out.suffix.lower()
        fmt = {".wav": f"wav{args.bits}", ".flac": "flac", ".mp3": "mp3"}.get(ext)
        if fmt is None:
            raise ConfigError(f"{out}: the mix must be .wav, .flac or .mp3")
        settings = mix_settings({"gains": _assignments(args.gain, "gain"),
                                 "pans": _assignments(args.pan, "pan"), "mutes": args.mute,
                                 "solos": args.solo, "normalize": args.normalize,
                                 "target_lufs": args.target_lufs,
                                 "ceiling_dbtp": args.ceiling_dbtp,
                                 "limiter": not args.no_limiter, "format": fmt})
        stems, sr = load_stems(args.stems_dir)
        audio, report = render_mix(stems, sr, settings)
        export_mix(out, audio, sr, fmt)
        print(f"{out}: {audio.shape[1] / sr:.1f} s, " + ", ".join(
            f"{k} {v}" for k, v in report.items()))
    elif args.command == "evaluate":
        print(f"{'track':<22} " + " ".join(f"{s:>13}" for s in STEMS) + "     s")
        print(f"{'':<22} " + " ".join(f"{'new':>6} {'med':>6}" for _ in STEMS))

        def row(r: dict) -> None:
            print(f"{r['track'][-22:]:<22} " + " ".join(
                f"{_fmt(r['sdr'][s])} {_fmt(r['sdr_median'][s])}" for s in STEMS)
                + f" {r['seconds']:5.1f}", flush=True)
        result = evaluate(args.stems_root, backend=args.backend, model=args.model,
                          repo=args.demucs_repo, max_tracks=args.max_tracks, on_track=row)
        print(f"{'mean':<22} " + " ".join(f"{_fmt(result['mean'][s])} "
                                          f"{_fmt(result['mean_median'][s])}" for s in STEMS))
        print(f"all stems: new SDR {result['mean']['all']:.2f} dB, framewise median "
              f"{result['mean_median']['all']:.2f} dB ({args.backend}, "
              f"{len(result['tracks'])} tracks, real-time factor "
              f"{result['real_time_factor']:.3f})")
        if args.json:
            from config import atomic_write_json
            atomic_write_json(args.json, result)
    elif args.command == "worker":
        data = Path(args.data).resolve()
        queue = JobQueue(data / "playground.sqlite", data / "mixer", redis_url=args.redis,
                         consume=False)
        queue.huey.create_consumer(workers=args.workers, worker_type="thread").run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
