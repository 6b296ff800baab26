// Frame-exact rendering for the video export: the same visualizations, parameter scaling,
// timeline sampling and smoothing as the playground (app.js), driven by a virtual clock.
// `setup` builds the scene at the video's size; `frame(i, format)` renders frame i at
// t = i / fps, advancing the scene by exactly 1 / fps, and returns the picture: a JPEG data
// URL at quality 0.98 (`'jpeg'`, the default: a twentieth of the bytes to carry out of the
// browser) or the exact RGBA pixels, top row first, in base64 (`'rgba'`). Nothing depends on
// how fast the machine renders: no frame is ever dropped.
import * as THREE from 'three';
import { Ewma, sampleTimeline } from './audio/timeline.js';
import { VISUALIZATIONS } from './viz/index.js';

const N = 10;
const canvas = document.getElementById('canvas');
let job = null;

function setup({ viz, timeline, width, height, fps, smoothing = 0, interpolate = true }) {
  const cls = VISUALIZATIONS.find((v) => v.id === viz);
  if (!cls) throw new Error(`unknown visualization ${viz}`);
  canvas.width = width;
  canvas.height = height;
  canvas.style.width = `${width}px`;
  canvas.style.height = `${height}px`;
  const renderer = new THREE.WebGLRenderer({ canvas, antialias: true, preserveDrawingBuffer: true });
  renderer.setPixelRatio(1);
  renderer.setSize(width, height, false);
  if (job) job.viz.dispose();
  const perm = timeline.permutation || Array.from({ length: N }, (_, k) => k);
  job = { cls, viz: new cls({ renderer, width, height }), renderer, timeline, fps, smoothing,
    interpolate, perm, ewma: new Ewma(N), raw: new Float32Array(N), scaled: new Float32Array(N),
    pixels: new Uint8Array(width * height * 4), width, height, last: -1 };
  return { params: cls.params.map((p) => p.name) };
}

function frame(i, format = 'jpeg') {
  const j = job;
  const t = i / j.fps;
  const dt = j.last < 0 ? 0 : (i - j.last) / j.fps;
  j.last = i;
  sampleTimeline(j.timeline, t, j.interpolate, j.raw);
  const smooth = j.ewma.update(j.raw, j.smoothing, dt);
  const params = j.cls.params;
  const values = new Array(N);
  for (let k = 0; k < N; k++) {
    const p = params[k];
    const v = Math.min(1, Math.max(0, smooth[j.perm[k]] || 0));
    values[k] = v;
    j.scaled[k] = p.min + v * (p.max - p.min);
  }
  j.viz.update(dt, j.scaled);
  j.viz.render(j.renderer);
  if (format === 'jpeg') return { values, jpeg: canvas.toDataURL('image/jpeg', 0.98) };
  const gl = j.renderer.getContext();
  gl.readPixels(0, 0, j.width, j.height, gl.RGBA, gl.UNSIGNED_BYTE, j.pixels);
  // WebGL's rows start at the bottom: flip to top-first
  const row = j.width * 4;
  const out = new Uint8Array(j.pixels.length);
  for (let y = 0; y < j.height; y++) out.set(j.pixels.subarray((j.height - 1 - y) * row, (j.height - y) * row), y * row);
  let s = '';
  const CH = 0x8000;
  for (let k = 0; k < out.length; k += CH) s += String.fromCharCode.apply(null, out.subarray(k, k + CH));
  return { values, rgba: btoa(s) };
}

window.__render = { setup, frame, ready: true };
