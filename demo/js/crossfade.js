// The crossfade page: pick two tracks (A fades out, B fades in), a style, an overlap or a
// beat-synced number of beats, render the transition on the server (POST /api/crossfade,
// cached by request), then see it (waveform, overlap, the two gain curves the server applied)
// and hear it (Web Audio, decoded once). "Compare with" renders a second style of the same
// transition and A/B switches between them at the same position. Beat-synced transitions are
// planned: the candidates the planner scored are shown on a line over A's end (click one to
// hear it); with "Stems" each stem gets its own gain curve, drawn as one lane per stem, and
// tracks without stems are separated first through the stem mixer's jobs (with progress).
import { AudioPlayer } from './audio/player.js';
import { api, postJson } from './shared/api.js';
import { $, debounce, guard, isTextEntry, onFileChosen, setStatus } from './shared/dom.js';
import { clamp, formatClock, formatDb, formatKhz, formatSeconds, formatTime } from './shared/format.js';
import { buildTopbar } from './shared/shell.js';
import {
  fillTrackText, getTrack, removeUploadButton, trackBrowser, trackLabel, uploadTrack,
} from './shared/tracks.js';
import { makeTransport } from './shared/transport.js';
import { setUrlParam, urlParam } from './shared/url.js';

buildTopbar('crossfade');
const COLORS = {
  a: '#ff9f5f', b: '#6fdc8c', wave: '#c4cbdb', overlap: 'rgba(95, 179, 255, 0.10)',
  overlapEdge: 'rgba(95, 179, 255, 0.55)', grid: '#2a2f3c', text: '#8b93a7', head: '#ffffff',
  beat: 'rgba(255, 226, 110, 0.75)',
};
const PAD = { top: 14, bottom: 22, left: 6, right: 6 };
const PRE_ROLL_S = 1.0;                       // "To overlap" starts this long before it
const LANE_PX = 16;                           // height of one stem lane (CSS pixels)

const player = new AudioPlayer();
const state = {
  a: null, b: null,                           // picked tracks
  styles: null,                               // GET /api/crossfade/styles
  results: [],                                // [{res, buffer, label}] (two when comparing)
  current: 0,                                 // which result plays
  rendering: false,
  lastRequests: [],                           // the bodies sent for the current results
  candidate: 0,                               // the planner's candidate to render
};

const styleName = (s) => s.replace(/_/g, ' ');

// ------------------------------------------------------------------------------ tracks
// A row: the title and meta line, an A and a B button (and remove, on this user's uploads).
function trackRow(t) {
  const li = document.createElement('li');
  li.dataset.id = t.id;
  const text = fillTrackText(document.createElement('div'), t);
  text.className = 'xfade-track-text';
  li.appendChild(text);
  for (const slot of ['a', 'b']) {
    const btn = document.createElement('button');
    btn.type = 'button';
    btn.className = `xfade-pick xfade-pick-${slot}`;
    btn.textContent = slot.toUpperCase();
    btn.title = slot === 'a' ? 'use as A (fades out)' : 'use as B (fades in)';
    btn.addEventListener('click', (e) => { e.stopPropagation(); pickTrack(slot, t); });
    li.appendChild(btn);
  }
  if (t.source === 'upload') li.appendChild(removeUploadButton(t, tracks.load));
  // a click on the row fills A first, then B
  li.addEventListener('click', () => pickTrack(state.a && !state.b ? 'b' : 'a', t));
  return li;
}

const tracks = trackBrowser({ perPage: 30, item: trackRow, onLoad: () => renderPicks() });

function pickTrack(slot, track) {
  state[slot] = track;
  setUrlParam(slot, track.id);
  renderPicks();
}

function renderPicks() {
  for (const slot of ['a', 'b']) {
    const t = state[slot];
    const el = $(`slot-${slot}`);
    el.classList.toggle('filled', !!t);
    el.querySelector('.xfade-slot-name').textContent = t ? trackLabel(t) : 'pick a track';
    el.title = t ? `${trackLabel(t)} (${formatTime(t.duration)})` : '';
  }
  for (const li of $('track-list').children) {
    li.classList.toggle('is-a', !!state.a && li.dataset.id === state.a.id);
    li.classList.toggle('is-b', !!state.b && li.dataset.id === state.b.id);
  }
  $('render').disabled = !(state.a && state.b) || state.rendering;
}

async function uploadAs(slot, file) {
  const track = await uploadTrack(file);
  pickTrack(slot, track);
  await tracks.load();
  setStatus(`uploaded ${trackLabel(track)} as ${slot.toUpperCase()}`);
}

// ------------------------------------------------------------------------------ settings
async function loadStyles() {
  const s = await api('/api/crossfade/styles');
  state.styles = s;
  for (const id of ['style', 'compare']) {
    const sel = $(id);
    const simple = document.createElement('optgroup');
    simple.label = 'ramps';
    for (const name of s.simple) simple.appendChild(new Option(styleName(name), name));
    sel.appendChild(simple);
    for (const run of s.runs) {     // neural: only when the server has a WaveNet run
      const group = document.createElement('optgroup');
      group.label = `WaveNet ${run.id}${run.origin && run.origin !== 'trained here' ? ` (${run.origin})` : ''}`;
      for (const name of s.neural) {
        group.appendChild(new Option(`neural ${styleName(name)}`, `neural|${run.id}|${name}`));
      }
      sel.appendChild(group);
    }
  }
  const d = s.defaults;
  $('style').value = urlParam('style') || d.style;
  if (!$('style').value) $('style').value = d.style;
  $('seconds').value = String(d.seconds);
  $('seconds').max = String(s.limits.seconds);
  $('context').value = String(d.context);
  $('context').max = String(s.limits.context);
  $('beats').value = String(d.beats);
  for (const name of s.schedules || []) $('schedule').appendChild(new Option(styleName(name), name));
  renderSettings();
}

// The request for one style value ("equal_power" or "neural|RUN|linear").
function requestBody(styleValue) {
  const body = { track_a: state.a.id, track_b: state.b.id };
  const [kind, run, neuralStyle] = styleValue.split('|');
  const seconds = Number($('seconds').value);
  const context = Number($('context').value);
  if (!Number.isFinite(seconds) || seconds <= 0) throw new Error('the overlap must be a positive number of seconds');
  if (!Number.isFinite(context) || context < 0) throw new Error('the context must be 0 or more seconds');
  body.context = context;
  if (kind === 'neural') {
    Object.assign(body, { style: neuralStyle, run, seconds });
  } else {
    body.style = kind;
    if ($('beat-sync').checked) {
      Object.assign(body, { beat_sync: true, beats: Number($('beats').value) });
      if ($('schedule').value) body.schedule = $('schedule').value;
      if (state.candidate) body.candidate = state.candidate;
    } else body.seconds = seconds;
    if ($('key-match').checked) body.key_match = true;
  }
  return body;
}

function renderSettings() {
  const neural = $('style').value.startsWith('neural|');
  $('beat-sync').disabled = neural;
  $('key-match').disabled = neural;
  if (neural) { $('beat-sync').checked = false; $('key-match').checked = false; }
  const sync = $('beat-sync').checked;
  $('beats').disabled = !sync;
  $('schedule').disabled = !sync;
  $('seconds').disabled = sync;
  $('seconds').max = String(neural ? state.styles.limits.neural_seconds : state.styles.limits.seconds);
  $('settings-hint').textContent = neural
    ? `The WaveNet decodes the fade of the two songs' encodings (16 kHz mono, at most ${state.styles.limits.neural_seconds} s). It renders as a job on the server, sample by sample: minutes with the full NSynth model on a CPU; the bar shows its progress.`
    : sync ? `B is time-stretched to A's tempo and its downbeat put on one of A's, at the mix point the planner scores best; the overlap is that many of A's beats (a short cut when the tempi are more than 8 % apart).${$('schedule').value ? ' Each stem follows its own curve: tracks not separated yet are separated first (once).' : ''}`
      : 'Pick two tracks (A fades out, B fades in). The same track twice works too.';
}

// ------------------------------------------------------------------------------ render
async function renderTransition({ candidate = 0 } = {}) {
  if (!state.a || !state.b || state.rendering) return;
  state.candidate = candidate;
  const styles = [$('style').value];
  if ($('compare').value && $('compare').value !== styles[0]) styles.push($('compare').value);
  const bodies = styles.map(requestBody);
  state.rendering = true;
  renderPicks();
  $('result').dataset.state = 'rendering';
  try {
    const results = [];
    for (const [k, body] of bodies.entries()) {
      setStatus(`rendering ${styleName(body.style)}${bodies.length > 1 ? ` (${k + 1}/${bodies.length})` : ''}…`);
      const res = await renderOne(body);
      const buffer = await player.decode(res.audio_url);
      results.push({ res, buffer, label: labelFor(res) });
    }
    player.pause();
    state.results = results;
    state.lastRequests = bodies;
    state.current = 0;
    peakCache.clear();
    await showResult(0, 0);
    renderAB();
    const cached = results.every((r) => r.res.cached);
    setStatus(`${results.map((r) => r.label).join(' vs ')}: ${formatSeconds(results[0].res.duration)}`
              + (cached ? ' (from the cache)' : '') + ' — press Play');
  } catch (e) {
    $('result').dataset.state = state.results.length ? 'ready' : 'empty';
    throw e;
  } finally {
    state.rendering = false;
    renderPicks();
  }
}

// POST one request; a neural fade answers 202 with its job: poll it, with a progress bar,
// until the transition is there (or the job failed: its 422 message is thrown).
async function renderOne(body) {
  let res;
  try {
    res = await postJson('/api/crossfade', body);
  } catch (e) {
    if (e.status !== 409 || !e.body || !e.body.needs_stems) throw e;
    await separate(e.body.needs_stems);        // a stem schedule: separate, then ask again
    res = await postJson('/api/crossfade', body);
  }
  if (res.audio_url) return res;
  const box = $('render-job');
  box.hidden = false;
  try {
    while (!res.audio_url) {
      const pct = Math.round(100 * (res.progress || 0));
      $('render-bar').style.width = `${pct}%`;
      box.querySelector('.progress').setAttribute('aria-valuenow', String(pct));
      const eta = res.eta_seconds != null ? `, about ${formatSeconds(res.eta_seconds)} left` : '';
      $('render-job-text').textContent = `WaveNet ${res.state}${res.stage ? ` (${res.stage})` : ''}: ${pct} %${eta}`;
      await new Promise((resolve) => setTimeout(resolve, 1000));
      res = await api(res.status_url);
    }
  } finally {
    box.hidden = true;
  }
  return { ...res, cached: false };       // rendered for this request, by its job
}

// Separate the tracks a stem schedule needs with the stem mixer's jobs, one after the other,
// showing each job's progress in the job box.
async function separate(trackIds) {
  const box = $('render-job');
  box.hidden = false;
  try {
    for (const id of trackIds) {
      const which = state.a && id === state.a.id ? 'A' : 'B';
      let job = await postJson('/api/mixer/jobs', { track_id: id });
      while (job.state !== 'done') {
        if (job.state === 'failed') throw new Error(`separating ${which} failed: ${job.message}`);
        const pct = Math.round(100 * (job.progress || 0));
        $('render-bar').style.width = `${pct}%`;
        box.querySelector('.progress').setAttribute('aria-valuenow', String(pct));
        $('render-job-text').textContent = `separating ${which} into stems${job.stage ? ` (${job.stage})` : ''}: ${pct} %`;
        setStatus(`separating ${which} into stems: ${pct} %`);
        await new Promise((resolve) => setTimeout(resolve, 500));
        job = await api(`/api/mixer/jobs/${job.id}`);
      }
    }
  } finally {
    box.hidden = true;
  }
}

function labelFor(res) {
  const s = res.sidecar;
  const mode = s.mode === 'simple' ? '' : s.mode === 'beat_sync' ? ' · beat sync'
    : s.mode === 'cut' ? ' · cut' : ' · neural';
  const sched = s.schedule ? ` · ${styleName(s.schedule.name)}` : '';
  return `${styleName(s.style)}${mode}${sched}`;
}

// Switch the player to result k, keeping the position (the A/B of compare mode).
async function showResult(k, at = null) {
  const r = state.results[k];
  const wasPlaying = player.playing;
  const t = at ?? player.currentTime();
  player.stop();
  player.buffer = r.buffer;
  player.offset = Math.min(t, r.buffer.duration);
  state.current = k;
  $('result').dataset.state = 'ready';
  $('result-title').textContent = r.label;
  for (const id of ['play', 'seek', 'jump']) $(id).disabled = false;
  $('seek').max = String(r.buffer.duration);
  drawStatic();
  renderFacts();
  renderPoints();
  renderAB();
  if (wasPlaying) await player.play();
  renderPlay();
}

function renderAB() {
  const two = state.results.length > 1;
  $('ab').hidden = !two;
  if (!two) return;
  state.results.forEach((r, k) => {
    const btn = $(`ab-${k}`);
    btn.textContent = `${'AB'[k]} · ${r.label}`;
    btn.setAttribute('aria-pressed', String(k === state.current));
  });
}

// ------------------------------------------------------------------------------ facts
function dl(el, rows) {
  el.textContent = '';
  for (const [k, v, cls] of rows) {
    const dt = document.createElement('dt');
    dt.textContent = k;
    const dd = document.createElement('dd');
    dd.textContent = v;
    if (cls) dd.className = cls;
    el.append(dt, dd);
  }
}

// "A minor (8A) → C major (8B) · relative", with B's shift when keys were matched.
function keysText(k) {
  const name = (key, why) => (key ? `${key.name} (${key.camelot})` : `no key${why ? ` (${why})` : ''}`);
  let text = `A ${name(k.a, k.a_reason)} → B ${name(k.b, k.b_reason)}`;
  if (k.relation) text += ` · ${k.relation}`;
  if (k.shift_semitones) text += ` · B shifted ${k.shift_semitones > 0 ? '+' : ''}${k.shift_semitones} semitones to ${name(k.b_shifted)}`;
  else if (k.key_match && k.reason) text += ` · not shifted: ${k.reason}`;
  return text;
}

function renderFacts() {
  const r = state.results[state.current];
  if (!r) return;
  const s = r.res.sidecar;
  const tl = s.timeline;
  const modes = { simple: 'simple overlap', beat_sync: 'beat sync', cut: 'cut (tempi too far apart)', neural: 'neural (WaveNet)' };
  const rows = [
    ['Mode', modes[s.mode] || s.mode],
    ['Style', styleName(s.style)],
    ['Overlap', `${formatSeconds(s.seconds)} · ${formatSeconds(tl.overlap_start_s)} → ${formatSeconds(tl.overlap_end_s)}`],
    ['Tempi', s.tempi ? `A ${s.tempi.a.toFixed(1)} bpm · B ${s.tempi.b.toFixed(1)} bpm` : '— (not beat-synced)'],
    ['Stretch', s.stretch_rate !== 1 ? `${s.stretch_percent > 0 ? '+' : ''}${s.stretch_percent.toFixed(2)} % (B × ${s.stretch_rate.toFixed(4)})` : 'none'],
  ];
  if (s.keys) rows.push(['Keys', keysText(s.keys) + (s.keys.a_from === 'other stem' ? ' · from the chords stem' : '')]);
  if (s.fallback_reason) rows.push(['Fallback', s.fallback_reason]);
  if (s.candidates) {
    const c = s.candidates[s.candidate];
    rows.push(['Mix point', `candidate ${c.rank + 1} of ${s.candidates.length} · score ${c.score.toFixed(3)} · A from ${formatSeconds(c.a_start_in_song_s)}, B from ${formatSeconds(c.b_entry_in_song_s)}`]);
  }
  if (s.mode === 'beat_sync' || s.stems) {
    rows.push(['Stems', s.schedule ? `${styleName(s.schedule.name)} (one curve per stem)` : s.stems ? 'whole mix (stems inform the planner)' : 'whole mix (no separations)']);
  }
  if (s.plan) rows.push(['Beats', `${s.plan.beats}${s.plan.octave_factor !== 1 ? ` · B's grid × ${s.plan.octave_factor}` : ''}`]);
  rows.push(
    ['Trims', `A end ${formatSeconds(s.trims.a.end_cut_s)} · B start ${formatSeconds(s.trims.b.start_cut_s)}`],
    ['Loudness', `B ${formatDb(s.loudness.gain_db, '±')}${s.loudness.lufs_a !== null ? ` (A ${s.loudness.lufs_a.toFixed(1)}, B ${s.loudness.lufs_b.toFixed(1)} LUFS)` : ''}${s.loudness.peak_limited ? ' · peak-limited' : ''}`],
    ['Output', `${formatSeconds(tl.duration_s)} · ${formatKhz(s.sr)} · ${s.channels === 1 ? 'mono' : 'stereo'}${r.res.cached ? ' · cached' : ''}`],
    ...(s.generation ? [['Decoding', `${Math.round(s.generation.samples_per_s)} samples/s · ${formatSeconds(s.generation.seconds)} (${s.generation.device})`]] : []),
  );
  dl($('facts'), rows);
  const m = r.res.measures;
  if (m) {
    dl($('measures'), [
      ['Roughness', `${m.roughness_0_100.toFixed(1)} / 100 (Vassilakis ${m.roughness.toFixed(2)})`],
      ['Dissonance', `${m.dissonance_min.toFixed(3)} (Sethares, min model)`],
      ['Loudness dip', m.loudness_dip_db === null ? 'overlap too short to measure' : `${formatDb(m.loudness_dip_db, '±')} at the midpoint`],
    ]);
  } else {
    dl($('measures'), [['', r.res.measures_skipped || 'not measured', 'hint']]);
    const btn = document.createElement('button');
    btn.type = 'button';
    btn.id = 'measure';
    btn.textContent = 'Measure';
    btn.addEventListener('click', guard(measureCurrent));
    $('measures').appendChild(btn);
  }
}

// ------------------------------------------------------------------------------ mix points
// The planner's candidates: markers on a line over A (where each starts), and a ranked list;
// a click renders that candidate (from the cache when it was heard before) and plays it.
function renderPoints() {
  const r = state.results[state.current];
  const s = r && r.res.sidecar;
  const card = $('points-card');
  card.hidden = !(s && s.candidates && s.candidates.length);
  if (card.hidden) return;
  const line = $('points-line');
  line.textContent = '';
  const starts = s.candidates.map((c) => c.a_start_in_song_s);
  const end = Math.max(state.a ? state.a.duration : 0, ...starts.map((t) => t + 1));
  const lo = Math.max(0, Math.min(...starts) - 5);
  const X = (t) => `${(100 * (t - lo)) / Math.max(1e-6, end - lo)}%`;
  const best = s.candidates[0].score;
  const worst = s.candidates[s.candidates.length - 1].score;
  // candidates that start at the same point of A (B entering later) stack in rows
  const row = new Map();
  const rows = {};
  for (const c of s.candidates) {
    const at = c.a_start_in_song_s.toFixed(2);
    rows[at] = (rows[at] || 0) + 1;
    row.set(c.rank, rows[at] - 1);
  }
  line.style.height = `${10 + 24 * Math.max(...Object.values(rows))}px`;
  for (const c of [...s.candidates].reverse()) {     // the best drawn last, on top
    const btn = document.createElement('button');
    btn.type = 'button';
    btn.className = 'xfade-point';
    btn.style.left = X(c.a_start_in_song_s);
    btn.style.top = `${4 + 24 * row.get(c.rank)}px`;
    const w = best > worst ? (c.score - worst) / (best - worst) : 1;
    btn.style.background = mixColor('#3a4152', '#5fb3ff', w);
    btn.textContent = String(c.rank + 1);
    btn.title = pointText(c);
    btn.setAttribute('aria-pressed', String(c.rank === s.candidate));
    btn.addEventListener('click', guard(() => playCandidate(c.rank)));
    line.appendChild(btn);
  }
  const tail = document.createElement('span');
  tail.className = 'xfade-point-end';
  tail.textContent = `A ${formatSeconds(lo)} → ${formatSeconds(end)}`;
  line.appendChild(tail);
  const list = $('points');
  list.textContent = '';
  for (const c of s.candidates) {
    const li = document.createElement('li');
    li.textContent = pointText(c);
    li.classList.toggle('is-current', c.rank === s.candidate);
    li.addEventListener('click', guard(() => playCandidate(c.rank)));
    list.appendChild(li);
  }
}

function pointText(c) {
  const p = c.parts;
  const vocals = p.vocal_overlap_s === null ? '' : ` · vocals together ${p.vocal_overlap_s.toFixed(1)} s`;
  return `score ${c.score.toFixed(3)} · A from ${formatSeconds(c.a_start_in_song_s)}, B from ${formatSeconds(c.b_entry_in_song_s)} · roughness ×${p.roughness_ratio.toFixed(2)}${vocals}${p.stretch ? ` · stretch ${(100 * p.stretch).toFixed(1)} %` : ''}`;
}

async function playCandidate(rank) {
  await renderTransition({ candidate: rank });
  const r = state.results[state.current];
  await seekTo(Math.max(0, r.res.sidecar.timeline.overlap_start_s - PRE_ROLL_S));
  if (!player.playing) await togglePlay();
}

async function measureCurrent() {
  const k = state.current;
  const body = { ...state.lastRequests[k], measures: true };
  setStatus('measuring the transition…');
  state.results[k].res = await postJson('/api/crossfade', body);
  renderFacts();
  setStatus('measured');
}

// ------------------------------------------------------------------------------ drawing
const peakCache = new Map();                  // `${k}:${columns}` -> {lo, hi}
const layer = document.createElement('canvas');   // waveform, overlap, curves: drawn once

function peaks(k, columns) {
  const key = `${k}:${columns}`;
  if (peakCache.has(key)) return peakCache.get(key);
  const buf = state.results[k].buffer;
  const data = [];
  for (let c = 0; c < buf.numberOfChannels; c++) data.push(buf.getChannelData(c));
  const n = buf.length;
  const lo = new Float32Array(columns);
  const hi = new Float32Array(columns);
  for (let x = 0; x < columns; x++) {
    const i0 = Math.floor((x * n) / columns);
    const i1 = Math.max(i0 + 1, Math.floor(((x + 1) * n) / columns));
    let a = Infinity;
    let b = -Infinity;
    for (let i = i0; i < i1; i++) {
      let v = 0;
      for (const ch of data) v += ch[i];
      v /= data.length;
      if (v < a) a = v;
      if (v > b) b = v;
    }
    lo[x] = a === Infinity ? 0 : a;
    hi[x] = b === -Infinity ? 0 : b;
  }
  const out = { lo, hi };
  peakCache.set(key, out);
  return out;
}

// The server's gain at time t (linear), from its binned curves.
function gainAt(s, which, t) {
  const c = s.curves;
  const arr = c[which];
  const tl = s.timeline;
  if (c.span === 'output') {
    const i = clamp(Math.floor((t / tl.duration_s) * arr.length), 0, arr.length - 1);
    return arr[i];
  }
  // neural: the ramp covers the overlap; A is whole before it, B after it
  if (t < tl.overlap_start_s) return which === 'g_out' ? 1 : 0;
  if (t >= tl.overlap_end_s) return which === 'g_out' ? 0 : 1;
  const f = (t - tl.overlap_start_s) / (tl.overlap_end_s - tl.overlap_start_s);
  return arr[Math.min(arr.length - 1, Math.floor(f * arr.length))];
}

function mixColor(a, b, w) {
  const p = (h) => [1, 3, 5].map((i) => parseInt(h.slice(i, i + 2), 16));
  const [ca, cb] = [p(a), p(b)];
  return `rgb(${ca.map((v, i) => Math.round(v + (cb[i] - v) * w)).join(',')})`;
}

function geometry(canvas) {
  const w = canvas.width;
  const h = canvas.height;
  const dpr = window.devicePixelRatio || 1;
  const pad = Object.fromEntries(Object.entries(PAD).map(([k, v]) => [k, v * dpr]));
  return { w, h, dpr, pad, x0: pad.left, x1: w - pad.right, y0: pad.top, y1: h - pad.bottom };
}

function drawStatic() {
  const canvas = $('wave');
  const dpr = window.devicePixelRatio || 1;
  canvas.width = Math.max(1, Math.round(canvas.clientWidth * dpr));
  canvas.height = Math.max(1, Math.round(canvas.clientHeight * dpr));
  layer.width = canvas.width;
  layer.height = canvas.height;
  const r = state.results[state.current];
  $('wave-empty').hidden = !!r;
  const g = layer.getContext('2d');
  g.clearRect(0, 0, layer.width, layer.height);
  if (!r) return;
  const s = r.res.sidecar;
  const tl = s.timeline;
  const { dpr: d, x0, x1, y0, y1 } = geometry(layer);
  const width = x1 - x0;
  const dur = r.buffer.duration;
  const X = (t) => x0 + (t / dur) * width;
  const mid = (y0 + y1) / 2;
  const amp = (y1 - y0) / 2;

  // time grid
  const step = dur > 40 ? 10 : dur > 16 ? 5 : dur > 8 ? 2 : 1;
  g.font = `${11 * d}px system-ui, sans-serif`;
  g.textBaseline = 'top';
  for (let t = 0; t <= dur + 1e-6; t += step) {
    const x = Math.round(X(t)) + 0.5;
    g.fillStyle = COLORS.grid;
    g.fillRect(x, y0, 1, y1 - y0);
    g.fillStyle = COLORS.text;
    g.textAlign = t === 0 ? 'left' : 'center';
    if (X(t) + 12 * d < x1 || t === 0) g.fillText(`${t}s`, x, y1 + 5 * d);
  }
  g.fillStyle = COLORS.grid;
  g.fillRect(x0, Math.round(mid), width, 1);

  // overlap region
  const ox0 = X(tl.overlap_start_s);
  const ox1 = X(tl.overlap_end_s);
  g.fillStyle = COLORS.overlap;
  g.fillRect(ox0, y0, Math.max(1, ox1 - ox0), y1 - y0);
  g.strokeStyle = COLORS.overlapEdge;
  g.setLineDash([4 * d, 3 * d]);
  g.lineWidth = d;
  for (const x of [ox0, ox1]) {
    g.beginPath();
    g.moveTo(Math.round(x) + 0.5, y0);
    g.lineTo(Math.round(x) + 0.5, y1);
    g.stroke();
  }
  g.setLineDash([]);

  // waveform, coloured from A to B by the gains at each column
  const cols = Math.max(1, Math.round(width));
  const { lo, hi } = peaks(state.current, cols);
  let peak = 0;
  for (let x = 0; x < cols; x++) peak = Math.max(peak, Math.abs(lo[x]), Math.abs(hi[x]));
  const scale = peak > 0 ? 0.92 / Math.max(peak, 0.25) : 1;
  for (let x = 0; x < cols; x++) {
    const t = ((x + 0.5) / cols) * dur;
    const ga = gainAt(s, 'g_out', t);
    const gb = gainAt(s, 'g_in', t);
    g.fillStyle = mixColor(COLORS.a, COLORS.b, ga + gb > 0 ? gb / (ga + gb) : 0.5);
    g.globalAlpha = 0.55;
    const top = mid - hi[x] * scale * amp;
    const bot = mid - lo[x] * scale * amp;
    g.fillRect(x0 + x, top, 1, Math.max(1, bot - top));
  }
  g.globalAlpha = 1;

  // beat ticks and the downbeat where B's downbeat lands (beat sync / cut)
  if (tl.a_downbeat_s !== undefined) {
    g.fillStyle = COLORS.beat;
    if (tl.beat_period_s && s.mode === 'beat_sync') {
      for (let t = tl.a_downbeat_s; t <= tl.overlap_end_s + 1e-3; t += tl.beat_period_s) {
        g.fillRect(Math.round(X(t)), y0 - 6 * d, d, 9 * d);
      }
    }
    g.fillRect(Math.round(X(tl.a_downbeat_s)), y0, 2 * d, y1 - y0);
    g.textAlign = 'left';
    g.fillText('downbeat', X(tl.a_downbeat_s) + 4 * d, y0 + 7 * d);
  }

  // the two gain curves (0 at the bottom, 1 at the top of the plot)
  const Y = (v) => y1 - v * (y1 - y0);
  g.lineWidth = 2 * d;
  for (const [which, color] of [['g_out', COLORS.a], ['g_in', COLORS.b]]) {
    g.strokeStyle = color;
    g.beginPath();
    for (let x = 0; x <= cols; x++) {
      const t = Math.min(dur, (x / cols) * dur);
      const y = Y(gainAt(s, which, t));
      if (x === 0) g.moveTo(x0 + x, y); else g.lineTo(x0 + x, y);
    }
    g.stroke();
  }
  drawLanes(s, dur);
  drawFrame();
}

// One lane per stem (A's, then B's): its gain over the output, 0 at the lane's bottom.
const laneLayer = document.createElement('canvas');

function laneRows(s) {
  if (!s.lanes) return [];
  return ['a', 'b'].flatMap((song) => Object.keys(s.lanes[song]).map((stem) => ({ song, stem, gains: s.lanes[song][stem] })));
}

function drawLanes(s, dur) {
  const rows = laneRows(s);
  const box = $('lanes-box');
  box.hidden = !rows.length;
  if (!rows.length) return;
  const canvas = $('lanes');
  const dpr = window.devicePixelRatio || 1;
  box.style.height = `${rows.length * LANE_PX + 4}px`;
  canvas.width = Math.max(1, Math.round(canvas.clientWidth * dpr));
  canvas.height = Math.max(1, Math.round((rows.length * LANE_PX + 4) * dpr));
  laneLayer.width = canvas.width;
  laneLayer.height = canvas.height;
  const g = laneLayer.getContext('2d');
  g.clearRect(0, 0, laneLayer.width, laneLayer.height);
  const x0 = PAD.left * dpr;
  const width = laneLayer.width - (PAD.left + PAD.right) * dpr;
  const tl = s.timeline;
  const X = (t) => x0 + (t / dur) * width;
  g.fillStyle = COLORS.overlap;
  g.fillRect(X(tl.overlap_start_s), 0, Math.max(1, X(tl.overlap_end_s) - X(tl.overlap_start_s)), laneLayer.height);
  g.font = `${10 * dpr}px system-ui, sans-serif`;
  g.textBaseline = 'middle';
  rows.forEach((row, k) => {
    const top = (2 + k * LANE_PX) * dpr;
    const h = (LANE_PX - 3) * dpr;
    const color = row.song === 'a' ? COLORS.a : COLORS.b;
    g.fillStyle = COLORS.grid;
    g.fillRect(x0, top + h, width, 1);
    g.beginPath();
    g.moveTo(x0, top + h);
    row.gains.forEach((v, i) => {
      const xa = x0 + (i / row.gains.length) * width;
      const xb = x0 + ((i + 1) / row.gains.length) * width;
      g.lineTo(xa, top + h - v * h);
      g.lineTo(xb, top + h - v * h);
    });
    g.lineTo(x0 + width, top + h);
    g.closePath();
    g.globalAlpha = 0.45;
    g.fillStyle = color;
    g.fill();
    g.globalAlpha = 1;
    g.fillStyle = COLORS.text;
    g.textAlign = 'left';
    g.fillText(`${row.song.toUpperCase()} ${row.stem}`, x0 + 3 * dpr, top + h / 2);
  });
}

function drawFrame() {
  const canvas = $('wave');
  const g = canvas.getContext('2d');
  g.clearRect(0, 0, canvas.width, canvas.height);
  g.drawImage(layer, 0, 0);
  const r = state.results[state.current];
  if (!r) return;
  const { dpr, x0, x1, y0, y1 } = geometry(canvas);
  const x = x0 + (player.currentTime() / r.buffer.duration) * (x1 - x0);
  g.fillStyle = COLORS.head;
  g.fillRect(Math.round(x) - dpr / 2, y0 - 4 * dpr, 1.5 * dpr, y1 - y0 + 8 * dpr);
  if (!$('lanes-box').hidden) {
    const lanes = $('lanes');
    const h = lanes.getContext('2d');
    h.clearRect(0, 0, lanes.width, lanes.height);
    h.drawImage(laneLayer, 0, 0);
    h.fillStyle = COLORS.head;
    h.fillRect(Math.round(x) - dpr / 2, 0, 1.5 * dpr, lanes.height);
  }
}

// ------------------------------------------------------------------------------ transport
const transport = makeTransport(player, { ready: () => !!player.buffer, format: formatClock });
const { togglePlay, renderPlay, updateClock, seekTo } = transport;

function frame() {
  if (player.buffer) {
    updateClock();
    drawFrame();
  }
  requestAnimationFrame(frame);
}

// ------------------------------------------------------------------------------ wiring

function onKey(e) {
  if (e.ctrlKey || e.metaKey || e.altKey || !player.buffer) return;
  const el = e.target || {};
  if (el.tagName === 'BUTTON' || isTextEntry(el)) return;
  if (e.key === ' ') { e.preventDefault(); guard(togglePlay)(); }
  if (e.key.toLowerCase() === 'b' && state.results.length > 1) guard(showResult)(1 - state.current);
}

function wire() {
  tracks.wire();
  for (const slot of ['a', 'b']) onFileChosen($(`upload-${slot}`), (file) => uploadAs(slot, file));
  $('style').addEventListener('change', () => { setUrlParam('style', $('style').value); renderSettings(); });
  $('beat-sync').addEventListener('change', renderSettings);
  $('schedule').addEventListener('change', renderSettings);
  $('render').addEventListener('click', guard(() => renderTransition()));
  transport.wire();
  $('jump').addEventListener('click', guard(async () => {
    const r = state.results[state.current];
    await seekTo(Math.max(0, r.res.sidecar.timeline.overlap_start_s - PRE_ROLL_S));
    if (!player.playing) await togglePlay();
  }));
  for (const id of ['wave', 'lanes']) {
    $(id).addEventListener('click', guard(async (e) => {
      const r = state.results[state.current];
      if (!r) return;
      const rect = e.currentTarget.getBoundingClientRect();
      const f = (e.clientX - rect.left - PAD.left) / (rect.width - PAD.left - PAD.right);
      await seekTo(clamp(f, 0, 1) * r.buffer.duration);
    }));
  }
  $('ab-0').addEventListener('click', guard(() => showResult(0)));
  $('ab-1').addEventListener('click', guard(() => showResult(1)));
  window.addEventListener('keydown', onKey);
  window.addEventListener('resize', debounce(() => { peakCache.clear(); drawStatic(); }, 150));
}

// ?a=&b= (kept in the address as tracks are picked) restore the picks on reload
async function restorePicks() {
  for (const slot of ['a', 'b']) {
    const id = urlParam(slot);
    if (!id) continue;
    try {
      state[slot] = await getTrack(id);
    } catch (e) {
      setUrlParam(slot, null);
    }
  }
  renderPicks();
}

async function init() {
  wire();
  requestAnimationFrame(frame);
  await Promise.all([loadStyles(), tracks.load(), restorePicks()]);
  drawStatic();
  setStatus(state.a && state.b ? 'ready to render' : 'pick two tracks: A fades out, B fades in');
}

// the test hook: enough to assert on from a browser test (or the console)
window.__crossfade = {
  state, player, pickTrack, drawStatic, playCandidate,
  snapshot() {
    const r = state.results[state.current];
    return {
      a: state.a ? state.a.id : null, b: state.b ? state.b.id : null,
      results: state.results.map((x) => ({ id: x.res.id, duration: x.buffer.duration, label: x.label,
                                           cached: x.res.cached })),
      current: state.current, rendering: state.rendering, loaded: !!player.buffer,
      playing: player.playing, time: player.currentTime(), duration: player.duration,
      sidecar: r ? r.res.sidecar : null, measures: r ? r.res.measures : null,
      lanes: $('lanes-box').hidden ? 0 : laneRows(r.res.sidecar).length,
      points: $('points-card').hidden ? 0 : $('points-line').querySelectorAll('.xfade-point').length,
    };
  },
};

guard(init)();
