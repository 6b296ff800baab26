"""Files written atomically: a reader never sees one half-written, a crash never leaves one
truncated under its final name (temp file in the same folder, fsync, rename)."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import typing as tp
from pathlib import Path


def file_mode() -> int:
    """The mode a new file gets under the process's umask (mkstemp makes 0600; files written
    through a temp file get this instead, as if created directly). The umask is read from
    /proc where there is one: setting it to read it would race with other threads' files."""
    try:
        with open("/proc/self/status") as f:
            mask = next(int(line.split()[1], 8) for line in f if line.startswith("Umask:"))
    except (OSError, StopIteration, ValueError):
        mask = os.umask(0o077)
        os.umask(mask)
    return 0o666 & ~mask


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write a file so a reader never sees it half-written: temp file in the same folder, rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, file_mode())
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: str | os.PathLike, obj: tp.Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


@contextlib.contextmanager
def atomic_write_path(path: str | os.PathLike) -> tp.Iterator[Path]:
    """A temp file's path in ``path``'s folder (same suffix, so writers that go by it pick the
    format) to write with any library; on success it replaces ``path``, on failure it goes."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=path.suffix)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, file_mode())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
