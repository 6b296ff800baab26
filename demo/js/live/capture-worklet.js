// Audio worklet: forwards the first input channel's samples to the page in blocks of about
// 1024 samples (8 render quanta), with the context frame of the block's first sample.
class Capture extends AudioWorkletProcessor {
  constructor() {
    super();
    this.block = new Float32Array(1024);
    this.fill = 0;
    this.start = 0;
  }

  process(inputs) {
    const ch = inputs[0] && inputs[0][0];
    if (!ch) return true;
    if (this.fill === 0) this.start = currentFrame;
    this.block.set(ch, this.fill);
    this.fill += ch.length;
    if (this.fill + 128 > this.block.length) {
      this.port.postMessage({ samples: this.block.slice(0, this.fill), frame: this.start });
      this.fill = 0;
    }
    return true;
  }
}

registerProcessor('capture', Capture);
