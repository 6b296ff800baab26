// Point clouds: four differently shaped clouds of soft points, each with its own hue and spin,
// in exponential fog whose density and hue are parameters too. Four groups, four hue/speed
// pairs: every group is driven (the original had six groups for four pairs, two went NaN).
import * as THREE from 'three';
import { Visualization, TAU, hslColor, makeDotTexture, randomInBall, seededRandom } from './common.js';

const CLOUDS = 4;
const POINTS = [4500, 4500, 5000, 2500];     // per cloud; fill rate is the cost in software GL

/** Four point layouts: a shell, a ring, a two-armed spiral disc, a far star shell. */
function cloudPositions(kind, rand) {
  const pos = new Float32Array(POINTS[kind] * 3);
  const p = new THREE.Vector3();
  for (let i = 0; i < POINTS[kind]; i++) {
    if (kind === 0) {
      randomInBall(rand, 1, p).normalize().multiplyScalar(55 + 8 * rand());
    } else if (kind === 1) {
      const a = TAU * rand(), r = 110 + 14 * (rand() - 0.5) * 2;
      p.set(r * Math.cos(a), 10 * (rand() - 0.5) * 2, r * Math.sin(a));
    } else if (kind === 2) {
      const t = rand(), arm = rand() < 0.5 ? 0 : Math.PI;
      const a = arm + 3 * TAU * t * 0.5, r = 20 + 170 * t;
      randomInBall(rand, 6 + 14 * t, p).add(new THREE.Vector3(r * Math.cos(a), 0, r * Math.sin(a)));
    } else {
      // around the camera but never close to it: a near sprite would fill the screen
      randomInBall(rand, 1, p).normalize().multiplyScalar(520 + 200 * rand());
    }
    p.toArray(pos, 3 * i);
  }
  return pos;
}

export class Clouds extends Visualization {
  static id = 'clouds';
  static title = 'Point clouds';
  static params = [
    ...Array.from({ length: CLOUDS }, (_, k) => (
      { name: `cloud ${k + 1} hue`, min: 0, max: 360, default: 60 + 80 * k })),
    ...Array.from({ length: CLOUDS }, (_, k) => (
      { name: `cloud ${k + 1} spin`, min: -0.6, max: 0.6, default: 0.15 })),  // rad/s
    { name: 'fog density', min: 0.0002, max: 0.003, default: 0.0012 },
    { name: 'fog hue', min: 0, max: 360, default: 240 },
  ];

  constructor(opts) {
    super(opts);
    this.camera = new THREE.PerspectiveCamera(60, this.width / this.height, 1, 3000);
    this.fogColor = new THREE.Color();
    this.scene.background = this.fogColor;
    this.scene.fog = new THREE.FogExp2(this.fogColor, 0.0015);
    const rand = seededRandom(4);
    const dot = makeDotTexture();
    this.clouds = [];
    for (let k = 0; k < CLOUDS; k++) {
      const geo = new THREE.BufferGeometry();
      geo.setAttribute('position', new THREE.BufferAttribute(cloudPositions(k, rand), 3));
      const shade = new Float32Array(POINTS[k] * 3);       // per-point brightness variation
      for (let i = 0; i < POINTS[k]; i++) shade.fill(0.55 + 0.45 * rand(), 3 * i, 3 * i + 3);
      geo.setAttribute('color', new THREE.BufferAttribute(shade, 3));
      const mat = new THREE.PointsMaterial({
        size: k === 3 ? 6 : 3.5, map: dot, vertexColors: true, transparent: true,
        depthWrite: false, sizeAttenuation: true,
        fog: k !== 3,                              // the far star shell stays visible in fog
      });
      const pts = new THREE.Points(geo, mat);
      pts.rotation.set((rand() - 0.5) * 1.2, 0, (rand() - 0.5) * 1.2);  // each spins on a tilted axis
      const spinner = new THREE.Group();
      spinner.add(pts);
      spinner.rotation.set((rand() - 0.5) * 0.8, 0, (rand() - 0.5) * 0.8);
      this.scene.add(spinner);
      this.clouds.push(pts);
    }
    this.dot = dot;
    this.update(0, Float32Array.from(Clouds.params, (p) => p.default));
  }

  update(dt, v) {
    this.time += dt;
    for (let k = 0; k < CLOUDS; k++) {
      const c = this.clouds[k];
      hslColor(v[k], 0.8, 0.62, c.material.color);
      c.rotation.y += v[CLOUDS + k] * dt;
    }
    this.scene.fog.density = v[2 * CLOUDS];
    hslColor(v[2 * CLOUDS + 1], 0.55, 0.1, this.fogColor);
    this.scene.fog.color.copy(this.fogColor);
    const a = 0.05 * this.time;                          // slow drift of the viewpoint
    this.camera.position.set(330 * Math.sin(a), 90 + 40 * Math.sin(0.3 * a), 330 * Math.cos(a));
    this.camera.lookAt(0, 0, 0);
  }
}
