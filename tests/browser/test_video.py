"""The music video export: frames rendered in headless Chromium on a virtual clock, encoded by
PyAV with the song's audio."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile as sf

from deepaudio.core.audio import load_audio
from deepaudio.core.errors import ToolkitError
from deepaudio.mapping.video import parse_size, render_video

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def ten_seconds(sample_set, tmp_path_factory) -> Path:
    """10 s of music: a 6 s sample track, then the first 4 s of another."""
    songs = sorted((sample_set / "fma_small").rglob("*.mp3"))
    a, sr = load_audio(songs[0], sr=44100, mono=False)
    b, _ = load_audio(songs[5], sr=44100, mono=False)
    y = np.concatenate([a, b], axis=1)[:, : 10 * sr]
    assert y.shape[1] == 10 * sr
    path = tmp_path_factory.mktemp("video") / "ten.wav"
    sf.write(path, y.T, sr)
    return path


def decode(path: Path) -> tuple[list[np.ndarray], np.ndarray, float]:
    """(video frames, audio (2, N), the video's frame rate)."""
    with av.open(str(path)) as c:
        vs = c.streams.video[0]
        rate = float(vs.average_rate)
        frames = [f.to_ndarray(format="rgb24").astype(np.int16) for f in c.decode(vs)]
    with av.open(str(path)) as c:
        audio = np.concatenate([f.to_ndarray() for f in c.decode(c.streams.audio[0])], axis=1)
    return frames, audio, rate


def best_lag(x: np.ndarray, y: np.ndarray, span: int = 4096) -> tuple[int, float]:
    """(lag of x against y in samples, correlation there), over +-span samples."""
    n = min(len(x), len(y)) - 2 * span
    ref = y[span:span + n]
    best = max(range(-span, span + 1, 16),
               key=lambda k: float(np.dot(x[span + k:span + k + n], ref)))
    best = max(range(best - 16, best + 17),
               key=lambda k: float(np.dot(x[span + k:span + k + n], ref)))
    return best, float(np.corrcoef(x[span + best:span + best + n], ref)[0, 1])


def test_ten_seconds_exactly_fps_times_ten_frames_with_the_song(ae_run, ten_seconds, tmp_path):
    out = tmp_path / "clip.mp4"
    res = render_video(ten_seconds, ae_run, out, viz="bars", size=(160, 96), fps=12,
                       smoothing=0, assign="deterministic")
    assert res["frames"] == 120 and res["video_codec"] == "libx264"
    frames, audio, rate = decode(out)
    assert len(frames) == 120 and frames[0].shape == (96, 160, 3)
    assert rate == 12
    # the audio stream is the song, from time 0, within one AAC frame of its length
    song, _ = load_audio(ten_seconds, sr=48000, mono=False)
    assert abs(audio.shape[1] - song.shape[1]) <= 2048
    lag, c = best_lag(audio[0], song[0])
    assert abs(lag) <= 1024 and c > 0.9, (lag, c)     # in sync within 21 ms (an AAC frame)
    # the picture changes where the features change: bars show the parameters directly, so
    # the pixel change between neighbouring frames follows the change of the values
    pix = np.array([np.abs(b - a).mean() for a, b in zip(frames, frames[1:])])
    val = np.abs(np.diff(np.array(res["values"]), axis=0)).sum(1)
    from scipy.stats import spearmanr
    rho = spearmanr(pix, val).statistic
    assert rho > 0.5, rho
    assert pix.max() > 1 and np.median(pix) < pix.max()


def test_frames_do_not_depend_on_render_speed(ae_run, ten_seconds, tmp_path):
    """Frame i shows time i / fps: a render of the first second equals the first frames of a
    longer one (the virtual clock, not the machine, sets the motion)."""
    a = tmp_path / "a.mp4"
    b = tmp_path / "b.mp4"
    render_video(ten_seconds, ae_run, a, viz="spheres", size=(96, 64), fps=10, seed=3,
                 max_seconds=1.0, crf=0, lossless=True)
    render_video(ten_seconds, ae_run, b, viz="spheres", size=(96, 64), fps=10, seed=3,
                 max_seconds=2.0, crf=0, lossless=True)
    fa, _, _ = decode(a)
    fb, _, _ = decode(b)
    assert len(fa) == 10 and len(fb) == 20
    # the same pictures (exact pixels out of the browser, lossless H.264: only the RGB -> YUV
    # 4:2:0 rounding, the same for both)
    assert max(np.abs(x - y).mean() for x, y in zip(fa, fb[:10])) < 0.1
    assert np.abs(fb[0] - fb[9]).mean() > 1.0          # and the scene moves


@pytest.mark.parametrize("args, message", [
    (["--size", "1921x1080"], "even"), (["--size", "big"], "WIDTHxHEIGHT"),
    (["--fps", "0"], "fps"), (["--fps", "500"], "fps"),
    (["--viz", "nope"], "unknown visualization"), (["-o", "out.gif"], ".mp4")])
def test_bad_options_give_one_line(ae_run, ten_seconds, tmp_path, args, message):
    base = {"-o": str(tmp_path / "v.mp4")}
    argv = [sys.executable, str(ROOT / "mapping_utils.py"), "video", str(ten_seconds),
            "--run", str(ae_run), "--size", "64x64", "--fps", "5", "--seconds", "0.4"]
    if "-o" not in args:
        argv += ["-o", base["-o"]]
    r = subprocess.run(argv + args, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert r.returncode == 2, r.stderr[-2000:]
    assert message in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "v.mp4").exists() and not list(tmp_path.glob(".v.*"))


def test_parse_size():
    assert parse_size("1920x1080") == (1920, 1080)
    with pytest.raises(ToolkitError, match="even"):
        parse_size("8000x8000")


@pytest.fixture(scope="module")
def video_app(sample_set, playground_models, tmp_path_factory, make_app):
    return make_app(tmp_path_factory.mktemp("data"), sample_set, playground_models)


def test_video_job_from_the_api(video_app):
    """The page's "render video": a job with progress, the MP4 for its owner only."""
    a, b = video_app.test_client(), video_app.test_client()
    track = a.get("/api/tracks?source=fma&per_page=1").json["items"][0]
    url = f"/api/tracks/{track['id']}/videos"
    bad = a.post(url, json={"size": "640x480"})
    assert bad.status_code == 400 and "size" in bad.json["error"]
    assert a.post(url, json={"fps": 25}).status_code == 400
    assert a.post(url, json={"x": 1}).status_code == 400
    assert a.post("/api/tracks/0000000000000000dead/videos", json={}).status_code == 404
    res = a.post(url, json={"run": "sample/conv_ae", "viz": "bars", "fps": 24, "seed": 5})
    assert res.status_code == 202, res.json
    job = res.json
    assert job["options"]["seed"] == 5 and job["options"]["size"] == "1280x720"
    again = a.post(url, json={})
    assert again.status_code == 429                       # one render at a time per user
    assert b.get(job["status_url"]).status_code == 404    # another user's job
    seen = []
    deadline = time.monotonic() + 300
    while (j := a.get(job["status_url"]).json)["state"] in ("queued", "running"):
        seen.append(j["progress"])
        assert time.monotonic() < deadline, "the render did not finish"
        time.sleep(0.2)
    assert j["state"] == "done", j
    assert seen == sorted(seen) and any(0 < p < 1 for p in seen), seen
    assert b.get(j["video_url"]).status_code == 404
    mp4 = a.get(j["video_url"])
    assert mp4.status_code == 200 and mp4.mimetype == "video/mp4"
    path = Path(video_app.config["DATA_DIR"]) / "v.mp4"
    path.write_bytes(mp4.data)
    frames, audio, rate = decode(path)
    assert rate == 24 and len(frames) == round(track["duration"] * 24)
    assert frames[0].shape == (720, 1280, 3) and audio.shape[1] > 5 * 48000
