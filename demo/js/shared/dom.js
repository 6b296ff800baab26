// DOM helpers every page uses: the element lookup, the status line, error-guarded handlers,
// debouncing, keyboard focus checks and file inputs.

// The element with this id (every page addresses its controls by id).
export const $ = (id) => document.getElementById(id);

// The status line in the top bar (#status); errors show in red.
export function setStatus(text, isError = false) {
  const el = $('status');
  if (!el) return;
  el.textContent = text;
  el.classList.toggle('error', isError);
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

// Call fn only once calls have paused for ms (search boxes, window resizes).
export function debounce(fn, ms) {
  let id = 0;
  return (...args) => { clearTimeout(id); id = setTimeout(() => fn(...args), ms); };
}

// Whether a key press on el is typing (a text field, a select), not a page shortcut.
export function isTextEntry(el) {
  return el.tagName === 'SELECT' || el.tagName === 'TEXTAREA'
    || (el.tagName === 'INPUT' && !['range', 'checkbox', 'button'].includes(el.type));
}

// Call onFile(file) (error-guarded) when a file is chosen in the <input type=file>; the input
// is cleared so that choosing the same file again fires again.
export function onFileChosen(input, onFile) {
  input.addEventListener('change', guard(async (e) => {
    const file = e.target.files[0];
    e.target.value = '';
    if (file) await onFile(file);
  }));
}
