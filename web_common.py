"""What every part of the playground's HTTP layer shares: JSON errors, the per-request SQLite
connection, the current (anonymous) user, settings, tracks and validated uploads.

``api.py`` builds the app and registers the blueprints; blueprints (``mixer_api.py``) use only
these functions, so they never reach into each other's tables or files.

Storage: one SQLite database in WAL mode (many readers, one writer, no server to run) and files
under one data folder. Tracks are identified by the SHA-256 of their content, so the same song
uploaded twice (under any name) is stored once, and a client file name never becomes a path.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import sqlite3
import tempfile
import time
import typing as tp
from pathlib import Path

from flask import current_app, g, request, session

from config import ToolkitError

UPLOAD_FORMATS = {"wav": "WAV", "flac": "FLAC", "ogg": "OGG", "mp3": "MP3"}
TRACK_ID_CHARS = 20            # hex digits of the content hash used as the track id

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
"""


class ApiError(ToolkitError):
    """An error the client caused or must know about, returned as ``{"error": message}``."""

    def __init__(self, status: int, message: str):
        self.status = int(status)
        self.message = message
        super().__init__(message)


# ---------------------------------------------------------------------------------------------
# Database

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
    with connect(path) as con:
        con.executescript(SCHEMA)
        # databases from before the uploads table: each upload belongs to its owner, once
        # (the uploads table is then the only record, so a later removal stays removed)
        con.execute("INSERT OR IGNORE INTO uploads (user_id, track_id, title, added) SELECT "
                    "owner, id, title, added FROM tracks WHERE source = 'upload' AND owner "
                    "IS NOT NULL")
        con.execute("UPDATE tracks SET owner = NULL WHERE owner IS NOT NULL")
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


# ---------------------------------------------------------------------------------------------
# Request context

def setting(name: str, default: tp.Any = None) -> tp.Any:
    return current_app.config.get(name, default)


def data_dir() -> Path:
    return Path(current_app.config["DATA_DIR"])


def user_id() -> str:
    """The current browser's anonymous user id, kept in the signed session cookie."""
    uid = session.get("uid")
    if not uid or not isinstance(uid, str):
        uid = secrets.token_urlsafe(12)
        session["uid"] = uid
        session.permanent = True
        db().execute("INSERT OR IGNORE INTO users (id, created) VALUES (?, ?)", (uid, time.time()))
    return uid


def json_body() -> dict:
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise ApiError(400, "expected a JSON object in the request body")
    return data


def arg(name: str, cast: tp.Callable = str, default: tp.Any = None, *,
        choices: tp.Sequence | None = None, lo: float | None = None,
        hi: float | None = None) -> tp.Any:
    """A query parameter, converted and checked; ApiError 400 naming the parameter if bad."""
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = cast(raw)
    except (TypeError, ValueError):
        raise ApiError(400, f"parameter {name!r}: cannot read {raw!r} as "
                            f"{getattr(cast, '__name__', 'a value')}") from None
    if choices is not None and value not in choices:
        raise ApiError(400, f"parameter {name!r} must be one of {', '.join(map(str, choices))}, "
                            f"got {raw!r}")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise ApiError(400, f"parameter {name!r} must be in [{lo}, {hi}], got {raw!r}")
    return value


# ---------------------------------------------------------------------------------------------
# Tracks

def track_row(track_id: str) -> sqlite3.Row:
    if not isinstance(track_id, str) or not track_id.isalnum() or len(track_id) > 64:
        raise ApiError(404, f"unknown track {track_id!r}")
    row = db().execute("SELECT * FROM tracks WHERE id = ?", (track_id,)).fetchone()
    if row is None:
        raise ApiError(404, f"unknown track {track_id!r}")
    return row


def resolve_track_path(row: sqlite3.Row | dict, data: Path) -> Path:
    path = Path(row["path"])
    return path if path.is_absolute() else data / path


def track_path(track_id: str) -> Path:
    """The audio file of a track (sample set, FMA or upload); ApiError 404 if unknown or gone."""
    path = resolve_track_path(track_row(track_id), data_dir())
    if not path.is_file():
        raise ApiError(404, f"track {track_id!r}: its audio file is missing ({path.name})")
    return path


def track_json(row: sqlite3.Row, title: str | None = None) -> dict:
    return {"id": row["id"], "source": row["source"], "fma_id": row["fma_id"],
            "title": row["title"] if title is None else title, "artist": row["artist"],
            "genre": row["genre"],
            "duration": round(row["duration"], 3), "sample_rate": row["sample_rate"],
            "channels": row["channels"], "format": row["format"], "size": row["size"],
            "audio_url": f"/api/tracks/{row['id']}/audio"}


def user_track_json(row: sqlite3.Row) -> dict:
    """A track as this user sees it: an upload carries the title of *their* file name."""
    mine = db().execute("SELECT title FROM uploads WHERE user_id = ? AND track_id = ?",
                        (user_id(), row["id"])).fetchone()
    return track_json(row, mine["title"] if mine else None)


def file_hash(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()[:TRACK_ID_CHARS]


def sniff_audio(head: bytes) -> str | None:
    """The container from the first bytes (never from the name): wav, flac, ogg or mp3."""
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "wav"
    if head[:4] == b"fLaC":
        return "flac"
    if head[:4] == b"OggS":
        return "ogg"
    if head[:3] == b"ID3" or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0
                              and head[1] & 0x06 != 0):   # MPEG frame sync with a valid layer
        return "mp3"
    return None


def save_upload(file_storage) -> dict:
    """Validate an uploaded song and store it under its content hash.

    Checks, in order: a file was sent, its size is within ``MAX_UPLOAD_BYTES`` (413), its
    first bytes are WAV/FLAC/OGG/MP3 (400, the name's extension is not trusted), and it
    decodes as audio with at least a few milliseconds of sound (400). The file is streamed to a
    temporary file inside the data folder and renamed into place, so a failed upload leaves
    nothing behind. Returns the track as JSON; the same content uploaded again (by anyone) is
    stored once and returns that track, now listed among this user's uploads too.
    """
    from audio_io import AudioError, audio_info
    if file_storage is None or not getattr(file_storage, "filename", None):
        raise ApiError(400, "no file in the upload (send multipart/form-data with a 'file' field)")
    limit = int(setting("MAX_UPLOAD_BYTES", 200 << 20))
    uploads = data_dir() / "uploads"
    uploads.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=uploads, prefix=".upload-", suffix=".part")
    tmp = Path(tmp)
    try:
        h = hashlib.sha256()
        size = 0
        head = b""
        with os.fdopen(fd, "wb") as out:
            while block := file_storage.stream.read(1 << 20):
                size += len(block)
                if size > limit:
                    raise ApiError(413, f"file too large: the limit is {limit / 2**20:.0f} MiB")
                if len(head) < 16:
                    head = (head + block)[:16]
                h.update(block)
                out.write(block)
        if size == 0:
            raise ApiError(400, "the uploaded file is empty")
        fmt = sniff_audio(head)
        if fmt is None:
            raise ApiError(400, "not an audio file: expected WAV, FLAC, OGG or MP3 content")
        try:
            info = audio_info(tmp)
        except AudioError as e:
            raise ApiError(400, f"cannot decode the upload as {fmt.upper()}: {e.reason}") from None
        if info.frames < info.samplerate * 0.01:
            raise ApiError(400, "the uploaded audio is shorter than 10 ms")
        track_id = h.hexdigest()[:TRACK_ID_CHARS]
        title = (Path(os.path.basename(file_storage.filename.replace("\\", "/"))).stem[:200]
                 or "upload")
        con = db()
        con.execute("BEGIN IMMEDIATE")   # one writer: never beside a removal of this content
        try:
            row = con.execute("SELECT * FROM tracks WHERE id = ?", (track_id,)).fetchone()
            if row is None:
                final = uploads / f"{track_id}.{fmt}"
                os.replace(tmp, final)
                con.execute(
                    "INSERT INTO tracks (id, source, path, format, title, duration, "
                    "sample_rate, channels, size, added) VALUES (?, 'upload', ?, ?, ?, ?, ?, ?, "
                    "?, ?)",
                    (track_id, str(final.relative_to(data_dir())), fmt, title,
                     info.frames / info.samplerate, info.samplerate, info.channels, size,
                     time.time()))
                row = con.execute("SELECT * FROM tracks WHERE id = ?", (track_id,)).fetchone()
            if row["source"] == "upload":
                # the same content uploaded by someone else is stored once, and is theirs too
                con.execute("INSERT OR IGNORE INTO uploads (user_id, track_id, title, added) "
                            "VALUES (?, ?, ?, ?)", (user_id(), track_id, title, time.time()))
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        if row["source"] != "upload":           # the content of a public (FMA) track
            return track_json(row)
        return user_track_json(row)
    finally:
        tmp.unlink(missing_ok=True)


# Caches keyed by track id that go with the track when its last uploader removes it.
TRACK_CACHES = ("timelines", "genre_cache", "mixer_features")


def remove_upload(track_id: str) -> dict:
    """Take a track off this user's uploads; the last uploader's removal deletes it.

    Another user who uploaded the same content keeps it, file and all. When no uploader is
    left, the track row, its cached timelines, genre probabilities and mixer features, and
    the audio file go, in one transaction: the file is moved aside before the commit and
    deleted after it, so a failure leaves the track as it was. An upload of the same content
    waits for that transaction and then stores the file anew. Refused (409) while a stem
    separation of the track is queued or running. Saved mixes and separated stems are the
    user's own work and stay; they no longer link to the original.
    """
    row = track_row(track_id)
    if row["source"] != "upload":
        raise ApiError(403, f"track {track_id!r} belongs to the sample set; only uploads can "
                            "be removed")
    con, user = db(), user_id()
    aside = None
    con.execute("BEGIN IMMEDIATE")
    try:
        if con.execute("SELECT 1 FROM uploads WHERE user_id = ? AND track_id = ?",
                       (user, track_id)).fetchone() is None:
            raise ApiError(404, f"track {track_id!r} is not one of your uploads")
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = "
                                            "'table'")}
        if "mixer_jobs" in tables and con.execute(
                "SELECT 1 FROM mixer_jobs WHERE track_id = ? AND state IN ('queued', "
                "'running')", (track_id,)).fetchone():
            raise ApiError(409, "a stem separation of this track is queued or running; "
                                "remove the track when it has finished")
        con.execute("DELETE FROM uploads WHERE user_id = ? AND track_id = ?", (user, track_id))
        left = con.execute("SELECT COUNT(*) FROM uploads WHERE track_id = ?",
                           (track_id,)).fetchone()[0]
        if left == 0:
            for table in TRACK_CACHES:
                if table in tables:
                    con.execute(f"DELETE FROM {table} WHERE track_id = ?", (track_id,))
            con.execute("DELETE FROM tracks WHERE id = ?", (track_id,))
            path = resolve_track_path(row, data_dir())
            if path.is_file():
                aside = path.with_name(f".removing-{path.name}")
                os.replace(path, aside)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        if aside is not None:
            os.replace(aside, path)
        raise
    if aside is not None:
        aside.unlink(missing_ok=True)
    return {"id": track_id, "removed": True, "deleted": left == 0}
