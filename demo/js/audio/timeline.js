// Feature timelines from /api/tracks/<id>/features, sampled at the audio time.

// Values (Float32Array of D features in [0, 1]) at song time t. With `interpolate`, linear
// interpolation between the two frames around t (the reference's mapper); else the nearest.
export function sampleTimeline(tl, t, interpolate = true, out = null) {
  const frames = tl.frames;
  const d = frames[0].length;
  const res = out || new Float32Array(d);
  const x = Math.max(0, (t - (tl.start || 0)) * tl.fps);
  const i = Math.min(frames.length - 1, Math.floor(x));
  if (!interpolate || i >= frames.length - 1) {
    const f = frames[interpolate ? i : Math.min(frames.length - 1, Math.round(x))];
    for (let k = 0; k < d; k++) res[k] = f[k];
    return res;
  }
  const r = x - i;
  const a = frames[i], b = frames[i + 1];
  for (let k = 0; k < d; k++) res[k] = (1 - r) * a[k] + r * b[k];
  return res;
}

// Exponentially weighted moving average whose strength does not depend on the frame rate:
// `smoothing` s is the weight kept per 1/60 s, so over dt seconds alpha = 1 - s^(60 dt).
export class Ewma {
  constructor(n) { this.value = new Float32Array(n); this.primed = false; }
  reset() { this.primed = false; }
  update(x, smoothing, dt) {
    if (!this.primed || smoothing <= 0) {
      this.value.set(x);
      this.primed = true;
      return this.value;
    }
    const alpha = 1 - Math.pow(smoothing, Math.max(0, dt) * 60);
    for (let k = 0; k < x.length; k++) this.value[k] += alpha * (x[k] - this.value[k]);
    return this.value;
  }
}
