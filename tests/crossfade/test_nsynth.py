"""NSynth's checkpoint in the crossfade: fetched from a stand-in for Magenta's storage
(resumed after a dropped connection, never fetched offline, a damaged archive deleted),
imported, and used for the neural crossfade from the CLI."""

from __future__ import annotations

import io
import json
import tarfile

import numpy as np
import pytest

from deepaudio.cli import crossfade as crossfade_cli
from deepaudio.core.audio import load_audio
from deepaudio.networks.tf_checkpoint import Checkpoint

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def nsynth_tar(request) -> bytes:
    """The tiny Magenta-format checkpoint packed as Magenta packs wavenet-ckpt.tar."""
    fixture = request.config.rootpath / "tests" / "fixtures" / "nsynth_tiny"
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for f in sorted(fixture.iterdir()):
            if f.name != "expected.npz":
                tar.add(f, arcname=f"wavenet-ckpt/{f.name}")
    return buf.getvalue()


def test_fetch_resumes_imports_and_crossfades(file_host, nsynth_tar, songs, tmp_path,
                                              monkeypatch, capsys):
    file_host.files["/models/nsynth/wavenet-ckpt.tar"] = nsynth_tar
    monkeypatch.setenv("DEEPAUDIO_NSYNTH_URL", file_host.url + "/models/nsynth/wavenet-ckpt.tar")
    dl, run = tmp_path / "dl", tmp_path / "nsynth"
    args = ["fetch-nsynth", "--to", str(dl), "--run", str(run)]
    # offline: nothing connects, the error says where the file goes
    assert crossfade_cli.main([*args, "--offline"]) == 2
    assert f"put it at {dl / 'wavenet-ckpt.tar'}" in capsys.readouterr().err
    assert file_host.requests == []
    # the connection drops mid-file: a retryable error, no run, no archive, a part kept
    file_host.drop_after["/models/nsynth/wavenet-ckpt.tar"] = len(nsynth_tar) // 3
    assert crossfade_cli.main(args) == 2
    assert "run again to resume" in capsys.readouterr().err
    assert not run.exists() and not (dl / "wavenet-ckpt.tar").exists()
    # again: resumed from the part, imported
    assert crossfade_cli.main(args) == 0
    assert file_host.requests[-1][1] == f"bytes={len(nsynth_tar) // 3}-"
    assert (dl / "wavenet-ckpt.tar").read_bytes() == nsynth_tar
    assert json.loads((run / "config.json").read_text())["preset"] == "nsynth"
    # the neural crossfade runs on the imported weights
    a, b = songs
    out = tmp_path / "n.wav"
    assert crossfade_cli.main(["neural", str(a), str(b), "-o", str(out), "--weights", str(run),
                               "--seconds", "0.2", "--context", "0.25"]) == 0
    y, sr = load_audio(out, mono=False)
    t = (3200 // 512) * 512
    assert sr == 16000 and y.shape == (1, 8000 + t) and np.isfinite(y).all()
    decoded = y[0, 4000 + 800:4000 + t - 800]
    assert decoded.std() > 1e-3                       # the decoder made a signal, not silence
    assert np.load(tmp_path / "a_end_enc.npy").shape == (16, t // 512)
    # the archive is kept: a second fetch into a new run makes no request
    n = len(file_host.requests)
    assert crossfade_cli.main(["fetch-nsynth", "--to", str(dl), "--run",
                               str(tmp_path / "again")]) == 0
    assert len(file_host.requests) == n


def test_a_damaged_archive_is_deleted_for_a_fresh_fetch(file_host, nsynth_tar, tmp_path,
                                                        request, monkeypatch, capsys):
    fixture = request.config.rootpath / "tests" / "fixtures" / "nsynth_tiny"
    entry = Checkpoint(fixture).entry("res_2/W")
    data_name = "wavenet-ckpt/model.ckpt-200000.data-00000-of-00001"
    with tarfile.open(fileobj=io.BytesIO(nsynth_tar)) as tar:
        start = tar.getmember(data_name).offset_data
    damaged = bytearray(nsynth_tar)
    damaged[start + entry.offset + 4] ^= 0x10
    file_host.files["/wavenet-ckpt.tar"] = bytes(damaged)
    dl = tmp_path / "dl"
    assert crossfade_cli.main(["fetch-nsynth", "--to", str(dl), "--run", str(tmp_path / "r"),
                               "--url", file_host.url + "/wavenet-ckpt.tar"]) == 2
    err = capsys.readouterr().err
    assert "variable 'res_2/W' is damaged" in err and "run again to fetch it anew" in err
    assert not (dl / "wavenet-ckpt.tar").exists() and not (tmp_path / "r").exists()


def test_import_cli_errors(tmp_path, capsys):
    assert crossfade_cli.main(["import-nsynth", str(tmp_path / "none.tar"), "--run",
                               str(tmp_path / "r")]) == 2
    assert "not found" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        crossfade_cli.main(["import-nsynth", "x", "--run", "r", "--dilation-cycle", "0"])
