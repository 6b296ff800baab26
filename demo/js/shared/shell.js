// The top bar of every page (<header class="topbar">): the title, the nav between the pages
// with the current one marked, and the status line (#status, see dom.setStatus).

const PAGES = [
  { id: 'visualizer', href: '/', title: 'Visualizer' },
  { id: 'mixer', href: '/mixer.html', title: 'Mixer', serverOnly: 'the stem mixer' },
  { id: 'crossfade', href: '/crossfade.html', title: 'Crossfade', serverOnly: 'crossfading' },
];

export function buildTopbar(current) {
  const bar = document.querySelector('header.topbar');
  const title = document.createElement('strong');
  title.textContent = 'Deep audio playground';
  const nav = document.createElement('nav');
  for (const p of PAGES) {
    const a = document.createElement('a');
    a.href = p.href;
    a.textContent = p.title;
    if (p.id === current) a.className = 'active';
    if (p.serverOnly) a.dataset.serverOnly = p.serverOnly;    // the static site marks these
    if (nav.firstChild) nav.append(' ');     // the space between the links, as in HTML source
    nav.appendChild(a);
  }
  const status = document.createElement('span');
  status.id = 'status';
  status.className = 'status';
  status.setAttribute('role', 'status');
  bar.replaceChildren(title, nav, status);
}
