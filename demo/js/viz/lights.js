// Lights: a long chain of particles linked into triangles by distance constraints, pulled
// around by a moving attractor, drawn as additive points and lines with a glow. Position
// Verlet with a fixed 1/60 s step, run as many times as the audio clock advanced, so the
// motion does not depend on the frame rate (the original ran tick(0.5) once per frame).
// The glow is a sparse layer of large faint sprites: an UnrealBloomPass cost about 5x the
// whole scene under software GL (SwiftShader), so it was dropped.
import * as THREE from 'three';
import { Visualization, hslColor, makeDotTexture, seededRandom } from './common.js';

const COUNT = 1500;               // particles; neighbours i+1 and i+2 are linked: a triangle strip
const STEP = 1 / 60;              // s per Verlet step
const MAX_STEPS = 8;              // per frame; a slower machine drops time rather than stall
const ITERATIONS = 2;             // constraint relaxation passes per step
const SHELL = 22;                 // beyond this radius a soft pull brings particles back
const BOUND = 36;                 // and this sphere is a hard limit
const LINK = 1.6;                 // world units per unit of "edges distance"
const HALO_EVERY = 5;             // one glow sprite per this many particles
const HALO_SIZE = 3;              // glow sprite size relative to a point

export class Lights extends Visualization {
  static id = 'lights';
  static title = 'Lights';
  static prefers = 'spectrum';   // made for the spectrum model's 10 features (the default run)
  static params = [
    { name: 'particles weight', min: 0.2, max: 2, default: 0.6 },
    { name: 'edges distance', min: 0.2, max: 1, default: 0.8 },
    { name: 'hue', min: 150, max: 330, default: 200 },
    { name: 'saturation', min: 0.3, max: 0.9, default: 0.6 },
    { name: 'lightness', min: 0.3, max: 0.7, default: 0.5 },
    { name: 'opacity', min: 0.2, max: 0.9, default: 0.6 },
    { name: 'point size', min: 0.5, max: 3, default: 1.2 },
    { name: 'attractor strength', min: 5, max: 80, default: 30 },      // units/s^2 at unit weight
    { name: 'attractor radius', min: 5, max: 30, default: 15 },
    { name: 'damping', min: 0.2, max: 4, default: 1 },                 // 1/s
  ];

  constructor(opts) {
    super(opts);
    this.camera = new THREE.PerspectiveCamera(50, this.width / this.height, 0.5, 500);
    this.scene.background = new THREE.Color(0x020308);
    const rand = seededRandom(3000);

    // a tangled start: a random walk folded onto a sphere shell
    this.pos = new Float32Array(COUNT * 3);
    this.prev = new Float32Array(COUNT * 3);
    const p = new THREE.Vector3(0, 0, 0);
    for (let i = 0; i < COUNT; i++) {
      p.x += (rand() - 0.5) * 3; p.y += (rand() - 0.5) * 3; p.z += (rand() - 0.5) * 3;
      if (p.length() > SHELL) p.multiplyScalar(0.7);
      p.toArray(this.pos, 3 * i);
    }
    this.prev.set(this.pos);
    const links = [];
    for (let i = 0; i < COUNT; i++) {
      if (i + 1 < COUNT) links.push(i, i + 1);
      if (i + 2 < COUNT) links.push(i, i + 2);
    }
    this.links = Uint32Array.from(links);
    // rest length per link: 1 for i-(i+1), 1.7 for i-(i+2) (a flat, slightly bent triangle)
    this.restScale = Float32Array.from({ length: this.links.length / 2 }, (_, k) => (k % 2 ? 1.7 : 1));

    const position = new THREE.BufferAttribute(this.pos, 3).setUsage(THREE.DynamicDrawUsage);
    this.position = position;
    const pointGeo = new THREE.BufferGeometry().setAttribute('position', position);
    const dot = makeDotTexture();
    const glowing = { map: dot, transparent: true, depthWrite: false,
                      blending: THREE.AdditiveBlending, sizeAttenuation: true };
    this.pointMat = new THREE.PointsMaterial(glowing);
    const points = new THREE.Points(pointGeo, this.pointMat);
    const haloGeo = new THREE.BufferGeometry().setAttribute('position', position);
    haloGeo.setIndex(Array.from({ length: Math.ceil(COUNT / HALO_EVERY) }, (_, k) => k * HALO_EVERY));
    this.haloMat = new THREE.PointsMaterial(glowing);
    const halo = new THREE.Points(haloGeo, this.haloMat);
    const lineGeo = new THREE.BufferGeometry().setAttribute('position', position);
    lineGeo.setIndex(new THREE.BufferAttribute(this.links, 1));
    this.lineMat = new THREE.LineBasicMaterial({
      transparent: true, depthWrite: false, blending: THREE.AdditiveBlending,
    });
    const lines = new THREE.LineSegments(lineGeo, this.lineMat);
    points.frustumCulled = lines.frustumCulled = halo.frustumCulled = false;
    this.scene.add(halo, lines, points);

    this.attractor = new THREE.Vector3();
    this.carry = 0;
    this.update(0, Float32Array.from(Lights.params, (q) => q.default));
  }

  step(v) {
    const [weight, edges, , , , , , strength, radius, damping] = v;
    const pos = this.pos, prev = this.prev;
    const keep = Math.exp(-damping * STEP);
    const h2 = STEP * STEP;
    const a = this.attractor;
    const gain = strength / weight;
    for (let i = 0; i < COUNT; i++) {
      const j = 3 * i;
      const x = pos[j], y = pos[j + 1], z = pos[j + 2];
      const dx = a.x - x, dy = a.y - y, dz = a.z - z;
      const d = Math.sqrt(dx * dx + dy * dy + dz * dz) + 1e-6;
      let ax, ay, az;
      if (d < radius) {
        // inside the radius: pull in and swirl about the vertical axis; too close: push out
        const f = gain * (d < 0.25 * radius ? -1 : 1) * (1 - d / radius) / d;
        ax = f * dx - 0.6 * gain * dz / d; ay = f * dy; az = f * dz + 0.6 * gain * dx / d;
      } else {
        // outside it: drift freely, but a soft wall beyond SHELL keeps the chain in view
        const r = Math.sqrt(x * x + y * y + z * z) + 1e-6;
        const f = r > SHELL ? (-0.08 * gain * (r - SHELL)) / r : 0;
        ax = f * x; ay = f * y; az = f * z;
      }
      pos[j] = x + (x - prev[j]) * keep + ax * h2;
      pos[j + 1] = y + (y - prev[j + 1]) * keep + ay * h2;
      pos[j + 2] = z + (z - prev[j + 2]) * keep + az * h2;
      prev[j] = x; prev[j + 1] = y; prev[j + 2] = z;
    }
    const rest = edges * LINK, links = this.links, scale = this.restScale;
    for (let it = 0; it < ITERATIONS; it++) {
      for (let k = 0; k < links.length; k += 2) {
        const i = 3 * links[k], j = 3 * links[k + 1];
        const dx = pos[j] - pos[i], dy = pos[j + 1] - pos[i + 1], dz = pos[j + 2] - pos[i + 2];
        const d = Math.sqrt(dx * dx + dy * dy + dz * dz) + 1e-6;
        const c = (0.5 * (d - rest * scale[k >> 1])) / d;   // equal masses: each moves half
        pos[i] += c * dx; pos[i + 1] += c * dy; pos[i + 2] += c * dz;
        pos[j] -= c * dx; pos[j + 1] -= c * dy; pos[j + 2] -= c * dz;
      }
    }
    for (let i = 0; i < pos.length; i += 3) {
      const d = Math.hypot(pos[i], pos[i + 1], pos[i + 2]);
      if (d > BOUND) {
        const s = BOUND / d;
        pos[i] *= s; pos[i + 1] *= s; pos[i + 2] *= s;
      }
    }
  }

  update(dt, v) {
    this.carry += dt;
    let steps = 0;
    while (this.carry >= STEP && steps < MAX_STEPS) {
      this.time += STEP;
      const t = this.time;
      this.attractor.set(14 * Math.sin(0.5 * t), 10 * Math.sin(0.37 * t + 1), 12 * Math.sin(0.29 * t + 2));
      this.step(v);
      this.carry -= STEP;
      steps += 1;
    }
    if (this.carry >= STEP) this.carry = 0;       // hit MAX_STEPS: drop the backlog
    if (steps) this.position.needsUpdate = true;

    const [, , hue, sat, light, opacity, size] = v;
    hslColor(hue, sat, light, this.pointMat.color);
    hslColor(hue + 25, sat, 0.6 * light, this.lineMat.color);
    this.pointMat.opacity = opacity;
    this.pointMat.size = size;
    this.haloMat.color.copy(this.pointMat.color);
    this.haloMat.opacity = 0.4 * opacity;
    this.haloMat.size = HALO_SIZE * size;
    this.lineMat.opacity = 0.45 * opacity;
    const a = 0.07 * this.time;
    this.camera.position.set(62 * Math.sin(a), 12 * Math.sin(0.5 * a), 62 * Math.cos(a));
    this.camera.lookAt(0, 0, 0);
  }
}

