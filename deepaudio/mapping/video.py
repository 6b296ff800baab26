"""A music video of a song, frame-exact: the playground's own visualization code renders each
frame in headless Chromium on a virtual clock (``demo/render.html``: frame ``i`` shows time
``i / fps`` and advances the scene by exactly ``1 / fps``), and PyAV encodes the frames (H.264,
or VP9 in WebM) with the song's audio muxed in from time 0. The render speed of the machine
changes how long it takes, never what is in the video: no frame is dropped or repeated.

The page's files are served to Chromium from ``demo/`` by Playwright's request routing; no
server runs.
"""

from __future__ import annotations

import base64
import io
import os
import queue
import shutil
import threading
import typing as tp
from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image

from deepaudio.core.audio import load_audio
from deepaudio.core.errors import ToolkitError
from deepaudio.core.files import atomic_write_path
from deepaudio.mapping.timeline import mapped_timeline

REPO = Path(__file__).resolve().parents[2]
ORIGIN = "http://deepaudio.render"
CHROMIUM_ARGS = ["--no-sandbox", "--enable-unsafe-swiftshader", "--use-angle=swiftshader",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-gpu-sandbox"]
MAX_SIZE = 3840
MAX_FPS = 120
AUDIO_SR = 48000
CONTENT_TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css",
                 ".json": "application/json"}


def parse_size(text: str) -> tuple[int, int]:
    """'1920x1080' → (1920, 1080): even sides (4:2:0 video) from 16 to 3840."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ToolkitError(f"--size must be WIDTHxHEIGHT (e.g. 1920x1080), got {text!r}") from None
    if not (16 <= w <= MAX_SIZE and 16 <= h <= MAX_SIZE) or w % 2 or h % 2:
        raise ToolkitError(f"--size {text}: each side must be even and from 16 to {MAX_SIZE}")
    return w, h


def chromium_path() -> str:
    path = os.environ.get("DEEPAUDIO_CHROMIUM") or shutil.which("chromium") or shutil.which(
        "chromium-browser")
    if not path:
        raise ToolkitError("the video export renders in Chromium, which is not installed: "
                           "apt-get install chromium (or set DEEPAUDIO_CHROMIUM to a Chromium)")
    return path


def _serve(demo: Path):
    """A Playwright route handler serving the render page, its modules and three.js."""
    three = demo / "node_modules" / "three"

    def handle(route):
        path = route.request.url[len(ORIGIN):].split("?")[0].lstrip("/")
        if path.startswith("vendor/three/"):
            file = three / path[len("vendor/three/"):]
            root = three
        else:
            file = demo / path
            root = demo
        try:
            ok = file.resolve().is_relative_to(root.resolve()) and file.is_file()
        except OSError:
            ok = False
        if not ok:
            route.fulfill(status=404, body="not found")
            return
        route.fulfill(status=200, body=file.read_bytes(),
                      content_type=CONTENT_TYPES.get(file.suffix, "application/octet-stream"))
    return handle


def _codec(container: str) -> tuple[str, str]:
    """(video codec, audio codec) for an output container."""
    import av
    if container == "webm":
        return "libvpx-vp9", "libopus"
    if "libx264" in av.codecs_available:
        return "libx264", "aac"
    if "libvpx-vp9" in av.codecs_available:
        raise ToolkitError("this PyAV has no H.264 encoder: write a .webm (VP9) instead")
    raise ToolkitError("this PyAV has neither H.264 nor VP9 encoders")


def render_video(song: str | os.PathLike, run_dir: str | os.PathLike, out: str | os.PathLike,
                 *, viz: str = "spheres", size: tuple[int, int] = (1920, 1080),
                 fps: int = 60, method: str = "pca", layer: str | None = None,
                 scaling: str = "standard", per: str = "features", smoothing: float = 0.5,
                 assign: str = "random", seed: int | None = None,
                 max_seconds: float | None = None, crf: int = 18, lossless: bool = False,
                 demo_dir: str | os.PathLike | None = None,
                 progress: tp.Callable[[int, int], None] | None = None) -> dict:
    """Render ``song`` through visualization ``viz`` driven by ``run_dir``'s features into
    ``out`` (.mp4: H.264 + AAC; .webm: VP9 + Opus). ``max_seconds`` renders only the start;
    ``crf`` is H.264's quality (18: visually lossless; 0: lossless). Frames leave the browser
    as JPEG at quality 0.98 (a twentieth of the bytes of raw pixels, 2.5x the render speed at
    720p); ``lossless`` carries the exact pixels instead.
    Returns frames, fps, seconds, the permutation and the seed used, and each frame's 10
    parameter values in [0, 1] (``values``)."""
    import av
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import sync_playwright

    if not 1 <= fps <= MAX_FPS or int(fps) != fps:
        raise ToolkitError(f"--fps must be a whole number from 1 to {MAX_FPS}, got {fps}")
    if not 0 <= smoothing < 1:
        raise ToolkitError(f"--smoothing must be in [0, 1), got {smoothing}")
    out = Path(out)
    container = out.suffix.lower().lstrip(".")
    if container not in ("mp4", "webm", "mkv", "mov"):
        raise ToolkitError(f"{out}: write a .mp4 (H.264), .mov, .mkv or .webm (VP9)")
    vcodec, acodec = _codec(container)
    demo = Path(demo_dir) if demo_dir else REPO / "demo"
    if not (demo / "node_modules" / "three").is_dir():
        raise ToolkitError(f"three.js is not installed in {demo}: run 'make playground' "
                           "(npm ci in demo/)")
    width, height = size
    # the features at the video's rate (the page interpolates between frames anyway)
    tl = mapped_timeline(song, Path(run_dir), method=method, layer=layer,
                         scaling=tp.cast(tp.Literal["standard", "minmax"], scaling),
                         per=tp.cast(tp.Literal["features", "across"], per), fps=min(fps, 60),
                         assign=assign, seed=seed)
    duration = float(tl.meta["duration"])
    if max_seconds is not None:
        duration = min(duration, max_seconds)
    n_frames = int(round(duration * fps))
    if n_frames < 1:
        raise ToolkitError(f"{song}: too short for one frame at {fps} fps")
    audio, _ = load_audio(song, sr=AUDIO_SR, mono=False, duration=duration)
    if audio.shape[0] == 1:
        audio = np.repeat(audio, 2, axis=0)
    timeline = tl.to_json() | {"permutation": list(range(len(tl.names)))}   # assigned already

    with atomic_write_path(out) as tmp, sync_playwright() as pw:
        try:
            browser = pw.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        except PlaywrightError as e:
            raise ToolkitError(f"Chromium did not start: {str(e).splitlines()[0]}") from None
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.route(f"{ORIGIN}/**", _serve(demo))
            page.goto(f"{ORIGIN}/render.html")
            page.wait_for_function("() => window.__render && window.__render.ready",
                                   timeout=60000)
            try:
                page.evaluate("o => window.__render.setup(o)", {
                    "viz": viz, "timeline": timeline, "width": width, "height": height,
                    "fps": fps, "smoothing": smoothing})
            except PlaywrightError as e:
                msg = str(e).splitlines()[0].split("Error: ")[-1]
                raise ToolkitError(f"--viz {viz}: {msg}") from None
            values = []
            with av.open(str(tmp), "w", format="matroska" if container == "mkv" else container
                         ) as mux:
                vs = tp.cast(av.VideoStream, mux.add_stream(vcodec, rate=fps))
                vs.width, vs.height, vs.pix_fmt = width, height, "yuv420p"
                vs.time_base = Fraction(1, fps)
                if vcodec == "libx264":
                    vs.options = {"crf": str(crf), "preset": "veryfast"}
                else:
                    vs.options = {"crf": "32", "b": "0", "deadline": "realtime",
                                  "cpu-used": "8"}
                aus = tp.cast(av.AudioStream, mux.add_stream(acodec, rate=AUDIO_SR))
                aus.layout = "stereo"
                aus.bit_rate = 192000
                # the encoder runs in a thread while the browser draws the next frame
                frames: queue.Queue = queue.Queue(maxsize=8)
                failed: list[BaseException] = []

                def encode() -> None:
                    try:
                        while (item := frames.get()) is not None:
                            i, data, raw = item
                            if raw:
                                rgb = np.frombuffer(base64.b64decode(data), np.uint8).reshape(
                                    height, width, 4)[:, :, :3]
                            else:
                                rgb = np.asarray(Image.open(io.BytesIO(base64.b64decode(
                                    data.split(",", 1)[1]))).convert("RGB"))
                            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb),
                                                               format="rgb24")
                            frame.pts = i
                            mux.mux(vs.encode(frame))
                            if progress:
                                progress(i + 1, n_frames)
                    except BaseException as e:          # reported by the main thread
                        failed.append(e)
                        while frames.get() is not None:
                            pass

                worker = threading.Thread(target=encode, name="video-encoder")
                worker.start()
                try:
                    fmt = "rgba" if lossless else "jpeg"
                    for i in range(n_frames):
                        res = page.evaluate("([i, f]) => window.__render.frame(i, f)", [i, fmt])
                        values.append(res["values"])
                        frames.put((i, res["rgba"] if lossless else res["jpeg"], lossless))
                        if failed:
                            break
                finally:
                    frames.put(None)
                    worker.join()
                if failed:
                    raise failed[0]
                mux.mux(vs.encode(None))
                _mux_audio(mux, aus, audio)
            if errors:
                raise ToolkitError(f"the render page failed: {errors[0]}")
        finally:
            browser.close()
    return {"frames": n_frames, "fps": fps, "seconds": n_frames / fps, "size": [width, height],
            "viz": viz, "seed": tl.meta["seed"], "permutation": tl.meta["permutation"],
            "video_codec": vcodec, "audio_codec": acodec, "values": values}


def _mux_audio(mux, stream, audio: np.ndarray) -> None:
    """Encode float (2, N) audio at AUDIO_SR into ``stream`` from time 0."""
    import av
    block = 1024 * 16
    pts = 0
    for at in range(0, audio.shape[1], block):
        part = np.ascontiguousarray(audio[:, at:at + block], np.float32)
        frame = av.AudioFrame.from_ndarray(part, format="fltp", layout="stereo")
        frame.sample_rate = AUDIO_SR
        frame.pts = pts
        pts += part.shape[1]
        mux.mux(stream.encode(frame))
    mux.mux(stream.encode(None))
