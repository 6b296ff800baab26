// The model's input computed from audio in the browser: the same features the run's dataset
// was built with (deepaudio.core.features), from the export's frontend.json.
//
// * MFCC runs: centred frames (n_fft // 2 zeros before and after), periodic Hann window, power
//   spectrum, the run's Slaney mel filterbank (shipped in frontend.json, not recomputed),
//   10 log10(max(p, amin)), floor at (loudest frame - top_db), orthonormal DCT-II, the first
//   num_mfcc coefficients; segments of frames_per_segment frames, (num_mfcc, frames) row-major.
//   A file's floor comes from its loudest frame, as the server computes it; live input's from
//   the loudest frame so far (the only difference, and it vanishes once the loudest moment
//   has passed).
// * Spectrum runs: windows of window_size samples (no centring), symmetric Hann window,
//   20 log10(max(|rfft|, amin)).
//
// n_fft is rarely a power of two (1102 at 44.1 kHz), so the DFT is Bluestein's algorithm on a
// radix-2 FFT. Tested against the Python features (tests/mapping/test_frontend_js.py).

// ---------------------------------------------------------------- FFT (radix 2, in place)
class FFT {
  constructor(n) {
    this.n = n;
    this.rev = new Uint32Array(n);
    const bits = Math.log2(n);
    for (let i = 0; i < n; i++) {
      let r = 0;
      for (let b = 0; b < bits; b++) r |= ((i >> b) & 1) << (bits - 1 - b);
      this.rev[i] = r;
    }
    this.cos = new Float64Array(n / 2);
    this.sin = new Float64Array(n / 2);
    for (let i = 0; i < n / 2; i++) {
      this.cos[i] = Math.cos((2 * Math.PI * i) / n);
      this.sin[i] = -Math.sin((2 * Math.PI * i) / n);
    }
  }

  // forward transform of (re, im) in place; inverse = conjugate trick by the caller
  run(re, im) {
    const { n, rev } = this;
    for (let i = 0; i < n; i++) {
      const j = rev[i];
      if (j > i) {
        let t = re[i]; re[i] = re[j]; re[j] = t;
        t = im[i]; im[i] = im[j]; im[j] = t;
      }
    }
    for (let size = 2; size <= n; size *= 2) {
      const half = size / 2;
      const step = n / size;
      for (let start = 0; start < n; start += size) {
        for (let k = 0; k < half; k++) {
          const wr = this.cos[k * step];
          const wi = this.sin[k * step];
          const a = start + k;
          const b = a + half;
          const xr = re[b] * wr - im[b] * wi;
          const xi = re[b] * wi + im[b] * wr;
          re[b] = re[a] - xr; im[b] = im[a] - xi;
          re[a] += xr; im[a] += xi;
        }
      }
    }
  }
}

// ---------------------------------------------------------------- DFT of any length (Bluestein)
export class RealDFT {
  // magnitudes squared of the one-sided DFT (n // 2 + 1 bins) of n real samples
  constructor(n) {
    this.n = n;
    let m = 1;
    while (m < 2 * n - 1) m *= 2;
    this.m = m;
    this.fft = new FFT(m);
    // chirp w_k = exp(-i pi k^2 / n); b = conj(chirp) zero-padded and wrapped, transformed once
    this.wr = new Float64Array(n);
    this.wi = new Float64Array(n);
    for (let k = 0; k < n; k++) {
      const a = (Math.PI * ((k * k) % (2 * n))) / n;
      this.wr[k] = Math.cos(a);
      this.wi[k] = -Math.sin(a);
    }
    this.br = new Float64Array(m);
    this.bi = new Float64Array(m);
    for (let k = 0; k < n; k++) {
      this.br[k] = this.wr[k]; this.bi[k] = -this.wi[k];
      if (k > 0) { this.br[m - k] = this.wr[k]; this.bi[m - k] = -this.wi[k]; }
    }
    this.fft.run(this.br, this.bi);
    this.ar = new Float64Array(m);
    this.ai = new Float64Array(m);
  }

  power(x, out) {
    const { n, m, ar, ai, br, bi, wr, wi } = this;
    ar.fill(0); ai.fill(0);
    for (let k = 0; k < n; k++) { ar[k] = x[k] * wr[k]; ai[k] = x[k] * wi[k]; }
    this.fft.run(ar, ai);
    for (let k = 0; k < m; k++) {           // pointwise product, then the inverse by conjugation
      const r = ar[k] * br[k] - ai[k] * bi[k];
      const i = ar[k] * bi[k] + ai[k] * br[k];
      ar[k] = r; ai[k] = -i;
    }
    this.fft.run(ar, ai);
    const bins = (n >> 1) + 1;
    for (let k = 0; k < bins; k++) {
      const cr = ar[k] / m;
      const ci = -ai[k] / m;
      const r = cr * wr[k] - ci * wi[k];
      const i = cr * wi[k] + ci * wr[k];
      out[k] = r * r + i * i;
    }
    return out;
  }
}

// ---------------------------------------------------------------- MFCC
export class MfccFrontEnd {
  constructor(spec) {
    this.spec = spec;
    this.nFft = spec.n_fft;
    this.hop = spec.hop_length;
    this.nMels = spec.n_mels;
    this.nMfcc = spec.num_mfcc;
    this.frames = spec.frames_per_segment;
    this.dft = new RealDFT(this.nFft);
    this.window = new Float64Array(this.nFft);          // periodic Hann (librosa's 'hann')
    for (let i = 0; i < this.nFft; i++) this.window[i] = 0.5 - 0.5 * Math.cos((2 * Math.PI * i) / this.nFft);
    this.bands = spec.mel_bands.map((b) => ({ start: b.start, w: Float64Array.from(b.weights) }));
    this.dct = new Float64Array(this.nMfcc * this.nMels);  // orthonormal DCT-II rows
    for (let k = 0; k < this.nMfcc; k++) {
      const s = k === 0 ? Math.sqrt(1 / this.nMels) : Math.sqrt(2 / this.nMels);
      for (let j = 0; j < this.nMels; j++) {
        this.dct[k * this.nMels + j] = s * Math.cos((Math.PI * k * (2 * j + 1)) / (2 * this.nMels));
      }
    }
    this.power = new Float64Array((this.nFft >> 1) + 1);
    this.frame = new Float64Array(this.nFft);
    this.reset();
  }

  reset() {
    // samples not yet framed, starting with the centring pad of n_fft // 2 zeros
    this.buf = new Float32Array(this.nFft >> 1);
    this.melDb = [];            // dB mel frames (Float64Array(nMels)) not yet dropped
    this.maxDb = -Infinity;     // loudest mel value so far
  }

  // dB mel spectrum of one frame starting at buf[at]
  melFrame(buf, at) {
    const { frame, window, power } = this;
    for (let i = 0; i < this.nFft; i++) frame[i] = buf[at + i] * window[i];
    this.dft.power(frame, power);
    const out = new Float64Array(this.nMels);
    for (let b = 0; b < this.nMels; b++) {
      const { start, w } = this.bands[b];
      let s = 0;
      for (let i = 0; i < w.length; i++) s += power[start + i] * w[i];
      out[b] = 10 * Math.log10(Math.max(s, this.spec.amin));
      if (out[b] > this.maxDb) this.maxDb = out[b];
    }
    return out;
  }

  // Feed samples; returns the number of new mel frames. `end` adds the closing pad (a file).
  push(samples, end = false) {
    const pad = end ? this.nFft >> 1 : 0;
    const joined = new Float32Array(this.buf.length + samples.length + pad);
    joined.set(this.buf);
    joined.set(samples, this.buf.length);
    const n = joined.length < this.nFft ? 0 : Math.floor((joined.length - this.nFft) / this.hop) + 1;
    for (let i = 0; i < n; i++) this.melDb.push(this.melFrame(joined, i * this.hop));
    this.buf = joined.slice(n * this.hop);
    return n;
  }

  // MFCCs (nMfcc values) of a dB mel frame with the floor now in force
  mfcc(db, floor) {
    const out = new Float32Array(this.nMfcc);
    for (let k = 0; k < this.nMfcc; k++) {
      let s = 0;
      const row = k * this.nMels;
      for (let j = 0; j < this.nMels; j++) s += this.dct[row + j] * Math.max(db[j], floor);
      out[k] = s;
    }
    return out;
  }

  floor() { return this.maxDb - this.spec.top_db; }

  // The whole input as MFCC columns (each a Float32Array of nMfcc), the file's floor.
  allColumns() {
    const floor = this.floor();
    return this.melDb.map((db) => this.mfcc(db, floor));
  }

  // One model input (nMfcc x frames, row-major) from `frames` consecutive columns at `at`.
  static segment(columns, at, frames, nMfcc) {
    const seg = new Float32Array(nMfcc * frames);
    for (let t = 0; t < frames; t++) {
      const c = columns[at + t];
      for (let k = 0; k < nMfcc; k++) seg[k * frames + t] = c[k];
    }
    return seg;
  }

  // Segments of a whole signal every `hopFrames` MFCC frames (as the server cuts them).
  segmentsOf(samples, hopFrames) {
    this.reset();
    this.push(samples, true);
    const cols = this.allColumns();
    const out = [];
    for (let at = 0; at + this.frames <= cols.length; at += hopFrames) {
      out.push(MfccFrontEnd.segment(cols, at, this.frames, this.nMfcc));
    }
    return out;
  }

  get inputSize() { return this.nMfcc * this.frames; }
  get frameSeconds() { return this.hop / this.spec.sr; }
}

// ---------------------------------------------------------------- 0.5 s log spectra
export class SpectrumFrontEnd {
  constructor(spec) {
    this.spec = spec;
    this.size = spec.window_size;
    this.dft = new RealDFT(this.size);
    this.window = new Float64Array(this.size);           // np.hanning: symmetric
    for (let i = 0; i < this.size; i++) this.window[i] = 0.5 - 0.5 * Math.cos((2 * Math.PI * i) / (this.size - 1));
    this.power = new Float64Array((this.size >> 1) + 1);
    this.frame = new Float64Array(this.size);
  }

  spectrum(samples, at) {
    const { frame, window, power } = this;
    for (let i = 0; i < this.size; i++) frame[i] = samples[at + i] * window[i];
    this.dft.power(frame, power);
    const out = new Float32Array(power.length);
    const amin = this.spec.amin;
    for (let k = 0; k < power.length; k++) out[k] = 10 * Math.log10(Math.max(power[k], amin * amin));
    return out;
  }

  segmentsOf(samples, hopSamples) {
    const out = [];
    for (let at = 0; at + this.size <= samples.length; at += hopSamples) out.push(this.spectrum(samples, at));
    return out;
  }

  get inputSize() { return (this.size >> 1) + 1; }
}

export function makeFrontEnd(spec) {
  if (spec.mode === 'mfcc') return new MfccFrontEnd(spec);
  if (spec.mode === 'spectrum') return new SpectrumFrontEnd(spec);
  throw new Error(`no front end for ${spec.mode} runs`);
}
