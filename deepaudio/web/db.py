"""The playground's one database: every table, every migration, and the connections.

SQLite in WAL mode (many readers, one writer, no server to run), one file in the data folder
(``playground.sqlite``). Tracks are identified by the SHA-256 of their content, so the same song
uploaded twice (under any name) is stored once. Job workers on other machines never open it.

Tables: ``users``, ``tracks``, ``uploads`` (who uploaded what), ``timelines`` and
``genre_cache`` (visualizer caches), ``mixer_jobs``, ``mixer_stemsets`` (the stem cache),
``mixer_features``, ``mixer_mixes`` (saved mixes), ``mixer_preference_models`` (each
user's suggestion network), ``crossfade_jobs`` (neural transitions rendered as jobs) and
``training_jobs`` (encoders trained on a user's own songs) and ``video_jobs`` (music videos
rendered on the server).
"""

from __future__ import annotations

import os
import sqlite3

from flask import current_app, g

SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    id TEXT PRIMARY KEY,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS tracks (
    id TEXT PRIMARY KEY,            -- sha256 of the file content, first 20 hex digits
    source TEXT NOT NULL,           -- 'fma' or 'upload'
    fma_id INTEGER,
    path TEXT NOT NULL,             -- FMA: absolute; upload: relative to the data folder
    format TEXT NOT NULL,
    title TEXT NOT NULL DEFAULT '',
    artist TEXT NOT NULL DEFAULT '',
    genre TEXT NOT NULL DEFAULT '',
    duration REAL NOT NULL,
    sample_rate INTEGER NOT NULL,
    channels INTEGER NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL DEFAULT 0,
    owner TEXT,                     -- legacy uploader, moved to the uploads table on start
    added REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS tracks_fma ON tracks(fma_id);
CREATE INDEX IF NOT EXISTS tracks_owner ON tracks(owner);
CREATE TABLE IF NOT EXISTS uploads (   -- who uploaded what: the same content may be anyone's
    user_id TEXT NOT NULL,
    track_id TEXT NOT NULL,
    title TEXT NOT NULL,            -- from this user's file name
    added REAL NOT NULL,
    PRIMARY KEY (user_id, track_id)
);
CREATE INDEX IF NOT EXISTS uploads_track ON uploads(track_id);
CREATE TABLE IF NOT EXISTS timelines (
    key TEXT PRIMARY KEY,           -- track, run, layer, method, scaling, per, fps, smoothing, blur
    track_id TEXT NOT NULL,
    run TEXT NOT NULL,
    meta TEXT NOT NULL,             -- JSON: names, fps, start, feature_variance, ...
    frames BLOB NOT NULL,           -- zlib-compressed float32 (T, D)
    shape TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS genre_cache (
    track_id TEXT NOT NULL,
    run TEXT NOT NULL,
    probabilities TEXT NOT NULL,    -- JSON {genre: p}
    created REAL NOT NULL,
    PRIMARY KEY (track_id, run)
);
CREATE TABLE IF NOT EXISTS mixer_jobs (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    track_id TEXT NOT NULL,
    track_path TEXT NOT NULL,
    backend TEXT NOT NULL,
    model TEXT NOT NULL,
    options TEXT NOT NULL DEFAULT '{}',   -- JSON: demucs repo, classifier run
    cache_key TEXT NOT NULL,
    state TEXT NOT NULL,                  -- queued | running | done | failed
    stage TEXT NOT NULL DEFAULT '',
    progress REAL NOT NULL DEFAULT 0,
    message TEXT NOT NULL DEFAULT '',
    retryable INTEGER NOT NULL DEFAULT 0,
    cache_hit INTEGER NOT NULL DEFAULT 0,
    attempt INTEGER NOT NULL DEFAULT 0,   -- tries so far (a retry or a lost worker adds one)
    created REAL NOT NULL,
    started REAL,
    finished REAL
);
CREATE INDEX IF NOT EXISTS mixer_jobs_user ON mixer_jobs(user_id, created);
CREATE TABLE IF NOT EXISTS mixer_stemsets (
    key TEXT PRIMARY KEY,                 -- <track hash>-<backend>-<model>
    state TEXT NOT NULL,                  -- building | done | failed
    job_id TEXT NOT NULL,                 -- the job that builds it
    manifest TEXT NOT NULL DEFAULT '{}',
    updated REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS mixer_features (
    track_id TEXT NOT NULL,
    classifier TEXT NOT NULL,             -- run dir, '' without a classifier
    features TEXT NOT NULL,               -- JSON list of 23 floats
    PRIMARY KEY (track_id, classifier)
);
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
CREATE TABLE IF NOT EXISTS crossfade_jobs (   -- a neural transition rendered as a job
    key TEXT PRIMARY KEY,           -- the render's id (SHA-256 of the normalised request)
    user_id TEXT NOT NULL,          -- who asked for it last (it counts toward their limit)
    track_a TEXT NOT NULL,
    track_b TEXT NOT NULL,
    state TEXT NOT NULL,            -- queued | running | done | failed
    stage TEXT NOT NULL DEFAULT '',
    progress REAL NOT NULL DEFAULT 0,
    message TEXT NOT NULL DEFAULT '',
    created REAL NOT NULL,
    started REAL,
    finished REAL
);
CREATE INDEX IF NOT EXISTS crossfade_jobs_user ON crossfade_jobs(user_id, state);
CREATE TABLE IF NOT EXISTS video_jobs (       -- a music video of a track, rendered as a job
    id TEXT PRIMARY KEY,            -- 16 hex digits; the file is <data>/videos/<id>.mp4
    user_id TEXT NOT NULL,
    track_id TEXT NOT NULL,
    options TEXT NOT NULL,          -- JSON: run, layer, mapping, viz, size, fps, seed, ...
    state TEXT NOT NULL,            -- queued | running | done | failed
    progress REAL NOT NULL DEFAULT 0,
    frames INTEGER,                 -- how many the video has
    bytes INTEGER,
    message TEXT NOT NULL DEFAULT '',
    created REAL NOT NULL,
    started REAL,
    finished REAL
);
CREATE INDEX IF NOT EXISTS video_jobs_user ON video_jobs(user_id, state);
CREATE TABLE IF NOT EXISTS training_jobs (    -- an encoder trained on a user's own songs
    id TEXT PRIMARY KEY,            -- 16 hex digits
    user_id TEXT NOT NULL,
    user_key TEXT NOT NULL,         -- the folder of the user's runs (a hash of user_id)
    name TEXT NOT NULL,
    source TEXT NOT NULL,           -- uploads | folder
    songs INTEGER,                  -- how many uploads it trains on (folder: null)
    state TEXT NOT NULL,            -- queued | running | done | failed
    stage TEXT NOT NULL DEFAULT '', -- features | training | testing
    progress REAL NOT NULL DEFAULT 0,
    message TEXT NOT NULL DEFAULT '',
    run_id TEXT,                    -- when done: the run, as GET /api/models lists it
    test_ratio REAL,                -- test MSE / per-position baseline
    pca_ratio REAL,                 -- PCA-10's, on the same songs
    created REAL NOT NULL,
    started REAL,
    finished REAL
);
CREATE INDEX IF NOT EXISTS training_jobs_user ON training_jobs(user_id, state);
CREATE TABLE IF NOT EXISTS mixer_preference_models (
    user_id TEXT PRIMARY KEY,
    state BLOB NOT NULL,            -- torch state_dict
    n_examples INTEGER NOT NULL,
    updated REAL NOT NULL
);
"""

# Caches keyed by track id that go with the track when its last uploader removes it.
TRACK_CACHES = ("timelines", "genre_cache", "mixer_features")


def connect(path: str | os.PathLike) -> sqlite3.Connection:
    """A connection in WAL mode with rows as ``sqlite3.Row``, in autocommit mode (each
    statement commits; use an explicit ``BEGIN`` ... ``COMMIT`` for multi-statement changes)."""
    con = sqlite3.connect(str(path), timeout=30, check_same_thread=False, isolation_level=None)
    con.row_factory = sqlite3.Row
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=NORMAL")
    con.execute("PRAGMA foreign_keys=ON")
    con.execute("PRAGMA busy_timeout=30000")
    return con


def init_db(path: str | os.PathLike) -> None:
    """Create every table and run the migrations (each is idempotent)."""
    with connect(path) as con:
        con.executescript(SCHEMA)
        # databases from before the uploads table: each upload belongs to its owner, once
        # (the uploads table is then the only record, so a later removal stays removed)
        con.execute("INSERT OR IGNORE INTO uploads (user_id, track_id, title, added) SELECT "
                    "owner, id, title, added FROM tracks WHERE source = 'upload' AND owner "
                    "IS NOT NULL")
        con.execute("UPDATE tracks SET owner = NULL WHERE owner IS NOT NULL")
        # databases from before job attempts
        columns = {r["name"] for r in con.execute("PRAGMA table_info(mixer_jobs)")}
        if "attempt" not in columns:
            con.execute("ALTER TABLE mixer_jobs ADD COLUMN attempt INTEGER NOT NULL DEFAULT 0")
    con.close()


def db() -> sqlite3.Connection:
    """This request's connection (closed when the request ends)."""
    if "db" not in g:
        g.db = connect(current_app.config["DB_PATH"])
    return g.db


def close_db(_exc=None) -> None:
    con = g.pop("db", None)
    if con is not None:
        con.close()
