"""FMA from its source, against a stand-in for FMA's host serving small archives in FMA's
layout (the sample set zipped): resumed download, SHA-1 check, unpack into the layout
``process`` reads, and each way it can go wrong leaving nothing half-done behind."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile

import pytest

from deepaudio.cli import data as data_cli
from deepaudio.core.config import load_config
from deepaudio.core.download import DownloadError, OfflineError
from deepaudio.core.errors import ToolkitError
from deepaudio.data import fetch
from deepaudio.data.config import DatasetConfig
from deepaudio.data.process import process_dataset


def _zip(root, folder: str, limit: int | None = None) -> bytes:
    """``root/folder`` as FMA zips it: members under ``folder/``."""
    buf = io.BytesIO()
    files = sorted(p for p in (root / folder).rglob("*") if p.is_file())[:limit]
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for f in files:
            z.write(f, f.relative_to(root).as_posix())
    return buf.getvalue()


@pytest.fixture
def fma_host(file_host, sample_set, monkeypatch):
    """The stand-in host with fma_metadata.zip and fma_small.zip, their SHA-1s registered
    in place of the published ones (which only FMA's own archives match)."""
    archives = {"metadata": _zip(sample_set, "fma_metadata"),
                "small": _zip(sample_set, "fma_small")}
    for key, body in archives.items():
        a = fetch.ARCHIVES[key]
        file_host.files[f"/fma/{a.name}"] = body
        monkeypatch.setitem(fetch.ARCHIVES, key, fetch.Archive(
            a.name, a.folder, hashlib.sha1(body).hexdigest(), f"{len(body)} B"))
    monkeypatch.setenv("DEEPAUDIO_FMA_URL", file_host.url + "/fma")
    file_host.archives = archives
    return file_host


def test_published_checksums_are_sha1s():
    assert set(fetch.ARCHIVES) == {"metadata", "small", "medium", "large", "full"}
    for a in fetch.ARCHIVES.values():
        assert len(a.sha1) == 40 and int(a.sha1, 16) >= 0 and a.name == f"{a.folder}.zip"


def test_fetch_resumes_then_process_reads_the_layout(fma_host, sample_set, tmp_path,
                                                     dataset_config):
    dest = tmp_path / "fma"
    small = fma_host.archives["small"]
    fma_host.drop_after["/fma/fma_small.zip"] = len(small) // 2
    with pytest.raises(DownloadError, match="run again to resume"):
        fetch.fetch_fma("small", dest, progress=False, log=lambda m: None)
    assert (dest / "fma_metadata" / "tracks.csv").is_file()     # the metadata came whole
    assert not (dest / "fma_small").exists()                     # the audio did not
    rep = fetch.fetch_fma("small", dest, progress=False, log=lambda m: None)
    assert rep["archives"] == {"metadata": "present", "small": "fetched"}
    assert fma_host.requests[-1] == ("/fma/fma_small.zip", f"bytes={len(small) // 2}-")
    assert not list(dest.glob("*.zip")) and not list(dest.glob(".*"))
    mp3s = sorted(p.relative_to(dest / "fma_small")
                  for p in (dest / "fma_small").rglob("*.mp3"))
    assert mp3s == sorted(p.relative_to(sample_set / "fma_small")
                          for p in (sample_set / "fma_small").rglob("*.mp3"))
    cfg = load_config(DatasetConfig, dataset_config(dest, tmp_path / "out", name="fetched",
                                                     num_tracks=8))
    report = process_dataset(cfg, workers=1)
    assert report["complete"] and report["tracks_processed"] == 8 and report["skipped"] == []


def test_checksum_mismatch_is_never_unpacked(fma_host, tmp_path):
    a = fetch.ARCHIVES["metadata"]
    fma_host.files["/fma/fma_metadata.zip"] = fma_host.archives["metadata"][:-10] + b"x" * 10
    with pytest.raises(DownloadError, match="SHA1 .* discarded"):
        fetch.fetch_fma("metadata", tmp_path, progress=False, log=lambda m: None)
    assert list(tmp_path.iterdir()) == []
    assert a.sha1 != hashlib.sha1(fma_host.files["/fma/fma_metadata.zip"]).hexdigest()


def test_a_damaged_archive_with_a_matching_checksum_leaves_no_folder(fma_host, tmp_path,
                                                                     monkeypatch):
    body = bytearray(fma_host.archives["small"])
    body[len(body) // 3] ^= 0xFF                    # inside some member's compressed data
    body = bytes(body)
    fma_host.files["/fma/fma_small.zip"] = body
    a = fetch.ARCHIVES["small"]
    monkeypatch.setitem(fetch.ARCHIVES, "small",
                        fetch.Archive(a.name, a.folder, hashlib.sha1(body).hexdigest(), a.size))
    with pytest.raises(ToolkitError, match="fma_small.zip: damaged archive"):
        fetch.fetch_fma("small", tmp_path, progress=False, log=lambda m: None)
    assert not (tmp_path / "fma_small").exists() and not list(tmp_path.glob(".fma_small*"))


def test_unsafe_member_paths_are_refused(tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("fma_small/000/000002.mp3", b"x")
        z.writestr("fma_small/../../evil.txt", b"x")
    (tmp_path / "a.zip").write_bytes(buf.getvalue())
    with pytest.raises(ToolkitError, match="unsafe path"):
        fetch.unpack(tmp_path / "a.zip", tmp_path / "out", "fma_small", progress=False)
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path / "out" / "fma_small").exists()


def test_cli_fetch_offline_and_errors(fma_host, tmp_path, capsys):
    dest = tmp_path / "fma"
    assert data_cli.main(["fetch", "--subset", "metadata", "--to", str(dest), "--offline"]) == 2
    assert f"put it at {dest / 'fma_metadata.zip'}" in capsys.readouterr().err
    assert fma_host.requests == []
    assert data_cli.main(["fetch", "--subset", "metadata", "--to", str(dest),
                          "--keep-archives"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["archives"] == {"metadata": "fetched"} and out["fma_audio_dir"] is None
    assert (dest / "fma_metadata.zip").is_file() and (dest / "fma_metadata").is_dir()
    with pytest.raises(SystemExit):
        data_cli.main(["fetch", "--subset", "huge", "--to", str(dest)])
    with pytest.raises(OfflineError):
        fetch.fetch_fma("small", tmp_path / "other", offline=True, log=lambda m: None)
