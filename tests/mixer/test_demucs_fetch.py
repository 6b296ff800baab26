"""Demucs on a connected machine: the weights fetched from a stand-in for the Hugging Face hub
(``HF_ENDPOINT``) serving a tiny randomly initialised model in the hub's layout (the bag's
``<name>.yaml`` and one ``<sig>.safetensors`` with demucs' metadata), then separation from the
cache with the stand-in stopped; a dropped connection, a damaged file, offline, an unknown
model; a bag of models; demucs' legacy repo for what the hub does not have; and backend
``auto``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from deepaudio.cli import mixer as mixer_cli
from deepaudio.mixer import demucs_backend
from deepaudio.mixer.demucs_backend import fetch_demucs_weights, weights_on_machine
from deepaudio.mixer.separate import separate
from deepaudio.mixer.stems import STEMS, SeparationError, UnknownModelError, load_stems

MODEL, SIG, REPO = "tinyhub", "5e1f0c2b", "adefossez/Demucs-tinyhub"


def test_fetch_then_separate_from_the_cache_offline(demucs_hub, song, tmp_path):
    assert not weights_on_machine(MODEL)
    seen = []
    manifest = separate(song[0], tmp_path / "a", backend="demucs", model=MODEL, shifts=0,
                        progress=lambda f, s: seen.append(s))
    assert manifest["backend"] == "demucs" and manifest["sources"] == list(STEMS)
    assert any(s.startswith("fetching weights") for s in seen)
    assert seen[-1] == "done" and weights_on_machine(MODEL)
    fetched = [r for r in demucs_hub.requests if r[0].endswith(".safetensors")]
    assert fetched
    # the second run uses the cache, with the stand-in gone
    demucs_hub.stop()
    demucs_backend._DEMUCS_CACHE.clear()
    again = separate(song[0], tmp_path / "b", backend="demucs", model=MODEL, shifts=0)
    a, _ = load_stems(tmp_path / "a")
    b, _ = load_stems(tmp_path / "b")
    assert again["backend"] == "demucs" and all(torch.equal(torch.from_numpy(a[s]),
                                                            torch.from_numpy(b[s])) for s in a)


def test_a_dropped_connection_leaves_a_retryable_error_and_no_corrupt_cache(demucs_hub):
    path = f"/{REPO}/resolve/main/{SIG}.safetensors"
    demucs_hub.drop_after[path] = len(demucs_hub.weights) // 3    # once: the client resumes
    fetch_demucs_weights(MODEL)
    assert sum(1 for r in demucs_hub.requests if r[0] == path) == 2
    assert weights_on_machine(MODEL)


def test_a_connection_that_keeps_dropping_fails_cleanly_then_resumes(demucs_hub, monkeypatch,
                                                                     tmp_path):
    import huggingface_hub.constants as hf_constants
    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(tmp_path / "fresh-cache"))
    path = f"/{REPO}/resolve/main/{SIG}.safetensors"
    demucs_hub.drop_every[path] = 20_000                          # a connection that keeps failing
    with pytest.raises(SeparationError, match="run again to resume"):
        fetch_demucs_weights(MODEL)
    assert not weights_on_machine(MODEL)                   # nothing half-written counts
    demucs_hub.drop_every.clear()
    rep = fetch_demucs_weights(MODEL)                      # the next run completes it
    assert rep["files"] == [f"{SIG}.safetensors"] and weights_on_machine(MODEL)
    assert rep["bytes"] == len(demucs_hub.weights)


def test_a_damaged_file_is_deleted(demucs_hub):
    damaged = bytearray(demucs_hub.weights)
    damaged[len(damaged) // 2] ^= 0xFF
    real = demucs_hub.headers_for
    demucs_hub.files[f"/{REPO}/resolve/main/{SIG}.safetensors"] = bytes(damaged)
    demucs_hub.headers_for = lambda path, body: {**real(path, demucs_hub.weights if path.endswith(
        ".safetensors") else body)}                        # the hub's checksum is the real one
    with pytest.raises(SeparationError, match="does not match its checksum"):
        fetch_demucs_weights(MODEL)
    assert not weights_on_machine(MODEL)


def test_offline_and_unknown_models(demucs_hub, monkeypatch):
    with pytest.raises(SeparationError, match="cannot be downloaded offline.*955717e8"):
        fetch_demucs_weights("htdemucs", offline=True)     # the files, and where they go
    monkeypatch.setenv("DEEPAUDIO_OFFLINE", "1")
    with pytest.raises(SeparationError, match="cannot be downloaded offline"):
        fetch_demucs_weights("htdemucs")
    assert demucs_hub.requests == []                               # never connected
    monkeypatch.delenv("DEEPAUDIO_OFFLINE")
    with pytest.raises(UnknownModelError, match="unknown Demucs model 'nosuchmodel'"):
        fetch_demucs_weights("nosuchmodel")


def test_auto_backend_fetches_online_and_falls_back_offline(demucs_hub, song, tmp_path, capsys):
    code = mixer_cli.main(["separate", str(song[0]), "-o", str(tmp_path / "off"), "--model",
                           MODEL, "--offline", "--shifts", "0"])
    out = capsys.readouterr().out
    assert code == 0 and "dsp: the weights of tinyhub are not on this machine" in out
    assert demucs_hub.requests == []
    code = mixer_cli.main(["separate", str(song[0]), "-o", str(tmp_path / "on"), "--model",
                           MODEL, "--shifts", "0"])
    out = capsys.readouterr().out
    assert code == 0 and "demucs: the weights of tinyhub will be fetched" in out
    manifest = json.loads((tmp_path / "on" / "stems.json").read_text())
    assert manifest["backend"] == "demucs" and "fetched" in manifest["backend_reason"]
    # a fetch that fails (the hub has no such model): dsp, with why
    m = separate(song[0], tmp_path / "gone", backend="auto", model="othermodel")
    assert m["backend"] == "dsp" and "Demucs failed (unknown Demucs model" in m["backend_reason"]
    # a hub that cannot be reached (no network, a firewall): dsp at once, with why
    demucs_hub.stop()
    m = separate(song[0], tmp_path / "down", backend="auto", model="thirdmodel")
    assert m["backend"] == "dsp" and "can be reached" in m["backend_reason"]


def test_a_bag_of_models_is_fetched_whole_and_separates(demucs_hub, song, tmp_path):
    """A bag (htdemucs_ft is four models) through the hub: its yaml, then every model's
    weights, each checked; demucs' loader makes one averaged model of them."""
    manifest = separate(song[0], tmp_path / "bag", backend="demucs", model="tinybag",
                        shifts=0)
    assert manifest["backend"] == "demucs" and manifest["model"] == "tinybag"
    fetched = sorted({r[0].rsplit("/", 1)[1] for r in demucs_hub.requests
                      if r[0].endswith(".safetensors")})
    assert fetched == ["ba90000a.safetensors", "ba90000b.safetensors"]
    loaded = demucs_backend._DEMUCS_CACHE[("tinybag", None, "cpu")].model
    assert len(loaded.models) == 2                          # a BagOfModels of both
    stems, _ = load_stems(tmp_path / "bag")
    assert set(stems) == set(STEMS) and all(np.isfinite(a).all() for a in stems.values())


def test_the_legacy_repo_serves_what_the_hub_does_not_have(demucs_hub, song, tmp_path):
    """``tinyold`` is only in demucs' legacy repo (as listed in its tables): the hub answers
    'no such repo', the weights come from the legacy host into the torch hub cache with the
    SHA-256 prefix in their names checked, and the second run needs no host."""
    assert not weights_on_machine("tinyold")
    seen = []
    rep = fetch_demucs_weights("tinyold", progress=lambda f, s: seen.append(f))
    assert rep["repo_id"] == "legacy" and rep["files"] == demucs_hub.legacy_files
    assert seen[-1] == 1.0 and seen == sorted(seen) and weights_on_machine("tinyold")
    manifest = separate(song[0], tmp_path / "a", backend="demucs", model="tinyold", shifts=0)
    demucs_hub.stop()
    demucs_backend._DEMUCS_CACHE.clear()
    again = separate(song[0], tmp_path / "b", backend="demucs", model="tinyold", shifts=0)
    a, _ = load_stems(tmp_path / "a")
    b, _ = load_stems(tmp_path / "b")
    assert manifest["backend"] == again["backend"] == "demucs"
    assert all(np.array_equal(a[s], b[s]) for s in a)


def test_a_legacy_fetch_resumes_and_a_damaged_legacy_file_never_counts(demucs_hub):
    first = f"/legacy/{demucs_hub.legacy_files[0]}"
    body = demucs_hub.files[first]
    demucs_hub.drop_after[first] = len(body) // 2
    with pytest.raises(SeparationError, match="legacy repo.*run again to resume"):
        fetch_demucs_weights("tinyold")
    assert not weights_on_machine("tinyold")
    fetch_demucs_weights("tinyold")                          # resumes from the half
    assert (first, f"bytes={len(body) // 2}-") in demucs_hub.requests
    assert weights_on_machine("tinyold")
    # a file whose bytes do not match the SHA-256 prefix in its name is not kept
    checkpoints = Path(torch.hub.get_dir()) / "checkpoints"
    for name in demucs_hub.legacy_files:
        (checkpoints / name).unlink()
    damaged = bytearray(body)
    damaged[len(damaged) // 2] ^= 0xFF
    demucs_hub.files[first] = bytes(damaged)
    with pytest.raises(SeparationError, match="does not match"):
        fetch_demucs_weights("tinyold")
    assert not weights_on_machine("tinyold")
    assert not list(checkpoints.glob(f"{demucs_hub.legacy_files[0]}*"))
