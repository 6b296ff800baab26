"""Demucs through its real loading code, on a tiny random HTDemucs saved in demucs'
local-repo format: streaming equals ``apply_model``, resampling, missing and corrupt weights."""

from __future__ import annotations

import random

import numpy as np
import pytest
import soundfile as sf
import torch

from deepaudio.cli import mixer as mixer_cli
from deepaudio.mixer.demucs_backend import check_demucs_weights, demucs_stream, load_demucs
from deepaudio.mixer.separate import separate
from deepaudio.mixer.stems import STEMS, SeparationError, UnknownModelError, load_stems

SR = 44100


@pytest.mark.parametrize("shifts", [0, 1])
def test_streaming_demucs_equals_apply_model(tiny_repo, shifts):
    from demucs.apply import apply_model
    model = load_demucs("tinyht", tiny_repo).model
    torch.manual_seed(1)
    x = torch.randn(1, 2, int(4.3 * SR)) * 0.3
    random.seed(5)
    expected = apply_model(model, x, shifts=shifts, split=True, overlap=0.25)[0].numpy()
    blocks, seen = [], []
    random.seed(5)
    demucs_stream(model, x, shifts=shifts, on_output=blocks.append, on_progress=seen.append)
    assert len(blocks) > 1                                  # written as it goes, not at the end
    np.testing.assert_allclose(np.concatenate(blocks, -1), expected, atol=1e-5)
    assert seen == sorted(seen) and seen[-1] == pytest.approx(1.0)


def test_separate_demucs_matches_separator_and_writes_stems(tiny_repo, song, tmp_path):
    path, _, mix = song
    stages = []
    random.seed(7)
    manifest = separate(path, tmp_path / "out", backend="demucs", model="tinyht",
                           repo=tiny_repo, progress=lambda f, s: stages.append((f, s)))
    assert manifest["sources"] == list(STEMS) and manifest["frames"] == mix.shape[1]
    fractions = [f for f, _ in stages]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert sum(1 for _, s in stages if s == "separating") >= 3          # per-chunk progress
    assert stages[0] == (0.0, "loading model")
    assert any(0 < f <= 0.02 and s == "decoding" for f, s in stages)     # decoding moves too
    ours, sr = load_stems(tmp_path / "out")
    loaded = load_demucs("tinyht", tiny_repo)
    random.seed(7)
    _, ref = loaded.separator.separate_tensor(torch.from_numpy(mix), SR)   # same seed and shift
    for s in STEMS:
        np.testing.assert_allclose(ours[s], ref[s].numpy(), atol=2e-4)
    assert not list((tmp_path / "out").glob(".*"))                       # no scratch left


def test_demucs_resamples_and_upmixes_mono(tiny_repo, song, tmp_path):
    path, _, mix = song
    mono = tmp_path / "mono22k.flac"
    sf.write(mono, mix.mean(0)[::2], 22050)
    manifest = separate(mono, tmp_path / "out", backend="demucs", model="tinyht",
                           repo=tiny_repo, shifts=0)
    stems, sr = load_stems(tmp_path / "out")
    assert sr == SR and manifest["source_sample_rate"] == 22050
    assert all(a.shape == (2, 2 * (mix.shape[1] // 2)) for a in stems.values())


def test_missing_weights_say_where_to_put_which_files(tmp_path, monkeypatch, song, capsys):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    empty = tmp_path / "repo"
    empty.mkdir()
    with pytest.raises(SeparationError) as err:
        check_demucs_weights("htdemucs", empty)
    msg = str(err.value)
    assert "htdemucs.yaml" in msg and "955717e8-8726e21a.th" in msg and "--demucs-repo" in msg
    with pytest.raises(SeparationError, match="not on this machine"):
        check_demucs_weights("htdemucs", None)
    code = mixer_cli.main(["separate", str(song[0]), "-o", str(tmp_path / "o"),
                           "--backend", "demucs", "--demucs-repo", str(empty)])
    err_lines = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err_lines[-1].startswith("error: Demucs model 'htdemucs' is not in")


def test_corrupt_weights_are_a_clear_error(tiny_repo, tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "tinyht.yaml").write_text("models: ['0a1b2c3d']\n")
    (bad / "0a1b2c3d-deadbeef.th").write_bytes(b"not a checkpoint")
    with pytest.raises(SeparationError, match="cannot load Demucs model 'tinyht'.*checksum"):
        load_demucs("tinyht", bad)


@pytest.mark.parametrize("name", ["GJ6-", "x" * 120, "a..b"])
def test_names_the_hub_cannot_hold_are_unknown_models(name, monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    with pytest.raises(UnknownModelError, match="unknown Demucs model"):
        check_demucs_weights(name)


def test_two_stems_keep_one_and_sum_the_rest(tiny_repo, song, tmp_path, capsys):
    """``--two-stems vocals`` (demucs' option): vocals and no_vocals, adding up to what the
    four stems add up to; the mix command mixes them like any stems (karaoke: vocals off)."""
    four = separate(song[0], tmp_path / "four", backend="demucs", model="tinyht",
                    repo=tiny_repo, shifts=0)
    two = separate(song[0], tmp_path / "two", backend="demucs", model="tinyht",
                   repo=tiny_repo, shifts=0, two_stems="vocals")
    assert four["sources"] == list(STEMS) and two["sources"] == ["vocals", "no_vocals"]
    assert two["two_stems"] == "vocals"
    a, _ = load_stems(tmp_path / "four")
    b, _ = load_stems(tmp_path / "two")
    np.testing.assert_allclose(b["vocals"], a["vocals"], atol=2e-4)
    np.testing.assert_allclose(b["no_vocals"], a["drums"] + a["bass"] + a["other"], atol=2e-4)
    code = mixer_cli.main(["mix", str(tmp_path / "two"), "--gain", "vocals=-60",
                           "--normalize", "none", "-o", str(tmp_path / "karaoke.wav")])
    assert code == 0
    y, _ = sf.read(tmp_path / "karaoke.wav", always_2d=True)
    np.testing.assert_allclose(y.T, b["no_vocals"] + 1e-3 * b["vocals"], atol=2e-4)
    # the DSP backend too, from the CLI; a stem the model does not have is named
    assert mixer_cli.main(["separate", str(song[0]), "-o", str(tmp_path / "dsp"), "--backend",
                           "dsp", "--two-stems", "drums"]) == 0
    assert sorted(load_stems(tmp_path / "dsp")[0]) == ["drums", "no_drums"]
    assert mixer_cli.main(["separate", str(song[0]), "-o", str(tmp_path / "bad"), "--backend",
                           "dsp", "--two-stems", "guitar"]) == 2
    assert "the model's stems are drums, bass, other, vocals" in capsys.readouterr().err


def test_separate_help_lists_the_models(capsys):
    with pytest.raises(SystemExit):
        mixer_cli.main(["separate", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    for name in ("htdemucs", "htdemucs_ft", "htdemucs_6s (6 stems: + guitar, piano)",
                 "mdx_extra", "hdemucs_mmi", "--two-stems"):
        assert name in out
