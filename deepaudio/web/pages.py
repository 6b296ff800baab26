"""The three pages and their static files from ``demo/`` (three.js and onnxruntime-web from
their npm packages)."""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Response, current_app, send_from_directory

bp = Blueprint("pages", __name__)

STATIC_SUFFIXES = {".html", ".js", ".css", ".json", ".svg", ".png", ".ico", ".map"}


def _demo() -> Path:
    return Path(current_app.config["SERVER_CONFIG"].demo_dir)


@bp.get("/")
def index():
    return send_from_directory(_demo(), "index.html")


@bp.get("/favicon.ico")
def favicon():      # browsers ask for it on every page; no icon, and no 404 in the console
    return Response(status=204)


@bp.get("/vendor/three/<path:name>")
def vendor_three(name: str):
    three = _demo() / "node_modules" / "three"
    if not three.is_dir():
        return Response("three.js is not installed: run 'make playground' (npm ci in demo/)",
                        404, mimetype="text/plain")
    if not (name.startswith("build/") or name.startswith("examples/jsm/")):
        return Response("not found", 404, mimetype="text/plain")
    return send_from_directory(three, name, max_age=3600)


# onnxruntime-web's ES module build and its single-threaded SIMD WebAssembly runtime: what the
# live input and the static site load (the other builds in the package are not served)
ORT_FILES = {"ort.wasm.min.mjs": "text/javascript",
             "ort-wasm-simd-threaded.mjs": "text/javascript",
             "ort-wasm-simd-threaded.wasm": "application/wasm"}


@bp.get("/vendor/ort/<name>")
def vendor_ort(name: str):
    dist = _demo() / "node_modules" / "onnxruntime-web" / "dist"
    if name not in ORT_FILES:
        return Response("not found", 404, mimetype="text/plain")
    if not (dist / name).is_file():
        return Response("onnxruntime-web is not installed: run 'make playground' (npm ci in "
                        "demo/)", 404, mimetype="text/plain")
    return send_from_directory(dist, name, mimetype=ORT_FILES[name], max_age=3600)


@bp.get("/<path:name>")
def static_file(name: str):
    parts = Path(name).parts
    if (not parts or parts[0] in ("node_modules", "dev") or name.startswith(".")
            or Path(name).suffix not in STATIC_SUFFIXES):
        return Response("not found", 404, mimetype="text/plain")
    return send_from_directory(_demo(), name)
