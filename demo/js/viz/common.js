// Shared pieces of the visualizations: the base class that holds the contract with app.js
// (constructor, update, render, resize, dispose), colour helpers, a seeded random source,
// a soft dot texture and scene disposal.
import * as THREE from 'three';

export const TAU = Math.PI * 2;
export const clamp = (x, lo, hi) => Math.min(Math.max(x, lo), hi);

/** Colour from hue in degrees and saturation/lightness in [0, 1] (sRGB, like CSS hsl()). */
export function hslColor(hueDeg, s, l, target = new THREE.Color()) {
  const h = (((hueDeg / 360) % 1) + 1) % 1;
  return target.setHSL(h, clamp(s, 0, 1), clamp(l, 0, 1), THREE.SRGBColorSpace);
}

/** Deterministic random numbers in [0, 1) (mulberry32), so every load lays a scene out alike. */
export function seededRandom(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A uniformly random point inside a ball of the given radius. */
export function randomInBall(rand, radius, out = new THREE.Vector3()) {
  const u = rand(), v = rand(), w = rand();
  const theta = TAU * u, phi = Math.acos(2 * v - 1), r = radius * Math.cbrt(w);
  return out.set(r * Math.sin(phi) * Math.cos(theta), r * Math.sin(phi) * Math.sin(theta),
                 r * Math.cos(phi));
}

/** White disc whose alpha falls off smoothly to the rim: a round, soft sprite for points. */
export function makeDotTexture(size = 64) {
  const data = new Uint8Array(size * size * 4);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const dx = (x + 0.5) / size - 0.5, dy = (y + 0.5) / size - 0.5;
      const d = Math.min(1, Math.sqrt(dx * dx + dy * dy) * 2);
      const i = 4 * (y * size + x);
      data[i] = data[i + 1] = data[i + 2] = 255;
      data[i + 3] = Math.round(255 * Math.pow(1 - d, 1.6));
    }
  }
  const tex = new THREE.DataTexture(data, size, size, THREE.RGBAFormat);
  tex.magFilter = THREE.LinearFilter;
  tex.minFilter = THREE.LinearFilter;
  tex.needsUpdate = true;
  return tex;
}

/** GLSL colour-space helpers shared by the shader visualizations (all inputs in [0, 1]). */
export const GLSL_COLOR = /* glsl */ `
vec3 hsv2rgb(vec3 c) {
  vec3 p = abs(fract(c.xxx + vec3(0.0, 2.0 / 3.0, 1.0 / 3.0)) * 6.0 - 3.0);
  return c.z * mix(vec3(1.0), clamp(p - 1.0, 0.0, 1.0), c.y);
}
vec3 hsl2rgb(vec3 c) {
  vec3 rgb = clamp(abs(mod(c.x * 6.0 + vec3(0.0, 4.0, 2.0), 6.0) - 3.0) - 1.0, 0.0, 1.0);
  return c.z + c.y * (rgb - 0.5) * (1.0 - abs(2.0 * c.z - 1.0));
}
`;

// a render target's texture is freed with its target, by whoever owns the target
const ownTexture = (t) => t && t.isTexture && !t.isRenderTargetTexture;

function disposeMaterial(material) {
  for (const value of Object.values(material)) {
    if (ownTexture(value)) value.dispose();
  }
  if (material.uniforms) {
    for (const u of Object.values(material.uniforms)) {
      if (u && ownTexture(u.value)) u.value.dispose();
    }
  }
  material.dispose();
}

/** Free every geometry, material and texture reachable from a scene graph. */
export function disposeObject(root) {
  root.traverse((obj) => {
    if (obj.geometry) obj.geometry.dispose();
    if (obj.material) {
      for (const m of Array.isArray(obj.material) ? obj.material : [obj.material]) disposeMaterial(m);
    }
  });
  if (root.background && root.background.isTexture) root.background.dispose();
}

/**
 * Base class of every visualization. Subclasses declare static `id`, `title`, `params`
 * (exactly 10 `{name, min, max, default}`), build `this.scene` and `this.camera`, and
 * implement `update(dt, values)`. Time only moves by `dt` (audio seconds), so a paused or
 * seeking player freezes the picture.
 */
export class Visualization {
  constructor({ renderer, width, height }) {
    this.renderer = renderer;
    this.width = width;
    this.height = height;
    this.time = 0;
    this.scene = new THREE.Scene();
    this.camera = null;
    this.owned = [];            // extra scenes, render targets, ... freed by dispose()
    // renderer state a visualization might touch; restored on dispose
    this._saved = {
      autoClear: renderer.autoClear,
      clearColor: renderer.getClearColor(new THREE.Color()),
      clearAlpha: renderer.getClearAlpha(),
      toneMapping: renderer.toneMapping,
      toneMappingExposure: renderer.toneMappingExposure,
    };
  }

  update(dt) { this.time += dt; }

  render(renderer) {
    renderer.render(this.scene, this.camera);
  }

  resize(width, height) {
    this.width = width;
    this.height = height;
    if (this.camera && this.camera.isPerspectiveCamera) {
      this.camera.aspect = width / height;
      this.camera.updateProjectionMatrix();
    }
  }

  dispose() {
    disposeObject(this.scene);
    for (const thing of this.owned) {
      if (thing.isObject3D) disposeObject(thing);
      else thing.dispose();
    }
    this.owned = [];
    const r = this.renderer, s = this._saved;
    r.autoClear = s.autoClear;
    r.setClearColor(s.clearColor, s.clearAlpha);
    r.toneMapping = s.toneMapping;
    r.toneMappingExposure = s.toneMappingExposure;
    r.setRenderTarget(null);
  }
}
