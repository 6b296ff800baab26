// VIZ-BAR: ten bars on a floor, each as tall as its parameter, seen by a slowly swaying camera.
import * as THREE from 'three';
import { Visualization, hslColor } from './common.js';

const N = 10;
const SPACING = 1.4;

export class Bars extends Visualization {
  static id = 'bars';
  static title = 'Bars';
  static params = Array.from({ length: N }, (_, k) => (
    { name: `bar ${k + 1}`, min: 0, max: 10, default: 3 }));

  constructor(opts) {
    super(opts);
    this.camera = new THREE.PerspectiveCamera(40, this.width / this.height, 0.1, 200);
    this.scene.background = new THREE.Color(0x05060b);
    this.scene.fog = new THREE.Fog(0x05060b, 22, 60);

    this.scene.add(new THREE.HemisphereLight(0xb8c8ff, 0x101018, 1.2));
    const sun = new THREE.DirectionalLight(0xffffff, 2.2);
    sun.position.set(6, 14, 10);
    this.scene.add(sun);

    // floor: grid lines only; a solid plane filling half the canvas costs about 5x all the
    // bars together under software GL
    this.scene.add(new THREE.GridHelper(80, 80, 0x3a4470, 0x1c2238));

    const box = new THREE.BoxGeometry(1, 1, 1);
    box.translate(0, 0.5, 0);                      // scale.y grows the bar up from the floor
    this.bars = [];
    for (let k = 0; k < N; k++) {
      const mat = new THREE.MeshLambertMaterial();
      const bar = new THREE.Mesh(box, mat);
      bar.position.x = (k - (N - 1) / 2) * SPACING;
      this.scene.add(bar);
      this.bars.push(bar);
    }
    this.update(0, Float32Array.from(Bars.params, (p) => p.default));
  }

  update(dt, values) {
    this.time += dt;
    const max = Bars.params[0].max;
    for (let k = 0; k < N; k++) {
      const h = Math.max(values[k], 0.02);
      const bar = this.bars[k];
      bar.scale.y = h;
      const lift = h / max;                        // taller bars glow brighter
      hslColor(200 + 16 * k, 0.75, 0.35 + 0.25 * lift, bar.material.color);
      bar.material.emissive.copy(bar.material.color).multiplyScalar(0.35 * lift);
    }
    const angle = 0.55 * Math.sin(0.16 * this.time);
    const radius = 19 + 2 * Math.sin(0.11 * this.time);
    this.camera.position.set(radius * Math.sin(angle), 7 + 1.5 * Math.sin(0.07 * this.time),
                             radius * Math.cos(angle));
    this.camera.lookAt(0, 3, 0);
  }
}
