// Psychedelic waves: a fullscreen fragment shader that warps the plane with layered sine
// displacements and colours it in HSV. Time advances by speed * dt, so it stops when paused.
import * as THREE from 'three';
import { GLSL_COLOR, Visualization } from './common.js';

const vertexShader = /* glsl */ `
varying vec2 vUv;
void main() {
  vUv = uv;
  gl_Position = vec4(position.xy, 0.0, 1.0);   // the 2x2 plane covers clip space
}`;

const fragmentShader = /* glsl */ `
uniform float uTime, uHue, uSaturation, uBrightness, uHueVariation, uDensity;
uniform float uDisplacement, uWavesX, uWavesY, uColor, uAspect;
varying vec2 vUv;
${GLSL_COLOR}
void main() {
  vec2 p = (vUv - 0.5) * vec2(uAspect, 1.0) * uDensity;
  float t = uTime;
  // each octave bends the coordinates by a sine of the other axis: the "domain warp"
  for (int i = 1; i < 6; i++) {
    float f = float(i);
    p.x += uDisplacement / f * sin(f * uWavesY * p.y + t + 0.7 * f);
    p.y += uDisplacement / f * cos(f * uWavesX * p.x - 0.8 * t + 1.3 * f);
  }
  float band = 0.5 + 0.5 * sin(p.x + p.y);
  float glow = 0.5 + 0.5 * cos(0.7 * p.x - p.y + 0.4 * t);
  float hue = fract(uHue + uHueVariation * (band - 0.5) + 0.25 * uHueVariation * glow);
  vec3 rgb = hsv2rgb(vec3(hue, uSaturation, uBrightness * (0.55 + 0.45 * glow)));
  vec3 tint = vec3(0.35, uColor, 1.0 - uColor) * uBrightness;   // G = colour, B = 1 - colour
  gl_FragColor = vec4(mix(rgb, tint, 0.3 * band), 1.0);
}`;

export class Waves extends Visualization {
  static id = 'waves';
  static title = 'Psychedelic waves';
  static params = [
    { name: 'hue', min: 0, max: 1, default: 0.6 },
    { name: 'saturation', min: 0.1, max: 0.9, default: 0.6 },
    { name: 'brightness', min: 0.3, max: 0.9, default: 0.7 },
    { name: 'hue variation', min: 0, max: 1, default: 0.4 },
    { name: 'density', min: 2, max: 14, default: 6 },           // wave periods across the height
    { name: 'displacement', min: 0, max: 2, default: 0.8 },
    { name: 'speed', min: 0.1, max: 2.5, default: 0.8 },        // shader seconds per audio second
    { name: 'waves X', min: 0.2, max: 1.5, default: 0.6 },
    { name: 'waves Y', min: 0.2, max: 1.5, default: 0.6 },
    { name: 'colour', min: 0, max: 1, default: 0.5 },
  ];

  constructor(opts) {
    super(opts);
    this.camera = new THREE.OrthographicCamera(-1, 1, 1, -1, 0, 1);
    const names = ['uHue', 'uSaturation', 'uBrightness', 'uHueVariation', 'uDensity',
                   'uDisplacement', null, 'uWavesX', 'uWavesY', 'uColor'];
    this.names = names;
    const uniforms = { uTime: { value: 0 }, uAspect: { value: this.width / this.height } };
    names.forEach((n, k) => { if (n) uniforms[n] = { value: Waves.params[k].default }; });
    this.material = new THREE.ShaderMaterial({ uniforms, vertexShader, fragmentShader,
                                               depthTest: false, depthWrite: false });
    const quad = new THREE.Mesh(new THREE.PlaneGeometry(2, 2), this.material);
    quad.frustumCulled = false;
    this.scene.add(quad);
  }

  update(dt, v) {
    const u = this.material.uniforms;
    this.names.forEach((n, k) => { if (n) u[n].value = v[k]; });
    this.time += v[6] * dt;
    u.uTime.value = this.time;
  }

  resize(width, height) {
    super.resize(width, height);
    this.material.uniforms.uAspect.value = width / height;
  }
}
