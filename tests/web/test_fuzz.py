"""Schemathesis against a live server, from docs/openapi.json: generated requests for every
operation (examples, coverage, fuzzing and the stateful phase that follows the spec's links),
checking that no input gives a 5xx and that responses match their documented schema."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"
CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance," \
         "response_schema_conformance"


def test_no_generated_request_gets_a_5xx(sample_set, playground_models, tmp_path_factory,
                                        make_app, serve, tmp_path):
    app = make_app(tmp_path_factory.mktemp("data"), sample_set, playground_models)
    with serve(app) as url:
        out = subprocess.run(
            [str(SCHEMATHESIS), "run", f"{url}/api/openapi.json", "--url", url,
             "--checks", CHECKS, "--max-examples", "25", "--max-time", "120", "--seed", "0",
             "--generation-database", "none", "--no-color", "--workers", "2",
             "--request-timeout", "60", "--report", "json",
             "--report-json-path", str(tmp_path / "report.json")],
            capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-6000:] + out.stderr[-2000:]
