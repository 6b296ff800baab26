// Numbers as the pages show them, and the one clamp.

export const clamp = (x, lo, hi) => Math.max(lo, Math.min(hi, x));

// m:ss (a song position or length).
export function formatTime(t) {
  const s = Math.max(0, Math.floor(t));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

// m:ss.t, with tenths (short transitions).
export const formatClock = (t) => `${formatTime(t)}.${Math.floor((Math.max(0, t) % 1) * 10)}`;

// Seconds with two decimals: "2.50 s".
export const formatSeconds = (s) => `${Number(s).toFixed(2)} s`;

// A gain in dB with its sign and a real minus: "+1.5 dB", "−12.0 dB"; `zero` is the sign shown
// for exactly 0 ("0.0 dB" on the mixer's sliders, "±0.0 dB" for a loudness correction).
export const formatDb = (db, zero = '') =>
  `${db > 0 ? '+' : db < 0 ? '−' : zero}${Math.abs(db).toFixed(1)} dB`;

// A stereo position in -1..1: "C", "L50", "R100".
export const formatPan = (p) =>
  (Math.abs(p) < 0.005 ? 'C' : `${p < 0 ? 'L' : 'R'}${Math.round(Math.abs(p) * 100)}`);

// A sample rate: "44.1 kHz".
export const formatKhz = (hz) => `${(hz / 1000).toFixed(1)} kHz`;
