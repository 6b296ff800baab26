"""The tracks the playground knows: the FMA (or sample) set, indexed on start, and uploads.

A track's id is the first 20 hex digits of the SHA-256 of its content, so the same song is one
track whatever its name, and a client file name never becomes a path. FMA tracks keep their
absolute path; uploads live under the data folder.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import sqlite3
import time
from pathlib import Path

from deepaudio.core.audio import AudioError, audio_info
from deepaudio.data.fma import fma_audio_path, load_fma_tracks, select_fma_subset
from deepaudio.web.db import connect, db
from deepaudio.web.http import ApiError, data_dir, public_name, user_id

log = logging.getLogger("playground")

TRACK_ID_CHARS = 20            # hex digits of the content hash used as the track id


def track_row(track_id: str) -> sqlite3.Row:
    """A track this user may use: a sample-set track, or content this user uploaded. Anyone
    else's upload answers 404 exactly as an unknown id does (its existence is not revealed)."""
    if not isinstance(track_id, str) or not track_id.isalnum() or len(track_id) > 64:
        raise ApiError(404, f"unknown track {track_id!r}")
    row = db().execute("SELECT * FROM tracks WHERE id = ?", (track_id,)).fetchone()
    if row is None or (row["source"] == "upload" and db().execute(
            "SELECT 1 FROM uploads WHERE user_id = ? AND track_id = ?",
            (user_id(), track_id)).fetchone() is None):
        raise ApiError(404, f"unknown track {track_id!r}")
    return row


def resolve_track_path(row: sqlite3.Row | dict, data: Path) -> Path:
    path = Path(row["path"])
    return path if path.is_absolute() else data / path


def track_path(track_id: str) -> Path:
    """The audio file of a track (sample set, FMA or upload); ApiError 404 if unknown or gone."""
    row = track_row(track_id)
    path = resolve_track_path(row, data_dir())
    if not path.is_file():
        raise ApiError(404, f"track {track_id!r}: its audio file is missing")
    public_name(path, f"track {user_track_json(row)['title']!r}")   # how errors name it
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


def index_fma(db_path: str | os.PathLike, fma_dir: Path, subset: str = "small") -> int:
    """Register the FMA (or sample) set's tracks: content-hash ids, title, artist, genre.

    Incremental: a file whose size and mtime are unchanged is not hashed again, so restarts
    are instant. A missing or partial FMA folder just registers what is there."""
    meta = fma_dir / "fma_metadata"
    audio_dir = fma_dir / f"fma_{subset}"
    if not (meta / "tracks.csv").is_file() or not audio_dir.is_dir():
        log.warning("no FMA set at %s (run 'make playground' to create the sample set)", fma_dir)
        return 0
    tracks = select_fma_subset(load_fma_tracks(meta), subset)
    con = connect(db_path)
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
                    (file_hash(path), int(tid), str(path.resolve()), text(("track", "title")),
                     text(("artist", "name")), text(("track", "genre_top")),
                     info.frames / info.samplerate, info.samplerate, info.channels, st.st_size,
                     st.st_mtime_ns, time.time()))
        return count
    finally:
        con.close()
