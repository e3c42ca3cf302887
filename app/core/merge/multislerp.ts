/**
 * Multi-SLERP, as mergekit's `multislerp` (C. Goddard,
 * https://goddard.blog/posts/multislerp-wow-what-a-cool-idea): barycentric interpolation on
 * the hypersphere, whole tensor as one vector. With xᵢ = θᵢ (or θᵢ − θ₀ with a base),
 * weights wᵢ (÷ Σw when `normalize_weights`), eps = `eps`:
 *
 *   uᵢ = xᵢ / (‖xᵢ‖ + eps),   m̃ = Σ wᵢuᵢ
 *   ‖m̃‖ < eps: 2 models → w₁x₁ + w₂x₂ (+θ₀); more → error (antipodal inputs)
 *   m = m̃/‖m̃‖,   T = Σ wᵢ(uᵢ − (uᵢ·m)m),   τ = ‖T‖ + eps
 *   θ = (m·cos τ + T·sin τ/τ) · Σ wᵢ‖xᵢ‖  (+θ₀)
 *
 * A single model is returned unchanged (even with a base), as in mergekit.
 */
import { defineMethod, WEIGHT_PARAM } from './define.js';
import { bool, num } from './params.js';

const f = Math.fround;

export const multislerp = defineMethod(
  {
    id: 'multislerp',
    label: 'Multi-SLERP',
    paper: 'https://goddard.blog/posts/multislerp-wow-what-a-cool-idea',
    description: 'Spherical barycentric interpolation of any number of models (or of task vectors, with a base).',
    requiresBase: false,
    baseUsage: 'optional',
    minModels: 1,
    maxModels: null,
    random: false,
    perModelParams: [WEIGHT_PARAM],
    globalParams: [
      { name: 'normalize_weights', type: 'boolean', default: true, description: 'Divide the weights by their sum.' },
      { name: 'eps', type: 'number', default: 1e-8, description: 'Numerical-stability constant.' },
    ],
  },
  (r) => {
    const n = r.numel;
    const models = r.models;
    if (models.length === 1) return models[0].tensor.slice();
    const base = r.base?.tensor;
    const eps = num(r.globals, 'eps');
    const eps32 = f(eps);
    let weights = models.map((m) => f(num(m.params, 'weight')));
    if (bool(r.globals, 'normalize_weights')) {
      let total = 0;
      for (const w of weights) total = f(total + w);
      weights = weights.map((w) => f(w / total));
    }
    const xs = base
      ? models.map((m) => {
          const d = new Float32Array(n);
          for (let j = 0; j < n; j++) d[j] = m.tensor[j] - base[j];
          return d;
        })
      : models.map((m) => m.tensor);
    const norms = xs.map((x) => {
      let s = 0;
      for (let j = 0; j < n; j++) s += x[j] * x[j];
      return f(Math.sqrt(s));
    });
    const denoms = norms.map((v) => f(v + eps32));
    const unit = (i: number, j: number): number => f(xs[i][j] / denoms[i]);

    const mean = new Float32Array(n);
    let sq = 0;
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let i = 0; i < xs.length; i++) s = f(s + f(unit(i, j) * weights[i]));
      mean[j] = s;
      sq += s * s;
    }
    const meanNorm = f(Math.sqrt(sq));
    if (meanNorm < eps32) {
      if (xs.length !== 2) {
        throw new Error(
          `${r.tensorName}: multislerp: the weighted sum of the unit inputs is zero (antipodal inputs with balancing weights)`,
        );
      }
      const out = new Float32Array(n);
      for (let j = 0; j < n; j++) {
        const v = f(f(xs[0][j] * weights[0]) + f(xs[1][j] * weights[1]));
        out[j] = base ? base[j] + v : v;
      }
      return out;
    }
    for (let j = 0; j < n; j++) mean[j] = mean[j] / meanNorm;

    const dots = xs.map((_, i) => {
      let s = 0;
      for (let j = 0; j < n; j++) s += unit(i, j) * mean[j];
      return f(s);
    });
    const tangent = new Float32Array(n);
    let tsq = 0;
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let i = 0; i < xs.length; i++) s = f(s + f(f(unit(i, j) - f(dots[i] * mean[j])) * weights[i]));
      tangent[j] = s;
      tsq += s * s;
    }
    const tau = f(f(Math.sqrt(tsq)) + eps32);
    const cosTau = f(Math.cos(tau));
    const sinOverTau = f(f(Math.sin(tau)) / tau);
    let avgNorm = 0;
    for (let i = 0; i < xs.length; i++) avgNorm = f(avgNorm + f(norms[i] * weights[i]));
    const out = tangent; // reuse the buffer
    for (let j = 0; j < n; j++) {
      const v = f(f(f(mean[j] * cosTau) + f(tangent[j] * sinOverTau)) * avgNorm);
      out[j] = base ? base[j] + v : v;
    }
    return out;
  },
);
