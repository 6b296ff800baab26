// The visualizer page: pick or upload a track, choose model/layer/mapping, and watch the
// learned features drive a three.js visualization in sync with the audio clock. Beside the
// ten learned features, the track's beat grid (tempo, beat and bar phase, beat and downbeat
// pulses) and, when the user has separated it in the stem mixer, its stems (drum onsets, bass
// and vocal energy, sung pitch, brightness) are sources any parameter can take
// (GET /api/tracks/<id>/sources).
import * as THREE from 'three';
import { AudioPlayer } from './audio/player.js';
import { Ewma, sampleTimeline } from './audio/timeline.js';
import { api, postJson, query } from './shared/api.js';
import { $, guard, onFileChosen, setStatus } from './shared/dom.js';
import { clamp, formatTime } from './shared/format.js';
import { buildTopbar } from './shared/shell.js';
import { STATIC_SITE, setUpSite } from './shared/site.js';
import { getTrack, trackBrowser, uploadTrack } from './shared/tracks.js';
import { setUrlParam, urlParam } from './shared/url.js';
import { VISUALIZATIONS } from './viz/index.js';
import { OnnxEncoder } from './live/encoder.js';
import { BEAT_NAMES, DSP_NAMES, LiveInput } from './live/live.js';
import { SceneBlend } from './viz/blend.js';

buildTopbar('visualizer');
const N = 10;                       // parameters per visualization, features per timeline
const MAX_POOL = 32;                // learned features + beat grid + stem features
const state = {
  track: null, models: [], timeline: null, sources: null,
  pool: Array.from({ length: N }, (_, k) => ({ kind: 'learned', name: `feature ${k}` })),
  perm: Array.from({ length: N }, (_, k) => k), viz: null, vizClass: null,
  lastT: 0, frames: 0, genre: null, featureRequest: 0, recordedBytes: 0,
  motionRate: 1, scenes: 0,                  // tempo-scaled motion; scene switches so far
  blend: null, blends: 0, liveBar: null, liveDowns: 0,   // a scene blend under way; live bars
};
const player = new AudioPlayer();
const ewma = new Ewma(MAX_POOL);
const raw = new Float32Array(N);        // feature values at the audio time (before smoothing)
const poolRaw = new Float32Array(MAX_POOL);   // every source's value at the audio time
const beatRaw = new Float32Array(MAX_POOL);
const stemRaw = new Float32Array(MAX_POOL);
const dspRaw = new Float32Array(MAX_POOL);
const paramValues = new Float32Array(N); // smoothed, assigned to parameters, in [0, 1]
const scaled = new Float32Array(N);      // in each parameter's own range
const fromScaled = new Float32Array(N);  // the same values in a blended-out scene's ranges
let blender = null;                      // SceneBlend, made on the first blend

// ------------------------------------------------------------------------------ renderer
const canvas = $('canvas');
const renderer = new THREE.WebGLRenderer({ canvas, antialias: true, preserveDrawingBuffer: true });
renderer.setPixelRatio(Math.min(window.devicePixelRatio || 1, 2));

function canvasSize() {
  const r = canvas.getBoundingClientRect();
  return [Math.max(1, Math.floor(r.width)), Math.max(1, Math.floor(r.height))];
}

function resize() {
  const [w, h] = canvasSize();
  renderer.setSize(w, h, false);
  if (state.viz) state.viz.resize(w, h);
  if (state.blend) state.blend.from.resize(w, h);
}
new ResizeObserver(resize).observe(canvas);

// `keepRun`: the scene switch changes the picture, never the features under it.
function setViz(id, { keepRun = false } = {}) {
  const cls = VISUALIZATIONS.find((v) => v.id === id) || VISUALIZATIONS[0];
  endBlend();
  if (state.viz) state.viz.dispose();
  const [w, h] = canvasSize();
  renderer.setSize(w, h, false);
  state.vizClass = cls;
  state.viz = new cls({ renderer, width: w, height: h });
  $('viz').value = cls.id;
  setUrlParam('viz', cls.id);
  buildMeter();
  buildEditor();
  if (!keepRun && !state.runPicked && state.models.length) {
    const run = preferredRun(state.models, state.defaultRun);
    if (run && run !== $('run').value) {
      $('run').value = run;
      fillLayers();
      if (state.track) reloadFeatures();
    }
  }
}

// The model a visualization was designed for (`static prefers`, a dataset mode: the lights
// chain was made for the spectrum model), until the user picks one (the Model list or the
// address); otherwise the server's default.
function preferredRun(models, fallback) {
  const mode = state.vizClass && state.vizClass.prefers;
  const fit = mode && models.find((m) => m.mode === mode && m.kind === 'autoencoder' && !m.id.startsWith('users/'));
  return fit ? fit.id : (fallback || $('run').value);
}

// ------------------------------------------------------------------------------ meter + editor
function buildMeter() {
  const box = $('meter-bars');
  box.textContent = '';
  state.vizClass.params.forEach((p, k) => {
    const row = document.createElement('div');
    row.className = 'meter-bar';
    row.innerHTML = `<span class="name"></span><div class="track"><div class="fill"></div></div>` +
      '<span class="num">0.00</span>';
    row.querySelector('.name').textContent = p.name;
    row.dataset.param = k;
    box.appendChild(row);
  });
}

function updateMeter() {
  const rows = $('meter-bars').children;
  for (let k = 0; k < rows.length; k++) {
    const v = paramValues[k];
    rows[k].dataset.value = v.toFixed(4);
    rows[k].children[1].firstChild.style.width = `${(v * 100).toFixed(1)}%`;
    rows[k].children[2].textContent = v.toFixed(2);
  }
  const g = state.genre;
  $('meter-genre').textContent = g ? `${g.top} ${(100 * g.probabilities[g.top]).toFixed(0)}%` : '';
}

// The sources a parameter can take: the learned features, then the beat grid and the stems;
// live input: the learned features, the live beat grid and the live DSP bands.
function buildPool() {
  const pool = Array.from({ length: N }, (_, k) => ({ kind: 'learned', name: `feature ${k}` }));
  if (state.live) {
    for (const name of BEAT_NAMES) pool.push({ kind: 'beat', name });
    for (const name of DSP_NAMES) pool.push({ kind: 'dsp', name });
    state.pool = pool;
    state.perm = state.perm.map((f, k) => (f < pool.length ? f : k));
    return;
  }
  const src = state.sources;
  if (src && src.beats) for (const name of src.beats.names) pool.push({ kind: 'beat', name });
  if (src && src.dsp) for (const name of src.dsp.names) pool.push({ kind: 'dsp', name });
  if (src && src.stems) for (const name of src.stems.names) pool.push({ kind: 'stems', name });
  state.pool = pool.slice(0, MAX_POOL);
}

function setPerm(perm) {
  state.perm = perm;
  $('assign').value = 'custom';
  setUrlParam('assign', 'custom');
  setUrlParam('perm', perm.join(','));
  buildEditor();
}

function sourceSelect(k, feature) {
  const sel = document.createElement('select');
  sel.className = 'feat';
  sel.setAttribute('aria-label', `source of ${state.vizClass.params[k].name}`);
  const groups = { learned: 'learned features', beat: 'beat grid', dsp: 'DSP bands (MilkDrop)', stems: 'stems' };
  for (const [kind, label] of Object.entries(groups)) {
    const items = state.pool.map((p, i) => [p, i]).filter(([p]) => p.kind === kind);
    if (!items.length) continue;
    const g = document.createElement('optgroup');
    g.label = label;
    for (const [p, i] of items) g.appendChild(new Option(p.name.replace(/_/g, ' '), String(i)));
    sel.appendChild(g);
  }
  sel.value = String(feature);
  sel.addEventListener('change', () => {
    const perm = state.perm.slice();
    perm[k] = Number(sel.value);
    setPerm(perm);
  });
  sel.addEventListener('mousedown', (e) => e.stopPropagation());
  return sel;
}

function buildEditor() {
  const list = $('mapping-editor');
  list.textContent = '';
  const params = state.vizClass.params;
  state.perm.forEach((feature, k) => {
    const li = document.createElement('li');
    li.draggable = true;
    li.dataset.index = k;
    li.dataset.source = state.pool[feature] ? state.pool[feature].kind : 'learned';
    li.innerHTML = '<span class="pname"></span>';
    li.querySelector('.pname').textContent = params[k].name;
    li.appendChild(sourceSelect(k, feature));
    li.addEventListener('dragstart', (e) => {
      e.dataTransfer.setData('text/plain', String(k));
      e.dataTransfer.effectAllowed = 'move';
    });
    li.addEventListener('dragover', (e) => { e.preventDefault(); li.classList.add('drag-over'); });
    li.addEventListener('dragleave', () => li.classList.remove('drag-over'));
    li.addEventListener('drop', (e) => {
      e.preventDefault();
      li.classList.remove('drag-over');
      const from = Number(e.dataTransfer.getData('text/plain'));
      if (!Number.isInteger(from) || from === k) return;
      const perm = state.perm.slice();
      perm.splice(k, 0, perm.splice(from, 1)[0]);   // move the dragged feature to this slot
      setPerm(perm);
    });
    list.appendChild(li);
  });
}

// ------------------------------------------------------------------------------ tracks
const tracks = trackBrowser({
  perPage: 50,
  filters: () => ({ genre: $('genre-filter').value }),
  selectedId: () => state.track && state.track.id,
  onPick: selectTrack,
  onLoad(res) {
    const sel = $('genre-filter');
    if (sel.options.length <= 1) {
      for (const g of res.genres) sel.add(new Option(g, g));
    }
  },
});

async function selectTrack(track) {
  player.stop();
  state.track = track;
  state.timeline = null;
  state.sources = null;
  state.genre = null;
  setUrlParam('track', track.id);
  tracks.showPicked(track);
  $('play').disabled = true;
  $('seek').disabled = true;
  setStatus('loading audio and features…');
  try {
    const sourcesReady = loadSources();
    await Promise.all([player.load(track.audio_url), sourcesReady, loadGenre(),
                       loadFeatures(sourcesReady)]);
    $('play').disabled = false;
    $('seek').disabled = false;
    $('record').disabled = false;
    $('render-video').disabled = STATIC_SITE;      // the static site has no server
    $('seek').max = String(player.duration);
    setStatus(`ready: ${track.title || track.id}`);
  } catch (e) {
    setStatus(e.message, true);
  }
}

// The beat grid and (if this user separated the track) stem features of the track.
async function loadSources() {
  if (!state.track) return;
  try {
    state.sources = await api(`/api/tracks/${state.track.id}/sources?fps=30`);
  } catch (e) {
    state.sources = null;               // the learned features still work
  }
  buildPool();
  const src = state.sources;
  const b = src && src.beats;
  const beat = !b ? (src && src.beats_reason) || 'none'
    : b.bpm ? `${b.bpm.toFixed(1)} bpm` : (b.reason || 'no beat');
  $('sources-info').textContent = !src ? ''
    : `beat grid: ${beat} · stems: ${src.stems ? src.stems.names.length + ' features'
      : STATIC_SITE ? 'none (separation needs the playground server)' : 'none (separate the track in the stem mixer)'}`;
}

async function loadGenre() {
  const cls = state.models.find((m) => m.kind === 'classifier');
  if (!cls || !state.track) return;
  try {
    state.genre = await api(`/api/tracks/${state.track.id}/genres?${query({ run: cls.id })}`);
  } catch (e) {
    state.genre = null;
  }
}

// ------------------------------------------------------------------------------ features
function currentModel() { return state.models.find((m) => m.id === $('run').value); }

function fillLayers() {
  const m = currentModel();
  const sel = $('layer');
  sel.textContent = '';
  if (!m) return;
  for (const l of m.layers) sel.add(new Option(l, l));
  sel.value = m.layers.includes(urlParam('layer')) ? urlParam('layer') : m.default_layer;
}

// `ready`: the sources being loaded; a shared custom mapping may name them.
async function loadFeatures(ready = null) {
  if (!state.track || !currentModel()) return;
  const assign = $('assign').value;
  const seedText = $('seed').value;
  const opts = {
    run: $('run').value, layer: $('layer').value, method: $('method').value,
    scaling: $('scaling').value, per: $('per').value, fps: 30,
    assign: assign === 'custom' || assign === 'ranked-all' ? 'deterministic' : assign,
    seed: assign === 'random' && seedText !== '' ? seedText : '',
  };
  for (const k of ['run', 'layer', 'method', 'scaling', 'per']) setUrlParam(k, opts[k]);
  setUrlParam('assign', assign);
  const req = ++state.featureRequest;
  const tl = await api(`/api/tracks/${state.track.id}/features?${query(opts)}`);
  if (ready) await ready;
  if (req !== state.featureRequest) return;   // a newer request superseded this one
  state.timeline = tl;
  if (assign === 'custom') {
    const p = (urlParam('perm') || '').split(',').map(Number);
    const valid = p.length === N && p.every((v) => Number.isInteger(v) && v >= 0 && v < state.pool.length);
    state.perm = valid ? p : tl.permutation;
  } else if (assign === 'ranked-all') {
    state.perm = rankedAll(tl);
    setUrlParam('perm', null);
  } else {
    state.perm = tl.permutation;
    setUrlParam('perm', null);
  }
  if (assign === 'random') {
    $('seed').value = tl.seed;
    setUrlParam('seed', tl.seed);
  }
  ewma.reset();
  buildEditor();
}

// Every column of every source (learned, beat grid, stems) by its variance over the track,
// the most varying onto the first (most salient) parameter: "ranked" over all sources.
function columnVariances(tl) {
  const d = tl.frames.length ? tl.frames[0].length : 0;
  const out = [];
  for (let j = 0; j < d; j++) {
    let m = 0;
    let m2 = 0;
    for (const f of tl.frames) { m += f[j]; m2 += f[j] * f[j]; }
    const n = Math.max(1, tl.frames.length);
    out.push(m2 / n - (m / n) ** 2);
  }
  return out;
}

function rankedAll(tl) {
  const src = state.sources;
  const v = [...columnVariances(tl).slice(0, N)];
  for (const part of [src && src.beats, src && src.dsp, src && src.stems]) if (part) v.push(...columnVariances(part));
  const order = v.map((x, i) => [x, i]).filter(([, i]) => i < state.pool.length)
    .sort((a, b) => b[0] - a[0] || a[1] - b[1]).map(([, i]) => i);
  return order.slice(0, N);
}

async function reloadFeatures() {
  if (state.live) {
    try {
      await switchLiveEncoder();
    } catch (e) {
      $('live-status').textContent = `live input: ${e.message}`;
    }
  }
  try {
    setStatus('computing features…');
    await loadFeatures();
    setStatus(`features: ${state.timeline.run} ${state.timeline.layer} ${state.timeline.method}`);
  } catch (e) {
    setStatus(e.message, true);
  }
}

// ------------------------------------------------------------------------------ render loop
function frame() {
  const live = state.live;
  const t = live ? live.clock() : player.currentTime();
  let dt = t - state.lastT;
  if (dt < 0 || dt > 0.5) { dt = 0; ewma.reset(); }   // seek: jump, do not smear
  state.lastT = t;
  const params = state.vizClass.params;
  let liveSrc = null;
  if (live) {
    // the newest values of the in-browser encoder, the live beat grid and DSP bands (the
    // pool's order: buildPool); the song's sources do not apply to live sound
    liveSrc = live.sources();
    raw.set(live.values);
    poolRaw.fill(0);
    poolRaw.set(raw);
    poolRaw.set(liveSrc.beats, N);
    poolRaw.set(liveSrc.dsp, N + BEAT_NAMES.length);
    const smooth = ewma.update(poolRaw, Number($('smoothing').value), dt);
    for (let k = 0; k < N; k++) paramValues[k] = smooth[state.perm[k]] || 0;
    showLive(live);
  } else if (state.timeline) {
    const interp = $('interpolate').checked;
    sampleTimeline(state.timeline, t, interp, raw);
    poolRaw.set(raw);
    const src = state.sources;
    let at = N;
    for (const [tl, buf] of [[src && src.beats, beatRaw], [src && src.dsp, dspRaw],
                             [src && src.stems, stemRaw]]) {
      if (!tl || !tl.frames.length) continue;
      sampleTimeline(tl, t, interp, buf);
      for (let j = 0; j < tl.names.length && at < MAX_POOL; j++) poolRaw[at++] = buf[j];
    }
    const smooth = ewma.update(poolRaw, Number($('smoothing').value), dt);
    for (let k = 0; k < N; k++) paramValues[k] = smooth[state.perm[k]] || 0;
  } else {
    for (let k = 0; k < N; k++) {
      const p = params[k];
      paramValues[k] = (p.default - p.min) / ((p.max - p.min) || 1);
    }
  }
  for (let k = 0; k < N; k++) {
    const p = params[k];
    scaled[k] = p.min + clamp(paramValues[k], 0, 1) * (p.max - p.min);
  }
  const beats = !live && state.sources && state.sources.beats;
  const bpm = live ? liveSrc.bpm : beats && beats.bpm;
  state.motionRate = $('tempo-motion').checked && bpm ? bpm / 120 : 1;
  sceneSwitch(downbeatCrossed(beats, liveSrc, t, dt), t, bpm);
  state.viz.update(dt * state.motionRate, scaled);
  renderScene(t, dt);
  state.frames += 1;
  updateMeter();
  if (!live) {
    if (!$('seek').matches(':active')) $('seek').value = String(t);
    $('clock').textContent = `${formatTime(t)} / ${formatTime(player.duration)}`;
  } else {
    $('clock').textContent = `live ${formatTime(t)}`;
  }
  requestAnimationFrame(frame);
}

// The number of the downbeat passed since the last frame, or -1: the song's downbeat times
// while it plays; live, the live bar phase wrapping round.
function downbeatCrossed(beats, liveSrc, t, dt) {
  if (liveSrc) {
    const bar = liveSrc.bpm ? liveSrc.beats[3] : null;
    const wrapped = bar !== null && state.liveBar !== null && bar < state.liveBar - 0.5;
    state.liveBar = bar;
    if (!wrapped) return -1;
    state.liveDowns += 1;
    return state.liveDowns;
  }
  if (!beats || !beats.downbeat_times || !player.playing || dt <= 0) return -1;
  return beats.downbeat_times.findIndex((d) => d > t - dt && d <= t);
}

// On every n-th downbeat passed, the next visualization (n from "Switch scene"): a cut, or a
// blend over one beat or one bar at the tempo ("Change").
function sceneSwitch(crossed, t, bpm) {
  const every = Number($('scene-switch').value);
  if (!every || crossed < 0 || crossed % every !== 0) return;
  const k = VISUALIZATIONS.findIndex((v) => v.id === state.vizClass.id);
  const next = VISUALIZATIONS[(k + 1) % VISUALIZATIONS.length].id;
  state.scenes += 1;
  const beatsLong = Number($('scene-blend').value);
  if (!beatsLong) {
    setViz(next, { keepRun: true });
    return;
  }
  endBlend();
  const from = state.viz;
  const fromClass = state.vizClass;
  state.viz = null;                   // kept alive: setViz must not dispose it
  setViz(next, { keepRun: true });
  state.blend = { from, fromClass, start: t, seconds: (beatsLong * 60) / (bpm || 120), amount: 0 };
  state.blends += 1;
}

function endBlend() {
  if (!state.blend) return;
  state.blend.from.dispose();
  state.blend = null;
}

// The scene on the canvas; during a blend the outgoing scene keeps moving with the same
// values (in its own parameters' ranges) and the two are mixed by the time gone.
function renderScene(t, dt) {
  const b = state.blend;
  if (b) {
    b.amount = (t - b.start) / b.seconds;
    if (b.amount < 0 || b.amount >= 1) endBlend();      // done, or a seek back
  }
  if (!state.blend) {
    state.viz.render(renderer);
    return;
  }
  const params = b.fromClass.params;
  for (let k = 0; k < N; k++) {
    fromScaled[k] = params[k].min + clamp(paramValues[k], 0, 1) * (params[k].max - params[k].min);
  }
  b.from.update(dt * state.motionRate, fromScaled);
  blender = blender || new SceneBlend(renderer);
  blender.setSize(...canvasSize());
  blender.render(b.from, state.viz, b.amount);
}

// ------------------------------------------------------------------------------ live input
// The run and mapping chosen under Features, exported to ONNX by the server once, run here.
function liveOptions() {
  return { run: $('run').value, layer: $('layer').value, method: $('method').value,
    scaling: $('scaling').value, per: $('per').value };
}

async function startLive(kind) {
  stopLive();
  if (player.playing) { player.pause(); $('play').textContent = '▶ play'; }
  $('live-status').textContent = 'loading the encoder…';
  const spec = await api(`/api/onnx/frontend.json?${query(liveOptions())}`);
  const encoder = await OnnxEncoder.load(spec);
  $('live-status').textContent = kind === 'tab' ? 'pick a tab to listen to…' : 'waiting for the microphone…';
  const live = await LiveInput.start(kind, spec, encoder);
  if ($('input').value !== kind) { live.stop(); return; }     // changed meanwhile
  state.live = live;
  state.liveEncoder = encoder;
  state.liveBar = null;
  if (!state.timeline) state.perm = Array.from({ length: N }, (_, k) => k);
  buildPool();
  buildEditor();
  ewma.reset();
  setStatus(`live: ${spec.run} ${spec.layer} ${spec.method} in the browser (${spec.mode}, ${spec.sr} Hz)`);
}

// The run, layer or mapping changed while listening (by hand, or a visualization that
// prefers another model): the same capture goes on through the new choice's encoder.
async function switchLiveEncoder() {
  const old = state.live;
  const spec = await api(`/api/onnx/frontend.json?${query(liveOptions())}`);
  if (JSON.stringify(spec) === JSON.stringify(old.spec)) return;      // nothing changed
  $('live-status').textContent = 'loading the encoder…';
  const encoder = await OnnxEncoder.load(spec);
  if (state.live !== old) return;                    // stopped or switched meanwhile
  state.live = await old.switchTo(spec, encoder);
  state.liveEncoder = encoder;
  ewma.reset();
  setStatus(`live: ${spec.run} ${spec.layer} ${spec.method} in the browser (${spec.mode}, ${spec.sr} Hz)`);
}

function stopLive() {
  if (!state.live) return;
  state.live.stop();
  state.live = null;
  $('live-status').textContent = '';
  buildPool();                 // the track's sources again
  state.perm = state.perm.map((f, k) => (f < state.pool.length ? f : k));
  buildEditor();
}

let liveShown = 0;
function showLive(live) {
  const now = performance.now();
  if (now - liveShown < 250) return;
  liveShown = now;
  const ms = live.encoder.msPerSegment();
  const bpm = live.beats.bpm;
  $('live-status').textContent = live.latency === null ? `listening… (${live.level.toFixed(0)} dBFS)` :
    `latency ${live.latency.toFixed(2)} s · encoder ${ms === null ? '–' : ms.toFixed(1)} ms/segment · ` +
    `${live.segments} segments · ${live.level.toFixed(0)} dBFS · ${bpm ? `${bpm.toFixed(0)} bpm` : 'no beat yet'}`;
}

async function switchInput() {
  const kind = $('input').value;
  setUrlParam('input', kind === 'song' ? null : kind);
  if (kind === 'song') { stopLive(); setStatus(state.track ? `track: ${state.track.title}` : 'pick a track or upload a song'); return; }
  try {
    await startLive(kind);
  } catch (e) {
    stopLive();
    $('input').value = 'song';
    setUrlParam('input', null);
    $('live-status').textContent = `live input: ${e.message}`;
    setStatus(`live input: ${e.message}`, true);
  }
}

// ------------------------------------------------------------------------------ server video
// The whole track as an MP4 rendered on the server (frame-exact: every frame on a virtual
// clock), with what is on screen: features, visualization, smoothing and the random seed.
const VIDEO_POLL_MS = 1000;
async function renderVideo() {
  if (!state.track || !state.timeline) return;
  $('render-video').disabled = true;
  $('video-download').hidden = true;
  const assign = $('assign').value;
  const body = { run: $('run').value, layer: $('layer').value,
    method: $('method').value, scaling: $('scaling').value, per: $('per').value,
    viz: state.vizClass.id, size: $('video-size').value, fps: 30,
    smoothing: Number($('smoothing').value),
    assign: ['random', 'ranked', 'deterministic'].includes(assign) ? assign : 'deterministic' };
  if (assign === 'random' && Number.isInteger(state.timeline.seed)) body.seed = state.timeline.seed;
  try {
    let job = await postJson(`/api/tracks/${state.track.id}/videos`, body);
    while (job.state === 'queued' || job.state === 'running') {
      const eta = job.eta_seconds === null ? '' : `, about ${Math.ceil(job.eta_seconds)} s left`;
      $('video-status').textContent = `rendering ${Math.round(100 * job.progress)} %${eta}`;
      await new Promise((r) => { setTimeout(r, VIDEO_POLL_MS); });
      job = await api(job.status_url);
    }
    if (job.state !== 'done') throw new Error(job.message || 'the render failed');
    $('video-status').textContent = `${job.frames} frames, ${(job.bytes / 1e6).toFixed(1)} MB`;
    const a = $('video-download');
    a.href = job.video_url;
    a.hidden = false;
  } catch (e) {
    $('video-status').textContent = `video: ${e.message}`;
  } finally {
    $('render-video').disabled = false;
  }
}

// ------------------------------------------------------------------------------ export
let recorder = null;
function toggleRecord() {
  if (recorder) { recorder.stop(); return; }
  const stream = canvas.captureStream(60);
  for (const track of player.streamDest.stream.getAudioTracks()) stream.addTrack(track);
  const type = ['video/webm;codecs=vp9,opus', 'video/webm;codecs=vp8,opus', 'video/webm']
    .find((m) => MediaRecorder.isTypeSupported(m));
  recorder = new MediaRecorder(stream, { mimeType: type });
  const chunks = [];
  state.recordedBytes = 0;
  recorder.ondataavailable = (e) => {
    if (e.data.size) chunks.push(e.data);
    state.recordedBytes += e.data.size;
  };
  recorder.onstop = () => {
    const blob = new Blob(chunks, { type: 'video/webm' });
    const a = $('download');
    if (a.href) URL.revokeObjectURL(a.href);
    a.href = URL.createObjectURL(blob);
    a.download = `${(state.track && state.track.title) || 'visualization'}-${state.vizClass.id}.webm`;
    a.hidden = false;
    a.textContent = `download video (${(blob.size / 1e6).toFixed(1)} MB)`;
    a.dataset.size = String(blob.size);
    $('record').textContent = '● record WebM';
    recorder = null;
  };
  recorder.start(250);
  $('record').textContent = '■ stop recording';
}

// ------------------------------------------------------------------------------ models
// A user's own runs (trained on their uploads) are listed to them only, by their name.
const runLabel = (m) => {
  const what = m.mode === 'spectrum' ? `${m.kind}, 0.5 s spectra` : m.kind;
  return m.id.startsWith('users/') ? `${m.name} (yours, ${what})` : `${m.id} (${what})`;
};

async function loadModels() {
  const res = await api('/api/models');
  state.models = res.models;
  const keep = $('run').value;
  $('run').replaceChildren(...res.models.map((m) => new Option(runLabel(m), m.id)));
  if (keep && res.models.some((m) => m.id === keep)) $('run').value = keep;
  return res;
}

// Training on the user's uploads: a server job; its stage and progress show under the button,
// and the finished model joins the Model list, selected, with its test figure.
const TRAIN_POLL_MS = 1000;
async function followTraining(job) {
  $('train').disabled = true;
  while (job.state === 'queued' || job.state === 'running') {
    const pct = Math.round(100 * job.progress);
    $('train-status').textContent = `training "${job.name}": ${job.stage || job.state} ${pct} %`;
    await new Promise((r) => { setTimeout(r, TRAIN_POLL_MS); });
    job = await api(job.status_url);
  }
  $('train').disabled = false;
  if (job.state === 'failed') {
    $('train-status').textContent = `training failed: ${job.message}`;
    return;
  }
  await loadModels();
  $('run').value = job.run;
  fillLayers();
  const t = job.test;
  $('train-status').textContent = `trained "${job.name}" on ${job.songs} songs: test error ` +
    `${(t.mse_ratio_to_baseline / t.pca_mse_ratio_to_baseline).toFixed(2)}x PCA-10's`;
  if (state.track) await reloadFeatures();
}

async function startTraining() {
  try {
    await followTraining(await postJson('/api/training', { name: $('train-name').value }));
  } catch (err) {
    $('train').disabled = false;
    $('train-status').textContent = err.message;
  }
}

async function resumeTraining() {        // a job still running from an earlier visit
  const res = await api('/api/training');
  const open = res.jobs.find((j) => j.state === 'queued' || j.state === 'running');
  if (open) followTraining(open).catch((err) => { $('train-status').textContent = err.message; });
}

// ------------------------------------------------------------------------------ wiring

async function togglePlay() {
  if (player.playing || player.starting) player.pause(); else await player.play();
  $('play').textContent = player.playing ? '❚❚ pause' : '▶ play';
}

function wire() {
  tracks.wire();
  $('genre-filter').addEventListener('change', guard(tracks.reload));
  onFileChosen($('upload'), async (file) => {
    try {
      const track = await uploadTrack(file);
      await tracks.load();
      await selectTrack(track);
    } catch (err) {
      setStatus(`upload failed: ${err.message}`, true);
    }
  });
  $('run').addEventListener('change', () => { state.runPicked = true; fillLayers(); reloadFeatures(); });
  $('input').addEventListener('change', switchInput);
  for (const id of ['layer', 'method', 'scaling', 'per']) $(id).addEventListener('change', reloadFeatures);
  $('assign').addEventListener('change', () => {
    if ($('assign').value !== 'random') setUrlParam('seed', null);
    reloadFeatures();
  });
  $('seed').addEventListener('change', reloadFeatures);
  $('reshuffle').addEventListener('click', () => {
    $('assign').value = 'random';
    $('seed').value = '';
    reloadFeatures();
  });
  $('smoothing').addEventListener('input', () => {
    $('smoothing-out').textContent = Number($('smoothing').value).toFixed(2);
    setUrlParam('smoothing', $('smoothing').value);
  });
  $('interpolate').addEventListener('change', () => setUrlParam('interp', $('interpolate').checked ? null : '0'));
  $('viz').addEventListener('change', () => setViz($('viz').value));
  $('scene-switch').addEventListener('change', () => setUrlParam('scenes', $('scene-switch').value === '0' ? null : $('scene-switch').value));
  $('scene-blend').addEventListener('change', () => setUrlParam('blend', $('scene-blend').value === '0' ? null : $('scene-blend').value));
  $('tempo-motion').addEventListener('change', () => setUrlParam('tempo', $('tempo-motion').checked ? '1' : null));
  $('play').addEventListener('click', togglePlay);
  $('seek').addEventListener('input', () => player.seek(Number($('seek').value)));
  $('record').addEventListener('click', toggleRecord);
  $('render-video').addEventListener('click', renderVideo);
  $('train').addEventListener('click', startTraining);
  player.onended = () => { $('play').textContent = '▶ play'; };
  window.addEventListener('keydown', (e) => {
    if (e.code === 'Space' && e.target === document.body) { e.preventDefault(); togglePlay(); }
  });
}

async function init() {
  for (const v of VISUALIZATIONS) $('viz').add(new Option(v.title, v.id));
  for (const id of ['method', 'scaling', 'per', 'assign']) if (urlParam(id)) $(id).value = urlParam(id);
  if (urlParam('seed')) $('seed').value = urlParam('seed');
  if (urlParam('smoothing')) $('smoothing').value = urlParam('smoothing');
  $('smoothing-out').textContent = Number($('smoothing').value).toFixed(2);
  $('interpolate').checked = urlParam('interp') !== '0';
  if (urlParam('scenes')) $('scene-switch').value = urlParam('scenes');
  if (urlParam('blend')) $('scene-blend').value = urlParam('blend');
  $('tempo-motion').checked = urlParam('tempo') === '1';
  setUpSite();
  setViz(urlParam('viz', VISUALIZATIONS[0].id));
  wire();
  requestAnimationFrame(frame);
  try {
    const res = await loadModels();
    if (!res.models.length) setStatus('no trained models yet: run "make playground"', true);
    state.runPicked = res.models.some((m) => m.id === urlParam('run'));
    state.defaultRun = res.default;
    $('run').value = state.runPicked ? urlParam('run') : preferredRun(res.models, res.default);
    fillLayers();
    resumeTraining();
    if (['microphone', 'tab'].includes(urlParam('input'))) {
      $('input').value = urlParam('input');
      switchInput();
    }
    await tracks.load();
    const tid = urlParam('track');
    if (tid) {
      await selectTrack(await getTrack(tid));
    } else {
      setStatus('pick a track or upload a song');
    }
  } catch (e) {
    setStatus(e.message, true);
  }
}

// Test and debugging hook: what is on screen now.
window.__playground = {
  state, player,
  vizIds: VISUALIZATIONS.map((v) => v.id),
  sample: () => ({ t: player.currentTime(), playing: player.playing, raw: Array.from(raw),
                   values: Array.from(paramValues), perm: state.perm.slice(),
                   frames: state.frames, viz: state.vizClass && state.vizClass.id,
                   timeline: !!state.timeline, motionRate: state.motionRate,
                   scenes: state.scenes, blends: state.blends,
                   blend: state.blend ? state.blend.amount : null,
                   blendFrom: state.blend ? state.blend.fromClass.id : null,
                   pool: state.pool.map((p) => `${p.kind}:${p.name}`),
                   poolRaw: Array.from(poolRaw.subarray(0, state.pool.length)) }),
  live: () => state.live && { segments: state.live.segments, dropped: state.live.dropped,
    latency: state.live.latency, level: state.live.level, values: Array.from(state.live.values),
    bpm: state.live.beats.bpm, beats: Array.from(state.live.sources().beats),
    dsp: Array.from(state.live.dspValues),
    msPerSegment: state.live.encoder.msPerSegment(), mode: state.live.spec.mode,
    run: state.live.spec.run },
  // The in-browser pipeline (front end + ONNX) on given samples at the run's rate, segments
  // every `hop` frames (MFCC) or samples (spectrum): what live input computes, for the tests.
  async encodeSamples(samples, hop, opts) {
    const spec = await api(`/api/onnx/frontend.json?${query(opts)}`);
    const encoder = await OnnxEncoder.load(spec);
    const segs = encoder.frontEnd.segmentsOf(Float32Array.from(samples), hop);
    return (await encoder.run(segs)).map((v) => Array.from(v));
  },
};

init();
