// Tiny JSON client for the playground API: every error surfaces as an Error with the
// server's message (the server always answers {"error": "..."} on failure).

// The message of a failed response: the server's {"error"} if there is one, else the status.
const errorMessage = (resp, body) => (body && body.error) || `${resp.status} ${resp.statusText}`;

let local = null;          // a static site's stand-in for the server (site.js)
export function serveLocally(handler) { local = handler; }

export async function api(path, options = {}) {
  if (local) return local(path, options);
  const resp = await fetch(path, { credentials: 'same-origin', ...options });
  const type = resp.headers.get('content-type') || '';
  const body = type.includes('application/json') ? await resp.json() : await resp.text();
  if (!resp.ok) {
    const err = new Error(errorMessage(resp, body));
    err.status = resp.status;
    err.body = body;                          // the whole answer (e.g. needs_stems on a 409)
    throw err;
  }
  return body;
}

// The same message for a failed response read with plain fetch (audio, downloads).
export async function fetchError(resp) {
  let body = null;
  try {
    body = await resp.json();
  } catch (e) { /* not JSON */ }
  return errorMessage(resp, body);
}

// fetch options that POST `body` as JSON.
export const jsonPost = (body) => ({
  method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body),
});

export const postJson = (path, body) => api(path, jsonPost(body));

// A query string of the params that have a value.
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== '') q.set(k, v);
  }
  return q.toString();
}
