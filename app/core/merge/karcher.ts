/**
 * Karcher (Fréchet / Riemannian) mean on the unit hypersphere, as mergekit's `karcher`
 * (https://en.wikipedia.org/wiki/Karcher_mean). Whole tensor as one vector; every entry
 * (the base too, if given) is one point; per-model weights are NOT used — mergekit
 * hard-codes αᵢ = 1/N.
 *
 *   uᵢ = xᵢ/‖xᵢ‖; points with ‖xᵢ‖ ≤ tol are dropped (all dropped → zeros), α renormalised
 *   u ← normalise(Σ αᵢuᵢ)  (or the first valid uᵢ when that sum has norm < tol)
 *   repeat max_iter times:
 *     cᵢ = clamp(u·uᵢ, −1, 1), θᵢ = arccos cᵢ;  T = Σ_{θᵢ ≥ tol} αᵢ·θᵢ/sin θᵢ·(uᵢ − cᵢu)
 *     stop if ‖T‖ < tol;  u ← cos‖T‖·u + sin‖T‖·T/‖T‖, renormalised
 *   θ = (Σᵢ (1/N)·‖xᵢ‖) · u
 */
import { defineMethod } from './define.js';
import { entriesOf, num } from './params.js';
import { norm } from './vectors.js';

const f = Math.fround;

/** mergekit's `karcher_merge_tensors(tensors, alphas, max_iter, tol)`. */
export function karcherMean(
  tensors: readonly Float32Array[],
  alphas: readonly number[],
  maxIter: number,
  tol: number,
): Float32Array {
  if (tensors.length === 1) return tensors[0].slice();
  const n = tensors[0].length;
  const norms = tensors.map((t) => norm(t));
  const units = tensors.map((t, i) => {
    const u = new Float32Array(n);
    if (norms[i] !== 0) for (let j = 0; j < n; j++) u[j] = t[j] / norms[i];
    return u;
  });
  const valid = norms.flatMap((v, i) => (v > tol ? [i] : []));
  if (valid.length === 0) return new Float32Array(n);
  const alphaSum = valid.reduce((s, i) => s + alphas[i], 0);
  const a = valid.map((i) => alphas[i] / alphaSum);
  const us = valid.map((i) => units[i]);

  let mean = new Float32Array(n);
  for (let k = 0; k < us.length; k++) {
    const ak = f(a[k]);
    for (let j = 0; j < n; j++) mean[j] = mean[j] + f(ak * us[k][j]);
  }
  const meanNorm = norm(mean);
  if (meanNorm < tol) mean = us[0].slice();
  else for (let j = 0; j < n; j++) mean[j] = mean[j] / meanNorm;

  const tangent = new Float32Array(n);
  for (let iter = 0; iter < maxIter; iter++) {
    tangent.fill(0);
    for (let k = 0; k < us.length; k++) {
      const u = us[k];
      let s = 0;
      for (let j = 0; j < n; j++) s += mean[j] * u[j];
      const c = Math.min(1, Math.max(-1, f(s)));
      const theta = f(Math.acos(c));
      if (theta < tol) continue;
      const coef = f(f(a[k]) * f(theta / f(Math.sin(theta))));
      for (let j = 0; j < n; j++) tangent[j] = tangent[j] + f(coef * f(u[j] - f(c * mean[j])));
    }
    const tn = norm(tangent);
    if (tn < tol) break;
    const ct = f(Math.cos(tn));
    const st = f(Math.sin(tn));
    for (let j = 0; j < n; j++) mean[j] = f(ct * mean[j]) + f(st * f(tangent[j] / tn));
    const un = norm(mean);
    if (un > tol) for (let j = 0; j < n; j++) mean[j] = mean[j] / un;
  }
  let scale = 0;
  for (let i = 0; i < norms.length; i++) scale += alphas[i] * norms[i];
  const scale32 = f(scale);
  for (let j = 0; j < n; j++) mean[j] = scale32 * mean[j];
  return mean;
}

export const karcher = defineMethod(
  {
    id: 'karcher',
    label: 'Karcher Mean',
    paper: 'https://en.wikipedia.org/wiki/Karcher_mean',
    description: 'Riemannian (Karcher) mean of the tensors on the unit sphere, rescaled by their mean norm. Equal weights.',
    requiresBase: false,
    baseUsage: 'entry',
    minModels: 1,
    maxModels: null,
    random: false,
    perModelParams: [],
    globalParams: [
      { name: 'max_iter', type: 'integer', default: 10, description: 'Maximum number of iterations.' },
      { name: 'tol', type: 'number', default: 1e-5, description: 'Convergence tolerance (also the minimum usable norm).' },
    ],
  },
  (r) => {
    const tensors = entriesOf(r).map((e) => e.tensor);
    const alphas = tensors.map(() => 1 / tensors.length);
    return karcherMean(tensors, alphas, num(r.globals, 'max_iter'), num(r.globals, 'tol'));
  },
);
