// Crystals: six kinds of extruded gems, ten of each, spinning in a coloured sky. The geometry
// is built once; the size parameters stretch the meshes (the original re-extruded every frame).
import * as THREE from 'three';
import { Visualization, TAU, hslColor, randomInBall, seededRandom } from './common.js';

const KINDS = 6;
const PER_KIND = 10;

/** A closed star/polygon outline: `points` corners, alternate ones pulled in by `pinch`. */
function crystalShape(points, pinch, rand) {
  const shape = new THREE.Shape();
  for (let i = 0; i < points; i++) {
    const a = (TAU * i) / points;
    const r = (i % 2 ? 1 - pinch : 1) * (0.85 + 0.3 * rand());
    if (i === 0) shape.moveTo(r * Math.cos(a), r * Math.sin(a));
    else shape.lineTo(r * Math.cos(a), r * Math.sin(a));
  }
  shape.closePath();
  return shape;
}

export class Crystals extends Visualization {
  static id = 'crystals';
  static title = 'Crystals';
  static params = [
    { name: 'rotation X speed', min: -0.8, max: 0.8, default: 0.2 },   // rad/s
    { name: 'rotation Y speed', min: -0.8, max: 0.8, default: 0.3 },
    { name: 'rotation Z speed', min: -0.8, max: 0.8, default: 0.1 },
    { name: 'sky hue', min: 0, max: 360, default: 220 },
    ...Array.from({ length: KINDS }, (_, k) => (
      { name: `crystal ${k + 1} size`, min: 0.3, max: 3, default: 1.2 })),
  ];

  constructor(opts) {
    super(opts);
    this.camera = new THREE.PerspectiveCamera(55, this.width / this.height, 0.5, 400);
    this.camera.position.set(0, 0, 70);
    this.sky = new THREE.Color();
    this.scene.background = this.sky;
    this.scene.fog = new THREE.Fog(this.sky, 50, 130);
    this.hemi = new THREE.HemisphereLight(0xffffff, 0x111122, 1.0);
    this.scene.add(this.hemi);
    const key = new THREE.DirectionalLight(0xffffff, 2.0);
    key.position.set(20, 30, 40);
    this.scene.add(key);
    this.lamps = [0xff4fa0, 0x40d0ff, 0xffd040].map((c) => {
      const lamp = new THREE.PointLight(c, 900, 120, 1.6);
      this.scene.add(lamp);
      return lamp;
    });

    const rand = seededRandom(6);
    this.field = new THREE.Group();
    this.scene.add(this.field);
    this.kinds = [];
    for (let k = 0; k < KINDS; k++) {
      const geo = new THREE.ExtrudeGeometry(crystalShape(5 + k, k % 2 ? 0.45 : 0.15, rand), {
        depth: 1, steps: 1, bevelEnabled: true, bevelSegments: 1,
        bevelThickness: 0.35 + 0.2 * rand(), bevelSize: 0.25 + 0.15 * rand(),
      });
      geo.center();
      const mat = new THREE.MeshPhongMaterial({     // Phong: half the cost of PBR in software GL
        color: hslColor(360 * rand(), 0.7, 0.6), specular: 0x888888, shininess: 90,
        flatShading: true,
      });
      const meshes = [];
      for (let j = 0; j < PER_KIND; j++) {
        const m = new THREE.Mesh(geo, mat);
        randomInBall(rand, 36, m.position);
        m.rotation.set(TAU * rand(), TAU * rand(), TAU * rand());
        m.userData.base = 1.0 + 1.2 * rand();
        m.userData.spin = new THREE.Vector3(rand() < 0.5 ? -1 : 1, rand() < 0.5 ? -1 : 1,
                                            rand() < 0.5 ? -1 : 1);
        this.field.add(m);
        meshes.push(m);
      }
      this.kinds.push(meshes);
    }
    this.update(0, Float32Array.from(Crystals.params, (p) => p.default));
  }

  update(dt, v) {
    this.time += dt;
    const [rx, ry, rz, skyHue] = v;
    for (let k = 0; k < KINDS; k++) {
      const size = v[4 + k];
      for (const m of this.kinds[k]) {
        const b = m.userData.base, s = m.userData.spin;
        m.scale.set(b * (0.6 + 0.4 * size), b * (0.6 + 0.4 * size), b * size);  // depth = extrusion
        m.rotation.x += s.x * rx * dt;
        m.rotation.y += s.y * ry * dt;
        m.rotation.z += s.z * rz * dt;
      }
    }
    this.field.rotation.y += 0.25 * ry * dt;
    this.field.rotation.x += 0.1 * rx * dt;
    hslColor(skyHue, 0.55, 0.16, this.sky);
    this.scene.fog.color.copy(this.sky);
    hslColor(skyHue, 0.6, 0.75, this.hemi.color);
    this.lamps.forEach((lamp, i) => {
      const a = 0.4 * this.time + (TAU * i) / 3;
      lamp.position.set(40 * Math.cos(a), 25 * Math.sin(1.3 * a), 40 * Math.sin(a));
    });
  }
}
