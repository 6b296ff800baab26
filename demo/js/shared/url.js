// Every page keeps its state in the address (history.replaceState) so a link reproduces it.

export const urlParam = (name, fallback = null) =>
  new URL(window.location.href).searchParams.get(name) ?? fallback;

// Set a parameter, or remove it when value is null, undefined or ''.
export function setUrlParam(name, value) {
  const url = new URL(window.location.href);
  if (value === null || value === undefined || value === '') url.searchParams.delete(name);
  else url.searchParams.set(name, value);
  history.replaceState(null, '', url);
}
