"""``make site``: the visualizer as a folder any static host can serve (GitHub Pages, a plain
file server), as the two original visualization projects were used.

The folder holds the page (``demo/``'s files with relative addresses), three.js and
onnxruntime-web, the sample tracks' audio and, under ``data/``, what the playground's ``/api``
would answer for them: the model list, the track list, each track's feature timeline per model
(the default layer and mapping), its beat-grid and DSP sources and its genres, plus each model
exported to ONNX. ``demo/js/shared/site.js`` answers the page's ``/api`` calls from those files;
uploads are decoded by the browser and encoded there with the ONNX graph, as live input is.
Separation, crossfades, training and MP4 rendering need the server and say so on the page.

The answers are the playground's own: the builder runs the app in-process on a temporary data
folder and stores what its routes return, so the static site and the server cannot drift apart.
The folder is built next to the destination and swapped in at the end; a folder that is not a
site this builder wrote is never replaced.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import time
import typing as tp
from pathlib import Path
from urllib.parse import urlencode

from deepaudio.core.errors import ToolkitError
from deepaudio.web.app import create_app
from deepaudio.web.pages import ORT_FILES

FORMAT = "deepaudio-site/1"
MARKER = "site.json"                 # under data/: what makes a folder one of ours
REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "demo"
FPS = 30.0
MAPPING = {"method": "pca", "scaling": "standard", "per": "features"}
SERVER_ONLY = ("stem separation and the mixer", "crossfades", "training on your uploads",
               "MP4 rendering")
Progress = tp.Callable[[int, int, str], None]


def _get(client, path: str, **query) -> tp.Any:
    """A route's answer (JSON, or bytes for audio and graphs); ToolkitError on an error."""
    url = path + ("?" + urlencode(query) if query else "")
    resp = client.get(url)
    if resp.status_code != 200:
        try:
            msg = resp.get_json()["error"]
        except (TypeError, KeyError):
            msg = resp.status
        raise ToolkitError(f"{url}: {msg}")
    return resp.get_json() if resp.is_json else resp.data


def _write_json(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, separators=(",", ":")))


def _page(html: str, site_json: str) -> str:
    """index.html with relative addresses (the site may live under any path, e.g. a GitHub
    Pages project) and the marker that makes the page use the site's files."""
    html = re.sub(r'(href|src)="/(?!/)', r'\1="', html)
    html = html.replace('"/vendor/', '"./vendor/')
    meta = f'<meta name="deepaudio-site" content="{site_json}">'
    return html.replace("<head>", "<head>\n  " + meta, 1)


def _copy_client(out: Path) -> None:
    """The page, its scripts and styles, three.js and onnxruntime-web's three files."""
    modules = DEMO / "node_modules"
    three = modules / "three" / "build"
    ort = modules / "onnxruntime-web" / "dist"
    missing = [p for p in (three / "three.module.js", *(ort / f for f in ORT_FILES))
               if not p.is_file()]
    if missing:
        raise ToolkitError(f"{missing[0]} is missing: run 'npm ci' in demo/ (make site does)")
    (out / "index.html").write_text(_page((DEMO / "index.html").read_text(), f"data/{MARKER}"))
    shutil.copytree(DEMO / "js", out / "js")
    shutil.copytree(DEMO / "css", out / "css")
    (out / "vendor" / "three" / "build").mkdir(parents=True)
    for f in ("three.module.js", "three.core.js"):     # the module build imports the core
        if (three / f).is_file():
            shutil.copy2(three / f, out / "vendor" / "three" / "build" / f)
    (out / "vendor" / "ort").mkdir(parents=True)
    for f in ORT_FILES:
        shutil.copy2(ort / f, out / "vendor" / "ort" / f)
    (out / ".nojekyll").touch()          # GitHub Pages: serve the folder as it is


def _all_tracks(client) -> list[dict]:
    items: list[dict] = []
    page = 1
    while True:
        res = _get(client, "/api/tracks", page=page, per_page=500)
        items += res["items"]
        if page * res["per_page"] >= res["total"]:
            return items
        page += 1


def build_site(out: str | os.PathLike, *, fma_dir: str | os.PathLike,
               models_dir: str | os.PathLike, fma_subset: str = "small",
               max_tracks: int | None = None, max_upload_mb: float = 200.0,
               max_upload_minutes: float = 20.0, progress: Progress | None = None) -> dict:
    """Write the static site into ``out``; returns its summary (site.json). The page refuses
    uploads over ``max_upload_mb`` or ``max_upload_minutes`` (it decodes them in memory)."""
    out = Path(out)
    if not (max_upload_mb > 0 and max_upload_minutes > 0):
        raise ToolkitError("the upload limits must be positive, got "
                           f"{max_upload_mb} MB and {max_upload_minutes} minutes")
    if out.exists() and not (out / "data" / MARKER).is_file():
        raise ToolkitError(f"{out} exists and is not a site 'make site' built: "
                           "give another folder, or remove it")
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.building-", dir=out.parent))
    try:
        summary = _build(work, fma_dir=fma_dir, models_dir=models_dir, fma_subset=fma_subset,
                         max_tracks=max_tracks, progress=progress)
        summary.update(max_upload_mb=max_upload_mb, max_upload_minutes=max_upload_minutes)
        _write_json(work / "data" / MARKER, summary)
        old = out.parent / f".{out.name}.old-{os.getpid()}"
        if out.exists():
            out.rename(old)
        work.rename(out)
        shutil.rmtree(old, ignore_errors=True)
        return summary
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _build(site: Path, *, fma_dir, models_dir, fma_subset: str, max_tracks: int | None,
           progress: Progress | None) -> dict:
    _copy_client(site)
    data = site / "data"
    with tempfile.TemporaryDirectory(prefix="deepaudio-site-") as tmp:
        app = create_app({"data_dir": tmp, "fma_dir": str(fma_dir),
                          "models_dir": str(models_dir), "fma_subset": fma_subset})
        client = app.test_client()
        models = _get(client, "/api/models")
        if not models["models"]:
            raise ToolkitError(f"{models_dir} holds no trained runs: 'make playground' (or "
                               "'make models') trains the sample models")
        tracks = _all_tracks(client)[:max_tracks]
        if not tracks:
            raise ToolkitError(f"{fma_dir} holds no tracks: 'make sample' writes the sample set")
        runs: dict[str, dict] = {}
        for m in models["models"]:
            # the site holds one layer and one mapping per model: the page shows only those
            m["layers"] = [m["default_layer"]]
            m["mappings"] = [MAPPING["method"]]
            entry: dict = {"layer": m["default_layer"], **MAPPING, "onnx": None, "reason": None}
            try:
                spec = _get(client, "/api/onnx/frontend.json", run=m["id"],
                            layer=m["default_layer"], **MAPPING)
                folder = f"onnx/{m['id']}"
                graph = _get(client, spec["graph"])
                (data / folder).mkdir(parents=True, exist_ok=True)
                (data / folder / "encoder.onnx").write_bytes(graph)
                spec["graph"] = f"data/{folder}/encoder.onnx"
                _write_json(data / folder / "frontend.json", spec)
                entry["onnx"] = f"data/{folder}/frontend.json"
            except ToolkitError as e:       # the samples keep their timelines; uploads cannot
                entry["reason"] = str(e)
            runs[m["id"]] = entry
        _write_json(data / "models.json", models)
        steps = len(tracks) * (len(runs) + 3)
        done = 0

        def step(what: str) -> None:
            nonlocal done
            done += 1
            if progress:
                progress(done, steps, what)

        classifier = models.get("classifier")
        for t in tracks:
            tid = t["id"]
            audio = _get(client, t["audio_url"])
            ext = t["format"].lower() if t.get("format") else "audio"
            (data / "audio").mkdir(parents=True, exist_ok=True)
            (data / "audio" / f"{tid}.{ext}").write_bytes(audio)
            t["audio_url"] = f"data/audio/{tid}.{ext}"
            step(f"{tid} audio")
            for run_id, entry in runs.items():
                tl = _get(client, f"/api/tracks/{tid}/features", run=run_id, layer=entry["layer"],
                          fps=FPS, assign="deterministic", **MAPPING)
                _write_json(data / "features" / run_id / f"{tid}.json", tl)
                step(f"{tid} features ({run_id})")
            _write_json(data / "sources" / f"{tid}.json",
                        _get(client, f"/api/tracks/{tid}/sources", fps=FPS))
            step(f"{tid} sources")
            if classifier:
                _write_json(data / "genres" / f"{tid}.json",
                            _get(client, f"/api/tracks/{tid}/genres", run=classifier))
            step(f"{tid} genres")
        genres = sorted({t["genre"] for t in tracks if t.get("genre")})
        _write_json(data / "tracks.json", {"items": tracks, "genres": genres})
        summary = {"format": FORMAT, "built": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                   "fps": FPS, "tracks": len(tracks), "runs": runs, "default": models["default"],
                   "classifier": classifier, "server_only": list(SERVER_ONLY)}
        _write_json(data / MARKER, summary)
        return summary
