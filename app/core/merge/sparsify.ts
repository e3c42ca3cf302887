/**
 * Task-vector sparsifiers, as in mergekit's `mergekit/sparsify.py`.
 *
 * Every sparsifier builds a keep-mask m (a `Uint8Array`; mergekit uses a tensor of the
 * delta's dtype, which holds the same 0/1 values) and then applies
 * `rescaled_masked_tensor`: δ̃ = m ⊙ δ, optionally rescaled.
 *
 * Rescale (global `rescale`):
 * - `'l1'` (mergekit, the default): δ̃ ← δ̃ · ‖δ‖₁ / ‖m ⊙ δ‖₁, one factor per tensor, skipped
 *   when either norm is below 1e-7. This is L1-norm matching, NOT the papers' 1/p.
 * - `'inverse_density'` (extension, the DARE/DELLA papers' form): each kept entry is divided
 *   by its keep probability p (DARE: p = density; DELLA: the entry's pᵢ; for the
 *   deterministic sparsifiers p = density).
 *
 * All arithmetic that torch performs in float32 is rounded with `Math.fround` at the same
 * points, so deterministic sparsifiers reproduce mergekit (on float32 tensors) up to the
 * order of summation inside the L1 norms.
 */
import type { Rng } from './rng.js';
import { absRankWindowMask, bitsView, stableAbsRanks, topKAbsMask } from './select.js';

const f = Math.fround;
const RESCALE_EPS = f(1e-7);

export type SparsificationMethod = 'magnitude' | 'random' | 'magnitude_outliers' | 'della_magprune';
export type RescaleMode = 'l1' | 'inverse_density';

export interface SparsifyOptions {
  /** Fraction to keep (mergekit per-model `density`). */
  readonly density: number;
  /** mergekit global `rescale`. */
  readonly rescale: boolean;
  /** How to rescale when `rescale` is true (default `'l1'`, mergekit). */
  readonly rescaleMode?: RescaleMode | undefined;
  /** Breadcrumbs: fraction of largest magnitudes to drop. */
  readonly gamma?: number | undefined;
  /** DELLA: half-width of the keep-probability range. */
  readonly epsilon?: number | undefined;
  /** Random stream (required by `random` and `della_magprune`). */
  readonly rng?: Rng | undefined;
}

/**
 * Zero the entries of `t` outside `mask` and rescale the kept ones (in place).
 * `keepProb` gives the per-entry keep probability for `'inverse_density'`.
 */
export function applyMask(
  t: Float32Array,
  mask: Uint8Array,
  rescale: boolean,
  mode: RescaleMode,
  keepProb: (i: number) => number,
): void {
  const n = t.length;
  let before = 0;
  let after = 0;
  for (let i = 0; i < n; i++) {
    const a = Math.abs(t[i]);
    before += a;
    if (mask[i]) after += a;
    else t[i] = 0;
  }
  if (!rescale) return;
  if (mode === 'inverse_density') {
    for (let i = 0; i < n; i++) if (mask[i]) t[i] = f(t[i] / keepProb(i));
    return;
  }
  const b = f(before);
  const a = f(after);
  if (b < RESCALE_EPS || a < RESCALE_EPS) return;
  const factor = f(b / a);
  for (let i = 0; i < n; i++) if (mask[i]) t[i] = f(t[i] * factor);
}

function need<T>(value: T | undefined, what: string): T {
  if (value === undefined) throw new Error(`sparsify: ${what} is required`);
  return value;
}

/**
 * mergekit `magnitude` (TIES trim): keep the k = int(density·n) largest |δ|.
 * density ≥ 1 returns δ untouched; k = 0 throws, as mergekit asserts
 * ("not gonna zero out the whole tensor buddy").
 */
export function magnitude(t: Float32Array, o: SparsifyOptions): void {
  if (o.density >= 1) return;
  const k = Math.trunc(o.density * t.length);
  if (k <= 0) throw new Error(`magnitude sparsification with density ${o.density} keeps no entries of ${t.length}`);
  applyMask(t, topKAbsMask(t, k), o.rescale, o.rescaleMode ?? 'l1', () => o.density);
}

/** mergekit `random` (DARE drop): m ~ Bernoulli(density) elementwise, in flat order. */
export function bernoulli(t: Float32Array, o: SparsifyOptions): void {
  if (o.density >= 1) return;
  if (o.density < 0) throw new RangeError(`random sparsification needs density in [0, 1], got ${o.density}`);
  const rng = need(o.rng, 'a random stream');
  const p = f(o.density);
  const mask = new Uint8Array(t.length);
  rng.fillBernoulli(p, mask, t.length); // mask[i] = rng.nextFloat() < p, in flat order
  applyMask(t, mask, o.rescale, o.rescaleMode ?? 'l1', () => p);
}

/**
 * mergekit `magnitude_outliers` (Model Breadcrumbs): with n_top = int(γn),
 * n_bot = n − int(dn) − n_top (if negative: n_top += n_bot, n_bot = 0), keep
 * `sort(|δ|).indices[n_bot : -n_top]` with Python slice semantics.
 * ⚠ As in mergekit, n_top = 0 (γ = 0, or n < 1/γ) makes the slice `[n_bot:-0]` empty and
 * zeroes the whole task vector.
 */
export function magnitudeOutliers(t: Float32Array, o: SparsifyOptions): void {
  if (o.density >= 1) return;
  const n = t.length;
  const targetN = Math.trunc(o.density * n);
  const nTop = Math.trunc((o.gamma ?? 0.01) * n);
  // mergekit 0.1.5: drop the n_top largest (shrunk when needed to keep the target density) and keep
  // the next target_n by magnitude: ascending ranks [n_bot, n_bot + target_n).
  const nBot = Math.max(0, n - targetN - nTop);
  applyMask(t, absRankWindowMask(t, nBot, Math.min(n, nBot + targetN)), o.rescale, o.rescaleMode ?? 'l1', () => o.density);
}

/**
 * mergekit `della_magprune` (DELLA MagPrune). Ranks rᵢ ∈ 1..L of |δ| along dim 1 (a 1-D
 * tensor is one row), r̂ = (r − 1)/(L − 1), keep probability pᵢ = (d − ε) + 2ε·r̂, mask
 * ~ Bernoulli(pᵢ) drawn in flat order. density ≤ 0 zeroes δ; d ± ε must lie in (0, 1).
 * Rows of length 1 give r̂ = 0/0 = NaN, on which torch.bernoulli fails; we throw too.
 */
export function dellaMagprune(t: Float32Array, shape: readonly number[], o: SparsifyOptions): void {
  const d = o.density;
  if (d >= 1) return;
  if (d <= 0) {
    t.fill(0);
    return;
  }
  const probs = dellaKeepProbabilities(t, shape, d, o.epsilon ?? 0.15);
  const rng = need(o.rng, 'a random stream');
  const mask = new Uint8Array(t.length);
  for (let i = 0; i < t.length; i++) mask[i] = rng.nextFloat() < probs[i] ? 1 : 0;
  applyMask(t, mask, o.rescale, o.rescaleMode ?? 'l1', (i) => probs[i]);
}

/**
 * DELLA keep probabilities pᵢ = (d − ε) + 2ε·(rᵢ − 1)/(L − 1), rᵢ the stable ascending rank
 * of |δᵢ| within its row (fibre along dim 1; the whole tensor when it has fewer than two
 * dims), rounded to float32 like torch.
 */
export function dellaKeepProbabilities(
  t: Float32Array,
  shape: readonly number[],
  density: number,
  epsilon: number,
): Float32Array {
  if (density + epsilon >= 1 || density - epsilon <= 0) {
    throw new RangeError(
      `DELLA: epsilon must be chosen such that density +/- epsilon is in (0, 1) (density ${density}, epsilon ${epsilon})`,
    );
  }
  const n = t.length;
  const rowLen = shape.length < 2 ? n : shape[1];
  const inner = shape.length < 2 ? 1 : shape.slice(2).reduce((a, b) => a * b, 1);
  if (n > 0 && rowLen < 2) throw new RangeError(`DELLA: ranks along a dimension of size ${rowLen} are undefined`);
  const probs = new Float32Array(n);
  if (n === 0) return probs;
  const bits = bitsView(t);
  const ranks = new Uint32Array(rowLen);
  const lo = f(density - epsilon);
  const eps32 = f(epsilon);
  const outer = n / (rowLen * inner);
  for (let row = 0; row < outer; row++) {
    for (let j = 0; j < inner; j++) {
      const offset = row * rowLen * inner + j;
      stableAbsRanks(bits, offset, inner, rowLen, ranks);
      for (let r = 0; r < rowLen; r++) {
        const norm = f(ranks[r] / (rowLen - 1));
        probs[offset + r * inner] = f(lo + f(f(norm * 2) * eps32));
      }
    }
  }
  return probs;
}

/** Dispatch like mergekit's `sparsify()`; modifies `t` in place. */
export function sparsify(
  t: Float32Array,
  shape: readonly number[],
  method: SparsificationMethod,
  o: SparsifyOptions,
): void {
  switch (method) {
    case 'magnitude':
      return magnitude(t, o);
    case 'random':
      return bernoulli(t, o);
    case 'magnitude_outliers':
      return magnitudeOutliers(t, o);
    case 'della_magprune':
      return dellaMagprune(t, shape, o);
  }
}
