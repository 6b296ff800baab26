// The beat grid of live sound: an online beat tracker for the microphone or a captured tab,
// giving the same five values as the server's beat source (deepaudio.mapping.sources:
// tempo, beat phase and pulse, bar phase, downbeat pulse) from the samples heard so far.
//
// * Onsets: as the server's tracker (deepaudio.core.beats): 1024-sample frames at 22.05 kHz,
//   hop 256 (11.6 ms), a 64-band Slaney mel spectrogram to 8 kHz in dB (floor: the loudest
//   band so far - 80 dB), and the half-wave rectified rise averaged over the bands; the bands
//   below 200 Hz (the kick drum) kept apart for the downbeats.
// * Tempo: every 0.25 s, over the last 8 s of onsets (local mean removed): the peaks of the
//   autocorrelation between 60 and 180 bpm, scored as the server scores its tempo (librosa's
//   rule: log1p(1e6 ac) plus a log-normal prior around 120 bpm, one octave wide); the peak is
//   refined by a parabola, and a new tempo within 4 % of the current one is blended in, so
//   the grid does not jitter.
// * Phase: the comb of beats at that period that collects the most onset strength over the
//   window, the recent seconds weighing more.
// * Downbeats: which of four beat positions gathers the most bass onset strength (decaying
//   memory); 4/4 is assumed, as the server's tracker does for its bars.
// No periodicity (silence, speech, noise) gives no beat: every value 0 and `bpm` null. The
// first estimate comes after 4 s of sound.
import { RealDFT } from './frontend.js';

export const BEAT_NAMES = ['tempo', 'beat_phase', 'beat_pulse', 'bar_phase', 'downbeat_pulse'];
const N_MELS = 64;
const LOW_HZ = 200;                // bands below this carry the kick drum
const TEMPO_RANGE = [60, 180];
const BEAT_DECAY_S = 0.1;
const DOWNBEAT_DECAY_S = 0.25;
const WINDOW_S = 8;
const UPDATE_S = 0.25;
// autocorrelation peak / energy over a full window; below, no beat. White noise reaches 0.15,
// steady beats 0.2-1. A shorter window's noise floor is higher (as 1 / sqrt(length)).
const MIN_CONFIDENCE = 0.18;
const FIRST_S = 4;                 // s of sound before the first estimate

export class OnlineBeats {
  constructor(sr) {
    this.sr = sr;
    let n = 1;
    while (n < (1024 * sr) / 22050) n *= 2;
    this.size = n;
    this.hop = n / 4;
    this.fps = sr / this.hop;
    this.dft = new RealDFT(n);
    this.window = new Float64Array(n);
    for (let i = 0; i < n; i++) this.window[i] = 0.5 - 0.5 * Math.cos((2 * Math.PI * i) / n);
    this.frame = new Float64Array(n);
    this.power = new Float64Array(n / 2 + 1);
    this.mel = melBands(sr, n, N_MELS, 8000);
    this.melDb = new Float64Array(N_MELS);
    this.prev = null;                     // the previous frame's mel dB
    this.loudest = -Infinity;             // dB, for the 80 dB floor
    this.lowBands = this.mel.filter((b) => b.centre < LOW_HZ).length;
    this.ring = new Float32Array(n);      // the newest n samples, oldest at `w`
    this.w = 0;
    this.pending = 0;                     // samples since the last frame
    this.len = Math.round(WINDOW_S * this.fps);
    this.env = new Float64Array(this.len);      // ring of onset strengths
    this.low = new Float64Array(this.len);      // ... of the bass bins
    this.frames = 0;                      // frames analysed
    this.sinceUpdate = 0;
    this.period = null;                   // s
    this.lastBeat = null;                 // s (input clock) of the newest beat of the grid
    this.count = 0;                       // its number, counted on from the first grid
    this.confidence = 0;
    this.downWeights = new Float64Array(4);
    this.downAt = 0;                      // the beat count of a downbeat
  }

  get bpm() { return this.period ? 60 / this.period : null; }

  // samples: Float32Array at sr; `end`: the input clock (s) at the last sample
  push(samples, end) {
    for (let i = 0; i < samples.length; i++) {
      this.ring[this.w] = samples[i];
      this.w = (this.w + 1) % this.size;
      this.pending += 1;
      if (this.pending >= this.hop) {
        this.pending = 0;
        this.analyse();
        this.sinceUpdate += 1;
        if (this.sinceUpdate >= UPDATE_S * this.fps && this.frames > FIRST_S * this.fps) {
          this.sinceUpdate = 0;
          this.update(end - (samples.length - 1 - i) / this.sr - this.size / 2 / this.sr);
        }
      }
    }
  }

  analyse() {
    const { frame, window, power, size, melDb } = this;
    for (let i = 0; i < size; i++) frame[i] = this.ring[(this.w + i) % size] * window[i];
    this.dft.power(frame, power);
    this.mel.forEach((band, b) => {
      let e = 0;
      for (let j = 0; j < band.weights.length; j++) e += band.weights[j] * power[band.start + j];
      melDb[b] = 10 * Math.log10(Math.max(e, 1e-10));
      this.loudest = Math.max(this.loudest, melDb[b]);
    });
    const floor = this.loudest - 80;
    let flux = 0;
    let bass = 0;
    for (let b = 0; b < N_MELS; b++) {
      const v = Math.max(melDb[b], floor);
      const d = this.prev ? v - Math.max(this.prev[b], floor) : 0;
      if (d > 0) { flux += d / N_MELS; if (b < this.lowBands) bass += d / this.lowBands; }
    }
    this.prev = Float64Array.from(melDb);
    const at = this.frames % this.len;
    this.env[at] = flux;
    this.low[at] = bass;
    this.frames += 1;
  }

  // onset strengths of the window, oldest first, local mean removed and half-wave rectified
  recent(ring) {
    const n = Math.min(this.frames, this.len);
    const x = new Float64Array(n);
    for (let i = 0; i < n; i++) x[i] = ring[(this.frames - n + i) % this.len];
    const w = Math.max(1, Math.round(0.5 * this.fps));
    const out = new Float64Array(n);
    let sum = 0;
    for (let i = 0; i < n; i++) {
      sum += x[i];
      if (i >= w) sum -= x[i - w];
      out[i] = Math.max(0, x[i] - sum / Math.min(i + 1, w));
    }
    return out;
  }

  // `now`: the input clock (s) at the centre of the newest frame
  update(now) {
    const x = this.recent(this.env);
    const n = x.length;
    // the autocorrelation of the zero-mean envelope: noise gives ~0, a steady beat ~1
    let mean = 0;
    for (let i = 0; i < n; i++) mean += x[i] / n;
    const z = x.map((v) => v - mean);
    let e0 = 0;
    for (let i = 0; i < n; i++) e0 += z[i] * z[i];
    const lo = Math.floor((60 / TEMPO_RANGE[1]) * this.fps);
    const hi = Math.ceil((60 / TEMPO_RANGE[0]) * this.fps);
    if (e0 <= 1e-9 || n < 2 * hi) { this.confidence = 0; this.forget(); return; }
    const ac = new Float64Array(hi + 2);
    for (let lag = lo - 1; lag <= hi + 1; lag++) {
      let s = 0;
      for (let i = lag; i < n; i++) s += z[i] * z[i - lag];
      ac[lag] = s / (n - lag) * n;
    }
    // the tempo as the server's tracker scores it (librosa's rule): log1p(1e6 ac) of the
    // envelope's autocorrelation (not mean-removed, normalised at lag 0) plus a log-normal
    // prior, so a 2/3 or 4/3 lag has to be much stronger to win
    let raw0 = 0;
    for (let i = 0; i < n; i++) raw0 += x[i] * x[i];
    let best = -1;
    let bestScore = -Infinity;
    for (let lag = lo; lag <= hi; lag++) {
      if (!(ac[lag] >= ac[lag - 1] && ac[lag] >= ac[lag + 1])) continue;
      let r = 0;
      for (let i = lag; i < n; i++) r += x[i] * x[i - lag];
      const bpm = (60 * this.fps) / lag;
      const score = Math.log1p(1e6 * Math.max(0, r / raw0)) - 0.5 * Math.log2(bpm / 120) ** 2;
      if (score > bestScore) { best = lag; bestScore = score; }
    }
    this.confidence = best > 0 ? ac[best] / e0 : 0;
    if (best < 0 || this.confidence < MIN_CONFIDENCE * Math.sqrt(this.len / n)) { this.forget(); return; }
    const [a, b, c] = [ac[best - 1], ac[best], ac[best + 1]];
    const shift = a - 2 * b + c < 0 ? 0.5 * (a - c) / (a - 2 * b + c) : 0;
    const period = (best + shift) / this.fps;
    if (this.period && Math.abs(period / this.period - 1) < 0.04) this.period = 0.8 * this.period + 0.2 * period;
    else this.period = period;
    // phase: the comb at this period with the most onset strength, recent beats weighing more
    const p = this.period * this.fps;
    let bestPhase = 0;
    let bestSum = -Infinity;
    for (let ph = 0; ph < p; ph += 0.5) {
      let s = 0;
      for (let k = 0, at = n - 1 - ph; at >= 0; k++, at = n - 1 - ph - k * p) {
        const i = Math.floor(at);
        const r = at - i;
        const v = (1 - r) * x[i] + (i + 1 < n ? r * x[i + 1] : 0);
        s += v * Math.pow(0.9, k);
      }
      if (s > bestSum) { bestSum = s; bestPhase = ph; }
    }
    const last = now - bestPhase / this.fps;
    // the beat count of `last` continues the grid's count, so the downbeat memory holds
    const count = this.lastBeat === null ? 0 : Math.round((last - this.lastBeat) / this.period) + this.count;
    this.lastBeat = last;
    this.count = count;
    this.learnDownbeats(now);
  }

  // bass onset strength at each of the last beats, by beat position in a 4-beat bar
  learnDownbeats(now) {
    const low = this.recent(this.low);
    const n = low.length;
    const p = this.period * this.fps;
    for (let k = 0; k < 4; k++) this.downWeights[k] *= 0.7;
    for (let k = 0; k < 8; k++) {
      const at = Math.round(n - 1 - ((now - this.lastBeat) * this.fps) - k * p);
      if (at < 1) break;
      const v = Math.max(low[at - 1], low[at], at + 1 < n ? low[at + 1] : 0);
      this.downWeights[(((this.count - k) % 4) + 4) % 4] += v;
    }
    let pos = 0;
    for (let k = 1; k < 4; k++) if (this.downWeights[k] > this.downWeights[pos]) pos = k;
    this.downAt = pos;
  }

  forget() {
    this.period = null;
    this.lastBeat = null;
    this.count = 0;
    this.downWeights.fill(0);
  }

  // the five values at input time t (s)
  values(t, out = new Float32Array(5)) {
    out.fill(0);
    if (!this.period || this.lastBeat === null) return out;
    const beats = (t - this.lastBeat) / this.period;
    const k = Math.floor(beats);
    const phase = beats - k;
    const inBar = ((((this.count + k - this.downAt) % 4) + 4) % 4);
    out[0] = Math.min(1, Math.max(0, (this.bpm - TEMPO_RANGE[0]) / (TEMPO_RANGE[1] - TEMPO_RANGE[0])));
    out[1] = phase;
    out[2] = Math.exp(-(phase * this.period) / BEAT_DECAY_S);
    out[3] = (inBar + phase) / 4;
    out[4] = Math.exp(-((inBar + phase) * this.period) / DOWNBEAT_DECAY_S);
    return out;
  }
}

// Slaney's mel filterbank (librosa's default): n triangles from 0 Hz to fmax, each of unit
// area, as {start, weights, centre} over the power bins of an n_fft-point DFT.
function melBands(sr, nFft, n, fmax) {
  const fSp = 200 / 3;
  const logStep = Math.log(6.4) / 27;
  const toMel = (f) => (f < 1000 ? f / fSp : 15 + Math.log(f / 1000) / logStep);
  const toHz = (m) => (m < 15 ? m * fSp : 1000 * Math.exp(logStep * (m - 15)));
  const edges = Array.from({ length: n + 2 }, (_, i) => toHz((toMel(fmax) * i) / (n + 1)));
  const bins = nFft / 2 + 1;
  return Array.from({ length: n }, (_, i) => {
    const [lo, mid, hi] = [edges[i], edges[i + 1], edges[i + 2]];
    const tri = (k) => Math.max(0, Math.min(((k * sr) / nFft - lo) / (mid - lo), (hi - (k * sr) / nFft) / (hi - mid)));
    const ks = Array.from({ length: bins }, (_, k) => k).filter((k) => tri(k) > 0);
    const start = ks.length ? ks[0] : 0;
    const weights = ks.length ? Array.from({ length: ks[ks.length - 1] - start + 1 },
      (_, j) => tri(start + j) * (2 / (hi - lo))) : [];
    return { start, weights, centre: mid };
  });
}
