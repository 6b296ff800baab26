"""FMA from its source: the official archives, downloaded, checked and unpacked.

``python data_processor.py fetch --subset small --to datasets/fma`` downloads
``fma_metadata.zip`` and ``fma_small.zip`` from FMA's host, resumes an interrupted download
(HTTP Range, :func:`deepaudio.core.download.download`), checks each archive against the
SHA-1 FMA publishes, and unpacks it with a progress bar into the layout ``process`` reads:
``DIR/fma_metadata/tracks.csv`` and ``DIR/fma_small/000/000002.mp3``.

An archive is unpacked into a hidden folder beside its target and renamed into place only when
every member was written (each member's CRC-32 is checked as it is read), so ``DIR/fma_small``
either is whole or is not there; a truncated or mismatching archive is never unpacked and never
reported as done. The archive is deleted after a successful unpack unless ``keep_archives``.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import typing as tp
import zipfile
import zlib
from pathlib import Path, PurePosixPath

from deepaudio.core.download import download
from deepaudio.core.errors import ToolkitError

FMA_URL = "https://os.unil.cloud.switch.ch/fma"
URL_ENV = "DEEPAUDIO_FMA_URL"            # a mirror (or, in the tests, a local stand-in)


@dataclasses.dataclass(frozen=True)
class Archive:
    name: str          # the archive's file name, e.g. fma_small.zip
    folder: str        # the folder it unpacks to, e.g. fma_small
    sha1: str          # as published in FMA's README
    size: str          # as published, for the messages


# https://github.com/mdeff/fma (README, "Data"): the archives and their SHA-1 checksums
ARCHIVES = {
    "metadata": Archive("fma_metadata.zip", "fma_metadata",
                        "f0df49ffe5f2a6008d7dc83c6915b31835dfe733", "342 MiB"),
    "small": Archive("fma_small.zip", "fma_small",
                     "ade154f733639d52e35e32f5593efe5be76c6d70", "7.2 GiB"),
    "medium": Archive("fma_medium.zip", "fma_medium",
                      "c67b69ea232021025fca9231fc1c7c1a063ab50b", "22 GiB"),
    "large": Archive("fma_large.zip", "fma_large",
                     "497109f4dd721066b5ce5e5f250ec604dc78939e", "93 GiB"),
    "full": Archive("fma_full.zip", "fma_full",
                    "0f0ace23fbe9ba30ecb7e95f763e435ea802b8ab", "879 GiB"),
}
SUBSETS = tuple(ARCHIVES)


def _member_path(root: Path, name: str) -> Path | None:
    """Where a zip member goes under ``root``; None for a folder entry. Absolute names and
    names that climb out of ``root`` are refused."""
    parts = PurePosixPath(name.replace("\\", "/")).parts
    if not parts or name.endswith("/"):
        return None
    if parts[0] == "/" or ".." in parts or ":" in parts[0]:
        raise ToolkitError(f"the archive holds an unsafe path {name!r}; refusing to unpack it")
    return root.joinpath(*parts)


def unpack(archive: Path, dest: Path, folder: str, *, progress: bool = True) -> Path:
    """Unpack ``archive`` (whose members live under ``folder/``) so that ``dest/folder`` is
    complete or absent. Returns ``dest/folder``."""
    target = dest / folder
    staging = dest / f".{folder}.unpacking"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    bar = None
    try:
        with zipfile.ZipFile(archive) as z:
            members = [m for m in z.infolist() if not m.is_dir()]
            if not any(PurePosixPath(m.filename).parts[:1] == (folder,) for m in members):
                raise ToolkitError(f"{archive.name} holds no {folder}/ folder; is it the right "
                                   "archive?")
            total = sum(m.file_size for m in members)
            if progress:
                from tqdm import tqdm
                bar = tqdm(total=total, unit="B", unit_scale=True, desc=f"unpack {folder}",
                           disable=None)
            for m in members:
                out = _member_path(staging, m.filename)
                if out is None:
                    continue
                out.parent.mkdir(parents=True, exist_ok=True)
                with z.open(m) as src, open(out, "wb") as dst:    # CRC-32 checked at the end
                    while block := src.read(1 << 20):
                        dst.write(block)
                        if bar is not None:
                            bar.update(len(block))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, zlib.error) as e:
        shutil.rmtree(staging, ignore_errors=True)
        raise ToolkitError(f"{archive.name}: damaged archive ({e}); delete it and fetch it "
                           "again") from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    finally:
        if bar is not None:
            bar.close()
    if target.exists():
        shutil.rmtree(target)
    os.replace(staging / folder, target)
    shutil.rmtree(staging, ignore_errors=True)
    return target


def fetch_fma(subset: str, to: str | os.PathLike, *, url: str | None = None,
              offline: bool | None = None, keep_archives: bool = False,
              progress: bool = True, log: tp.Callable[[str], None] = print) -> dict:
    """Download, check and unpack FMA's ``subset`` (``metadata``, ``small``, ``medium``,
    ``large`` or ``full``; an audio subset brings the metadata too, which ``process`` needs)
    into ``to``. Folders already unpacked are kept. Returns what was done per archive."""
    if subset not in ARCHIVES:
        raise ToolkitError(f"unknown FMA subset {subset!r}; use one of {', '.join(SUBSETS)}")
    base = (url or os.environ.get(URL_ENV) or FMA_URL).rstrip("/")
    dest = Path(to).expanduser()
    wanted = ["metadata"] if subset == "metadata" else ["metadata", subset]
    report = {}
    for key in wanted:
        a = ARCHIVES[key]
        if (dest / a.folder).is_dir():
            log(f"{dest / a.folder} is already there; delete it to fetch it again")
            report[key] = "present"
            continue
        archive = dest / a.name
        log(f"{a.name} ({a.size}) from {base}/{a.name}")
        download(f"{base}/{a.name}", archive, sha1=a.sha1, offline=offline,
                 progress=progress, desc=a.name)
        unpack(archive, dest, a.folder, progress=progress)
        if not keep_archives:
            archive.unlink()
        report[key] = "fetched"
        log(f"unpacked {dest / a.folder}")
    return {"to": str(dest), "archives": report,
            "fma_meta_dir": str(dest / "fma_metadata"),
            "fma_audio_dir": None if subset == "metadata" else str(dest / f"fma_{subset}")}
