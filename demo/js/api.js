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

export function setStatus(text, isError = false) {
  const el = document.getElementById('status');
  if (!el) return;
  el.textContent = text;
  el.classList.toggle('error', isError);
}
