"""The one downloader, against a local stand-in host: resume with Range after a dropped
connection, checksums and sizes, a changed file, the offline switch, HTTP errors."""

import hashlib

import pytest

from deepaudio.core.download import DownloadError, OfflineError, download

BODY = bytes(range(256)) * 4000                       # ~1 MB


def test_download_then_cached(file_host, tmp_path):
    file_host.files["/a.bin"] = BODY
    seen = []
    out = download(file_host.url + "/a.bin", tmp_path / "a.bin",
                   sha256=hashlib.sha256(BODY).hexdigest(),
                   progress=lambda d, t: seen.append((d, t)))
    assert out.read_bytes() == BODY and seen[-1] == (len(BODY), len(BODY))
    assert not list(tmp_path.glob("*.part*"))
    download(file_host.url + "/a.bin", tmp_path / "a.bin", progress=False)   # no request
    assert len(file_host.requests) == 1


def test_dropped_connection_resumes_from_the_part(file_host, tmp_path):
    file_host.files["/a.bin"] = BODY
    file_host.drop_after["/a.bin"] = 300_000
    with pytest.raises(DownloadError, match="run again to resume"):
        download(file_host.url + "/a.bin", tmp_path / "a.bin", progress=False)
    assert not (tmp_path / "a.bin").exists()
    assert (tmp_path / "a.bin.part").stat().st_size == 300_000
    download(file_host.url + "/a.bin", tmp_path / "a.bin", sha1=hashlib.sha1(BODY).hexdigest(),
             progress=False)
    assert (tmp_path / "a.bin").read_bytes() == BODY
    assert file_host.requests[-1] == ("/a.bin", "bytes=300000-")


def test_a_changed_file_is_fetched_whole_again(file_host, tmp_path):
    file_host.files["/a.bin"] = BODY
    file_host.drop_after["/a.bin"] = 1000
    with pytest.raises(DownloadError):
        download(file_host.url + "/a.bin", tmp_path / "a.bin", progress=False)
    new = BODY[::-1]
    file_host.files["/a.bin"] = new                    # its ETag changes: If-Range fails
    download(file_host.url + "/a.bin", tmp_path / "a.bin", progress=False)
    assert (tmp_path / "a.bin").read_bytes() == new


def test_checksum_mismatch_discards_the_download(file_host, tmp_path):
    file_host.files["/a.bin"] = BODY
    with pytest.raises(DownloadError, match="SHA1 .* where 00+ was expected.*discarded"):
        download(file_host.url + "/a.bin", tmp_path / "a.bin", sha1="0" * 40, progress=False)
    assert not list(tmp_path.iterdir())
    with pytest.raises(DownloadError, match="bytes where 5 were expected"):
        download(file_host.url + "/a.bin", tmp_path / "a.bin", size=5, progress=False)


def test_offline_never_connects(file_host, tmp_path, monkeypatch):
    file_host.files["/a.bin"] = BODY
    with pytest.raises(OfflineError, match=r"put it at .*a\.bin"):
        download(file_host.url + "/a.bin", tmp_path / "a.bin", offline=True)
    monkeypatch.setenv("DEEPAUDIO_OFFLINE", "1")
    with pytest.raises(OfflineError):
        download(file_host.url + "/a.bin", tmp_path / "a.bin")
    assert file_host.requests == []
    (tmp_path / "a.bin").write_bytes(BODY)             # a file already there is used offline
    assert download(file_host.url + "/a.bin", tmp_path / "a.bin").read_bytes() == BODY


def test_http_errors_and_no_server(file_host, tmp_path):
    with pytest.raises(DownloadError, match="404"):
        download(file_host.url + "/missing", tmp_path / "m", progress=False)
    url = file_host.url + "/a.bin"
    file_host.stop()
    with pytest.raises(DownloadError, match="interrupted"):
        download(url, tmp_path / "a.bin", progress=False, timeout=5)
