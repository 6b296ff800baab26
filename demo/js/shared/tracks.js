// The track panel every page has: the searchable, paged track list (#search, #track-list and
// the pager built into #pager), its rows, uploads and the remove button of this user's uploads.
import { api, query } from './api.js';
import { $, debounce, guard, setStatus } from './dom.js';
import { formatTime } from './format.js';

export const getTrack = (id) => api(`/api/tracks/${encodeURIComponent(id)}`);

export async function uploadTrack(file) {
  setStatus(`uploading ${file.name}…`);
  const form = new FormData();
  form.append('file', file, file.name);
  return api('/api/tracks', { method: 'POST', body: form });
}

export const trackLabel = (t) => `${t.title || t.id}${t.artist ? ' — ' + t.artist : ''}`;

// The small line under a track's title in every track list.
function trackMeta(t) {
  return [t.artist, t.genre, t.source === 'upload' ? 'upload' : `FMA ${t.fma_id}`,
          formatTime(t.duration)].filter(Boolean).join(' · ');
}

// A track's title with the meta line under it, as the content of el.
export function fillTrackText(el, t) {
  el.textContent = t.title || t.id;
  const small = document.createElement('small');
  small.textContent = trackMeta(t);
  el.appendChild(small);
  return el;
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

// One row of a track list: title, the meta line, and a remove button on this user's uploads.
function trackItem(t, { selected, onPick, onRemoved }) {
  const li = fillTrackText(document.createElement('li'), t);
  li.dataset.id = t.id;
  if (t.source === 'upload') li.prepend(removeUploadButton(t, onRemoved));
  li.classList.toggle('selected', !!selected);
  li.addEventListener('click', () => onPick(t));
  return li;
}

// The track list of a page. `filters()` adds query parameters (the visualizer's genre),
// `item(t)` builds a row (default: trackItem, which marks `selectedId()` and calls onPick),
// `onLoad(res)` sees every answer of GET /api/tracks.
export function trackBrowser({
  perPage, filters = () => ({}), onPick = null, selectedId = () => null, item = null,
  onLoad = () => {},
}) {
  const pager = $('pager');
  pager.innerHTML = '<button id="prev-page" type="button">‹</button><span id="page-info"></span>'
    + '<button id="next-page" type="button">›</button>';
  const browser = {
    page: 1,
    items: [],
    load: async () => {
      const q = query({ q: $('search').value.trim(), ...filters(), page: browser.page,
                        per_page: perPage });
      const res = await api(`/api/tracks?${q}`);
      browser.items = res.items;
      const list = $('track-list');
      list.textContent = '';
      for (const t of res.items) {
        list.appendChild(item ? item(t) : trackItem(t, {
          selected: t.id === selectedId(), onPick, onRemoved: browser.load,
        }));
      }
      onLoad(res);
      const pages = Math.max(1, Math.ceil(res.total / res.per_page));
      $('page-info').textContent = `${res.total} tracks · page ${res.page}/${pages}`;
      $('prev-page').disabled = res.page <= 1;
      $('next-page').disabled = res.page >= pages;
    },
    // Back to page 1 and load (a new search or filter).
    reload: () => { browser.page = 1; return browser.load(); },
    // The picked track: its label under the list (#current-track) and its row highlighted.
    showPicked(track) {
      $('current-track').textContent = trackLabel(track);
      for (const li of $('track-list').children) li.classList.toggle('selected', li.dataset.id === track.id);
    },
    wire() {
      $('search').addEventListener('input', debounce(guard(browser.reload), 250));
      $('prev-page').addEventListener('click', guard(() => { browser.page -= 1; return browser.load(); }));
      $('next-page').addEventListener('click', guard(() => { browser.page += 1; return browser.load(); }));
    },
  };
  return browser;
}
