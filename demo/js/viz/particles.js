// GPU particles: a ring buffer of points spawned along a Lissajous emitter path; the vertex
// shader moves each one from its birth state (position, velocity, birth time) so the CPU
// only writes the few slots spawned this frame. timeScale slows the whole simulation clock.
import * as THREE from 'three';
import { GLSL_COLOR, Visualization, seededRandom } from './common.js';

const CAPACITY = 40000;           // ring buffer; the oldest particle is overwritten first
const PREWARM_S = 1.5;            // seconds of emission simulated at start, so frame 1 is not empty

const vertexShader = /* glsl */ `
attribute vec3 aVelocity;         // position (declared by three.js) is the spawn point
attribute vec3 aBirth;            // x: birth time, y: lifetime (s), z: random seed in [0, 1)
uniform float uTime, uTurbulence, uSize, uScale, uHue, uSaturation, uLightness;
varying vec3 vColor;
varying float vAlpha;
${GLSL_COLOR}
void main() {
  float age = uTime - aBirth.x;
  if (age < 0.0 || age > aBirth.y) {          // dead or not yet born: clip it away
    gl_Position = vec4(2.0, 2.0, 2.0, 1.0);
    gl_PointSize = 0.0;
    vAlpha = 0.0;
    vColor = vec3(0.0);
    return;
  }
  float seed = aBirth.z;
  vec3 pos = position + aVelocity * age;
  // turbulence: a smooth swirl field sampled along the path, growing with age
  vec3 swirl = vec3(sin(0.31 * pos.y + 1.7 * uTime + 6.28 * seed),
                    sin(0.29 * pos.z + 1.3 * uTime + 12.1 * seed),
                    sin(0.33 * pos.x + 1.1 * uTime + 3.7 * seed));
  pos += uTurbulence * 12.0 * age * swirl;
  vec4 mv = modelViewMatrix * vec4(pos, 1.0);
  gl_Position = projectionMatrix * mv;
  float life = age / aBirth.y;
  vAlpha = smoothstep(0.0, 0.08, life) * (1.0 - life);
  gl_PointSize = uSize * (0.6 + 1.4 * fract(seed * 7.31)) * uScale / -mv.z;   // size randomness
  float hue = fract(uHue + 0.2 * (seed - 0.5));                             // colour randomness
  vColor = hsl2rgb(vec3(hue, uSaturation, uLightness));
}`;

const fragmentShader = /* glsl */ `
varying vec3 vColor;
varying float vAlpha;
void main() {
  float d = length(gl_PointCoord - 0.5) * 2.0;
  if (d > 1.0) discard;
  gl_FragColor = vec4(vColor, vAlpha * (1.0 - d * d));
}`;

export class Particles extends Visualization {
  static id = 'particles';
  static title = 'GPU particles';
  static params = [
    { name: 'velocity randomness', min: 0, max: 3, default: 1 },
    { name: 'position randomness', min: 0, max: 1.5, default: 0.7 },
    { name: 'size', min: 2, max: 13, default: 5 },
    { name: 'lifetime', min: 1, max: 6, default: 3 },              // s
    { name: 'turbulence', min: 0.05, max: 0.5, default: 0.2 },
    { name: 'spawn rate', min: 500, max: 6000, default: 3000 },    // particles/s of sim time
    { name: 'time scale', min: 0.1, max: 1, default: 0.6 },
    { name: 'hue', min: 0, max: 360, default: 180 },
    { name: 'saturation', min: 0.3, max: 0.8, default: 0.6 },
    { name: 'lightness', min: 0.3, max: 0.8, default: 0.55 },
  ];

  constructor(opts) {
    super(opts);
    this.camera = new THREE.PerspectiveCamera(28, this.width / this.height, 1, 1000);
    this.camera.position.set(0, 0, 100);
    this.scene.background = new THREE.Color(0x000000);
    this.rand = seededRandom(8);
    this.next = 0;                    // ring index of the next spawn
    this.carry = 0;                   // fractional particles owed to the next frame

    const geo = new THREE.BufferGeometry();
    const attr = (name, size, init) => {
      const a = new THREE.BufferAttribute(new Float32Array(CAPACITY * size), size);
      if (init) for (let i = 0; i < CAPACITY; i++) a.array[i * size] = init;
      a.setUsage(THREE.DynamicDrawUsage);
      geo.setAttribute(name, a);
      return a;
    };
    this.start = attr('position', 3);
    this.velocity = attr('aVelocity', 3);
    this.birth = attr('aBirth', 3, -1e6);     // never born
    geo.setDrawRange(0, CAPACITY);
    this.material = new THREE.ShaderMaterial({
      vertexShader, fragmentShader, transparent: true, depthWrite: false,
      blending: THREE.AdditiveBlending,
      uniforms: {
        uTime: { value: 0 }, uTurbulence: { value: 0.2 }, uSize: { value: 5 },
        uScale: { value: 1 }, uHue: { value: 0.5 }, uSaturation: { value: 0.6 },
        uLightness: { value: 0.55 },
      },
    });
    this.points = new THREE.Points(geo, this.material);
    this.points.frustumCulled = false;
    this.scene.add(this.points);
    this.updateScale();

    const defaults = Float32Array.from(Particles.params, (p) => p.default);
    this.time = -PREWARM_S;
    this.emit(PREWARM_S, defaults);
    this.time = 0;
    this.update(0, defaults);
  }

  /** Emitter position at simulation time t (the original's Lissajous path). */
  static emitterAt(t, out) {
    return out.set(20 * Math.sin(0.8 * t), 10 * Math.sin(0.4 * t), 5 * Math.sin(0.8 * t + 0.4));
  }

  /** Spawn the particles owed for `simDt` seconds, spread over that interval along the path. */
  emit(simDt, v) {
    const [velRand, posRand, , lifetime, , rate] = v;
    this.carry += rate * simDt;
    const n = Math.min(Math.floor(this.carry), CAPACITY >> 1);
    this.carry -= Math.floor(this.carry);
    if (n === 0) return;
    const rand = this.rand, e = new THREE.Vector3(), t0 = this.time;
    const s = this.start.array, vel = this.velocity.array, b = this.birth.array;
    const first = this.next;
    for (let j = 0; j < n; j++) {
      const i = this.next;
      const t = t0 + ((j + rand()) / n) * simDt;
      Particles.emitterAt(t, e);
      s[3 * i] = e.x + posRand * (rand() - 0.5) * 2;
      s[3 * i + 1] = e.y + posRand * (rand() - 0.5) * 2;
      s[3 * i + 2] = e.z + posRand * (rand() - 0.5) * 2;
      vel[3 * i] = velRand * (rand() - 0.5) * 4;           // units/s
      vel[3 * i + 1] = velRand * (rand() - 0.5) * 4;
      vel[3 * i + 2] = velRand * (rand() - 0.5) * 4;
      b[3 * i] = t;
      b[3 * i + 1] = lifetime * (0.7 + 0.3 * rand());
      b[3 * i + 2] = rand();
      this.next = (i + 1) % CAPACITY;
    }
    // upload only the slots written (one range, or two when the ring wrapped); three.js
    // clears the ranges once it has uploaded them
    const ranges = first + n <= CAPACITY ? [[first, n]] : [[first, CAPACITY - first], [0, first + n - CAPACITY]];
    for (const a of [this.start, this.velocity, this.birth]) {
      for (const [from, count] of ranges) a.addUpdateRange(from * 3, count * 3);
      a.needsUpdate = true;
    }
  }

  update(dt, v) {
    const simDt = dt * v[6];                      // time scale
    if (simDt > 0) this.emit(simDt, v);
    this.time += simDt;
    const u = this.material.uniforms;
    u.uTime.value = this.time;
    u.uTurbulence.value = v[4];
    u.uSize.value = v[2] * 0.08;                  // world units: 5 -> about 5 px at the emitter
    u.uHue.value = v[7] / 360;
    u.uSaturation.value = v[8];
    u.uLightness.value = v[9];
    const a = 0.1 * this.time;                    // the camera drifts slowly around the path
    this.camera.position.set(100 * Math.sin(a), 12 * Math.sin(0.7 * a), 100 * Math.cos(a));
    this.camera.lookAt(0, 0, 0);
  }

  /** Pixels per world unit at unit distance, for perspective point sizes. */
  updateScale() {
    const h = this.height * this.renderer.getPixelRatio();
    this.material.uniforms.uScale.value = h / (2 * Math.tan(THREE.MathUtils.degToRad(this.camera.fov) / 2));
  }

  resize(width, height) {
    super.resize(width, height);
    this.updateScale();
  }
}

