// Audio playback on the Web Audio clock.
//
// The whole song is decoded into an AudioBuffer and played by an AudioBufferSourceNode, so the
// playback position is derived from AudioContext.currentTime (sample-accurate), not from a
// frame counter or <audio>.currentTime. The position reported to the visuals is what the
// listener hears now: the context time minus the output latency of the device.
import { clamp } from '../shared/format.js';

export class AudioPlayer {
  constructor() {
    this.ctx = new AudioContext({ latencyHint: 'interactive' });
    this.gain = this.ctx.createGain();
    this.gain.connect(this.ctx.destination);
    this.streamDest = this.ctx.createMediaStreamDestination();  // for video export
    this.gain.connect(this.streamDest);
    this.buffer = null;
    this.source = null;
    this.offset = 0;        // song position at the last start/pause/seek
    this.startedAt = 0;     // context time of the last start
    this.playing = false;
    this.onended = null;
    this.starting = null;   // the start under way, if any
    this.generation = 0;    // counts stops, so a start that was stopped meanwhile gives up
  }

  get duration() { return this.buffer ? this.buffer.duration : 0; }

  latency() {
    const c = this.ctx;
    return (c.outputLatency || 0) + (c.baseLatency || 0);
  }

  // Fetch and decode an audio file into an AudioBuffer of this player's context.
  async decode(url) {
    const resp = await fetch(url, { credentials: 'same-origin' });
    if (!resp.ok) throw new Error(`audio: ${resp.status} ${resp.statusText}`);
    return this.ctx.decodeAudioData(await resp.arrayBuffer());
  }

  async load(url) {
    this.stop();
    this.buffer = await this.decode(url);
    this.offset = 0;
    return this.buffer;
  }

  // Song time the listener hears now (seconds), clamped to the song.
  currentTime() {
    if (!this.buffer) return 0;
    if (!this.playing) return this.offset;
    const t = this.offset + (this.ctx.currentTime - this.startedAt) - this.latency();
    return clamp(t, 0, this.buffer.duration);
  }

  // Start playing from the offset. Calls made while a start is under way (the context's
  // resume is awaited) share it: two sources would play the song twice, out of step.
  play() {
    if (!this.buffer || this.playing) return Promise.resolve();
    if (!this.starting) {
      const starting = this._start().finally(() => {
        if (this.starting === starting) this.starting = null;
      });
      this.starting = starting;
    }
    return this.starting;
  }

  async _start() {
    const gen = this.generation;
    await this.ctx.resume();
    // a stop, pause or load while the context resumed cancels this start
    if (gen !== this.generation || !this.buffer || this.playing) return;
    if (this.offset >= this.buffer.duration) this.offset = 0;
    const src = this.ctx.createBufferSource();
    src.buffer = this.buffer;
    src.connect(this.gain);
    src.onended = () => {
      if (this.source !== src) return;
      this.playing = false;
      this.offset = this.buffer.duration;
      this.source = null;
      if (this.onended) this.onended();
    };
    this.startedAt = this.ctx.currentTime;
    src.start(0, this.offset);
    this.source = src;
    this.playing = true;
  }

  pause() {
    if (!this.playing) { this.stop(); return; }   // cancels a start under way
    this.offset = Math.min(this.offset + this.ctx.currentTime - this.startedAt, this.duration);
    this.stop();
  }

  stop() {
    this.generation += 1;
    this.starting = null;
    if (this.source) {
      const src = this.source;
      this.source = null;
      src.onended = null;
      try { src.stop(); } catch (e) { /* already stopped */ }
      src.disconnect();
    }
    this.playing = false;
  }

  async seek(t) {
    const wasPlaying = this.playing || this.starting !== null;
    this.stop();
    this.offset = clamp(t, 0, this.duration);
    if (wasPlaying) await this.play();
  }
}
