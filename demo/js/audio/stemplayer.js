// The stem mixer's audio engine: every stem and the original track play in ONE AudioContext.
//
//   stem: AudioBufferSourceNode -> GainNode -> StereoPannerNode -> mix bus ─┐
//                                                    └-> AnalyserNode (meter) ├-> master -> out
//   original: AudioBufferSourceNode ----------------------------> original bus ┘
//
// All sources start with the same start(when, offset), so the stems and the original stay
// sample-aligned (two <audio> elements drift, which is why the reference server re-rendered
// the whole mix on every slider move). Sources are one-shot: pause and seek recreate them.
// A/B switches between the two buses at the same position; the master gain is set once from
// the stems' measured loudness so both play at about PREVIEW_LUFS.
import { fetchError } from '../shared/api.js';
import { clamp } from '../shared/format.js';

export const PREVIEW_LUFS = -14;           // streaming level, the export's default target too
const SMOOTHING_S = 0.015;                 // setTargetAtTime constant: no zipper noise, ~0.1 s settle
const AB_SMOOTHING_S = 0.004;              // A/B is "instant" but click-free
const MASTER_RANGE_DB = [-24, 6];          // never boost a quiet song so much that it clips
const START_AHEAD_S = 0.03;                // schedule all sources on one future sample

// The one place the page turns dB into a linear factor (as mixer_render.db_to_gain).
export function dbToGain(db) { return 10 ** (db / 20); }

export class StemPlayer {
  constructor() {
    this.ctx = null;           // created on first load (one per page)
    this.channels = new Map(); // stem -> {buffer, gain, pan, analyser, source}
    this.original = null;      // {buffer, source}
    this.duration = 0;
    this.offset = 0;           // song position at the last start / pause / seek
    this.startedAt = 0;        // context time the sources were scheduled to start
    this.playing = false;
    this.ab = 'mix';           // 'mix' | 'original'
    this.masterDb = 0;
    this.generation = 0;       // bumps on every (re)start: stale onended events are ignored
    this.loadGeneration = 0;   // bumps on every load / unload: a superseded load never commits
    this._fetches = null;      // AbortController of the load in flight
    this.onended = null;
    this._scratch = null;
  }

  _context() {
    if (this.ctx) return this.ctx;
    const ctx = new AudioContext({ latencyHint: 'interactive' });
    this.ctx = ctx;
    this.master = ctx.createGain();
    this.master.connect(ctx.destination);
    this.mixBus = ctx.createGain();
    this.mixBus.connect(this.master);
    this.origBus = ctx.createGain();
    this.origBus.gain.value = 0;
    this.origBus.connect(this.master);
    return ctx;
  }

  async _decode(url, what, signal) {
    const resp = await fetch(url, { credentials: 'same-origin', signal });
    if (!resp.ok) throw new Error(`${what}: ${await fetchError(resp)}`);
    const data = await resp.arrayBuffer();
    try {
      return await this.ctx.decodeAudioData(data);
    } catch (e) {
      throw new Error(`${what}: the browser could not decode it (${e.message || e.name})`);
    }
  }

  // Fetch and decode the stem previews ({name: url}) and the original; replaces what was loaded.
  // The original is optional: if it fails, the mixer still works and A/B says why.
  async load(stemUrls, originalUrl) {
    this._context();
    const gen = ++this.loadGeneration;
    if (this._fetches) this._fetches.abort();
    this._fetches = new AbortController();
    const signal = this._fetches.signal;
    const names = Object.keys(stemUrls);
    const superseded = () => new DOMException('a newer load replaced this one', 'AbortError');
    let buffers;
    let original;
    try {
      [buffers, original] = await Promise.all([
        Promise.all(names.map((n) => this._decode(stemUrls[n], `${n} preview`, signal))),
        originalUrl
          ? this._decode(originalUrl, 'original track', signal).catch((e) => {
            if (e.name === 'AbortError') throw e;
            return { error: e.message };
          })
          : null,
      ]);
    } catch (e) {
      throw gen === this.loadGeneration ? e : superseded();
    }
    if (gen !== this.loadGeneration) throw superseded();
    this._fetches = null;
    this._teardown();
    const ctx = this.ctx;
    names.forEach((name, k) => {
      const gain = ctx.createGain();
      const pan = ctx.createStereoPanner();
      const analyser = ctx.createAnalyser();
      analyser.fftSize = 2048;
      gain.connect(pan);
      pan.connect(this.mixBus);
      pan.connect(analyser);
      this.channels.set(name, { buffer: buffers[k], gain, pan, analyser, source: null });
    });
    this.duration = Math.max(...buffers.map((b) => b.duration));
    this.original = original && !original.error ? { buffer: original, source: null } : null;
    this.originalError = original && original.error ? original.error : null;
    this.offset = 0;
    this.setAB('mix');
  }

  // Stop and forget the stems (and cancel a load in flight).
  unload() {
    this.loadGeneration++;
    if (this._fetches) this._fetches.abort();
    this._fetches = null;
    this._teardown();
  }

  _teardown() {
    this._stopSources();
    this.playing = false;
    for (const ch of this.channels.values()) {
      ch.gain.disconnect();
      ch.pan.disconnect();
    }
    this.channels.clear();
    this.original = null;
    this.duration = 0;
    this.offset = 0;
  }

  get loaded() { return this.channels.size > 0; }

  _set(param, value, tau = SMOOTHING_S) {
    if (this.ctx.state === 'running') {
      param.setTargetAtTime(value, this.ctx.currentTime, tau);
    } else {                   // a suspended clock would never reach the target
      param.cancelScheduledValues(0);
      param.value = value;
    }
  }

  // Linear gain each stem gets under a mix: muted or not soloed (when any solo is on) -> 0.
  static stemGains(names, mix) {
    const solos = new Set(mix.solos || []);
    const mutes = new Set(mix.mutes || []);
    const out = {};
    for (const n of names) {
      const silent = mutes.has(n) || (solos.size > 0 && !solos.has(n));
      out[n] = silent ? 0 : dbToGain((mix.gains && mix.gains[n]) || 0);
    }
    return out;
  }

  // mix: {gains: {stem: dB}, pans: {stem: -1..1}, mutes: [stem], solos: [stem]}
  applyMix(mix) {
    if (!this.ctx) return;
    const gains = StemPlayer.stemGains([...this.channels.keys()], mix);
    for (const [name, ch] of this.channels) {
      this._set(ch.gain.gain, gains[name]);
      this._set(ch.pan.pan, clamp((mix.pans && mix.pans[name]) || 0, -1, 1));
    }
  }

  // Preview level: the stems summed at 0 dB measured mixLufs (server side, BS.1770).
  setPreviewLoudness(mixLufs) {
    const [lo, hi] = MASTER_RANGE_DB;
    this.masterDb = Number.isFinite(mixLufs) ? clamp(PREVIEW_LUFS - mixLufs, lo, hi) : 0;
    this._set(this.master.gain, dbToGain(this.masterDb));
  }

  setAB(which) {
    if (which === 'original' && !this.original) {
      throw new Error(this.originalError || 'the original track is not loaded');
    }
    this.ab = which;
    if (!this.ctx) return;
    this._set(this.mixBus.gain, which === 'mix' ? 1 : 0, AB_SMOOTHING_S);
    this._set(this.origBus.gain, which === 'original' ? 1 : 0, AB_SMOOTHING_S);
  }

  currentTime() {
    if (!this.playing) return this.offset;
    const t = this.offset + Math.max(0, this.ctx.currentTime - this.startedAt);
    return Math.min(t, this.duration);
  }

  async play() {
    if (!this.loaded || this.playing) return;
    await this.ctx.resume();
    if (this.playing) return;                            // a second click while resuming
    if (this.offset >= this.duration - 1e-3) this.offset = 0;
    const ctx = this.ctx;
    const when = ctx.currentTime + START_AHEAD_S;
    const gen = ++this.generation;
    const start = (buffer, dest) => {
      const src = ctx.createBufferSource();
      src.buffer = buffer;
      src.connect(dest);
      if (this.offset < buffer.duration) src.start(when, this.offset);
      return src;
    };
    let longest = null;
    for (const ch of this.channels.values()) {
      ch.source = start(ch.buffer, ch.gain);
      if (!longest || ch.buffer.duration > longest.buffer.duration) longest = ch.source;
    }
    if (this.original) this.original.source = start(this.original.buffer, this.origBus);
    longest.onended = () => {
      if (gen !== this.generation || !this.playing) return;
      this._stopSources();
      this.playing = false;
      this.offset = this.duration;
      if (this.onended) this.onended();
    };
    this.startedAt = when;
    this.playing = true;
  }

  pause() {
    if (!this.playing) return;
    this.offset = this.currentTime();
    this._stopSources();
    this.playing = false;
  }

  async seek(t) {
    const wasPlaying = this.playing;
    this.pause();
    this.offset = clamp(t, 0, this.duration);
    if (wasPlaying) await this.play();
  }

  _stopSources() {
    this.generation++;
    const all = [...this.channels.values()];
    if (this.original) all.push(this.original);
    for (const ch of all) {
      const src = ch.source;
      if (!src) continue;
      ch.source = null;
      src.onended = null;
      try { src.stop(); } catch (e) { /* never started (offset past its end) */ }
      src.disconnect();
    }
  }

  // RMS level in dBFS of each stem after its gain and pan (for the meters).
  levels() {
    const out = {};
    for (const [name, ch] of this.channels) {
      const n = ch.analyser.fftSize;
      if (!this._scratch || this._scratch.length !== n) this._scratch = new Float32Array(n);
      ch.analyser.getFloatTimeDomainData(this._scratch);
      let sum = 0;
      for (let i = 0; i < n; i++) sum += this._scratch[i] * this._scratch[i];
      out[name] = 10 * Math.log10(sum / n + 1e-12);
    }
    return out;
  }

  // What a test (or a curious user in the console) can check: the nodes' actual values.
  nodeValues() {
    const gains = {};
    const pans = {};
    for (const [name, ch] of this.channels) {
      gains[name] = ch.gain.gain.value;
      pans[name] = ch.pan.pan.value;
    }
    return {
      gains, pans, master: this.master ? this.master.gain.value : 1,
      mixBus: this.mixBus ? this.mixBus.gain.value : 1,
      originalBus: this.origBus ? this.origBus.gain.value : 0,
      contextState: this.ctx ? this.ctx.state : 'none',
    };
  }
}
