"""Uploads: validated, streamed to a temporary file, stored under their content hash; and
taken back again (the last uploader's removal deletes the track with its caches)."""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from pathlib import Path

from deepaudio.core.audio import AudioError, audio_info
from deepaudio.web.catalog import (
    TRACK_ID_CHARS,
    resolve_track_path,
    track_json,
    track_row,
    user_track_json,
)
from deepaudio.web.db import TRACK_CACHES, db
from deepaudio.web.http import ApiError, data_dir, setting, user_id

UPLOAD_FORMATS = {"wav": "WAV", "flac": "FLAC", "ogg": "OGG", "mp3": "MP3"}


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
        if con.execute(
                "SELECT 1 FROM mixer_jobs WHERE track_id = ? AND state IN ('queued', "
                "'running')", (track_id,)).fetchone():
            raise ApiError(409, "a stem separation of this track is queued or running; "
                                "remove the track when it has finished")
        con.execute("DELETE FROM uploads WHERE user_id = ? AND track_id = ?", (user, track_id))
        left = con.execute("SELECT COUNT(*) FROM uploads WHERE track_id = ?",
                           (track_id,)).fetchone()[0]
        if left == 0:
            for table in TRACK_CACHES:
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
