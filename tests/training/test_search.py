"""hp_tune.py: seeded generation, valid configs with real booleans, the parameter filter, and
generate → train → train again (skips) → report on tiny conv autoencoders."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest
import torch

from deepaudio.cli import hp_tune as hp_tune_cli
from deepaudio.core.config import load_config
from deepaudio.data.config import DatasetConfig
from deepaudio.data.process import process_dataset
from deepaudio.networks.checkpoint import load_trained
from deepaudio.networks.registry import build_model, count_parameters
from deepaudio.training.fma import TrainConfig, train
from deepaudio.training.search import SPACES, count_model_parameters


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """One intra-op thread: under ``pytest -n 2`` on 2 cores, two OpenMP threads per worker
    spin against each other and make these tiny models many times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def generate(out: Path, *args: str) -> int:
    return hp_tune_cli.main(["generate", "--out", str(out), *args])


def configs_of(out: Path) -> list[dict]:
    lines = (out / "list.txt").read_text().splitlines()
    return [json.loads(Path(p).read_text()) for p in lines]


def walk(value, path="$"):
    """Every (json path, leaf) of a JSON document."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from walk(v, f"{path}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from walk(v, f"{path}[{i}]")
    else:
        yield path, value


@pytest.mark.parametrize("space", ["conv_ae", "classifier", "dense_ae"])
def test_same_seed_same_configs_other_seed_differs(tmp_path, space):
    common = ["--space", space, "--n", "3", "--models-dir", "runs",
              "--dataset", str(tmp_path / "absent.h5")]
    assert generate(tmp_path / "a", *common, "--seed", "7") == 0
    assert generate(tmp_path / "b", *common, "--seed", "7") == 0
    assert generate(tmp_path / "c", *common, "--seed", "8") == 0
    a, b, c = (configs_of(tmp_path / d) for d in "abc")
    assert len(a) == 3 and a == b
    assert [x["lr"] for x in a] != [x["lr"] for x in c]
    assert len({x["name"] for x in a}) == 3
    space_json = json.loads((tmp_path / "a" / "space.json").read_text())
    assert space_json["seed"] == 7 and space_json["space"] == space
    assert space_json["ranges"]["log10_lr"] in ([-4.0, -2.0], [-5.0, -2.0])


@pytest.mark.parametrize("space", ["conv_ae", "classifier", "dense_ae"])
def test_configs_validate_and_booleans_are_json_booleans(tmp_path, space):
    assert generate(tmp_path, "--space", space, "--n", "8", "--seed", "3",
                    "--dataset", str(tmp_path / "absent.h5")) == 0
    paths = (tmp_path / "list.txt").read_text().splitlines()
    assert len(paths) == 8
    lo, hi = SPACES[space]["log10_lr"]
    for p in paths:
        cfg = load_config(TrainConfig, p)     # raises on strings for booleans
        raw = json.loads(Path(p).read_text())
        for where, leaf in walk(raw):
            assert not (isinstance(leaf, str) and leaf.lower() in ("true", "false")), where
        assert cfg.optimizer == "sgd" and raw["momentum"] in SPACES[space]["momentum"]
        assert 10 ** lo <= cfg.lr <= 10 ** hi
        assert cfg.batch_size in SPACES[space]["batch_size"]
        params = cfg.model_params
        if space == "classifier":
            assert type(params["batchnorm"]) is bool
            assert not (params["arch"] == "alexnet" and params["batchnorm"])
        if space == "conv_ae":
            assert params["padding"] == params["kernel_size"] // 2
        if space == "dense_ae":
            widths = params["widths"]
            assert widths[-1] == 10 and widths == sorted(widths, reverse=True)
            assert len(set(widths)) == len(widths)
    if space == "classifier":   # with 8 draws both values of batchnorm turn up, as booleans
        values = {json.loads(Path(p).read_text())["model_params"]["batchnorm"] for p in paths}
        assert values == {True, False}


def test_parameter_filter_reference_bounds(tmp_path):
    # the reference's 20-30M window, checked on the really built models
    assert generate(tmp_path, "--space", "conv_ae", "--n", "3", "--seed", "0",
                    "--dataset", str(tmp_path / "absent.h5")) == 0
    space = json.loads((tmp_path / "space.json").read_text())
    assert space["param_bounds"] == [20_000_000, 30_000_000]
    for cfg, cand in zip(configs_of(tmp_path), space["candidates"]):
        n = count_parameters(build_model(cfg["model"], cfg["model_params"]))
        assert 20_000_000 <= n <= 30_000_000
        assert n == cand["parameters"]


def test_parameter_filter_custom_bounds_and_giving_up(tmp_path, capsys):
    assert generate(tmp_path / "ok", "--space", "conv_ae", "--n", "4", "--seed", "1", "--tiny",
                    "--min-params", "30000", "--max-params", "200000",
                    "--dataset", str(tmp_path / "absent.h5")) == 0
    for cfg in configs_of(tmp_path / "ok"):
        assert cfg["model_params"]["num_init_filters"] in (2, 4)
        n = count_parameters(build_model(cfg["model"], cfg["model_params"]))
        assert 30_000 <= n <= 200_000
    capsys.readouterr()
    rc = generate(tmp_path / "none", "--space", "conv_ae", "--n", "2", "--seed", "1",
                  "--min-params", "1", "--max-params", "2", "--max-draws", "40",
                  "--dataset", str(tmp_path / "absent.h5"))
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and err[-1].startswith("error: only 0 of 2") and "40 draws" in err[-1]
    assert not (tmp_path / "none" / "list.txt").exists()


def test_meta_count_equals_real_count():
    for model, params in [("conv_autoencoder", {"variant": "shared", "num_init_filters": 4}),
                          ("cnn_classifier", {"arch": "vgg11", "batchnorm": True,
                                              "width": 0.125, "fc_units": 32}),
                          ("dense_autoencoder", {"input_dim": 300, "widths": [64, 10]})]:
        real = count_parameters(build_model(model, params))
        assert count_model_parameters(model, params) == real


def test_generate_refuses_to_replace_another_search(tmp_path, capsys):
    args = ["--space", "dense_ae", "--n", "2", "--tiny", "--dataset", str(tmp_path / "d.h5")]
    assert generate(tmp_path, *args, "--seed", "0") == 0
    assert generate(tmp_path, *args, "--seed", "0") == 0          # same search: idempotent
    assert generate(tmp_path, *args, "--seed", "1") == 2
    assert "already lists another search" in capsys.readouterr().err
    assert generate(tmp_path, *args, "--seed", "1", "--overwrite") == 0


def test_missing_list_is_a_one_line_error(tmp_path, capsys):
    assert hp_tune_cli.main(["train", "--list", str(tmp_path / "nope.txt")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: list file") and err.count("\n") == 1


# ---------------------------------------------------------------------------------------------
# End to end on a tiny dataset

@pytest.fixture(scope="module")
def dataset(sample_set, tmp_path_factory, dataset_config) -> Path:
    out = tmp_path_factory.mktemp("hp_data")
    cfg = load_config(DatasetConfig, dataset_config(
        sample_set, out, name="hp", segments_per_track=2, scaler="minmax"))
    process_dataset(cfg, workers=1)
    return cfg.h5_path


@pytest.fixture(scope="module")
def sweep(dataset, tmp_path_factory) -> dict:
    """Two tiny conv AEs generated and trained once for the tests below."""
    root = tmp_path_factory.mktemp("hp_sweep")
    out, runs = root / "search", root / "runs"
    assert generate(out, "--space", "conv_ae", "--n", "2", "--seed", "0", "--epochs", "1",
                    "--tiny", "--min-params", "1", "--max-params", "2000000",
                    "--dataset", str(dataset), "--models-dir", str(runs)) == 0
    assert hp_tune_cli.main(["train", "--list", str(out / "list.txt")]) == 0
    return {"out": out, "runs": runs, "list": out / "list.txt"}


def test_train_writes_every_run(sweep):
    names = [c["name"] for c in configs_of(sweep["out"])]
    assert names == ["conv_ae_hp_0", "conv_ae_hp_1"]
    for name in names:
        run = sweep["runs"] / name
        for f in ("config.json", "last.pt", "best.pt", "metrics.csv", "learning_curve.png"):
            assert (run / f).is_file(), f
        rows = list(csv.DictReader((run / "metrics.csv").open()))
        assert [r["epoch"] for r in rows] == ["1"] and math.isfinite(float(rows[0]["cv_loss"]))


def test_train_again_skips_finished_runs(sweep, capsys):
    files = sorted(sweep["runs"].rglob("*"))
    before = {f: (f.stat().st_mtime_ns, f.read_bytes()) for f in files if f.is_file()}
    capsys.readouterr()
    assert hp_tune_cli.main(["train", "--list", str(sweep["list"])]) == 0
    out = capsys.readouterr().out
    assert out.count("skipped") == 3 and "0 trained, 2 skipped, 0 failed" in out
    after = {f: (f.stat().st_mtime_ns, f.read_bytes()) for f in files if f.is_file()}
    assert after == before and sorted(sweep["runs"].rglob("*")) == files


def test_train_resumes_unfinished_and_continues_after_a_failure(sweep, dataset, tmp_path,
                                                                capsys):
    cfg = dict(configs_of(sweep["out"])[0], name="resume_me", num_epochs=2,
               models_dir=str(tmp_path / "runs"))
    good = tmp_path / "resume_me.json"
    good.write_text(json.dumps(cfg))
    train(load_config(TrainConfig, good), stop_after_epochs=1)   # a killed 2-epoch run
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(dict(cfg, name="bad", dataset_path=str(tmp_path / "no.h5"))))
    listing = tmp_path / "list.txt"
    listing.write_text(f"{bad}\n{good}\n")
    capsys.readouterr()
    assert hp_tune_cli.main(["train", "--list", str(listing)]) == 1
    captured = capsys.readouterr()
    assert "bad.json: failed:" in captured.err and "not found" in captured.err
    assert "resuming from epoch 1" in captured.out
    assert "1 trained, 0 skipped, 1 failed" in captured.out
    rows = list(csv.DictReader((tmp_path / "runs/resume_me/metrics.csv").open()))
    assert [r["epoch"] for r in rows] == ["1", "2"]
    ck = torch.load(tmp_path / "runs/resume_me/last.pt", weights_only=False)
    assert ck["epoch"] == 2


def test_train_refuses_a_run_folder_of_another_config(sweep, tmp_path, capsys):
    cfg = dict(configs_of(sweep["out"])[1], lr=0.123)   # same name and models_dir, other lr
    path = tmp_path / "other.json"
    path.write_text(json.dumps(cfg))
    (tmp_path / "list.txt").write_text(f"{path}\n")
    assert hp_tune_cli.main(["train", "--list", str(tmp_path / "list.txt")]) == 1
    assert "holds a run of another config (differs in 'lr')" in capsys.readouterr().err


def test_report_ranks_by_best_cv_loss(sweep, dataset, tmp_path, capsys):
    # one more config in the list that was never trained: listed last, no crash
    extra = dict(configs_of(sweep["out"])[0], name="untrained", models_dir=str(tmp_path))
    (tmp_path / "untrained.json").write_text(json.dumps(extra))
    listing = tmp_path / "list.txt"
    listing.write_text(sweep["list"].read_text() + f"{tmp_path / 'untrained.json'}\n")
    capsys.readouterr()
    assert hp_tune_cli.main(["report", "--list", str(listing), "--out", str(tmp_path / "rep")]) == 0
    printed = capsys.readouterr().out.splitlines()
    rows = list(csv.DictReader((tmp_path / "rep" / "leaderboard.csv").open()))
    assert [r["name"] for r in rows][-1] == "untrained" and rows[-1]["status"] == "not trained"
    losses = [float(r["best_cv_loss"]) for r in rows[:-1]]
    assert len(losses) == 2 and losses == sorted(losses)
    for r in rows[:-1]:
        run = sweep["runs"] / r["name"]
        cv = [float(m["cv_loss"]) for m in csv.DictReader((run / "metrics.csv").open())]
        assert float(r["best_cv_loss"]) == min(cv) and r["best_epoch"] == "1"
        assert r["status"] == "finished" and r["epochs"] == "1"
        model, _, _ = load_trained(run)
        assert int(r["parameters"]) == count_parameters(model)
        assert r["variant"] in ("plain", "shared", "skip") and float(r["lr"]) > 0
    assert "best_cv_segment_acc" not in rows[0]          # autoencoders have no accuracy
    header = printed[0].split()
    assert header[:3] == ["name", "status", "best_cv_loss"]
    assert [line.split()[0] for line in printed[1:4]] == [r["name"] for r in rows]
    png = tmp_path / "rep" / "learning_curves.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_classifier_sweep_reports_accuracies(dataset, tmp_path, capsys):
    out = tmp_path / "search"
    assert generate(out, "--space", "classifier", "--n", "1", "--seed", "2", "--epochs", "1",
                    "--tiny", "--dataset", str(dataset), "--models-dir", str(tmp_path)) == 0
    cfg = configs_of(out)[0]
    assert cfg["model_params"]["width"] == 0.0625 and cfg["model_params"]["fc_units"] == 64
    assert hp_tune_cli.main(["train", "--list", str(out / "list.txt")]) == 0
    assert hp_tune_cli.main(["report", "--list", str(out / "list.txt")]) == 0
    (row,) = csv.DictReader((out / "leaderboard.csv").open())
    metrics = list(csv.DictReader((tmp_path / cfg["name"] / "metrics.csv").open()))
    assert float(row["best_cv_segment_acc"]) == float(metrics[0]["cv_segment_acc"])
    assert 0 <= float(row["best_cv_track_acc"]) <= 1
    assert row["batchnorm"] in ("true", "false") and row["arch"] == cfg["model_params"]["arch"]
