// Live input: the microphone or a captured browser tab drives the learned features.
//
// The captured audio runs through an AudioContext at the run's sample rate (the browser
// resamples the device), an audio worklet hands the samples over in blocks, the JS front end
// (frontend.js) turns them into the run's features, and the ONNX encoder (encoder.js) gives 10
// values every `hop` seconds. The values describe the audio around the newest segment's
// centre; `latency` is how far that centre lies behind the audio clock when they arrive (half
// a segment, plus the block, plus the encoder's time).
//
// The same sound also drives the live beat grid (beats.js: an online beat tracker) and the
// DSP bands (dsp.js: MilkDrop's bass/mid/treb), 30 times a second, so every source a
// parameter can take from a song, but the stems, works live too.
import { MfccFrontEnd } from './frontend.js';
import { OnnxEncoder } from './encoder.js';
import { BEAT_NAMES, OnlineBeats } from './beats.js';
import { DSP_NAMES, DspBands } from './dsp.js';

export const LIVE_HOP = 0.1;     // s between segments
const DSP_FPS = 30;
export { BEAT_NAMES, DSP_NAMES };

export class LiveInput {
  // kind: 'microphone' | 'tab'; spec: frontend.json; encoder: an OnnxEncoder of that spec
  static async start(kind, spec, encoder) {
    const stream = await capture(kind);
    const live = new LiveInput(stream, spec, encoder);
    try {
      await live.connect();
    } catch (e) {
      live.stop();
      throw e;
    }
    return live;
  }

  constructor(stream, spec, encoder) {
    this.stream = stream;
    this.spec = spec;
    this.encoder = encoder;
    this.frontEnd = encoder.frontEnd;
    this.values = new Float32Array(spec.outputs).fill(0.5);
    this.segments = 0;          // segments encoded
    this.dropped = 0;           // segments skipped because the encoder was still busy
    this.latency = null;        // s, of the last values
    this.level = -Infinity;     // dBFS of the last block (is anything coming in?)
    this.busy = false;
    this.received = 0;          // samples received
    this.onvalues = null;
    this.beats = new OnlineBeats(spec.sr);
    let n = 1;                   // the DSP window: 1024 samples at 22.05 kHz, scaled to the rate
    while (n < (1024 * spec.sr) / 22050) n *= 2;
    this.dsp = new DspBands(spec.sr, DSP_FPS, n);
    this.dspRing = new Float32Array(n);
    this.dspFrame = new Float32Array(n);
    this.dspAt = 0;
    this.dspSince = 0;
    this.dspValues = new Float32Array(DSP_NAMES.length);
    this.beatValues = new Float32Array(BEAT_NAMES.length);
    if (spec.mode === 'mfcc') {
      this.frontEnd.reset();
      this.hopFrames = Math.max(1, Math.round(LIVE_HOP / this.frontEnd.frameSeconds));
      this.sinceLast = 0;
    } else {
      this.ring = new Float32Array(spec.window_size);
      this.hopSamples = Math.round(LIVE_HOP * spec.sr);
      this.sinceLast = 0;
    }
  }

  async connect() {
    // a context at the run's rate: the browser resamples the capture device
    this.ctx = new AudioContext({ sampleRate: this.spec.sr });
    await this.ctx.audioWorklet.addModule(new URL('./capture-worklet.js', import.meta.url));
    this.source = this.ctx.createMediaStreamSource(this.stream);
    this.node = new AudioWorkletNode(this.ctx, 'capture');
    const mute = this.ctx.createGain();   // the worklet must be pulled by the graph; silently
    mute.gain.value = 0;
    this.source.connect(this.node).connect(mute).connect(this.ctx.destination);
    this.node.port.onmessage = (e) => this.onBlock(e.data.samples, e.data.frame);
    await this.ctx.resume();
  }

  // seconds of the audio clock now (for the visuals' motion)
  clock() { return this.ctx ? this.ctx.currentTime : 0; }

  onBlock(samples, frame) {
    let e = 0;
    for (let i = 0; i < samples.length; i++) e += samples[i] * samples[i];
    this.level = 10 * Math.log10(e / samples.length + 1e-12);
    this.received = frame + samples.length;
    this.beats.push(samples, (this.received - 1) / this.spec.sr);
    this.pushDsp(samples);
    const segs = this.spec.mode === 'mfcc' ? this.mfccSegments(samples) : this.spectrumSegments(samples);
    if (!segs.length) return;
    // only the newest segment matters for what is on screen now; a busy encoder skips
    if (this.busy) { this.dropped += segs.length; return; }
    this.dropped += segs.length - 1;
    this.encode(segs[segs.length - 1]);
  }

  // one DSP frame every 1/30 s on the newest window of samples
  pushDsp(samples) {
    const ring = this.dspRing;
    const n = ring.length;
    const hop = this.spec.sr / DSP_FPS;
    for (let i = 0; i < samples.length; i++) {
      ring[this.dspAt] = samples[i];
      this.dspAt = (this.dspAt + 1) % n;
      this.dspSince += 1;
      if (this.dspSince >= hop) {
        this.dspSince -= hop;
        for (let j = 0; j < n; j++) this.dspFrame[j] = ring[(this.dspAt + j) % n];
        this.dsp.push(this.dspFrame, 0, this.dspValues);
      }
    }
  }

  // the beat grid's five values at the audio clock now, and the newest DSP bands
  sources() {
    return { beats: this.beats.values(this.clock(), this.beatValues), bpm: this.beats.bpm,
             dsp: this.dspValues };
  }

  mfccSegments(samples) {
    const fe = this.frontEnd;
    const n = fe.push(samples);
    const keep = fe.frames;
    if (fe.melDb.length > keep) fe.melDb.splice(0, fe.melDb.length - keep);
    this.sinceLast += n;
    const out = [];
    if (fe.melDb.length === keep && this.sinceLast >= this.hopFrames) {
      this.sinceLast = 0;
      const floor = fe.floor();        // the loudest frame so far (a file: the whole file's)
      const cols = fe.melDb.map((db) => fe.mfcc(db, floor));
      // the newest segment ends at the newest mel frame, whose centre is the last sample
      // received minus the frames the front end still holds back
      const end = (this.received + fe.nFft / 2 - fe.buf.length - fe.hop) / this.spec.sr;
      out.push({ input: MfccFrontEnd.segment(cols, 0, keep, fe.nMfcc), centre: end - this.spec.segment_seconds / 2 });
    }
    return out;
  }

  spectrumSegments(samples) {
    const ring = this.ring;
    const n = ring.length;
    if (samples.length >= n) {
      ring.set(samples.subarray(samples.length - n));
    } else {
      ring.copyWithin(0, samples.length);
      ring.set(samples, n - samples.length);
    }
    this.sinceLast += samples.length;
    if (this.received < n || this.sinceLast < this.hopSamples) return [];
    this.sinceLast = 0;
    return [{ input: this.frontEnd.spectrum(ring, 0), centre: (this.received - n / 2) / this.spec.sr }];
  }

  async encode(seg) {
    this.busy = true;
    try {
      const [v] = await this.encoder.run([seg.input]);
      this.values.set(v);
      this.segments += 1;
      this.latency = this.clock() - seg.centre;
      if (this.onvalues) this.onvalues(this.values);
    } finally {
      this.busy = false;
    }
  }

  // The same capture through another run's front end and encoder (the Features controls
  // changed while listening): a new context at that run's rate, and no new permission prompt
  // or tab picker. This input stops; the returned one takes over.
  async switchTo(spec, encoder) {
    const next = new LiveInput(this.stream, spec, encoder);
    this.release();
    try {
      await next.connect();
    } catch (e) {
      next.stop();
      throw e;
    }
    return next;
  }

  release() {
    if (this.node) this.node.port.onmessage = null;
    if (this.ctx) this.ctx.close();
    this.ctx = null;
  }

  stop() {
    for (const t of this.stream.getTracks()) t.stop();
    this.release();
  }
}

// The capture stream, or an error a user can act on.
async function capture(kind) {
  if (!navigator.mediaDevices) throw new Error('live input needs a secure page (https or localhost)');
  try {
    if (kind === 'tab') {
      const s = await navigator.mediaDevices.getDisplayMedia({ video: true, audio: true });
      if (!s.getAudioTracks().length) {
        for (const t of s.getTracks()) t.stop();
        throw new Error('the captured tab has no audio: pick a tab and tick "share tab audio"');
      }
      for (const t of s.getVideoTracks()) t.stop();     // only the sound is used
      return s;
    }
    return await navigator.mediaDevices.getUserMedia({
      audio: { echoCancellation: false, noiseSuppression: false, autoGainControl: false } });
  } catch (e) {
    if (e.name === 'NotAllowedError') {
      throw new Error(kind === 'tab' ? 'tab capture was not allowed' : 'the microphone was not allowed: allow it in the address bar and try again');
    }
    if (e.name === 'NotFoundError') throw new Error('no microphone found');
    throw e;
  }
}
