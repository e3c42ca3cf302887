/**
 * NuSLERP, as mergekit's `nuslerp` (no paper; see mergekit's docs/merge_methods.md).
 *
 * Exactly two models with weights w₁, w₂: t = w₂/(w₁ + w₂), or t = 0.5 when |w₁ + w₂| < 1e-6.
 * With a base θ₀ (a third model) it interpolates task vectors: θ = θ₀ + nuslerp(t, θ₁−θ₀, θ₂−θ₀).
 *
 * Vectors: the whole tensor when `nuslerp_flatten` (default); otherwise each fibre along the
 * last axis (dim −1; the rows of a matrix), or along axis 0 when `nuslerp_row_wise` (the
 * columns of a matrix — mergekit's option names are the other way round from what its code
 * does; we follow the code). Per vector, with eps = 1e-8:
 *
 *   ûₖ = vₖ / max(‖vₖ‖, 1e-7),  c = clamp(û₁·û₂, −1, 1)
 *   1 − c² ≤ eps²  →  (1−t)·v₁ + t·v₂                       (colinear: lerp)
 *   otherwise Ω = arccos c,  (sin((1−t)Ω)·v₁ + sin(tΩ)·v₂) / sin Ω
 */
import { defineMethod, WEIGHT_PARAM } from './define.js';
import { bool, num } from './params.js';
import { dotF, fibres, flatFibre, normF, sub, type Fibre } from './vectors.js';

const f = Math.fround;
const EPS = 1e-8;
const NORM_EPS = f(1e-7);

function slerpFibre(t: number, v0: Float32Array, v1: Float32Array, fb: Fibre, out: Float32Array): void {
  const n0 = Math.max(normF(v0, fb), NORM_EPS);
  const n1 = Math.max(normF(v1, fb), NORM_EPS);
  const c = Math.min(1, Math.max(-1, f(dotF(v0, v1, fb) / f(n0 * n1))));
  let a: number;
  let b: number;
  let div = 1;
  if (f(1 - f(c * c)) <= f(EPS * EPS)) {
    a = f(1 - t);
    b = f(t);
  } else {
    const omega = f(Math.acos(c));
    div = f(Math.sin(omega));
    a = f(Math.sin(f(f(1 - t) * omega)));
    b = f(Math.sin(f(f(t) * omega)));
  }
  for (let j = 0, p = fb.offset; j < fb.length; j++, p += fb.stride) {
    out[p] = f(f(a * v0[p]) + f(b * v1[p])) / div;
  }
}

/** mergekit's `nuslerp(t, v0, v1, dim, flatten)`. `rowWise` selects dim 0 instead of −1. */
export function nuslerpTensors(
  t: number,
  v0: Float32Array,
  v1: Float32Array,
  shape: readonly number[],
  flatten: boolean,
  rowWise: boolean,
): Float32Array {
  const out = new Float32Array(v0.length);
  const fbs = flatten ? [flatFibre(v0.length)] : fibres(shape, rowWise ? 0 : -1);
  for (const fb of fbs) slerpFibre(t, v0, v1, fb, out);
  return out;
}

export const nuslerp = defineMethod(
  {
    id: 'nuslerp',
    label: 'NuSLERP',
    paper: 'https://github.com/arcee-ai/mergekit/blob/main/docs/merge_methods.md#nuslerp-nuslerp',
    description:
      'SLERP between two models with t = w₂/(w₁+w₂); with a base, SLERP of the task vectors. Whole tensor or per row/column.',
    requiresBase: false,
    baseUsage: 'optional',
    minModels: 2,
    maxModels: 2,
    random: false,
    perModelParams: [WEIGHT_PARAM],
    globalParams: [
      {
        name: 'nuslerp_flatten',
        type: 'boolean',
        default: true,
        description: 'Treat the whole tensor as one vector. When false, interpolate each vector separately.',
      },
      {
        name: 'nuslerp_row_wise',
        type: 'boolean',
        default: false,
        description: 'When not flattened: vectors along dim 0 (matrix columns) instead of dim −1 (matrix rows), as mergekit computes.',
      },
    ],
  },
  (r) => {
    const [m1, m2] = r.models;
    const w1 = num(m1.params, 'weight');
    const w2 = num(m2.params, 'weight');
    const total = w1 + w2;
    const t = Math.abs(total) < 1e-6 ? 0.5 : w2 / total;
    const flatten = bool(r.globals, 'nuslerp_flatten');
    const rowWise = bool(r.globals, 'nuslerp_row_wise');
    if (!r.base) return nuslerpTensors(t, m1.tensor, m2.tensor, r.shape, flatten, rowWise);
    const base = r.base.tensor;
    const res = nuslerpTensors(t, sub(m1.tensor, base), sub(m2.tensor, base), r.shape, flatten, rowWise);
    for (let j = 0; j < res.length; j++) res[j] = base[j] + res[j];
    return res;
  },
);
