// A cross-fade between two visualizations (the scene change on downbeats, "blend"): each
// renders into its own half-float render target (every visualization draws into whatever
// target is current; the kaleidoscope's own pass restores it), and a full-screen quad mixes
// the two onto the canvas, converting to the output colour space as three.js does for scenes.
import * as THREE from 'three';

export class SceneBlend {
  constructor(renderer) {
    this.renderer = renderer;
    const opts = { type: THREE.HalfFloatType, depthBuffer: true };
    this.from = new THREE.WebGLRenderTarget(1, 1, opts);
    this.to = new THREE.WebGLRenderTarget(1, 1, opts);
    this.material = new THREE.ShaderMaterial({
      uniforms: { tFrom: { value: this.from.texture }, tTo: { value: this.to.texture },
                  amount: { value: 0 } },
      vertexShader: /* glsl */ `
        varying vec2 vUv;
        void main() { vUv = uv; gl_Position = vec4(position.xy, 0.0, 1.0); }`,
      fragmentShader: /* glsl */ `
        uniform sampler2D tFrom;
        uniform sampler2D tTo;
        uniform float amount;
        varying vec2 vUv;
        void main() {
          gl_FragColor = mix(texture2D(tFrom, vUv), texture2D(tTo, vUv), amount);
          #include <colorspace_fragment>
        }`,
      depthTest: false, depthWrite: false,
    });
    this.quad = new THREE.Mesh(new THREE.PlaneGeometry(2, 2), this.material);
    this.quad.frustumCulled = false;
    this.scene = new THREE.Scene();
    this.scene.add(this.quad);
    this.camera = new THREE.OrthographicCamera(-1, 1, 1, -1, 0, 1);
  }

  // the canvas's drawing-buffer size
  setSize(width, height) {
    const pr = this.renderer.getPixelRatio();
    const w = Math.max(1, Math.floor(width * pr));
    const h = Math.max(1, Math.floor(height * pr));
    if (this.from.width !== w || this.from.height !== h) {
      this.from.setSize(w, h);
      this.to.setSize(w, h);
    }
  }

  // draw `from` and `to` mixed: 0 is all `from`, 1 all `to`
  render(from, to, amount) {
    const r = this.renderer;
    r.setRenderTarget(this.from);
    from.render(r);
    r.setRenderTarget(this.to);
    to.render(r);
    r.setRenderTarget(null);
    this.material.uniforms.amount.value = Math.min(1, Math.max(0, amount));
    r.render(this.scene, this.camera);
  }

  dispose() {
    this.from.dispose();
    this.to.dispose();
    this.material.dispose();
    this.quad.geometry.dispose();
  }
}
