// VIZ-REAL: 26 spheres on tilted orbits under a coloured sky, the camera circling them.
import * as THREE from 'three';
import { Visualization, TAU, seededRandom } from './common.js';

const COUNT = 26;
const CAMERA_RADIUS = 400;
const WHITE = new THREE.Color(1, 1, 1);

export class Spheres extends Visualization {
  static id = 'spheres';
  static title = 'Orbiting spheres';
  static params = [
    { name: 'sphere red', min: 0, max: 1, default: 0.8 },
    { name: 'sphere green', min: 0, max: 1, default: 0.4 },
    { name: 'sphere blue', min: 0, max: 1, default: 0.3 },
    { name: 'sky red', min: 0, max: 1, default: 0.2 },
    { name: 'sky green', min: 0, max: 1, default: 0.35 },
    { name: 'sky blue', min: 0, max: 1, default: 0.6 },
    { name: 'sphere radius', min: 5, max: 70, default: 30 },
    { name: 'spread', min: 40, max: 300, default: 180 },
    { name: 'camera orbit speed', min: 0, max: TAU / 3, default: 0.3 },   // rad/s
    { name: 'camera height', min: -200, max: 200, default: 80 },
  ];

  constructor(opts) {
    super(opts);
    this.camera = new THREE.PerspectiveCamera(50, this.width / this.height, 1, 4000);
    this.sky = new THREE.Color();
    this.scene.background = this.sky;
    this.scene.fog = new THREE.Fog(this.sky, 350, 1100);
    this.hemi = new THREE.HemisphereLight(0xffffff, 0x202020, 1.4);
    this.scene.add(this.hemi);
    const sun = new THREE.DirectionalLight(0xffffff, 2.5);
    sun.position.set(300, 500, 200);
    this.scene.add(sun);

    const rand = seededRandom(26);
    const geo = new THREE.SphereGeometry(1, 24, 12);
    this.material = new THREE.MeshPhongMaterial({ shininess: 80, specular: 0x555555 });
    this.orbits = [];
    for (let i = 0; i < COUNT; i++) {
      const mesh = new THREE.Mesh(geo, this.material);
      this.scene.add(mesh);
      const axis = new THREE.Vector3(rand() - 0.5, 0.8, rand() - 0.5).normalize();
      const start = new THREE.Vector3(1, 0, 0).applyAxisAngle(new THREE.Vector3(0, 0, 1),
                                                              (rand() - 0.5) * 0.6);
      start.cross(axis).normalize();              // a radius perpendicular to the orbit axis
      this.orbits.push({
        mesh, axis, start, phase: TAU * rand(),
        dist: 0.3 + 0.7 * rand(), size: 0.55 + 0.6 * rand(),
        speed: (0.15 + 0.35 * rand()) * (rand() < 0.5 ? -1 : 1),   // rad/s
      });
    }
    this.camAngle = 0;
    this.update(0, Float32Array.from(Spheres.params, (p) => p.default));
  }

  update(dt, v) {
    this.time += dt;
    this.material.color.setRGB(v[0], v[1], v[2], THREE.SRGBColorSpace);
    this.sky.setRGB(v[3], v[4], v[5], THREE.SRGBColorSpace);
    this.scene.fog.color.copy(this.sky);
    this.hemi.color.copy(this.sky).lerp(WHITE, 0.5);
    const radius = v[6], spread = v[7];
    for (const o of this.orbits) {
      o.mesh.position.copy(o.start).applyAxisAngle(o.axis, o.phase + o.speed * this.time)
        .multiplyScalar(o.dist * spread);
      o.mesh.scale.setScalar(radius * o.size);
    }
    this.camAngle += v[8] * dt;
    this.camera.position.set(CAMERA_RADIUS * Math.sin(this.camAngle), v[9],
                             CAMERA_RADIUS * Math.cos(this.camAngle));
    this.camera.lookAt(0, 0, 0);
  }
}
