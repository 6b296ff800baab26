"""The browser's feature front end (demo/js/live/frontend.js, run here by Node) computes the
features the server computes (deepaudio.core.features) on the same samples."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from deepaudio.core.audio import load_audio
from deepaudio.core.features import mfcc_segments, spectrum_segments
from deepaudio.mapping.onnx_export import frontend_spec

ROOT = Path(__file__).resolve().parents[2]
NODE = shutil.which("node") or "node"     # installed with npm (make)

SCRIPT = """
import { readFileSync, writeFileSync } from 'node:fs';
import { makeFrontEnd } from '%s';
const [spec, samples, hop, out] = process.argv.slice(2);
const s = JSON.parse(readFileSync(spec, 'utf8'));
const b = readFileSync(samples);
const x = new Float32Array(b.buffer, b.byteOffset, b.length / 4);
const segs = makeFrontEnd(s).segmentsOf(x, Number(hop));
const all = new Float32Array(segs.reduce((n, a) => n + a.length, 0));
let at = 0;
for (const a of segs) { all.set(a, at); at += a.length; }
writeFileSync(out, Buffer.from(all.buffer));
"""


def js_segments(tmp_path: Path, spec: dict, y: np.ndarray, hop: int) -> np.ndarray:
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    y.astype(np.float32).tofile(tmp_path / "x.f32")
    script = tmp_path / "run.mjs"
    script.write_text(SCRIPT % (ROOT / "demo/js/live/frontend.js").as_uri())
    subprocess.run([NODE, str(script), str(tmp_path / "spec.json"), str(tmp_path / "x.f32"),
                    str(hop), str(tmp_path / "out.f32")], check=True, timeout=300)
    return np.fromfile(tmp_path / "out.f32", np.float32)


@pytest.fixture(scope="module")
def song_samples(sample_set):
    path = sorted((sample_set / "fma_small").rglob("*.mp3"))[0]
    return path


def test_mfcc_front_end_matches_python(ae_run, song_samples, tmp_path):
    spec = frontend_spec(ae_run)
    y, sr = load_audio(song_samples, sr=spec["sr"], mono=True)
    y = y.reshape(-1)[: int(3.0 * sr)]
    want = mfcc_segments(y, sr, num_mfcc=spec["num_mfcc"], n_mels=spec["n_mels"],
                         hop_length=spec["hop_length"], n_fft=spec["n_fft"],
                         frames_per_segment=spec["frames_per_segment"], segment_hop=48)
    got = js_segments(tmp_path, spec, y, 48).reshape(want.shape)
    # MFCCs span hundreds of dB-units; float32 (Python) against float64 (JS) arithmetic
    assert np.abs(got - want).max() < 0.02, np.abs(got - want).max()
    assert np.abs(want).max() > 50          # real coefficients, not a silent input


def test_spectrum_front_end_matches_python(spectrum_run, song_samples, tmp_path):
    spec = frontend_spec(spectrum_run)
    y, sr = load_audio(song_samples, sr=spec["sr"], mono=True)
    y = y.reshape(-1)[: int(2.2 * sr)]
    want = spectrum_segments(y, window_size=spec["window_size"], hop_length=5512)
    got = js_segments(tmp_path, spec, y, 5512).reshape(want.shape)
    assert len(want) == 7
    err = np.abs(got - want)
    # within 0.02 dB down to -80 dB; below that Python's float32 FFT rounding shows (up to
    # about 0.2 dB at -80..-100 dB, where the JS transform runs in float64)
    assert err[want > -80].max() < 0.02, err[want > -80].max()
    assert err.max() < 0.5 and (want > -80).mean() > 0.5


DSP_SCRIPT = """
import { readFileSync, writeFileSync } from 'node:fs';
import { dspTimeline, DspBands } from '%s';
const [samples, sr, fps, out] = process.argv.slice(2);
const b = readFileSync(samples);
const x = new Float32Array(b.buffer, b.byteOffset, b.length / 4);
const tl = dspTimeline(x, Number(sr), Number(fps));
// the live path: the same frames pushed one at a time
const live = new DspBands(Number(sr), Number(fps));
const hop = Number(sr) / Number(fps);
const again = tl.frames.map((_, k) => Array.from(live.push(x, Math.floor(k * hop) - 512)));
writeFileSync(out, JSON.stringify({ names: tl.names, frames: tl.frames, live: again }));
"""


def test_dsp_bands_match_python(song_samples, tmp_path):
    from deepaudio.mapping.sources import dsp_timeline
    y, sr = load_audio(song_samples, sr=22050, mono=True)
    y = y.reshape(-1)
    y = np.concatenate([y, np.zeros(sr // 2, np.float32)])     # a silent end: the quiet rule
    want = dsp_timeline(y, sr, fps=30.0)
    y.astype(np.float32).tofile(tmp_path / "x.f32")
    script = tmp_path / "dsp.mjs"
    script.write_text(DSP_SCRIPT % (ROOT / "demo/js/live/dsp.js").as_uri())
    subprocess.run([NODE, str(script), str(tmp_path / "x.f32"), str(sr), "30",
                    str(tmp_path / "out.json")], check=True, timeout=300)
    got = json.loads((tmp_path / "out.json").read_text())
    assert got["names"] == want.names
    frames = np.asarray(got["frames"])
    assert frames.shape == want.frames.shape
    err = np.abs(frames - want.frames)
    assert err.max() < 1e-3, err.max()          # float32 FFT (NumPy) against float64 (JS)
    assert np.ptp(want.frames, axis=0).min() > 0.1       # the bands move
    np.testing.assert_array_equal(np.asarray(got["live"]), frames)


BEATS_SCRIPT = """
import { readFileSync, writeFileSync } from 'node:fs';
import { OnlineBeats } from '%s';
const [samples, sr, out] = process.argv.slice(2);
const b = readFileSync(samples);
const x = new Float32Array(b.buffer, b.byteOffset, b.length / 4);
const t = new OnlineBeats(Number(sr));
const rows = [];
for (let at = 0; at < x.length; at += 128) {            // as the capture worklet hands it
  const blk = x.subarray(at, at + 128);
  const end = (at + blk.length - 1) / Number(sr);
  t.push(blk, end);
  rows.push([end, t.bpm || 0, ...t.values(end)]);
}
writeFileSync(out, JSON.stringify(rows));
"""


def js_beats(tmp_path: Path, y: np.ndarray, sr: int = 22050) -> np.ndarray:
    y.astype(np.float32).tofile(tmp_path / "x.f32")
    script = tmp_path / "beats.mjs"
    script.write_text(BEATS_SCRIPT % (ROOT / "demo/js/live/beats.js").as_uri())
    subprocess.run([NODE, str(script), str(tmp_path / "x.f32"), str(sr),
                    str(tmp_path / "out.json")], check=True, timeout=300)
    return np.asarray(json.loads((tmp_path / "out.json").read_text()))


@pytest.mark.parametrize("bpm", [75.0, 97.0, 120.0, 140.0])
def test_the_live_beat_grid_follows_a_click_track(bpm, tmp_path, click_track):
    rows = js_beats(tmp_path, click_track(bpm, 16.0))
    end, est, beats = rows[:, 0], rows[:, 1], rows[:, 2:]
    late = end > 8.0                                     # after the window has filled
    assert np.abs(est[late] / bpm - 1).max() < 0.02, (bpm, est[late].min(), est[late].max())
    period = 60 / bpm
    k = np.round(end / period)
    at_click = late & (np.abs(end - k * period) < 0.003)
    phase = (beats[at_click, 1] + 0.5) % 1 - 0.5           # 0 on the beat
    assert at_click.sum() >= 10 and np.abs(phase).max() < 0.06, np.abs(phase).max()
    assert beats[at_click, 2].min() > 0.6                  # the beat pulse fires on the click
    # the bar starts on the accented click
    bar = beats[at_click, 3]
    down = (k[at_click] % 4) == 0
    assert np.all((bar[down] < 0.05) | (bar[down] > 0.95)), bar[down]
    assert np.all((bar[~down] > 0.2) & (bar[~down] < 0.8))
    assert beats[at_click][down, 4].min() > 0.8 and beats[at_click][~down, 4].max() < 0.3


def test_no_beat_in_noise_or_silence(tmp_path):
    rng = np.random.default_rng(1)
    for y in (0.1 * rng.standard_normal(22050 * 10), np.zeros(22050 * 10)):
        rows = js_beats(tmp_path, y.astype(np.float32))
        assert np.all(rows[:, 1] == 0) and np.all(rows[:, 2:] == 0)
