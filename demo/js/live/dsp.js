// The DSP baseline in the browser: MilkDrop's bass / mid / treb levels and their
// attack-smoothed versions, as deepaudio.mapping.sources.dsp_timeline computes them on the
// server (butterchurn's bands 20-320, 320-2800, 2800-11025 Hz; each level relative to its slow
// average, so around 1.0; halved and clipped to [0, 1]). `dspTimeline` gives a whole song's
// frames (a static site's uploads); `DspBands.push` one frame at a time (live input).
// Tested against the Python values (tests/mapping/test_frontend_js.py).
import { RealDFT } from './frontend.js';

export const DSP_NAMES = ['bass', 'mid', 'treb', 'bass_att', 'mid_att', 'treb_att'];
const BANDS = [[20, 320], [320, 2800], [2800, 11025]];

export class DspBands {
  // sr: the samples' rate; fps: frames per second (the smoothing is compensated for it);
  // fftSize: window length in samples (1024 at 22.05 kHz on the server)
  constructor(sr, fps, fftSize = 1024) {
    this.size = fftSize;
    this.dft = new RealDFT(fftSize);
    this.window = new Float64Array(fftSize);            // np.hanning: symmetric
    for (let i = 0; i < fftSize; i++) this.window[i] = 0.5 - 0.5 * Math.cos((2 * Math.PI * i) / (fftSize - 1));
    this.frame = new Float64Array(fftSize);
    this.power = new Float64Array((fftSize >> 1) + 1);
    this.bins = BANDS.map(([lo, hi]) => {
      const out = [];
      for (let k = 0; k < this.power.length; k++) {
        const f = (k * sr) / fftSize;
        if (f >= lo && f < hi) out.push(k);
      }
      return out;
    });
    this.comp = 30 / Math.min(144, Math.max(15, fps));
    this.reset();
  }

  reset() {
    this.t = 0;
    this.avg = null;
    this.long = null;
  }

  // the six values in [0, 1] for the window of `size` samples starting at x[at] (zeros
  // outside x)
  push(x, at, out = new Float32Array(6)) {
    const { frame, window, power, size } = this;
    for (let i = 0; i < size; i++) {
      const j = at + i;
      frame[i] = j >= 0 && j < x.length ? x[j] * window[i] : 0;
    }
    this.dft.power(frame, power);
    const imm = this.bins.map((ks) => ks.reduce((s, k) => s + Math.sqrt(power[k]), 0));
    if (!this.avg) { this.avg = imm.slice(); this.long = imm.slice(); }
    const rho = Math.pow(this.t < 50 ? 0.9 : 0.992, this.comp);
    for (let b = 0; b < 3; b++) {
      const r = Math.pow(imm[b] > this.avg[b] ? 0.2 : 0.5, this.comp);
      this.avg[b] = this.avg[b] * r + imm[b] * (1 - r);
      this.long[b] = this.long[b] * rho + imm[b] * (1 - rho);
      const quiet = this.long[b] < 1e-3;
      out[b] = Math.min(1, Math.max(0, (quiet ? 1 : imm[b] / this.long[b]) / 2));
      out[b + 3] = Math.min(1, Math.max(0, (quiet ? 1 : this.avg[b] / this.long[b]) / 2));
    }
    this.t += 1;
    return out;
  }
}

// A song's DSP source at `fps`, as the server's sources answer it: {fps, start, names,
// frames} with floor(duration * fps) + 1 frames, frame k describing the window centred on k / fps.
export function dspTimeline(y, sr, fps = 30, fftSize = 1024) {
  const bands = new DspBands(sr, fps, fftSize);
  const hop = sr / fps;
  const n = Math.floor(y.length / hop) + 1;
  const count = Math.floor((y.length / sr) * fps + 1e-9) + 1;
  const frames = [];
  for (let k = 0; k < count; k++) {
    if (k < n) frames.push(Array.from(bands.push(y, Math.floor(k * hop) - fftSize / 2)));
    else frames.push(frames[frames.length - 1].slice());
  }
  return { fps, start: 0, names: DSP_NAMES.slice(), frames, source: 'dsp', duration: y.length / sr };
}
