// Every visualization the page offers, in menu order. Each class declares static id, title
// and params (10 of them) and follows the contract of Visualization in common.js.
import { Bars } from './bars.js';
import { Spheres } from './spheres.js';
import { Crystals } from './crystals.js';
import { Clouds } from './clouds.js';
import { Waves } from './waves.js';
import { Particles } from './particles.js';
import { Lights } from './lights.js';
import { Kaleidoscope } from './kaleidoscope.js';

export const VISUALIZATIONS = [Bars, Spheres, Crystals, Clouds, Waves, Particles, Lights, Kaleidoscope];
