"""Uploads: validated, streamed to a temporary file, stored under their content hash; and
taken back again (the last uploader's removal deletes the track with its caches)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import tempfile
import time
from pathlib import Path

from deepaudio.core.audio import AudioError, scan_audio
from deepaudio.web.catalog import (
    TRACK_ID_CHARS,
    resolve_track_path,
    track_json,
    track_row,
    user_track_json,
)
from deepaudio.web.db import TRACK_CACHES, db
from deepaudio.web.http import ApiError, data_dir, ensure_user, setting, user_id

UPLOAD_FORMATS = {"wav": "WAV", "flac": "FLAC", "ogg": "OGG", "mp3": "MP3", "aiff": "AIFF",
                  "m4a": "M4A", "mp4": "MP4", "webm": "WebM", "mkv": "Matroska",
                  "wma": "WMA", "aac": "AAC"}
SNIFF_BYTES = 64
ASF_GUID = bytes.fromhex("3026b2758e66cf11a6d900aa0062ce6c")


def sniff_audio(head: bytes) -> str | None:
    """The container from the first bytes (never from the name): one of ``UPLOAD_FORMATS``
    (M4A/MP4/MOV by their ``ftyp`` box, WebM/Matroska by EBML, WMA by the ASF header, raw AAC
    by its ADTS sync word)."""
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "wav"
    if head[:4] == b"fLaC":
        return "flac"
    if head[:4] == b"OggS":
        return "ogg"
    if head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
        return "aiff"
    if head[4:8] == b"ftyp":
        return "m4a" if head[8:11] in (b"M4A", b"M4B", b"M4P") else "mp4"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "webm" if b"webm" in head else "mkv"
    if head[:16] == ASF_GUID:
        return "wma"
    if head[:3] == b"ID3" or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0
                              and head[1] & 0x06 != 0):   # MPEG frame sync with a valid layer
        return "mp3"
    if len(head) > 1 and head[0] == 0xFF and head[1] & 0xF6 == 0xF0:     # ADTS, layer 0
        return "aac"
    return None


def save_upload(file_storage) -> dict:
    """Validate an uploaded song and store it under its content hash.

    Checks, in order: a file was sent, its size is within ``MAX_UPLOAD_BYTES`` (413), its
    first bytes are one of ``UPLOAD_FORMATS`` (400, the name's extension is not trusted; a
    video's audio track is used, a video without one is refused), its header's
    duration is within ``MAX_DURATION_SECONDS`` (413, before decoding), and the whole file
    decodes, block by block, to at least 10 ms of finite audio, within the duration cap and as
    long as its header says (400: corrupt or truncated files are refused). The file is streamed to a
    temporary file inside the data folder and renamed into place, so a failed upload leaves
    nothing behind. Returns the track as JSON; the same content uploaded again (by anyone) is
    stored once and returns that track, now listed among this user's uploads too.
    """
    if file_storage is None or not getattr(file_storage, "filename", None):
        raise ApiError(400, "no file in the upload (send multipart/form-data with a 'file' field)")
    limit = int(setting("MAX_UPLOAD_BYTES", 200 << 20))
    uploads = data_dir() / "uploads"
    uploads.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=uploads, prefix=".upload-", suffix=".part")
    tmp = Path(tmp_name)
    try:
        h = hashlib.sha256()
        size = 0
        head = b""
        with os.fdopen(fd, "wb") as out:
            while block := file_storage.stream.read(1 << 20):
                size += len(block)
                if size > limit:
                    raise ApiError(413, f"file too large: the limit is {limit / 2**20:.0f} MiB")
                if len(head) < SNIFF_BYTES:
                    head = (head + block)[:SNIFF_BYTES]
                h.update(block)
                out.write(block)
        if size == 0:
            raise ApiError(400, "the uploaded file is empty")
        fmt = sniff_audio(head)
        if fmt is None:
            raise ApiError(400, "not an audio file: expected WAV, FLAC, OGG, MP3, AIFF, "
                                "M4A/MP4, WebM/Matroska, WMA or AAC content")
        cap = float(setting("MAX_DURATION_SECONDS", 20 * 60))
        try:
            scan = scan_audio(tmp, max_seconds=cap)     # the whole file decodes, within the cap
        except AudioError as e:
            status = 413 if "limit" in e.reason else 400
            raise ApiError(status, f"cannot decode the upload as {fmt.upper()}: {e.reason}") \
                from None
        if scan.frames < scan.samplerate * 0.01:
            raise ApiError(400, "the uploaded audio is shorter than 10 ms")
        track_id = h.hexdigest()[:TRACK_ID_CHARS]
        name = os.path.basename(file_storage.filename.replace("\\", "/"))
        title = Path(name).stem[:200].encode("utf-8", "replace").decode("utf-8") or "upload"
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
                     scan.seconds, scan.samplerate, scan.channels, size,
                     time.time()))
                row = con.execute("SELECT * FROM tracks WHERE id = ?", (track_id,)).fetchone()
            if row["source"] == "upload":
                # the same content uploaded by someone else is stored once, and is theirs too
                con.execute("INSERT OR IGNORE INTO uploads (user_id, track_id, title, added) "
                            "VALUES (?, ?, ?, ?)", (ensure_user(), track_id, title, time.time()))
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        if row["source"] != "upload":           # the content of a public (FMA) track
            return track_json(row)
        return user_track_json(row)
    finally:
        tmp.unlink(missing_ok=True)


def remove_upload(track_id: str) -> dict:
    """Take a track off this user's uploads; the last uploader's removal deletes it.

    Another user who uploaded the same content keeps it, file and all. When no uploader is
    left, everything made from it goes in one transaction: the track row, its cached
    timelines, genre probabilities and mixer features, its separation jobs with their stems
    and exports, the saved mixes of those stems, the stem cache, the crossfade renders that
    used it, and the audio file. Files and folders are moved aside before the commit and
    deleted after it, so a failure leaves everything as it was. An upload of the same content
    waits for that transaction and then stores the file anew. Refused (409) while a stem
    separation of the track is queued or running.
    """
    row = track_row(track_id)
    if row["source"] != "upload":
        raise ApiError(403, f"track {track_id!r} belongs to the sample set; only uploads can "
                            "be removed")
    con, user = db(), user_id()
    moved: list[tuple[Path, Path]] = []
    con.execute("BEGIN IMMEDIATE")
    try:
        if con.execute(
                "SELECT 1 FROM mixer_jobs WHERE track_id = ? AND state IN ('queued', "
                "'running')", (track_id,)).fetchone():
            raise ApiError(409, "a stem separation of this track is queued or running; "
                                "remove the track when it has finished")
        con.execute("DELETE FROM uploads WHERE user_id = ? AND track_id = ?", (user, track_id))
        left = con.execute("SELECT COUNT(*) FROM uploads WHERE track_id = ?",
                           (track_id,)).fetchone()[0]
        if left == 0:
            moved = _delete_track(con, row)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        for original, aside in reversed(moved):
            os.replace(aside, original)
        raise
    for _, aside in moved:
        if aside.is_dir():
            shutil.rmtree(aside, ignore_errors=True)
        else:
            aside.unlink(missing_ok=True)
    return {"id": track_id, "removed": True, "deleted": left == 0}


def _delete_track(con: sqlite3.Connection, row: sqlite3.Row) -> list[tuple[Path, Path]]:
    """Inside the removal's transaction: delete every row made from the track and move its
    files aside (returned as (original, aside) pairs, for the caller to delete or restore)."""
    track_id, data = row["id"], data_dir()
    jobs = [r["id"] for r in con.execute("SELECT id FROM mixer_jobs WHERE track_id = ?",
                                         (track_id,))]
    keys = [r["key"] for r in con.execute("SELECT key FROM mixer_stemsets WHERE key LIKE ?",
                                          (f"{track_id}-%",))]
    for table in TRACK_CACHES + ("mixer_mixes", "mixer_jobs"):
        con.execute(f"DELETE FROM {table} WHERE track_id = ?", (track_id,))
    con.execute("DELETE FROM mixer_stemsets WHERE key LIKE ?", (f"{track_id}-%",))
    con.execute("DELETE FROM tracks WHERE id = ?", (track_id,))
    paths = [resolve_track_path(row, data)]
    paths += [data / "mixer" / "jobs" / j for j in jobs]
    paths += [data / "mixer" / "stems" / k for k in keys]
    paths += crossfade_renders_of(data / "crossfades", track_id)
    moved = []
    try:
        for path in paths:
            if path.exists():
                aside = path.with_name(f".removing-{path.name}")
                os.replace(path, aside)
                moved.append((path, aside))
    except BaseException:
        for original, aside in reversed(moved):
            os.replace(aside, original)
        raise
    return moved


def crossfade_renders_of(root: Path, track_id: str) -> list[Path]:
    """The crossfade render folders under ``root`` whose sidecar names ``track_id``."""
    found = []
    for sidecar in root.glob("*/transition.json") if root.is_dir() else ():
        try:
            info = json.loads(sidecar.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if track_id in (info.get("track_a"), info.get("track_b")):
            found.append(sidecar.parent)
    return found
