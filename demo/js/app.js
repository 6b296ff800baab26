// The visualizer page: pick or upload a track, choose model/layer/mapping, and watch the
// learned features drive a three.js visualization in sync with the audio clock.
import * as THREE from 'three';
import {
  api, debounce, query, setStatus, uploadTrack, setUrlParam, showPager, trackItem, urlParam,
} from './api.js';
import { AudioPlayer, formatTime } from './player.js';
import { Ewma, sampleTimeline } from './timeline.js';
import { VISUALIZATIONS } from './viz/index.js';

const $ = (id) => document.getElementById(id);
const N = 10;                       // parameters per visualization, features per timeline
const state = {
  track: null, tracks: [], page: 1, perPage: 50, models: [], timeline: null,
  perm: Array.from({ length: N }, (_, k) => k), viz: null, vizClass: null,
  lastT: 0, frames: 0, genre: null, featureRequest: 0,
};
const player = new AudioPlayer();
const ewma = new Ewma(N);
const raw = new Float32Array(N);        // feature values at the audio time (before smoothing)
const paramValues = new Float32Array(N); // smoothed, assigned to parameters, in [0, 1]
const scaled = new Float32Array(N);      // in each parameter's own range

// ------------------------------------------------------------------------------ URL state
const setParam = setUrlParam;
const param = urlParam;

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
}
new ResizeObserver(resize).observe(canvas);

function setViz(id) {
  const cls = VISUALIZATIONS.find((v) => v.id === id) || VISUALIZATIONS[0];
  if (state.viz) state.viz.dispose();
  const [w, h] = canvasSize();
  renderer.setSize(w, h, false);
  state.vizClass = cls;
  state.viz = new cls({ renderer, width: w, height: h });
  $('viz').value = cls.id;
  setParam('viz', cls.id);
  buildMeter();
  buildEditor();
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

function buildEditor() {
  const list = $('mapping-editor');
  list.textContent = '';
  const params = state.vizClass.params;
  state.perm.forEach((feature, k) => {
    const li = document.createElement('li');
    li.draggable = true;
    li.dataset.index = k;
    li.innerHTML = '<span class="pname"></span><span class="feat"></span>';
    li.querySelector('.pname').textContent = params[k].name;
    li.querySelector('.feat').textContent = `feature ${feature}`;
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
      state.perm = perm;
      $('assign').value = 'custom';
      setParam('assign', 'custom');
      setParam('perm', perm.join(','));
      buildEditor();
    });
    list.appendChild(li);
  });
}

// ------------------------------------------------------------------------------ tracks
async function loadTracks() {
  const q = query({ q: $('search').value.trim(), genre: $('genre-filter').value,
                    page: state.page, per_page: state.perPage });
  const res = await api(`/api/tracks?${q}`);
  state.tracks = res.items;
  const sel = $('genre-filter');
  if (sel.options.length <= 1) {
    for (const g of res.genres) sel.add(new Option(g, g));
  }
  const list = $('track-list');
  list.textContent = '';
  for (const t of res.items) {
    list.appendChild(trackItem(t, { selected: state.track && t.id === state.track.id,
                                    onPick: selectTrack, onRemoved: loadTracks }));
  }
  showPager(res);
}

async function selectTrack(track) {
  player.stop();
  state.track = track;
  state.timeline = null;
  state.genre = null;
  setParam('track', track.id);
  $('current-track').textContent = `${track.title || track.id}${track.artist ? ' — ' + track.artist : ''}`;
  for (const li of $('track-list').children) li.classList.toggle('selected', li.dataset.id === track.id);
  $('play').disabled = true;
  $('seek').disabled = true;
  setStatus('loading audio and features…');
  try {
    await Promise.all([player.load(track.audio_url), loadFeatures(), loadGenre()]);
    $('play').disabled = false;
    $('seek').disabled = false;
    $('record').disabled = false;
    $('seek').max = String(player.duration);
    setStatus(`ready: ${track.title || track.id}`);
  } catch (e) {
    setStatus(e.message, true);
  }
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
  sel.value = m.layers.includes(param('layer')) ? param('layer') : m.default_layer;
}

async function loadFeatures() {
  if (!state.track || !currentModel()) return;
  const assign = $('assign').value;
  const seedText = $('seed').value;
  const opts = {
    run: $('run').value, layer: $('layer').value, method: $('method').value,
    scaling: $('scaling').value, per: $('per').value, fps: 30,
    assign: assign === 'custom' ? 'deterministic' : assign,
    seed: assign === 'random' && seedText !== '' ? seedText : '',
  };
  for (const k of ['run', 'layer', 'method', 'scaling', 'per']) setParam(k, opts[k]);
  setParam('assign', assign);
  const req = ++state.featureRequest;
  const tl = await api(`/api/tracks/${state.track.id}/features?${query(opts)}`);
  if (req !== state.featureRequest) return;   // a newer request superseded this one
  state.timeline = tl;
  if (assign === 'custom') {
    const p = (param('perm') || '').split(',').map(Number);
    const valid = p.length === N && [...p].sort((a, b) => a - b).every((v, i) => v === i);
    state.perm = valid ? p : tl.permutation;
  } else {
    state.perm = tl.permutation;
    setParam('perm', null);
  }
  if (assign === 'random') {
    $('seed').value = tl.seed;
    setParam('seed', tl.seed);
  }
  ewma.reset();
  buildEditor();
}

async function reloadFeatures() {
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
  const t = player.currentTime();
  let dt = t - state.lastT;
  if (dt < 0 || dt > 0.5) { dt = 0; ewma.reset(); }   // seek: jump, do not smear
  state.lastT = t;
  const params = state.vizClass.params;
  if (state.timeline) {
    sampleTimeline(state.timeline, t, $('interpolate').checked, raw);
    const smooth = ewma.update(raw, Number($('smoothing').value), dt);
    for (let k = 0; k < N; k++) paramValues[k] = smooth[state.perm[k]];
  } else {
    for (let k = 0; k < N; k++) {
      const p = params[k];
      paramValues[k] = (p.default - p.min) / ((p.max - p.min) || 1);
    }
  }
  for (let k = 0; k < N; k++) {
    const p = params[k];
    scaled[k] = p.min + Math.min(Math.max(paramValues[k], 0), 1) * (p.max - p.min);
  }
  state.viz.update(dt, scaled);
  state.viz.render(renderer);
  state.frames += 1;
  updateMeter();
  if (!$('seek').matches(':active')) $('seek').value = String(t);
  $('clock').textContent = `${formatTime(t)} / ${formatTime(player.duration)}`;
  requestAnimationFrame(frame);
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
  recorder.ondataavailable = (e) => { if (e.data.size) chunks.push(e.data); };
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

// ------------------------------------------------------------------------------ wiring

async function togglePlay() {
  if (player.playing) player.pause(); else await player.play();
  $('play').textContent = player.playing ? '❚❚ pause' : '▶ play';
}

function wire() {
  $('search').addEventListener('input', debounce(() => { state.page = 1; loadTracks(); }, 250));
  $('genre-filter').addEventListener('change', () => { state.page = 1; loadTracks(); });
  $('prev-page').addEventListener('click', () => { state.page -= 1; loadTracks(); });
  $('next-page').addEventListener('click', () => { state.page += 1; loadTracks(); });
  $('upload').addEventListener('change', async (e) => {
    const file = e.target.files[0];
    if (!file) return;
    setStatus(`uploading ${file.name}…`);
    try {
      const track = await uploadTrack(file);
      await loadTracks();
      await selectTrack(track);
    } catch (err) {
      setStatus(`upload failed: ${err.message}`, true);
    }
    e.target.value = '';
  });
  $('run').addEventListener('change', () => { fillLayers(); reloadFeatures(); });
  for (const id of ['layer', 'method', 'scaling', 'per']) $(id).addEventListener('change', reloadFeatures);
  $('assign').addEventListener('change', () => {
    if ($('assign').value !== 'random') setParam('seed', null);
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
    setParam('smoothing', $('smoothing').value);
  });
  $('interpolate').addEventListener('change', () => setParam('interp', $('interpolate').checked ? null : '0'));
  $('viz').addEventListener('change', () => setViz($('viz').value));
  $('play').addEventListener('click', togglePlay);
  $('seek').addEventListener('input', () => player.seek(Number($('seek').value)));
  $('record').addEventListener('click', toggleRecord);
  player.onended = () => { $('play').textContent = '▶ play'; };
  window.addEventListener('keydown', (e) => {
    if (e.code === 'Space' && e.target === document.body) { e.preventDefault(); togglePlay(); }
  });
}

async function init() {
  for (const v of VISUALIZATIONS) $('viz').add(new Option(v.title, v.id));
  for (const id of ['method', 'scaling', 'per', 'assign']) if (param(id)) $(id).value = param(id);
  if (param('seed')) $('seed').value = param('seed');
  if (param('smoothing')) $('smoothing').value = param('smoothing');
  $('smoothing-out').textContent = Number($('smoothing').value).toFixed(2);
  $('interpolate').checked = param('interp') !== '0';
  setViz(param('viz', VISUALIZATIONS[0].id));
  wire();
  requestAnimationFrame(frame);
  try {
    const res = await api('/api/models');
    state.models = res.models;
    for (const m of res.models) $('run').add(new Option(`${m.id} (${m.kind})`, m.id));
    if (!res.models.length) setStatus('no trained models yet: run "make playground"', true);
    $('run').value = res.models.some((m) => m.id === param('run')) ? param('run') : res.default;
    fillLayers();
    await loadTracks();
    const tid = param('track');
    if (tid) {
      const t = await api(`/api/tracks/${encodeURIComponent(tid)}`);
      await selectTrack(t);
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
  sample: () => ({ t: player.currentTime(), playing: player.playing, raw: Array.from(raw),
                   values: Array.from(paramValues), perm: state.perm.slice(),
                   frames: state.frames, viz: state.vizClass && state.vizClass.id,
                   timeline: !!state.timeline }),
};

init();
