/**
 * SLERP between the base (t = 0) and one other model, as mergekit's `slerp` (Shoemake 1985;
 * https://en.wikipedia.org/wiki/Slerp). The WHOLE tensor is one vector (mergekit flattens
 * it to a NumPy float32 array, even with --cuda):
 *
 *   v̂ = v/‖v‖ (left un-normalised when ‖v‖ ≤ eps = 1e-8),  dot = Σ v̂₀v̂₁
 *   |dot| > DOT_THRESHOLD = 0.9995  →  θ = (1−t)·v₀ + t·v₁            (lerp fallback)
 *   otherwise  Ω = arccos(dot),  θ = sin((1−t)Ω)/sin Ω · v₀ + sin(tΩ)/sin Ω · v₁
 *
 * applied to the UN-normalised tensors. NumPy float32 rounding is mirrored at each step.
 */
import { defineMethod } from './define.js';
import { num, requireBase } from './params.js';
import { norm } from './vectors.js';

const f = Math.fround;

/** mergekit's colinearity threshold and normalisation epsilon. */
export const DOT_THRESHOLD = 0.9995;
export const SLERP_EPS = 1e-8;

/** mergekit's `slerp(t, v0, v1)` on flat float32 vectors. */
export function slerpVectors(t: number, v0: Float32Array, v1: Float32Array): Float32Array {
  const n = v0.length;
  const n0 = norm(v0);
  const n1 = norm(v1);
  const s0n = n0 > SLERP_EPS ? n0 : 1;
  const s1n = n1 > SLERP_EPS ? n1 : 1;
  let acc = 0;
  for (let j = 0; j < n; j++) acc += f(v0[j] / s0n) * f(v1[j] / s1n);
  const dot = f(acc);
  const out = new Float32Array(n);
  let c0: number;
  let c1: number;
  if (Math.abs(dot) > f(DOT_THRESHOLD)) {
    c0 = f(1 - t);
    c1 = f(t);
  } else {
    const omega = f(Math.acos(dot));
    const sinOmega = f(Math.sin(omega));
    const omegaT = f(omega * f(t));
    c0 = f(f(Math.sin(f(omega - omegaT))) / sinOmega);
    c1 = f(f(Math.sin(omegaT)) / sinOmega);
  }
  for (let j = 0; j < n; j++) out[j] = f(c0 * v0[j]) + f(c1 * v1[j]);
  return out;
}

export const slerp = defineMethod(
  {
    id: 'slerp',
    label: 'SLERP',
    paper: 'https://en.wikipedia.org/wiki/Slerp',
    description: 'Spherical interpolation between the base (t = 0) and one other model (t = 1), over the whole tensor.',
    requiresBase: true,
    baseUsage: 'required',
    minModels: 1,
    maxModels: 1,
    random: false,
    perModelParams: [],
    globalParams: [
      {
        name: 't',
        type: 'number',
        default: null,
        required: true,
        description: 'Interpolation factor: 0 = base model, 1 = the other model.',
      },
    ],
  },
  (r) => slerpVectors(num(r.globals, 't'), requireBase(r).tensor, r.models[0].tensor),
);
