// A run exported to ONNX (GET /api/onnx/frontend.json, or a static site's copy), run by
// onnxruntime-web: features → 10 values in [0, 1]. Single-threaded WebAssembly (no
// cross-origin isolation needed), one segment or a batch at a time.
import { makeFrontEnd } from './frontend.js';

let ortModule = null;
async function ort(base) {
  if (!ortModule) {
    ortModule = await import(`${base}ort.wasm.min.mjs`);
    ortModule.env.wasm.wasmPaths = base;
    ortModule.env.wasm.numThreads = 1;
  }
  return ortModule;
}

export class OnnxEncoder {
  // spec: frontend.json (with `graph`, the graph's address); ortBase: where onnxruntime-web is
  static async load(spec, { ortBase = new URL('vendor/ort/', document.baseURI).href } = {}) {
    const lib = await ort(ortBase);
    const resp = await fetch(spec.graph, { credentials: 'same-origin' });
    if (!resp.ok) {
      let msg = `${resp.status} ${resp.statusText}`;
      try { msg = (await resp.json()).error || msg; } catch (e) { /* not JSON */ }
      throw new Error(`the encoder could not be loaded: ${msg}`);
    }
    const session = await lib.InferenceSession.create(await resp.arrayBuffer(),
      { executionProviders: ['wasm'] });
    return new OnnxEncoder(lib, session, spec);
  }

  constructor(lib, session, spec) {
    this.lib = lib;
    this.session = session;
    this.spec = spec;
    this.frontEnd = makeFrontEnd(spec);
    this.shape = spec.input_shape;
    this.size = this.shape.reduce((a, b) => a * b, 1);
    this.timings = [];          // ms per run() call, and segments in it
  }

  // segments: Float32Array inputs of `size` values each → Float32Array(10) per segment
  async run(segments) {
    const n = segments.length;
    const data = new Float32Array(n * this.size);
    segments.forEach((s, i) => data.set(s, i * this.size));
    const t0 = performance.now();
    const out = await this.session.run({ features: new this.lib.Tensor('float32', data, [n, ...this.shape]) });
    this.timings.push({ ms: performance.now() - t0, n });
    if (this.timings.length > 200) this.timings.shift();
    const v = out.values.data;
    const k = this.spec.outputs;
    return Array.from({ length: n }, (_, i) => v.slice(i * k, (i + 1) * k));
  }

  msPerSegment() {
    const ms = this.timings.reduce((a, t) => a + t.ms, 0);
    const n = this.timings.reduce((a, t) => a + t.n, 0);
    return n ? ms / n : null;
  }
}
