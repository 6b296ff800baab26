"""The Debian corpus: packages fetched with ``apt-get download`` (here a stand-in ``apt-get``
on PATH that hands out .deb files built in the test with ``dpkg-deb --build``), unpacked, the
songs long enough copied as they are, round-robin across packages, duplicates once, a
manifest; a second run reuses what is there; no apt, or a package apt does not know, is one
clear error."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import numpy as np
import pytest

from deepaudio.cli import data as data_cli
from deepaudio.core.audio import load_audio, save_audio
from deepaudio.core.errors import ToolkitError
from deepaudio.data.corpus import build_corpus

SR = 22050


def _tone(seconds: float, f: float) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (0.2 * np.sin(2 * np.pi * f * t)).astype(np.float32)


def _deb(folder, package: str, songs: dict[str, np.ndarray | bytes]):
    root = folder / f"build-{package}"
    music = root / "usr/share/games" / package / "music"
    music.mkdir(parents=True)
    for name, audio in songs.items():
        if isinstance(audio, bytes):
            (music / name).write_bytes(audio)
        else:
            save_audio(music / name, audio, SR)
    doc = root / "usr/share/doc" / package
    doc.mkdir(parents=True)
    (doc / "copyright").write_text(f"{package}: CC-BY-SA 4.0 (test)\n")
    (root / "DEBIAN").mkdir()
    (root / "DEBIAN/control").write_text(
        f"Package: {package}\nVersion: 1.0-1\nArchitecture: all\nMaintainer: t <t@t>\n"
        "Description: test music\n")
    subprocess.run(["dpkg-deb", "--build", "--root-owner-group", str(root),
                    str(folder / f"{package}_1.0-1_all.deb")], check=True, capture_output=True)


@pytest.fixture
def fake_apt(tmp_path, monkeypatch):
    """``apt-get download PKG`` copies PKG's .deb from a local 'mirror' into the current
    folder, as apt does; unknown packages fail as apt does."""
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    same = save_audio(tmp_path / "same.flac", _tone(40, 330), SR).read_bytes()
    _deb(mirror, "alpha-music", {"a1.ogg": _tone(45, 220), "a2.ogg": _tone(50, 440),
                                 "jingle.ogg": _tone(3, 880), "dup.flac": same})
    _deb(mirror, "beta-music", {"b1.mp3": _tone(35, 262), "b2.flac": same})
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "apt-get"
    script.write_text(f"""#!/bin/sh
pkg=$3
echo "$@" >> {tmp_path}/apt.log
if [ -f {mirror}/${{pkg}}_1.0-1_all.deb ]; then cp {mirror}/${{pkg}}_1.0-1_all.deb .; exit 0; fi
echo "E: Unable to locate package $pkg" >&2; exit 100
""")
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return tmp_path


def test_corpus_takes_long_songs_round_robin_once_each(fake_apt, tmp_path):
    out = tmp_path / "corpus"
    rep = build_corpus(out, songs=4, min_seconds=30, packages=("alpha-music", "beta-music"))
    files = [s["file"] for s in rep["songs"]]
    # round-robin across packages; the 3 s jingle is too short; the file both packages hold
    # is kept once (beta's copy is the duplicate), so beta has one song to give
    assert files == ["alpha-music/a1.ogg", "beta-music/b1.mp3", "alpha-music/a2.ogg",
                     "alpha-music/dup.flac"]
    for song in rep["songs"]:
        audio, sr = load_audio(out / song["file"])
        assert song["seconds"] >= 30 and abs(audio.shape[-1] / sr - song["seconds"]) < 0.1
        assert (out / song["licence"]).read_text().startswith(song["package"])
    assert json.loads((out / "corpus.json").read_text()) == rep
    # a second run reuses the downloaded packages and the copied songs
    log = (fake_apt / "apt.log").read_text()
    again = build_corpus(out, songs=4, min_seconds=30, packages=("alpha-music", "beta-music"))
    assert again == rep and (fake_apt / "apt.log").read_text() == log


def test_corpus_errors_are_clear(fake_apt, tmp_path, monkeypatch, capsys):
    with pytest.raises(ToolkitError, match="apt-get download -q nosuch-music failed: E: "
                                           "Unable to locate package.*apt-get update"):
        build_corpus(tmp_path / "c", packages=("nosuch-music",))
    with pytest.raises(ToolkitError, match="no song of 100 s or more"):
        build_corpus(tmp_path / "c", min_seconds=100, packages=("beta-music",))
    code = data_cli.main(["corpus", "--to", str(tmp_path / "cli"), "--songs", "5",
                          "--packages", "beta-music"])
    assert code == 0 and "2 songs" in capsys.readouterr().out
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(ToolkitError, match="apt-get not found"):
        build_corpus(tmp_path / "d", packages=("alpha-music",))
    assert shutil.which("apt-get") is None
