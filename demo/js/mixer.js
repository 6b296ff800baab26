// The stem mixer page: pick or upload a song, separate it on the server (a job with progress),
// then mix the four stems live in the browser (Web Audio; no server round trip per slider
// move), compare with the original at equal loudness, export on the server with the same dB
// and pan math, save named mixes and see the personalised gain suggestions.
import { StemPlayer } from './audio/stemplayer.js';
import { api, fetchError, jsonPost, postJson } from './shared/api.js';
import { $, guard, isTextEntry, onFileChosen, setStatus } from './shared/dom.js';
import { clamp, formatDb, formatKhz, formatPan, formatTime } from './shared/format.js';
import { buildTopbar } from './shared/shell.js';
import { getTrack, trackBrowser, trackLabel, uploadTrack } from './shared/tracks.js';
import { makeTransport } from './shared/transport.js';
import { setUrlParam, urlParam } from './shared/url.js';

buildTopbar('mixer');
const STEM_ORDER = ['vocals', 'drums', 'bass', 'other'];
const GAIN_MIN = -60;
const GAIN_MAX = 12;
const POLL_MS = 500;
const POLL_MAX_FAILURES = 5;                // consecutive failed polls before giving up
const POLL_STALL_MS = 30 * 60 * 1000;       // no change at all for this long: stop polling
const MUTE_KEYS = ['1', '2', '3', '4'];
const SOLO_KEYS = ['q', 'w', 'e', 'r'];

const engine = new StemPlayer();
const state = {
  track: null,
  job: null,                 // the job whose stems are (being) loaded
  stems: [],                 // stem names in display order
  mix: emptyMix([]),         // {gains, pans, mutes, solos}
  suggestion: null,          // {gains, trained, n_examples}
  mixes: [], mixesTotal: 0, mixId: null,
  pollToken: 0, loadToken: 0, polling: false,
  trackTitles: new Map(),
};

function emptyMix(stems) {
  return {
    gains: Object.fromEntries(stems.map((s) => [s, 0])),
    pans: Object.fromEntries(stems.map((s) => [s, 0])),
    mutes: [], solos: [],
  };
}

// ------------------------------------------------------------------------------ tracks
const tracks = trackBrowser({
  perPage: 50,
  selectedId: () => state.track && state.track.id,
  onPick: selectTrack,
  onLoad(res) {
    for (const t of res.items) state.trackTitles.set(t.id, trackLabel(t));
  },
});

function selectTrack(track) {
  state.track = track;
  state.trackTitles.set(track.id, trackLabel(track));
  tracks.showPicked(track);
  $('separate').disabled = false;
}

async function trackTitle(trackId) {
  if (!state.trackTitles.has(trackId)) {
    try {
      state.trackTitles.set(trackId, trackLabel(await getTrack(trackId)));
    } catch (e) {
      state.trackTitles.set(trackId, trackId);
    }
  }
  return state.trackTitles.get(trackId);
}

async function startSeparation() {
  if (!state.track) return;
  $('separate').disabled = true;
  try {
    setStatus(`starting separation of ${state.track.title || state.track.id}…`);
    const job = await postJson('/api/mixer/jobs', { track_id: state.track.id });
    state.mixId = null;
    setUrlParam('mix', null);
    renderMixes();
    await attachJob(job);
  } finally {
    $('separate').disabled = !state.track;
  }
}

async function uploadAndSeparate(file) {
  const track = await uploadTrack(file);
  selectTrack(track);
  await tracks.load();
  await startSeparation();
}

// ------------------------------------------------------------------------------ jobs
// Show a job and follow it: poll while it runs, load its stems when it is done. `settings`
// (a saved mix) are applied once the stems are loaded.
async function attachJob(job, settings = null) {
  const sameStems = state.job && state.job.id === job.id && engine.loaded && job.state === 'done';
  state.job = job;
  setUrlParam('job', job.id);
  if (sameStems) {
    renderJob(job);
    if (settings) applySettings(settings);
    return;
  }
  state.pollToken++;
  state.loadToken++;
  engine.unload();
  setConsoleEnabled(false);
  clearSuggestions();
  renderJob(job);
  if (job.state === 'done') await loadStems(job, settings);
  else if (job.state === 'failed') showFailure(job);
  else guard(pollJob)(job.id, settings);
}

function renderJob(job) {
  const card = $('job-card');
  card.dataset.state = job.state;
  const p = job.state === 'done' ? 1 : clamp(job.progress || 0, 0, 1);
  $('job-bar').style.width = `${(100 * p).toFixed(1)}%`;
  card.querySelector('.progress').setAttribute('aria-valuenow', String(Math.round(100 * p)));
  $('job-percent').textContent = job.state === 'failed' ? 'failed' : `${Math.round(100 * p)}%`;
  const title = state.trackTitles.get(job.track_id) || job.track_id;
  const detail = [];
  if (job.state === 'queued') {
    $('job-title').textContent = `Queued: ${title}`;
    detail.push('waiting for a worker');
  } else if (job.state === 'running') {
    $('job-title').textContent = `Separating ${title}`;
    if (job.stage) detail.push(job.stage);
    if (job.eta_seconds !== null && job.eta_seconds !== undefined) {
      detail.push(`about ${formatEta(job.eta_seconds)} left`);
    }
  } else if (job.state === 'done') {
    $('job-title').textContent = `Stems of ${title}`;
    detail.push(`${job.backend}${job.backend === 'demucs' ? ' ' + job.model : ''}`
                + (job.backend_reason && !job.backend_reason.endsWith('asked for')
                  ? ` (${job.backend_reason.split(';')[0]})` : ''));
    if (job.duration) detail.push(formatTime(job.duration));
    if (job.sample_rate) detail.push(formatKhz(job.sample_rate));
    if (job.cache_hit) detail.push('from the cache');
  } else if (job.state === 'failed') {
    $('job-title').textContent = `Separation of ${title} failed`;
    detail.push(job.message || 'no message');
  }
  $('job-detail').textContent = detail.join(' · ');
  // why this backend (auto's choice, weights fetched by the job): on hover, and for tests
  $('job-detail').title = job.backend_reason ? `${job.backend}: ${job.backend_reason}` : '';
  $('retry').hidden = !(job.state === 'failed' && job.retryable);
  $('retry').textContent = 'Retry';
  $('retry').dataset.action = 'retry';
}

function formatEta(s) {
  if (s < 1) return 'a second';
  if (s < 90) return `${Math.round(s)} s`;
  return `${Math.round(s / 60)} min`;
}

function showFailure(job) {
  setStatus(`separation failed: ${job.message || 'unknown error'}`
            + (job.retryable ? ' (you can retry)' : ''), true);
}

// Poll every POLL_MS until done or failed; stop after repeated network failures or a long
// stall (and offer "Check again"), and whenever another job replaces this one.
async function pollJob(jobId, settings) {
  const token = ++state.pollToken;
  state.polling = true;
  let failures = 0;
  let lastKey = '';
  let lastChange = Date.now();
  try {
    for (;;) {
      await new Promise((r) => setTimeout(r, POLL_MS));
      if (token !== state.pollToken) return;
      let job;
      try {
        job = await api(`/api/mixer/jobs/${jobId}`);
        failures = 0;
      } catch (e) {
        if (token !== state.pollToken) return;
        if (e.status && e.status < 500) throw e;           // unknown job, not ours: final
        failures++;
        setStatus(`checking the job failed (${e.message}), trying again…`, true);
        if (failures >= POLL_MAX_FAILURES) return offerCheckAgain(jobId, settings, e.message);
        continue;
      }
      if (token !== state.pollToken) return;
      state.job = job;
      renderJob(job);
      const key = `${job.state}|${job.stage}|${job.progress}`;
      if (key !== lastKey) { lastKey = key; lastChange = Date.now(); }
      if (job.state === 'done') {
        state.polling = false;
        await loadStems(job, settings);
        return;
      }
      if (job.state === 'failed') { showFailure(job); return; }
      setStatus(job.state === 'queued' ? 'queued…' : `separating: ${job.stage || 'working'}…`);
      if (Date.now() - lastChange > POLL_STALL_MS) {
        return offerCheckAgain(jobId, settings, 'no progress for 30 minutes');
      }
    }
  } finally {
    if (token === state.pollToken) state.polling = false;
  }
}

function offerCheckAgain(jobId, settings, why) {
  setStatus(`stopped checking the job: ${why}`, true);
  const btn = $('retry');
  btn.hidden = false;
  btn.textContent = 'Check again';
  btn.dataset.action = 'check';
  state.checkAgain = guard(() => pollJob(jobId, settings));
}

async function retryJob() {
  const job = state.job;
  if (!job) return;
  if ($('retry').dataset.action === 'check') {
    $('retry').hidden = true;
    setStatus('checking the job again…');
    await state.checkAgain();
    return;
  }
  $('retry').disabled = true;
  try {
    const again = await api(`/api/mixer/jobs/${job.id}/retry`, { method: 'POST' });
    setStatus('retrying the separation…');
    await attachJob(again);
  } finally {
    $('retry').disabled = false;
  }
}

// ------------------------------------------------------------------------------ stems
async function loadStems(job, settings) {
  const token = ++state.loadToken;
  setStatus('loading the stems…');
  const names = STEM_ORDER.filter((s) => job.stems[s])
    .concat(Object.keys(job.stems).filter((s) => !STEM_ORDER.includes(s)));
  const urls = Object.fromEntries(names.map((s) => [s, job.stems[s].preview]));
  await engine.load(urls, job.original_url);
  if (token !== state.loadToken) return;               // another job was picked meanwhile
  engine.setPreviewLoudness(job.mix_lufs);
  state.stems = names;
  state.mix = emptyMix(names);
  buildStrips();
  setConsoleEnabled(true);
  $('seek').max = String(engine.duration);
  $('seek').value = '0';
  $('ab-original').disabled = !engine.original;
  $('ab-original').title = engine.original ? 'the original track at the same position (B)'
    : `original unavailable: ${engine.originalError}`;
  const lvl = job.mix_lufs === null || job.mix_lufs === undefined
    ? 'Preview level: unmeasured (0 dB).'
    : `Preview level ${formatDb(engine.masterDb)} (stems at ${job.mix_lufs.toFixed(1)} LUFS → −14).`;
  $('preview-level').textContent = lvl;
  if (settings) applySettings(settings);
  else applyMix();
  renderAB();
  updateClock();
  setStatus(`ready: ${names.length} stems of ${state.trackTitles.get(job.track_id) || job.track_id}`
            + (engine.originalError ? ` (A/B unavailable: ${engine.originalError})` : ''));
  loadSuggestions(job.id, token);
}

function setConsoleEnabled(on) {
  for (const id of ['console', 'export-card', 'save-card']) $(id).disabled = !on;
  if (!on) {
    $('strips').textContent = '';
    $('clock').textContent = '0:00 / 0:00';
    $('play').textContent = '▶ Play';
    $('preview-level').textContent = '';
    $('export-report').textContent = '';
  }
}

function buildStrips() {
  const box = $('strips');
  box.textContent = '';
  state.stems.forEach((name, k) => {
    const row = document.createElement('div');
    row.className = 'strip';
    row.dataset.stem = name;
    row.innerHTML = `
      <span class="stem-name"><i class="swatch"></i><span></span></span>
      <button type="button" class="mute" aria-pressed="false">M</button>
      <button type="button" class="solo" aria-pressed="false">S</button>
      <div class="fader">
        <input type="range" class="gain" min="${GAIN_MIN}" max="${GAIN_MAX}" step="0.5" value="0">
        <span class="ghost" hidden></span>
      </div>
      <output class="gain-out">0.0 dB</output>
      <input type="range" class="pan" min="-1" max="1" step="0.01" value="0">
      <output class="pan-out">C</output>
      <div class="level"><div></div></div>`;
    row.querySelector('.stem-name span').textContent = name;
    const gain = row.querySelector('.gain');
    const pan = row.querySelector('.pan');
    gain.setAttribute('aria-label', `${name} gain in dB`);
    pan.setAttribute('aria-label', `${name} pan`);
    row.querySelector('.mute').title = `mute ${name} (${MUTE_KEYS[k] || ''})`;
    row.querySelector('.solo').title = `solo ${name}; several solos play together (${(SOLO_KEYS[k] || '').toUpperCase()})`;
    gain.addEventListener('input', () => setGain(name, Number(gain.value)));
    gain.addEventListener('dblclick', () => setGain(name, 0));
    pan.addEventListener('input', () => setPan(name, Number(pan.value)));
    pan.addEventListener('dblclick', () => setPan(name, 0));
    row.querySelector('.mute').addEventListener('click', () => toggle('mutes', name));
    row.querySelector('.solo').addEventListener('click', () => toggle('solos', name));
    box.appendChild(row);
  });
}

function strip(name) { return $('strips').querySelector(`.strip[data-stem="${name}"]`); }

// ------------------------------------------------------------------------------ mixing
function setGain(name, db) {
  state.mix.gains[name] = clamp(Math.round(db * 2) / 2, GAIN_MIN, GAIN_MAX);
  applyMix();
}

function setPan(name, p) {
  state.mix.pans[name] = clamp(Math.round(p * 100) / 100, -1, 1);
  applyMix();
}

function toggle(which, name) {
  const set = new Set(state.mix[which]);
  if (set.has(name)) set.delete(name); else set.add(name);
  state.mix[which] = state.stems.filter((s) => set.has(s));
  applyMix();
}

// Push the mix to the audio graph (instantly, no request) and to the controls.
function applyMix() {
  engine.applyMix(state.mix);
  const solos = new Set(state.mix.solos);
  for (const name of state.stems) {
    const row = strip(name);
    if (!row) continue;
    const db = state.mix.gains[name];
    const p = state.mix.pans[name];
    const gain = row.querySelector('.gain');
    const pan = row.querySelector('.pan');
    if (Number(gain.value) !== db) gain.value = String(db);
    if (Number(pan.value) !== p) pan.value = String(p);
    gain.style.setProperty('--f', String((db - GAIN_MIN) / (GAIN_MAX - GAIN_MIN)));
    row.querySelector('.gain-out').textContent = formatDb(db);
    row.querySelector('.pan-out').textContent = formatPan(p);
    const muted = state.mix.mutes.includes(name);
    const soloed = solos.has(name);
    row.querySelector('.mute').setAttribute('aria-pressed', String(muted));
    row.querySelector('.solo').setAttribute('aria-pressed', String(soloed));
    row.classList.toggle('silent', muted || (solos.size > 0 && !soloed));
  }
}

function resetMix() {
  state.mix = emptyMix(state.stems);
  applyMix();
  setStatus('mix reset: all stems at 0 dB, centred, unmuted');
}

// A saved mix's settings -> the controls (unknown keys are left alone; missing ones default).
function applySettings(s) {
  const mix = emptyMix(state.stems);
  for (const name of state.stems) {
    if (s.gains && Number.isFinite(s.gains[name])) mix.gains[name] = clamp(s.gains[name], GAIN_MIN, GAIN_MAX);
    if (s.pans && Number.isFinite(s.pans[name])) mix.pans[name] = clamp(s.pans[name], -1, 1);
  }
  mix.mutes = state.stems.filter((n) => (s.mutes || []).includes(n));
  mix.solos = state.stems.filter((n) => (s.solos || []).includes(n));
  state.mix = mix;
  if (s.format) $('format').value = s.format;
  if (s.normalize) $('normalize').value = s.normalize;
  if (Number.isFinite(s.target_lufs)) $('target-lufs').value = String(s.target_lufs);
  renderNormalize();
  applyMix();
}

// What the server's MixSettings gets (mixer_render.py): the same keys the page mixes with.
function mixSettings() {
  const s = {
    gains: { ...state.mix.gains }, pans: { ...state.mix.pans },
    mutes: [...state.mix.mutes], solos: [...state.mix.solos],
    normalize: $('normalize').value, format: $('format').value,
  };
  if (s.normalize === 'lufs') {
    const t = Number($('target-lufs').value);
    if (!Number.isFinite(t) || t < -40 || t > -5) throw new Error('the target loudness must be between −40 and −5 LUFS');
    s.target_lufs = t;
  }
  return s;
}

function renderNormalize() {
  $('target-label').hidden = $('normalize').value !== 'lufs';
}

// ------------------------------------------------------------------------------ suggestions
function clearSuggestions() {
  state.suggestion = null;
  $('suggest-info').textContent = '';
  $('apply-suggestion').disabled = true;
}

async function loadSuggestions(jobId, token = state.loadToken) {
  try {
    const s = await api(`/api/mixer/jobs/${jobId}/suggestions`);
    if (token !== state.loadToken) return;
    state.suggestion = s;
    renderSuggestions();
  } catch (e) {
    if (token !== state.loadToken) return;
    $('suggest-info').textContent = `no suggestions: ${e.message}`;
  }
}

function renderSuggestions() {
  const s = state.suggestion;
  if (!s) return;
  for (const name of state.stems) {
    const ghost = strip(name) && strip(name).querySelector('.ghost');
    if (!ghost) continue;
    const db = clamp(s.gains[name] ?? 0, GAIN_MIN, GAIN_MAX);
    ghost.hidden = false;
    ghost.dataset.db = String(db);
    ghost.style.setProperty('--f', String((db - GAIN_MIN) / (GAIN_MAX - GAIN_MIN)));
    ghost.title = `suggested ${formatDb(db)}`;
  }
  const n = s.n_examples;
  $('suggest-info').textContent = s.trained
    ? `Suggestion (yellow ticks) learned from ${n} saved mix${n === 1 ? '' : 'es'}`
    : 'Suggestion (yellow ticks): 0 dB, learned from 0 saved mixes; save mixes to teach it';
  $('apply-suggestion').disabled = false;
}

function applySuggestion() {
  const s = state.suggestion;
  if (!s) return;
  for (const name of state.stems) {
    if (Number.isFinite(s.gains[name])) state.mix.gains[name] = clamp(Math.round(s.gains[name] * 2) / 2, GAIN_MIN, GAIN_MAX);
  }
  applyMix();
  setStatus('suggested gains applied (pans, mutes and solos unchanged)');
}

// ------------------------------------------------------------------------------ transport
const transport = makeTransport(engine, { ready: () => engine.loaded });
const { togglePlay, renderPlay, updateClock } = transport;

function setAB(which) {
  engine.setAB(which);
  renderAB();
}

function renderAB() {
  $('ab-mix').setAttribute('aria-pressed', String(engine.ab === 'mix'));
  $('ab-original').setAttribute('aria-pressed', String(engine.ab === 'original'));
  $('console').classList.toggle('listening-original', engine.ab === 'original');
}

// Meters: instant attack, METER_FALL_DB_S release (a raw 46 ms RMS flickers too much to read).
const METER_FALL_DB_S = 30;
const meterDb = {};
let lastFrame = 0;
function frame(now) {
  const dt = lastFrame ? Math.min(0.1, (now - lastFrame) / 1000) : 0;
  lastFrame = now;
  if (engine.loaded) {
    updateClock();
    const levels = engine.playing ? engine.levels() : {};
    for (const name of state.stems) {
      const bar = strip(name) && strip(name).querySelector('.level > div');
      if (!bar) continue;
      const db = Math.max(levels[name] ?? -Infinity, (meterDb[name] ?? -60) - METER_FALL_DB_S * dt);
      meterDb[name] = db;
      bar.style.width = `${(100 * clamp((db + 60) / 60, 0, 1)).toFixed(1)}%`;
    }
  }
  requestAnimationFrame(frame);
}

// ------------------------------------------------------------------------------ export
async function exportMix() {
  const job = state.job;
  if (!job || !engine.loaded) return;
  const settings = mixSettings();
  $('export').disabled = true;
  $('export-report').textContent = 'rendering…';
  setStatus(`rendering the ${settings.format} mix on the server…`);
  try {
    const resp = await fetch(`/api/mixer/jobs/${job.id}/mix`,
                             { credentials: 'same-origin', ...jsonPost(settings) });
    if (!resp.ok) throw new Error(`export: ${await fetchError(resp)}`);
    const blob = await resp.blob();
    const disposition = resp.headers.get('Content-Disposition') || '';
    const m = /filename\*?=(?:UTF-8'')?"?([^";]+)"?/i.exec(disposition);
    const name = m ? decodeURIComponent(m[1]) : `mix.${settings.format.startsWith('wav') ? 'wav' : settings.format}`;
    const href = URL.createObjectURL(blob);
    const a = document.createElement('a');
    a.href = href;
    a.download = name;
    a.hidden = true;
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(href), 60000);
    const report = describeReport(resp.headers.get('X-Mix-Report'));
    $('export-report').textContent = `${name} · ${(blob.size / 2 ** 20).toFixed(1)} MB${report ? ' · ' + report : ''}`;
    $('export-report').dataset.size = String(blob.size);
    setStatus(`exported ${name}`);
  } catch (e) {
    $('export-report').textContent = '';
    throw e;
  } finally {
    $('export').disabled = false;
  }
}

function describeReport(header) {
  if (!header) return '';
  let r;
  try { r = JSON.parse(header); } catch (e) { return ''; }
  const parts = [];
  if (Number.isFinite(r.output_lufs)) parts.push(`${r.output_lufs.toFixed(1)} LUFS`);
  else if (Number.isFinite(r.input_lufs) && Number.isFinite(r.gain_db)) {
    parts.push(`${(r.input_lufs + r.gain_db).toFixed(1)} LUFS`);
  }
  if (Number.isFinite(r.gain_db)) parts.push(`gain ${formatDb(r.gain_db)}`);
  if (Number.isFinite(r.sample_peak_dbfs)) parts.push(`peak ${r.sample_peak_dbfs.toFixed(1)} dBFS`);
  if (r.limiter_max_reduction_db > 0.05) {
    parts.push(`limiter up to ${r.limiter_max_reduction_db.toFixed(1)} dB on ` +
               `${(r.limiter_limited_percent || 0).toFixed(1)} % of samples`);
  }
  if (r.limited_by_true_peak) parts.push('held at the true-peak ceiling');
  return parts.join(', ');
}

// ------------------------------------------------------------------------------ saved mixes
async function loadMixes() {
  const res = await api('/api/mixer/mixes?per_page=100');
  state.mixes = res.items;
  state.mixesTotal = res.total;
  renderMixes();
  const ids = [...new Set(state.mixes.map((m) => m.track_id))].filter((id) => !state.trackTitles.has(id));
  if (ids.length) {
    await Promise.all(ids.slice(0, 50).map(trackTitle));
    renderMixes();
  }
}

function renderMixes() {
  const list = $('mix-list');
  list.textContent = '';
  $('mixes-empty').hidden = state.mixes.length > 0;
  const more = $('mixes-more');
  more.hidden = state.mixesTotal <= state.mixes.length;
  more.textContent = `Showing the newest ${state.mixes.length} of ${state.mixesTotal} saved mixes.`;
  for (const m of state.mixes) {
    const li = document.createElement('li');
    li.dataset.id = m.id;
    li.classList.toggle('selected', m.id === state.mixId);
    const text = document.createElement('div');
    text.className = 'mix-text';
    const name = document.createElement('span');
    name.className = 'mix-name';
    name.textContent = m.name;
    const small = document.createElement('small');
    const when = new Date(m.created * 1000);
    small.textContent = `${state.trackTitles.get(m.track_id) || m.track_id} · ${when.toLocaleString([], { dateStyle: 'short', timeStyle: 'short' })}`;
    text.append(name, small);
    const open = document.createElement('button');
    open.type = 'button';
    open.className = 'open';
    open.textContent = 'Open';
    open.addEventListener('click', guard(() => openMix(m.id)));
    const del = document.createElement('button');
    del.type = 'button';
    del.className = 'delete';
    del.textContent = '✕';
    del.title = `delete “${m.name}”`;
    del.setAttribute('aria-label', `delete ${m.name}`);
    del.addEventListener('click', guard(() => deleteMix(m)));
    li.append(text, open, del);
    list.appendChild(li);
  }
}

async function saveMix() {
  const job = state.job;
  if (!job || !engine.loaded) return;
  const name = $('mix-name').value.trim();
  if (!name) {
    $('mix-name').focus();
    throw new Error('give the mix a name first');
  }
  $('save').disabled = true;
  try {
    const saved = await postJson('/api/mixer/mixes',
                                 { job_id: job.id, name, settings: mixSettings() });
    state.mixId = saved.id;
    setUrlParam('mix', saved.id);
    await loadMixes();
    setStatus(`saved “${saved.name}”`);
    await loadSuggestions(job.id);            // the suggestion model just learned from it
  } finally {
    $('save').disabled = false;
  }
}

async function openMix(mixId) {
  setStatus('opening the mix…');
  const m = await api(`/api/mixer/mixes/${mixId}`);
  if (!m.job) throw new Error(`the stems of “${m.name}” are gone (job ${m.job_id} no longer exists)`);
  state.mixId = m.id;
  setUrlParam('mix', m.id);
  renderMixes();
  $('mix-name').value = m.name;
  await trackTitle(m.track_id);
  engine.pause();
  renderPlay();
  await attachJob(m.job, m.settings);
  if (state.job && state.job.id === m.job.id && engine.loaded) setStatus(`opened “${m.name}”`);
}

async function deleteMix(m) {
  await api(`/api/mixer/mixes/${m.id}`, { method: 'DELETE' });
  if (state.mixId === m.id) { state.mixId = null; setUrlParam('mix', null); }
  await loadMixes();
  setStatus(`deleted “${m.name}”`);
  if (state.job && engine.loaded) await loadSuggestions(state.job.id);
}

// ------------------------------------------------------------------------------ wiring

function onKey(e) {
  if (e.ctrlKey || e.metaKey || e.altKey || !engine.loaded) return;
  const el = e.target || {};
  if (isTextEntry(el)) return;
  const key = e.key.toLowerCase();
  if (key === ' ') {
    if (el.tagName === 'BUTTON') return;        // space clicks the focused button itself
    e.preventDefault();
    guard(togglePlay)();
    return;
  }
  if (key === 'b') { guard(setAB)(engine.ab === 'mix' ? 'original' : 'mix'); return; }
  const m = MUTE_KEYS.indexOf(key);
  if (m >= 0 && state.stems[m]) { toggle('mutes', state.stems[m]); return; }
  const s = SOLO_KEYS.indexOf(key);
  if (s >= 0 && state.stems[s]) toggle('solos', state.stems[s]);
}

function wire() {
  tracks.wire();
  onFileChosen($('upload'), uploadAndSeparate);
  $('separate').addEventListener('click', guard(startSeparation));
  $('retry').addEventListener('click', guard(retryJob));
  transport.wire();
  $('ab-mix').addEventListener('click', guard(() => setAB('mix')));
  $('ab-original').addEventListener('click', guard(() => setAB('original')));
  $('reset').addEventListener('click', guard(resetMix));
  $('apply-suggestion').addEventListener('click', guard(applySuggestion));
  $('normalize').addEventListener('change', renderNormalize);
  $('export').addEventListener('click', guard(exportMix));
  $('save').addEventListener('click', guard(saveMix));
  $('mix-name').addEventListener('keydown', (e) => { if (e.key === 'Enter') guard(saveMix)(); });
  window.addEventListener('keydown', onKey);
}

async function init() {
  wire();
  renderNormalize();
  requestAnimationFrame(frame);
  await Promise.all([tracks.load(), loadMixes()]);
  // a shared or reloaded address: ?mix= opens the mix, ?job= follows the job
  const mixId = urlParam('mix');
  const jobId = urlParam('job');
  if (mixId) {
    try {
      await openMix(mixId);
    } catch (e) {
      setUrlParam('mix', null);
      throw e;
    }
  } else if (jobId) {
    const job = await api(`/api/mixer/jobs/${jobId}`);
    await trackTitle(job.track_id);
    await attachJob(job);
  } else {
    setStatus('pick a track to separate, or open a saved mix');
  }
}

// the test hook: enough to assert on from a browser test (or the console)
window.__mixer = {
  state, engine,
  snapshot() {
    const nodes = engine.nodeValues();
    return {
      jobId: state.job ? state.job.id : null, jobState: state.job ? state.job.state : null,
      loaded: engine.loaded, playing: engine.playing, time: engine.currentTime(),
      duration: engine.duration, ab: engine.ab, masterDb: engine.masterDb,
      gainsDb: { ...state.mix.gains }, pans: { ...state.mix.pans },
      mutes: [...state.mix.mutes], solos: [...state.mix.solos],
      nodeGains: nodes.gains, nodePans: nodes.pans, nodes,
      suggestion: state.suggestion, mixId: state.mixId, polling: state.polling,
    };
  },
};

guard(init)();
