// Kaleidoscope: tumbling cubes, rendered at reduced resolution into a texture, then seen
// through a mirror-wedge shader with an RGB split (one fullscreen pass, straight to the canvas).
// The wedge count is a whole number >= 2 (a fractional count leaves a seam where the wedges
// meet at angle pi, and 0 divides by zero), and each wedge is mirrored so neighbours match.
import * as THREE from 'three';
import { TAU, Visualization, hslColor, randomInBall, seededRandom } from './common.js';

const CUBES = 120;
const SOURCE_SCALE = 0.7;      // the mirrored source needs no full resolution

const KaleidoShader = {
  vertexShader: /* glsl */ `
    varying vec2 vUv;
    void main() { vUv = uv; gl_Position = vec4(position.xy, 0.0, 1.0); }`,
  fragmentShader: /* glsl */ `
    uniform sampler2D tDiffuse;
    uniform float uSides, uAngle, uZoom, uAspect, uShift, uShiftAngle;
    varying vec2 vUv;
    vec2 kaleido(vec2 uv) {
      vec2 p = (uv - 0.5) * vec2(uAspect, 1.0) / uZoom;     // square pixels around the centre
      float wedge = 6.28318530718 / uSides;
      float a = mod(atan(p.y, p.x) + uAngle, wedge);
      a = min(a, wedge - a);                                // mirror: continuous at wedge edges
      vec2 q = length(p) * vec2(cos(a), sin(a)) / vec2(uAspect, 1.0) + 0.5;
      return 1.0 - abs(1.0 - mod(q, 2.0));                  // fold back into the texture
    }
    void main() {
      vec2 off = uShift * vec2(cos(uShiftAngle), sin(uShiftAngle));
      float r = texture2D(tDiffuse, kaleido(vUv + off)).r;
      vec4 g = texture2D(tDiffuse, kaleido(vUv));
      float b = texture2D(tDiffuse, kaleido(vUv - off)).b;
      gl_FragColor = vec4(r, g.g, b, 1.0);
      #include <colorspace_fragment>
    }`,
};

export class Kaleidoscope extends Visualization {
  static id = 'kaleidoscope';
  static title = 'Kaleidoscope';
  static params = [
    { name: 'rotation X speed', min: 0, max: 1, default: 0.25 },      // rad/s
    { name: 'rotation Y speed', min: 0, max: 1, default: 0.25 },
    { name: 'RGB shift', min: 0, max: 0.03, default: 0.006 },         // fraction of the height
    { name: 'sides', min: 2, max: 16, default: 6 },                   // rounded to a whole number
    { name: 'RGB shift angle', min: 0, max: TAU, default: 1.5 },
    { name: 'mirror spin', min: -0.6, max: 0.6, default: 0.1 },      // rad/s
    { name: 'zoom', min: 0.6, max: 2.5, default: 1.2 },
    { name: 'hue', min: 0, max: 360, default: 30 },
    { name: 'hue spread', min: 0, max: 180, default: 60 },
    { name: 'light intensity', min: 0.5, max: 4, default: 2 },
  ];

  constructor(opts) {
    super(opts);
    this.camera = new THREE.PerspectiveCamera(60, this.width / this.height, 1, 1000);
    this.camera.position.z = 130;          // outside the cube cloud (radius < 75)
    this.scene.background = new THREE.Color(0x07040a);
    this.ambient = new THREE.AmbientLight(0xffffff, 0.5);
    this.sun = new THREE.DirectionalLight(0xffffff, 2);
    this.sun.position.set(1, 1, 1);
    this.scene.add(this.ambient, this.sun);

    const rand = seededRandom(100);
    const geo = new THREE.BoxGeometry(1, 1, 1);
    this.group = new THREE.Group();
    this.scene.add(this.group);
    this.cubes = [];
    for (let i = 0; i < CUBES; i++) {
      const m = new THREE.Mesh(geo, new THREE.MeshLambertMaterial());
      randomInBall(rand, 60, m.position);
      m.rotation.set(TAU * rand(), TAU * rand(), 0);
      m.scale.setScalar(4 + 10 * rand());
      m.userData.offset = rand() - 0.5;            // place of this cube in the hue spread
      m.userData.light = 0.45 + 0.3 * rand();
      this.group.add(m);
      this.cubes.push(m);
    }
    // linear 8-bit source: sRGB or half-float targets made the three lookups per pixel about
    // 1.5x slower under software GL, and flat-lit cubes show no banding
    this.target = new THREE.WebGLRenderTarget(1, 1);
    this.material = new THREE.ShaderMaterial({
      ...KaleidoShader, depthTest: false, depthWrite: false,
      uniforms: {
        tDiffuse: { value: this.target.texture }, uSides: { value: 6 }, uAngle: { value: 0 },
        uZoom: { value: 1 }, uAspect: { value: 1 }, uShift: { value: 0 }, uShiftAngle: { value: 0 },
      },
    });
    this.post = new THREE.Scene();
    const quad = new THREE.Mesh(new THREE.PlaneGeometry(2, 2), this.material);
    quad.frustumCulled = false;
    this.post.add(quad);
    this.postCamera = new THREE.OrthographicCamera(-1, 1, 1, -1, 0, 1);
    this.owned.push(this.post, this.target);
    this.mirrorAngle = 0;
    this.sides = 6;
    this.resize(this.width, this.height);
    this.update(0, Float32Array.from(Kaleidoscope.params, (p) => p.default));
  }

  update(dt, v) {
    this.time += dt;
    const [rx, ry, shift, sides, shiftAngle, spin, zoom, hue, spread, light] = v;
    this.group.rotation.x += rx * dt;
    this.group.rotation.y += ry * dt;
    this.mirrorAngle += spin * dt;
    const u = this.material.uniforms;
    // whole wedges only; a little hysteresis so a value hovering at n + 0.5 does not flicker
    if (Math.abs(sides - this.sides) > 0.6) this.sides = Math.max(2, Math.round(sides));
    u.uSides.value = this.sides;
    u.uAngle.value = this.mirrorAngle;
    u.uZoom.value = zoom;
    u.uShift.value = shift;
    u.uShiftAngle.value = shiftAngle;
    for (const c of this.cubes) hslColor(hue + spread * c.userData.offset, 0.75, c.userData.light, c.material.color);
    this.sun.intensity = light;
    this.ambient.intensity = 0.5 * light;
  }

  render(renderer) {
    const previous = renderer.getRenderTarget();
    renderer.setRenderTarget(this.target);
    renderer.render(this.scene, this.camera);
    renderer.setRenderTarget(previous);
    renderer.render(this.post, this.postCamera);
  }

  resize(width, height) {
    super.resize(width, height);
    const scale = SOURCE_SCALE * this.renderer.getPixelRatio();
    this.target.setSize(Math.max(1, Math.round(width * scale)), Math.max(1, Math.round(height * scale)));
    this.material.uniforms.uAspect.value = width / height;
  }
}
