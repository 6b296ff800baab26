"""Fetching a file over HTTP(S): resumable, integrity-checked, with an offline switch.

One function, :func:`download`, for every file the toolkit fetches on a user's machine (the
NSynth checkpoint; archives and weights whose hosts publish checksums). The file is written to
``DEST.part`` and renamed into place only when it is complete and its size and checksum (when
known) match, so ``DEST`` is never a partial or corrupt file. An interrupted download keeps
``DEST.part`` and resumes from its end with an HTTP ``Range`` request; ``If-Range`` with the
server's ETag (or Last-Modified) makes the server send the whole file again if it changed.

Offline (``offline=True`` or the environment variable ``DEEPAUDIO_OFFLINE=1``) nothing
connects: :class:`OfflineError` says which URL goes to which path.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import typing as tp
import urllib.error
import urllib.request
from http.client import HTTPException
from pathlib import Path

from deepaudio.core.errors import ToolkitError
from deepaudio.core.files import atomic_write_json

OFFLINE_ENV = "DEEPAUDIO_OFFLINE"
CHUNK = 1 << 20
Progress = tp.Callable[[int, int | None], None]      # (bytes so far, total bytes or None)


class DownloadError(ToolkitError):
    """A fetch that did not complete or whose result did not check out."""


class OfflineError(DownloadError):
    """Fetching is switched off and the file is not here."""


def offline_requested(offline: bool | None = None) -> bool:
    """``offline`` if given, else whether ``DEEPAUDIO_OFFLINE`` is set to a true value."""
    if offline is not None:
        return offline
    return os.environ.get(OFFLINE_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def _hash_file(path: Path, algorithm: str) -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        while block := f.read(CHUNK):
            h.update(block)
    return h.hexdigest()


def _check(path: Path, size: int | None, checksums: dict[str, str]) -> str | None:
    """Why ``path`` does not match (None if it does)."""
    if size is not None and path.stat().st_size != size:
        return f"{path.stat().st_size} bytes where {size} were expected"
    for algorithm, digest in checksums.items():
        got = _hash_file(path, algorithm)
        # a prefix of at least 8 hex digits counts, as in file names such as demucs'
        # <sig>-<sha256[:8]>.th that torch.hub checks
        if not (len(digest) >= 8 and got.lower().startswith(digest.lower())):
            return f"{algorithm.upper()} {got} where {digest.lower()} was expected"
    return None


def download(url: str, dest: str | os.PathLike, *, size: int | None = None,
             sha1: str | None = None, sha256: str | None = None, md5: str | None = None,
             offline: bool | None = None, progress: Progress | bool | None = True,
             desc: str | None = None, timeout: float = 30.0,
             headers: dict[str, str] | None = None) -> Path:
    """``url`` saved at ``dest``; an existing ``dest`` that checks out is kept (no request).

    ``size`` and the checksums (or a prefix of 8 hex digits or more), when given, must match
    or the download is discarded with an error (run again to fetch it anew). ``progress`` is
    a callable ``(done, total)`` or True for a tqdm bar. Errors: :class:`OfflineError`,
    :class:`DownloadError` (connection lost: the part is kept for the next run to resume;
    HTTP errors; mismatches).
    """
    dest = Path(dest)
    checksums = {k: v for k, v in (("sha1", sha1), ("sha256", sha256), ("md5", md5)) if v}
    if dest.is_file():
        problem = _check(dest, size, checksums)
        if problem is None:
            return dest
        raise DownloadError(f"{dest} is there but does not match ({problem}); delete it to "
                            "fetch it again")
    if offline_requested(offline):
        raise OfflineError(f"offline ({OFFLINE_ENV} or --offline): {url} was not fetched. "
                           f"Download it on a connected machine and put it at {dest}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    meta_path = dest.with_name(dest.name + ".part.json")
    meta = {}
    if part.is_file() and meta_path.is_file():
        try:
            meta = json.loads(meta_path.read_text())
        except (OSError, json.JSONDecodeError):
            meta = {}
    if meta.get("url") != url:
        part.unlink(missing_ok=True)
        meta = {"url": url}
    have = part.stat().st_size if part.is_file() else 0

    request = urllib.request.Request(url, headers={"User-Agent": "deepaudio-toolkit",
                                                   **(headers or {})})
    if have:
        request.add_header("Range", f"bytes={have}-")
        validator = meta.get("etag") or meta.get("last_modified")
        if validator:
            request.add_header("If-Range", validator)
    bar = None
    try:
        try:
            response = urllib.request.urlopen(request, timeout=timeout)
        except urllib.error.HTTPError as e:
            if e.code == 416 and have:       # nothing past the end: the part may be whole
                response = None
            else:
                raise DownloadError(f"{url}: the server answered {e.code} {e.reason}") from None
        if response is not None:
            with response:
                total = _total(response, have)
                if response.status == 206:
                    start = _range_start(response)
                    if start != have:
                        raise DownloadError(f"{url}: the server resumed at byte {start}, not "
                                            f"{have}; run again")
                else:
                    have = 0                  # a whole new copy (first try, or it changed)
                meta.update(etag=response.headers.get("ETag"),
                            last_modified=response.headers.get("Last-Modified"))
                atomic_write_json(meta_path, meta)
                if progress is True:
                    from tqdm import tqdm
                    bar = tqdm(total=total, initial=have, unit="B", unit_scale=True,
                               desc=desc or dest.name, disable=None)
                    progress = lambda done, _total: bar.update(done - bar.n)  # noqa: E731
                with open(part, "ab" if have else "wb") as f:
                    done = have
                    while block := response.read(CHUNK):
                        f.write(block)
                        done += len(block)
                        if progress:
                            progress(done, total)
                if total is not None and done < total:
                    raise DownloadError(f"{url}: the connection ended at {done} of {total} "
                                        "bytes; run again to resume")
    except (TimeoutError, urllib.error.URLError, HTTPException, ConnectionError) as e:
        got = part.stat().st_size if part.is_file() else 0
        reason = getattr(e, "reason", None) or e
        raise DownloadError(f"{url}: download interrupted ({reason}) after {got} bytes; "
                            f"run again to resume (kept {part.name})") from None
    finally:
        if bar is not None:
            bar.close()
    problem = _check(part, size, checksums)
    if problem is not None:
        part.unlink(missing_ok=True)
        meta_path.unlink(missing_ok=True)
        raise DownloadError(f"{url}: the download does not match ({problem}); it was "
                            "discarded, run again to fetch it anew")
    os.replace(part, dest)
    meta_path.unlink(missing_ok=True)
    return dest


def _total(response, have: int) -> int | None:
    """The full file's size from Content-Range (a 206) or Content-Length (a 200)."""
    if response.status == 206:
        m = re.match(r"bytes \d+-\d+/(\d+)", response.headers.get("Content-Range", ""))
        return int(m.group(1)) if m else None
    length = response.headers.get("Content-Length")
    return int(length) if length and length.isdigit() else None


def _range_start(response) -> int:
    m = re.match(r"bytes (\d+)-", response.headers.get("Content-Range", ""))
    if not m:
        raise DownloadError("the server sent a partial answer without a Content-Range")
    return int(m.group(1))
