// The static site (make site): the visualizer with no server. The page's index.html carries
// <meta name="deepaudio-site" content="data/site.json">; when it does, this module answers the
// page's /api calls from the site's files (the playground's own answers, stored by
// deepaudio/web/site.py) and, for the user's uploads, in the browser: the browser decodes the
// file, the JS front end and the ONNX encoder compute the learned features (as live input
// does), dsp.js the DSP bands and the live beat tracker (beats.js, run over the whole file)
// its beat grid. Separation, crossfades, training and MP4 rendering need the server: those
// calls answer an error that says so, and the controls behind them are disabled with a note.
import { serveLocally } from './api.js';
import { setStatus } from './dom.js';
import { OnnxEncoder } from '../live/encoder.js';
import { dspTimeline } from '../live/dsp.js';
import { BEAT_NAMES, OnlineBeats } from '../live/beats.js';

const meta = document.querySelector('meta[name="deepaudio-site"]');
export const STATIC_SITE = !!meta;
const base = new URL('.', document.baseURI);
const at = (path) => new URL(path, base).href;
const SOURCES_SR = 22050;          // the server's sources analyse 22.05 kHz mono
const SERVER = 'needs the playground server (make playground): this is the static site';

let siteInfo = null;
const uploads = new Map();          // id → { track, file, decoded: Promise<AudioBuffer>, cache }
let uploadCount = 0;
const encoders = new Map();         // run id → Promise<OnnxEncoder>

function fail(status, message) {
  const err = new Error(message);
  err.status = status;
  err.body = { error: message };
  return err;
}

async function file(path) {
  const resp = await fetch(at(path));
  if (!resp.ok) throw fail(resp.status, `${path}: ${resp.status} ${resp.statusText}`);
  return resp.json();
}

const site = () => { siteInfo = siteInfo || file(meta.content); return siteInfo; };
let trackList = null;
const samples = () => { trackList = trackList || file('data/tracks.json'); return trackList; };
const runPath = (run) => run.split('/').map(encodeURIComponent).join('/');

// ------------------------------------------------------------------ assignments
// A seeded permutation (mulberry32 + Fisher-Yates): the site's seeds are its own; the server
// draws its permutations with NumPy.
function permutation(n, assign, seed, variance) {
  const idx = Array.from({ length: n }, (_, k) => k);
  if (assign === 'ranked') return idx.sort((a, b) => (variance[b] - variance[a]) || (a - b));
  if (assign !== 'random') return idx;
  let s = seed >>> 0;
  const rand = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [idx[i], idx[j]] = [idx[j], idx[i]];
  }
  return idx;
}

// ------------------------------------------------------------------ uploads
async function decode(fileObj, sr) {
  const ctx = new OfflineAudioContext(1, 1, sr);
  try {
    return await ctx.decodeAudioData(await fileObj.arrayBuffer());
  } catch (e) {
    throw fail(400, `${fileObj.name}: this browser cannot decode it (${e.message || e.name}); the playground server decodes more formats`);
  }
}

// The decoded song as mono samples at `sr` (the browser's resampler).
async function monoAt(up, sr) {
  const key = `mono${sr}`;
  if (!up.cache[key]) {
    up.cache[key] = (async () => {
      const buf = await up.decoded;
      const len = Math.max(1, Math.round(buf.duration * sr));
      const ctx = new OfflineAudioContext(1, len, sr);
      const src = ctx.createBufferSource();
      src.buffer = buf;
      src.connect(ctx.destination);        // one output channel: the channels' average
      src.start();
      return (await ctx.startRendering()).getChannelData(0);
    })();
  }
  return up.cache[key];
}

async function addUpload(form) {
  const f = form.get('file');
  const s = await site();
  if (!f || !f.size) throw fail(400, 'the upload is empty');
  if (f.size > s.max_upload_mb * 2 ** 20) throw fail(413, `${f.name} is larger than the site's limit of ${s.max_upload_mb} MiB`);
  setStatus(`decoding ${f.name} in the browser…`);
  const decoded = decode(f, 44100);
  const buf = await decoded;
  if (buf.duration > s.max_upload_minutes * 60) {
    throw fail(413, `${f.name} lasts ${(buf.duration / 60).toFixed(1)} minutes; the site's limit is ${s.max_upload_minutes} minutes`);
  }
  uploadCount += 1;
  const id = `upload${uploadCount}x${Math.floor(Math.random() * 1e9)}`;
  const track = { id, source: 'upload', fma_id: null, title: f.name.replace(/\.[^.]*$/, '') || f.name,
    artist: '', genre: '', duration: Math.round(buf.duration * 1000) / 1000,
    sample_rate: buf.sampleRate, channels: buf.numberOfChannels, format: f.type || '',
    size: f.size, audio_url: URL.createObjectURL(f) };
  uploads.set(id, { track, file: f, decoded, cache: {} });
  return track;
}

function encoderOf(run, spec) {
  if (!encoders.has(run)) {
    encoders.set(run, OnnxEncoder.load({ ...spec, graph: at(spec.graph) }, { ortBase: at('vendor/ort/') })
      .catch((e) => { encoders.delete(run); throw e; }));
  }
  return encoders.get(run);
}

// An upload's timeline: segments every hop (the dataset's) from the decoded song, encoded in
// batches, interpolated onto frames at fps as the server does (values held before the first
// and after the last segment centre).
async function uploadFeatures(up, run, entry, fps) {
  const key = `features:${run}:${fps}`;
  if (!up.cache[key]) {
    up.cache[key] = (async () => {
      const spec = await frontend(run);
      const encoder = await encoderOf(run, spec);
      const y = await monoAt(up, spec.sr);
      const hopS = spec.hop_seconds || spec.segment_seconds;
      const fe = encoder.frontEnd;
      const hop = spec.mode === 'mfcc' ? Math.max(1, Math.round(hopS / fe.frameSeconds))
        : Math.max(1, Math.round(hopS * spec.sr));
      const actual = spec.mode === 'mfcc' ? hop * fe.frameSeconds : hop / spec.sr;
      const segs = fe.segmentsOf(y, hop);
      if (!segs.length) throw fail(400, `${up.track.title} is shorter than one ${spec.segment_seconds.toFixed(2)} s segment`);
      const values = [];
      for (let i = 0; i < segs.length; i += 64) {
        setStatus(`encoding ${up.track.title} in the browser: ${Math.round((100 * i) / segs.length)} %`);
        values.push(...await encoder.run(segs.slice(i, i + 64)));
      }
      const start = spec.segment_seconds / 2;
      const duration = y.length / spec.sr;
      const count = Math.floor(duration * fps + 1e-9) + 1;
      const d = spec.outputs;
      const frames = [];
      for (let k = 0; k < count; k++) {
        const x = Math.min(values.length - 1, Math.max(0, (k / fps - start) / actual));
        const i = Math.min(values.length - 2, Math.floor(x));
        const r = values.length > 1 ? x - Math.max(0, i) : 0;
        const a = values[Math.max(0, i)];
        const b = values[Math.min(values.length - 1, Math.max(0, i) + 1)];
        const row = new Array(d);
        for (let j = 0; j < d; j++) row[j] = Math.round(((1 - r) * a[j] + r * b[j]) * 1e4) / 1e4;
        frames.push(row);
      }
      return { fps, start: 0, layer: spec.layer, duration, names: Array.from({ length: d }, (_, j) => `p${j}`),
        feature_variance: spec.feature_variance || [], explained_variance: null, frames };
    })().catch((e) => { delete up.cache[key]; throw e; });
  }
  return up.cache[key];
}

// An upload's beat grid, as the server's beat source: the live beat tracker run over the
// decoded song, read at every frame. It is causal, so the grid starts after its first 4 s of
// sound and follows tempo changes late; beat and downbeat times are where the phases wrap.
export function beatTimeline(y, sr, fps) {
  const tracker = new OnlineBeats(sr);
  const n = Math.floor((y.length / sr) * fps + 1e-9) + 1;
  const frames = [];
  const beatTimes = [];
  const downbeatTimes = [];
  const v = new Float32Array(BEAT_NAMES.length);
  let pushed = 0;
  let last = null;
  let bpm = null;
  for (let k = 0; k < n; k++) {
    const t = k / fps;
    const until = Math.min(y.length, Math.round(t * sr));
    if (until > pushed) {
      tracker.push(y.subarray(pushed, until), (until - 1) / sr);
      pushed = until;
    }
    tracker.values(t, v);
    frames.push(Array.from(v, (x) => Math.round(x * 1e4) / 1e4));
    if (tracker.bpm) {
      bpm = tracker.bpm;
      if (last && v[1] < last[1] - 0.5) beatTimes.push(t);
      if (last && v[3] < last[3] - 0.5) downbeatTimes.push(t);
      last = Float32Array.from(v);
    } else {
      last = null;
    }
  }
  return { fps, start: 0, names: BEAT_NAMES.slice(), frames, source: 'beats',
    bpm: bpm && Math.round(bpm * 100) / 100, beats: beatTimes.length, beat_times: beatTimes,
    downbeat_times: downbeatTimes, beats_per_bar: 4, duration: y.length / sr,
    reason: bpm ? null : 'no steady beat found (the live tracker, run over the upload)' };
}

async function uploadSources(up, fps) {
  const key = `sources:${fps}`;
  if (!up.cache[key]) {
    up.cache[key] = monoAt(up, SOURCES_SR).then((y) => ({
      track: up.track.id, fps, beats: beatTimeline(y, SOURCES_SR, fps),
      dsp: dspTimeline(y, SOURCES_SR, fps), stems: null,
      stems_reason: `stems ${SERVER}` }));
  }
  return up.cache[key];
}

// ------------------------------------------------------------------ routes
async function frontend(run) {
  const s = await site();
  const entry = s.runs[run];
  if (!entry) throw fail(404, `unknown run ${JSON.stringify(run)}`);
  if (!entry.onnx) throw fail(422, entry.reason || `the run ${run} has no ONNX export on this site`);
  return file(entry.onnx);
}

async function findTrack(id) {
  if (uploads.has(id)) return { up: uploads.get(id), track: uploads.get(id).track };
  const t = (await samples()).items.find((x) => x.id === id);
  if (!t) throw fail(404, `unknown track ${JSON.stringify(id)}`);
  return { up: null, track: t };
}

async function listTracks(q) {
  const all = [...[...uploads.values()].map((u) => u.track).reverse(), ...(await samples()).items];
  const text = (q.get('q') || '').trim().toLowerCase();
  const genre = (q.get('genre') || '').trim();
  const hits = all.filter((t) => (!genre || t.genre === genre) && (!text
    || [t.title, t.artist, t.genre].some((v) => (v || '').toLowerCase().includes(text))
    || String(t.fma_id) === text));
  const perPage = Math.min(500, Math.max(1, Number(q.get('per_page')) || 50));
  const page = Math.max(1, Number(q.get('page')) || 1);
  return { items: hits.slice((page - 1) * perPage, page * perPage), total: hits.length, page,
    per_page: perPage, genres: (await samples()).genres };
}

async function features(id, q) {
  const s = await site();
  const run = q.get('run') || s.default;
  const entry = s.runs[run];
  if (!entry) throw fail(404, `unknown run ${JSON.stringify(run)}`);
  for (const k of ['method', 'scaling', 'per', 'layer']) {
    const v = q.get(k);
    if (v && v !== entry[k]) {
      throw fail(404, `this static site holds ${run}'s features on layer ${entry.layer} mapped by ${entry.method} (${entry.scaling}, per ${entry.per}); other mappings ${SERVER}`);
    }
  }
  const fps = Number(q.get('fps')) || s.fps;
  const { up, track } = await findTrack(id);
  let tl;
  if (up) tl = await uploadFeatures(up, run, entry, fps);
  else if (fps !== s.fps) throw fail(404, `this static site holds timelines at ${s.fps} fps`);
  else tl = await file(`data/features/${runPath(run)}/${track.id}.json`);
  const assign = q.get('assign') || 'deterministic';
  const seed = assign === 'random' ? (q.get('seed') ? Number(q.get('seed')) : Math.floor(Math.random() * 2 ** 31)) : null;
  const n = tl.frames.length ? tl.frames[0].length : 0;
  return { ...tl, track: track.id, run, method: entry.method, scaling: entry.scaling, per: entry.per,
    assignment: assign, seed, permutation: permutation(n, assign, seed, tl.feature_variance || []) };
}

async function handle(path, options) {
  const method = (options.method || 'GET').toUpperCase();
  const url = new URL(path, 'http://site.invalid');
  const q = url.searchParams;
  const parts = url.pathname.replace(/^\/api\/?/, '').split('/').filter(Boolean).map(decodeURIComponent);
  if (parts[0] === 'models' && parts.length === 1) return file('data/models.json');
  if (parts[0] === 'onnx' && parts[1] === 'frontend.json') {
    const s = await site();
    const run = q.get('run') || s.default;
    const spec = await frontend(run);
    return { ...spec, run, graph: at(spec.graph) };
  }
  if (parts[0] === 'training') {
    if (method === 'GET' && parts.length === 1) return { jobs: [] };
    throw fail(501, `training ${SERVER}`);
  }
  if (parts[0] === 'tracks') {
    if (parts.length === 1 && method === 'POST') return addUpload(options.body);
    if (parts.length === 1) return listTracks(q);
    const id = parts[1];
    if (parts.length === 2 && method === 'DELETE') {
      const up = uploads.get(id);
      if (!up) throw fail(404, `unknown track ${JSON.stringify(id)}`);
      URL.revokeObjectURL(up.track.audio_url);
      uploads.delete(id);
      return { removed: id };
    }
    const { up, track } = await findTrack(id);
    if (parts.length === 2) return track;
    if (parts[2] === 'features') return features(id, q);
    if (parts[2] === 'sources') {
      if (up) return uploadSources(up, Number(q.get('fps')) || 30);
      return file(`data/sources/${track.id}.json`);
    }
    if (parts[2] === 'genres') {
      if (up || !(await site()).classifier) throw fail(404, `genres of an upload ${SERVER}`);
      return file(`data/genres/${track.id}.json`);
    }
    if (parts[2] === 'videos') throw fail(501, `MP4 rendering ${SERVER}`);
  }
  throw fail(501, `${url.pathname} ${SERVER}`);
}

const capitalised = (text) => text.charAt(0).toUpperCase() + text.slice(1);

// Controls of features this site does not have: disabled, with the reason as their title, and
// one note in the panel that says what needs the server.
function markServerOnly() {
  for (const el of document.querySelectorAll('[data-server-only]')) {
    el.setAttribute('aria-disabled', 'true');
    el.classList.add('server-only');
    el.title = `${el.dataset.serverOnly} ${SERVER}`;
    for (const c of [el, ...el.querySelectorAll('button, select, input')]) {
      if ('disabled' in c && c.tagName !== 'A') c.disabled = true;
    }
    if (el.tagName === 'A') el.addEventListener('click', (e) => { e.preventDefault(); setStatus(el.title, true); });
  }
  const note = document.getElementById('site-note');
  if (note) {
    note.hidden = false;
    site().then((s) => {
      note.textContent = `Static site: ${s.tracks} sample tracks with their features precomputed; `
        + 'your uploads and live input are encoded in this browser (ONNX), their beat grid '
        + `found by the live beat tracker. ${capitalised(s.server_only.join(', '))} need the `
        + 'playground server.';
    }).catch(() => {});
  }
}

// The mapping controls show what the site holds (one layer and mapping per model).
function fixMappingControls() {
  for (const [id, v] of [['method', 'pca'], ['scaling', 'standard'], ['per', 'features']]) {
    const el = document.getElementById(id);
    if (!el) continue;
    el.value = v;
    el.disabled = true;
    el.title = `the static site holds one mapping per model; others ${SERVER}`;
  }
}

// The page calls this once its controls exist and the address has set them.
export function setUpSite() {
  if (!STATIC_SITE) return;
  markServerOnly();
  fixMappingControls();
}

if (STATIC_SITE) serveLocally(handle);
