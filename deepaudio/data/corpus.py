"""A folder of real, free-licensed music from Debian's game-music packages, for checks on real
recordings (never committed: the folder is made on the machine that needs it).

    python data_processor.py corpus --to datasets/debian [--songs 100] [--min-seconds 30]

Debian packages the soundtracks of free games under free licences (orchestral, electronic,
rock, chiptune-like; OGG Vorbis, Opus and MP3). ``apt-get download`` fetches each package's
``.deb`` (no install, no root needed beyond apt's cache), ``dpkg-deb -x`` unpacks it into a
temporary folder, and the songs of at least ``min_seconds`` are copied as they are (no
re-encoding) into ``DIR/<package>/``, next to the package's copyright file. Songs are taken
round-robin across the packages, so any ``songs`` count mixes styles; identical files are
kept once. ``DIR/corpus.json`` lists every song with its package, version, length, SHA-1 and
licence file. Running it again reuses what is there.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
from pathlib import Path

from deepaudio.core.audio import AudioError, audio_info, find_audio_files
from deepaudio.core.errors import ToolkitError
from deepaudio.core.files import atomic_write_json

# the packages' music, about 690 minutes in 140 songs of 30 s or more (Debian 13)
PACKAGES = ("wesnoth-1.16-music", "warzone2100-music", "drascula-music", "hyperrogue-music",
            "singularity-music", "planetblupi-music-ogg", "asc-music")


def _run(cmd: list[str], cwd: Path | None = None) -> str:
    if shutil.which(cmd[0]) is None:
        raise ToolkitError(f"{cmd[0]} not found: the corpus is assembled from Debian packages "
                           "(Debian or Ubuntu, with apt); use any folder of songs instead")
    res = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if res.returncode != 0:
        last = (res.stderr.strip() or res.stdout.strip()).splitlines()[-1:] or ["no output"]
        raise ToolkitError(f"{' '.join(cmd)} failed: {last[0]}")
    return res.stdout


def _deb(package: str, debs: Path) -> Path:
    """The package's .deb in ``debs``, downloaded by apt when it is not there yet."""
    found = sorted(debs.glob(f"{package}_*.deb"))
    if not found:
        debs.mkdir(parents=True, exist_ok=True)
        try:
            _run(["apt-get", "download", "-q", package], cwd=debs)
        except ToolkitError as e:
            raise ToolkitError(f"{e} (is the package name right, and has 'apt-get update' "
                               "run?)") from None
        found = sorted(debs.glob(f"{package}_*.deb"))
        if not found:
            raise ToolkitError(f"apt-get download {package} left no .deb in {debs}")
    return found[-1]


def _sha1(path: Path) -> str:
    h = hashlib.sha1()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def build_corpus(dest: str | Path, *, songs: int = 100, min_seconds: float = 30.0,
                 packages: tuple[str, ...] = PACKAGES, debs: str | Path | None = None
                 ) -> dict:
    """Assemble up to ``songs`` songs of ``min_seconds`` or more from ``packages`` into
    ``dest`` (see the module); returns the manifest written to ``dest/corpus.json``."""
    if songs < 1 or min_seconds < 0:
        raise ToolkitError("songs must be at least 1 and min_seconds not negative")
    dest = Path(dest)
    debs = Path(debs) if debs else dest / ".debs"
    candidates: dict[str, list[dict]] = {}
    seen: set[str] = set()
    with tempfile.TemporaryDirectory(prefix="corpus-") as tmp:
        for package in packages:
            deb = _deb(package, debs)
            version = deb.stem.split("_")[1] if deb.stem.count("_") >= 2 else ""
            root = Path(tmp) / package
            _run(["dpkg-deb", "-x", str(deb), str(root)])
            found = []
            for f in find_audio_files(root):
                if f.is_symlink():
                    continue
                digest = _sha1(f)
                if digest in seen:
                    continue
                seen.add(digest)
                try:
                    info = audio_info(f)
                except AudioError:
                    continue
                seconds = info.frames / info.samplerate if info.samplerate else 0.0
                if seconds < min_seconds:
                    continue
                found.append({"source": f, "package": package, "version": version,
                              "seconds": round(seconds, 2), "sha1": digest})
            copyright_file = root / "usr/share/doc" / package / "copyright"
            if found and copyright_file.is_file():
                (dest / package).mkdir(parents=True, exist_ok=True)
                shutil.copyfile(copyright_file, dest / package / "copyright")
            candidates[package] = found
        chosen: list[dict] = []
        queues = [list(v) for v in candidates.values() if v]
        while len(chosen) < songs and any(queues):
            for q in queues:
                if q and len(chosen) < songs:
                    chosen.append(q.pop(0))
        entries = []
        for song in chosen:
            src: Path = song.pop("source")
            target = dest / song["package"] / src.name
            if target.exists() and target.stat().st_size == src.stat().st_size:
                pass                                    # there from an earlier run
            else:
                if target.exists():
                    target = target.with_name(f"{src.stem}-{song['sha1'][:8]}{src.suffix}")
                target.parent.mkdir(parents=True, exist_ok=True)
                part = target.with_name(f".{target.name}.part")
                shutil.copyfile(src, part)
                part.replace(target)
            entries.append({"file": str(target.relative_to(dest)), **song,
                            "licence": f"{song['package']}/copyright"})
    if not entries:
        raise ToolkitError(f"no song of {min_seconds:g} s or more in {', '.join(packages)}")
    manifest = {"songs": entries, "minutes": round(sum(e["seconds"] for e in entries) / 60, 1),
                "packages": sorted({e["package"] for e in entries})}
    atomic_write_json(dest / "corpus.json", manifest)
    return manifest
