"""Latency, throughput and robustness of the API against a real local server.

    python bench/api_load.py [--clients 16] [--seconds 20] [--tracks 8] [--fuzz-seconds 120]

Starts ``api.py`` (waitress) on a free port with a fresh data folder (so the first request for
each track is truly cold), on the sample set and the playground models, then measures:

* cold: the first features request of each of ``--tracks`` tracks (decode + encode + map);
* cached: 200 sequential repeats of one request (target p95 < 50 ms);
* load, cached: ``--clients`` concurrent clients for ``--seconds`` s over the cached tracks;
* load, uncached: the same, every request with options never asked before (a new timeline
  to compute each time);
* for both loads requests/s, p95, errors (target 0) and the server's peak resident memory;
* fuzz: Schemathesis from ``docs/openapi.json`` against the server for ``--fuzz-seconds``
  (every phase, a user's real ids and session cookie given): requests tried and server
  errors found (target 0).
"""

from __future__ import annotations

import argparse
import http.client
import json
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from _timing import peak_rss_mb, reset_peak_rss

ROOT = Path(__file__).resolve().parents[1]



def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(port: int, path: str, conn: http.client.HTTPConnection | None = None):
    c = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    t = time.perf_counter()
    c.request("GET", path)
    r = c.getresponse()
    body = r.read()
    return r.status, body, time.perf_counter() - t


def call(port: int, method: str, path: str, body: dict | None = None,
         cookie: str | None = None) -> tuple[int, dict, str | None]:
    """One JSON request; returns the status, the JSON answer and the session cookie set."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    headers = {"Content-Type": "application/json"} if body is not None else {}
    if cookie:
        headers["Cookie"] = cookie
    c.request(method, path, body=json.dumps(body) if body is not None else None,
              headers=headers)
    r = c.getresponse()
    data = json.loads(r.read() or b"{}")
    set_cookie = r.getheader("Set-Cookie")
    c.close()
    return r.status, data, set_cookie.split(";")[0] if set_cookie else cookie


def load(port: int, urls: list[str], clients: int, seconds: float) -> dict:
    """``clients`` threads requesting ``urls`` in turn for ``seconds``."""
    done, errors, lat = [0], [0], []
    stop = time.perf_counter() + seconds
    lock = threading.Lock()
    counter = iter(range(10 ** 9))

    def client():
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        while time.perf_counter() < stop:
            with lock:
                k = next(counter)
            try:
                status, _, dt = get(port, urls[k % len(urls)].format(k=k), c)
            except OSError:
                status, dt = 0, 0.0
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
            with lock:
                done[0] += 1
                lat.append(dt)
                errors[0] += status != 200

    t0 = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {"rate": done[0] / (time.perf_counter() - t0), "lat": lat, "errors": errors[0]}


CHECKS = ("not_a_server_error,status_code_conformance,content_type_conformance,"
          "response_schema_conformance")     # the test suite's checks (tests/web/test_fuzz.py)


def fuzz(port: int, tracks: list[dict], seconds: float, folder: Path, checks: str) -> dict:
    """Schemathesis against the server with one user's real ids; its JSON report."""
    status, job, cookie = call(port, "POST", "/api/mixer/jobs",
                               {"track_id": tracks[0]["id"], "backend": "dsp"})
    assert status == 202, job
    while job["state"] not in ("done", "failed"):
        time.sleep(0.2)
        _, job, _ = call(port, "GET", f"/api/mixer/jobs/{job['id']}", cookie=cookie)
    _, mix, _ = call(port, "POST", "/api/mixer/mixes", {"job_id": job["id"], "name": "bench",
                                                        "settings": {"gains": {"vocals": 3}}},
                     cookie)
    _, fade, _ = call(port, "POST", "/api/crossfade",
                      {"track_a": tracks[0]["id"], "track_b": tracks[1]["id"],
                       "style": "equal_power", "seconds": 1.0, "context": 0.5,
                       "measures": False}, cookie)
    (folder / "schemathesis.toml").write_text(
        f'headers = {{ Cookie = "{cookie}" }}\n[parameters]\n'
        f'"path.track_id" = "{tracks[0]["id"]}"\n"path.job_id" = "{job["id"]}"\n'
        f'"path.mix_id" = "{mix["id"]}"\n"path.key" = "{fade["id"]}"\n')
    url = f"http://127.0.0.1:{port}"
    subprocess.run([str(Path(sys.executable).parent / "schemathesis"), "--config-file",
                    str(folder / "schemathesis.toml"), "run", f"{url}/api/openapi.json",
                    "--url", url, "--checks", checks, "--max-time", str(int(seconds)),
                    "--generation-database", "none", "--no-color", "--workers", "2",
                    "--request-timeout", "60", "--report", "json",
                    "--report-json-path", str(folder / "report.json")],
                   cwd=folder, capture_output=True, text=True)
    return json.loads((folder / "report.json").read_text())


def pct(x: list[float]) -> str:
    ms = np.asarray(x) * 1000
    return f"p50 {np.percentile(ms, 50):7.1f} ms  p95 {np.percentile(ms, 95):7.1f} ms"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--clients", type=int, default=16)
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--tracks", type=int, default=8)
    p.add_argument("--fuzz-seconds", type=float, default=120.0,
                   help="Schemathesis run time (0: no fuzzing)")
    p.add_argument("--fuzz-checks", default=CHECKS,
                   help="Schemathesis checks (default: the test suite's; 'all' for every one)")
    p.add_argument("--fma", default=str(ROOT / "datasets" / "fma"))
    p.add_argument("--models", default=str(ROOT / "models" / "runs"))
    args = p.parse_args()

    port = free_port()
    with tempfile.TemporaryDirectory() as data:
        server = subprocess.Popen(
            [sys.executable, str(ROOT / "api.py"), "--port", str(port), "--data", data,
             "--fma", args.fma, "--models", args.models, "--threads", "8"],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            for _ in range(300):
                try:
                    if get(port, "/api/health")[0] == 200:
                        break
                except OSError:
                    time.sleep(0.1)
            else:
                print("server did not start", file=sys.stderr)
                return 1
            tracks = json.loads(get(port, f"/api/tracks?per_page={args.tracks}")[1])["items"]
            models = json.loads(get(port, "/api/models")[1])
            if not tracks or not models["models"]:
                print("no tracks or models: run 'make playground' first", file=sys.stderr)
                return 1
            query = f"run={models['default']}&method=pca&fps=30&assign=random&seed=1"
            urls = [f"/api/tracks/{t['id']}/features?{query}" for t in tracks]

            cold = []
            for u in urls:
                status, _, dt = get(port, u)
                assert status == 200, status
                cold.append(dt)
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            cached = [get(port, urls[0], conn)[2] for _ in range(200)]
            size = len(get(port, urls[0], conn)[1])
            conn.close()

            reset_peak_rss(server.pid)
            cached_load = load(port, urls, args.clients, args.seconds)
            cached_peak = peak_rss_mb(server.pid)
            fresh = [f"/api/tracks/{t['id']}/features?run={models['default']}&method=pca"
                     "&fps=30&smoothing=0.{k:06d}" for t in tracks]
            reset_peak_rss(server.pid)
            fresh_load = load(port, fresh, args.clients, args.seconds)
            fresh_peak = peak_rss_mb(server.pid)
            report = fuzz(port, tracks, args.fuzz_seconds, Path(data), args.fuzz_checks) \
                if args.fuzz_seconds > 0 else None
        finally:
            server.terminate()
            server.wait(10)

    print(f"features endpoint, {len(tracks)} tracks of ~{tracks[0]['duration']:.0f} s, "
          f"30 fps, {size / 1024:.0f} KiB per response")
    print(f"cold   (first request per track): {pct(cold)}")
    print(f"cached (200 sequential)         : {pct(cached)}   target p95 < 50 ms")
    for label, r, peak in (("cached", cached_load, cached_peak),
                           ("uncached", fresh_load, fresh_peak)):
        print(f"load, {label:<8} ({args.clients} clients, {args.seconds:.0f} s): "
              f"{r['rate']:7.1f} req/s, {pct(r['lat'])}, errors {r['errors']} (target 0), "
              f"server peak RSS {peak:.0f} MB")
    if report is not None:
        cases = report["test_cases"]
        by_check: dict[str, int] = {}
        where: dict[str, set] = {}
        for group in report.get("failures", []):
            name = f"{group.get('code')} {group.get('title')}"
            by_check[name] = by_check.get(name, 0) + int(group.get("count", 1))
            where.setdefault(name, set()).update(group.get("operations") or [])
        server = sum(n for name, n in by_check.items() if "server_error" in name
                     or "Server error" in name)
        print(f"schemathesis ({report['running_time']:.0f} s, every phase, checks "
              f"{args.fuzz_checks if args.fuzz_checks != CHECKS else 'of the test suite'}): "
              f"{cases['generated']} test cases, {cases['with_failures']} with failures, "
              f"server errors {server} (target 0)")
        for name, n in sorted(by_check.items()):
            print(f"  {n:4d} x {name}: {', '.join(sorted(where[name]))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
