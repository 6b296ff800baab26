"""``crossfade.py evaluate``: the measures table and the figures, with and without WaveNet."""

from __future__ import annotations

import json

from deepaudio.cli import crossfade as crossfade_cli
from deepaudio.crossfade.render import (
    RAMPS,
)


def test_evaluate_writes_table_and_figures(songs, tmp_path, capsys):
    a, b = songs
    out = tmp_path / "eval"
    assert crossfade_cli.main(["evaluate", str(a), str(b), "-o", str(out), "--seconds", "2",
                    "--context", "1", "--sr", "16000"]) == 0
    printed = capsys.readouterr().out
    assert "equal_power" in printed and "logarithmic" in printed
    rows = json.loads((out / "measures.json").read_text())["rows"]
    assert [r["style"] for r in rows] == list(RAMPS)
    by = {r["style"]: r for r in rows}
    for r in rows:
        assert r["roughness"] > 0 and r["dissonance_min"] > 0 and r["dissonance_product"] > 0
    # equal gain dips about -3 dB for uncorrelated songs, equal power about 0 dB
    assert by["linear"]["loudness_dip_db"] < by["equal_power"]["loudness_dip_db"] - 1.5
    assert abs(by["equal_power"]["loudness_dip_db"]) < 1.5
    csv = (out / "measures.csv").read_text().splitlines()
    assert csv[0].startswith("style,roughness") and len(csv) == 1 + len(RAMPS)
    assert (out / "transitions.png").read_bytes()[:4] == b"\x89PNG"


def test_evaluate_with_weights_adds_neural_rows(songs, tmp_path, tiny_run):
    a, b = songs
    rep = crossfade_cli.main(["evaluate", str(a), str(b), "-o", str(tmp_path), "--seconds", "0.25",
                   "--context", "0.6", "--sr", "16000", "--weights", str(tiny_run)])
    assert rep == 0
    rows = json.loads((tmp_path / "measures.json").read_text())["rows"]
    assert [r["style"] for r in rows][-3:] == ["neural_linear", "neural_hann",
                                               "neural_equal_power"]
    assert (tmp_path / "encodings.png").read_bytes()[:4] == b"\x89PNG"
