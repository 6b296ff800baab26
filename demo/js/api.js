import { formatTime } from './player.js';

// Tiny JSON client for the playground API: every error surfaces as an Error with the
// server's message (the server always answers {"error": "..."} on failure).
export async function api(path, options = {}) {
  const resp = await fetch(path, { credentials: 'same-origin', ...options });
  const type = resp.headers.get('content-type') || '';
  const body = type.includes('application/json') ? await resp.json() : await resp.text();
  if (!resp.ok) {
    const msg = (body && body.error) || `${resp.status} ${resp.statusText}`;
    const err = new Error(msg);
    err.status = resp.status;
    throw err;
  }
  return body;
}

export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== '') q.set(k, v);
  }
  return q.toString();
}

export async function uploadTrack(file) {
  const form = new FormData();
  form.append('file', file, file.name);
  return api('/api/tracks', { method: 'POST', body: form });
}

// A "remove" button for this user's own upload in a track list: confirms, asks the server to
// take the track off the user's uploads (DELETE /api/tracks/<id>), then calls onRemoved.
export function removeUploadButton(t, onRemoved) {
  const btn = document.createElement('button');
  btn.type = 'button';
  btn.className = 'track-remove';
  btn.textContent = '✕';
  btn.title = 'remove this upload from your tracks (saved mixes of it stay)';
  btn.addEventListener('click', guard(async (e) => {
    e.stopPropagation();
    if (!window.confirm(`Remove "${t.title || t.id}" from your uploads?`)) return;
    await api(`/api/tracks/${encodeURIComponent(t.id)}`, { method: 'DELETE' });
    setStatus(`removed ${t.title || t.id} from your uploads`);
    await onRemoved(t);
  }));
  return btn;
}

export function setStatus(text, isError = false) {
  const el = document.getElementById('status');
  if (!el) return;
  el.textContent = text;
  el.classList.toggle('error', isError);
}

// ------------------------------------------------------------------------------ page helpers
// Every page keeps its state in the address so a link reproduces it.
export function setUrlParam(name, value) {
  const url = new URL(window.location.href);
  if (value === null || value === undefined || value === '') url.searchParams.delete(name);
  else url.searchParams.set(name, value);
  history.replaceState(null, '', url);
}

export const urlParam = (name, fallback = null) =>
  new URL(window.location.href).searchParams.get(name) ?? fallback;

// Call fn only once calls have paused for ms (search boxes, window resizes).
export function debounce(fn, ms) {
  let id = 0;
  return (...args) => { clearTimeout(id); id = setTimeout(() => fn(...args), ms); };
}

// Wrap an event handler so its errors end up in the status line, never as uncaught ones.
export function guard(fn) {
  return async (...args) => {
    try {
      return await fn(...args);
    } catch (e) {
      if (e && e.name === 'AbortError') return undefined;
      setStatus(e && e.message ? e.message : String(e), true);
      return undefined;
    }
  };
}

export const trackLabel = (t) => `${t.title || t.id}${t.artist ? ' — ' + t.artist : ''}`;

// The small line under a track's title in every track list.
export function trackMeta(t) {
  return [t.artist, t.genre, t.source === 'upload' ? 'upload' : `FMA ${t.fma_id}`,
          formatTime(t.duration)].filter(Boolean).join(' · ');
}

// One row of a track list: title, the meta line, and a remove button on this user's uploads.
export function trackItem(t, { selected, onPick, onRemoved }) {
  const li = document.createElement('li');
  li.dataset.id = t.id;
  li.textContent = t.title || t.id;
  if (t.source === 'upload') li.prepend(removeUploadButton(t, onRemoved));
  const small = document.createElement('small');
  small.textContent = trackMeta(t);
  li.appendChild(small);
  li.classList.toggle('selected', !!selected);
  li.addEventListener('click', () => onPick(t));
  return li;
}

// The pager under a track list (#page-info, #prev-page, #next-page on every page).
export function showPager(res) {
  const pages = Math.max(1, Math.ceil(res.total / res.per_page));
  document.getElementById('page-info').textContent = `${res.total} tracks · page ${res.page}/${pages}`;
  document.getElementById('prev-page').disabled = res.page <= 1;
  document.getElementById('next-page').disabled = res.page >= pages;
}
