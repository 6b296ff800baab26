"""Latency and throughput of the features endpoint against a real local server.

    python bench/api_load.py [--clients 16] [--seconds 20] [--tracks 8]

Starts ``api.py`` (waitress) on a free port with a fresh data folder (so the first request for
each track is truly cold), on the sample set and the playground models, then measures:

* cold: the first features request of each of ``--tracks`` tracks (decode + encode + map);
* cached: 200 sequential repeats of one request (target p95 < 50 ms);
* load: ``--clients`` concurrent clients for ``--seconds`` s over the cached tracks, requests/s
  and errors (target: no errors).
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


def pct(x: list[float]) -> str:
    ms = np.asarray(x) * 1000
    return f"p50 {np.percentile(ms, 50):7.1f} ms  p95 {np.percentile(ms, 95):7.1f} ms"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--clients", type=int, default=16)
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--tracks", type=int, default=8)
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

            done, errors, lat = [0], [0], []
            stop = time.perf_counter() + args.seconds
            lock = threading.Lock()

            def client(i: int):
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                k = i
                while time.perf_counter() < stop:
                    try:
                        status, _, dt = get(port, urls[k % len(urls)], c)
                    except OSError:
                        status, dt = 0, 0.0
                        c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                    with lock:
                        done[0] += 1
                        lat.append(dt)
                        errors[0] += status != 200
                    k += 1

            t0 = time.perf_counter()
            threads = [threading.Thread(target=client, args=(i,)) for i in range(args.clients)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            wall = time.perf_counter() - t0
        finally:
            server.terminate()
            server.wait(10)

    print(f"features endpoint, {len(tracks)} tracks of ~{tracks[0]['duration']:.0f} s, "
          f"30 fps, {size / 1024:.0f} KiB per response")
    print(f"cold   (first request per track): {pct(cold)}")
    print(f"cached (200 sequential)         : {pct(cached)}   target p95 < 50 ms")
    print(f"load   ({args.clients} clients, {args.seconds:.0f} s)      : {done[0] / wall:7.1f} "
          f"req/s, {pct(lat)}, errors {errors[0]} (target 0)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
