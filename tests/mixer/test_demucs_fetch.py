"""Demucs on a connected machine: the weights fetched from a stand-in for the Hugging Face hub
(``HF_ENDPOINT``) serving a tiny randomly initialised model in the hub's layout (the bag's
``<name>.yaml`` and one ``<sig>.safetensors`` with demucs' metadata), then separation from the
cache with the stand-in stopped; a dropped connection, a damaged file, offline, an unknown
model; and backend ``auto``."""

from __future__ import annotations

import hashlib
import json
import warnings

import pytest
import torch

from deepaudio.cli import mixer as mixer_cli
from deepaudio.mixer import demucs_backend
from deepaudio.mixer.demucs_backend import fetch_demucs_weights, weights_on_machine
from deepaudio.mixer.separate import separate
from deepaudio.mixer.stems import STEMS, SeparationError, UnknownModelError, load_stems

MODEL, SIG, REPO = "tinyhub", "5e1f0c2b", "adefossez/Demucs-tinyhub"


def _safetensors_model() -> bytes:
    """A tiny HTDemucs saved as demucs' hub export does: tensors plus klass/args/kwargs."""
    from demucs.htdemucs import HTDemucs
    from safetensors.torch import save
    torch.manual_seed(1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = HTDemucs(list(STEMS), channels=8, depth=4, nfft=1024, segment=2, t_layers=1,
                         t_heads=2, t_hidden_scale=1.0, dconv_depth=1, dconv_comp=4)
    args, kwargs = model._init_args_kwargs
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    return save(state, metadata={"klass": "demucs.htdemucs.HTDemucs", "args": json.dumps(args),
                                 "kwargs": json.dumps(kwargs)})


@pytest.fixture
def hub(file_host, monkeypatch, tmp_path):
    """The stand-in hub with the tiny model; an empty Hugging Face cache and torch hub dir."""
    import huggingface_hub.constants as hf_constants
    weights = _safetensors_model()
    base = f"/{REPO}/resolve/main"
    file_host.files[f"{base}/{MODEL}.yaml"] = f"models: ['{SIG}']\n".encode()
    file_host.files[f"{base}/{SIG}.safetensors"] = weights

    def headers(path, body):
        out = {"X-Repo-Commit": "0123456789abcdef0123456789abcdef01234567"}
        if path.endswith(".safetensors"):               # an LFS file: ETag = SHA-256
            out.update({"X-Linked-Etag": f'"{hashlib.sha256(body).hexdigest()}"',
                        "X-Linked-Size": str(len(body))})
        return out

    file_host.headers_for = headers
    file_host.not_found_headers = {"X-Error-Code": "RepoNotFound",
                                   "X-Error-Message": "Repository not found"}
    monkeypatch.setenv("HF_ENDPOINT", file_host.url)
    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    # read at import: another test of this process may have imported it with HF_HUB_OFFLINE
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "torch-hub"))
    monkeypatch.setattr(demucs_backend, "_DEMUCS_CACHE", {})
    file_host.weights = weights
    return file_host


def test_fetch_then_separate_from_the_cache_offline(hub, song, tmp_path):
    assert not weights_on_machine(MODEL)
    seen = []
    manifest = separate(song[0], tmp_path / "a", backend="demucs", model=MODEL, shifts=0,
                        progress=lambda f, s: seen.append(s))
    assert manifest["backend"] == "demucs" and manifest["sources"] == list(STEMS)
    assert any(s.startswith("fetching weights") for s in seen)
    assert seen[-1] == "done" and weights_on_machine(MODEL)
    fetched = [r for r in hub.requests if r[0].endswith(".safetensors")]
    assert fetched
    # the second run uses the cache, with the stand-in gone
    hub.stop()
    demucs_backend._DEMUCS_CACHE.clear()
    again = separate(song[0], tmp_path / "b", backend="demucs", model=MODEL, shifts=0)
    a, _ = load_stems(tmp_path / "a")
    b, _ = load_stems(tmp_path / "b")
    assert again["backend"] == "demucs" and all(torch.equal(torch.from_numpy(a[s]),
                                                            torch.from_numpy(b[s])) for s in a)


def test_a_dropped_connection_leaves_a_retryable_error_and_no_corrupt_cache(hub):
    path = f"/{REPO}/resolve/main/{SIG}.safetensors"
    hub.drop_after[path] = len(hub.weights) // 3           # once: the client resumes itself
    fetch_demucs_weights(MODEL)
    assert sum(1 for r in hub.requests if r[0] == path) == 2
    assert weights_on_machine(MODEL)


def test_a_connection_that_keeps_dropping_fails_cleanly_then_resumes(hub, monkeypatch,
                                                                     tmp_path):
    import huggingface_hub.constants as hf_constants
    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(tmp_path / "fresh-cache"))
    path = f"/{REPO}/resolve/main/{SIG}.safetensors"
    hub.drop_every[path] = 20_000                          # a connection that keeps failing
    with pytest.raises(SeparationError, match="run again to resume"):
        fetch_demucs_weights(MODEL)
    assert not weights_on_machine(MODEL)                   # nothing half-written counts
    hub.drop_every.clear()
    rep = fetch_demucs_weights(MODEL)                      # the next run completes it
    assert rep["files"] == [f"{SIG}.safetensors"] and weights_on_machine(MODEL)
    assert rep["bytes"] == len(hub.weights)


def test_a_damaged_file_is_deleted(hub):
    damaged = bytearray(hub.weights)
    damaged[len(damaged) // 2] ^= 0xFF
    real = hub.headers_for
    hub.files[f"/{REPO}/resolve/main/{SIG}.safetensors"] = bytes(damaged)
    hub.headers_for = lambda path, body: {**real(path, hub.weights if path.endswith(
        ".safetensors") else body)}                        # the hub's checksum is the real one
    with pytest.raises(SeparationError, match="does not match its checksum"):
        fetch_demucs_weights(MODEL)
    assert not weights_on_machine(MODEL)


def test_offline_and_unknown_models(hub, monkeypatch):
    with pytest.raises(SeparationError, match="cannot be downloaded offline.*955717e8"):
        fetch_demucs_weights("htdemucs", offline=True)     # the files, and where they go
    monkeypatch.setenv("DEEPAUDIO_OFFLINE", "1")
    with pytest.raises(SeparationError, match="cannot be downloaded offline"):
        fetch_demucs_weights("htdemucs")
    assert hub.requests == []                               # never connected
    monkeypatch.delenv("DEEPAUDIO_OFFLINE")
    with pytest.raises(UnknownModelError, match="unknown Demucs model 'nosuchmodel'"):
        fetch_demucs_weights("nosuchmodel")


def test_auto_backend_fetches_online_and_falls_back_offline(hub, song, tmp_path, capsys):
    code = mixer_cli.main(["separate", str(song[0]), "-o", str(tmp_path / "off"), "--model",
                           MODEL, "--offline", "--shifts", "0"])
    out = capsys.readouterr().out
    assert code == 0 and "dsp: the weights of tinyhub are not on this machine" in out
    assert hub.requests == []
    code = mixer_cli.main(["separate", str(song[0]), "-o", str(tmp_path / "on"), "--model",
                           MODEL, "--shifts", "0"])
    out = capsys.readouterr().out
    assert code == 0 and "demucs: the weights of tinyhub will be fetched" in out
    manifest = json.loads((tmp_path / "on" / "stems.json").read_text())
    assert manifest["backend"] == "demucs" and "fetched" in manifest["backend_reason"]
    # a fetch that fails (the hub has no such model): dsp, with why
    m = separate(song[0], tmp_path / "gone", backend="auto", model="othermodel")
    assert m["backend"] == "dsp" and "Demucs failed (unknown Demucs model" in m["backend_reason"]
