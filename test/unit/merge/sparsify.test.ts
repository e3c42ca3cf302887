import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  bernoulli,
  dellaKeepProbabilities,
  dellaMagprune,
  magnitude,
  magnitudeOutliers,
} from '../../../app/core/merge/sparsify.js';
import { createRng, tensorRng } from '../../../app/core/merge/rng.js';
import { topKAbsMaskNaive } from '../../../app/core/merge/select-reference.js';
import { assertClose, f32, randomTensor } from './helpers.js';

const l1 = (x: ArrayLike<number>): number => Array.from(x).reduce((s, v) => s + Math.abs(v), 0);

test('magnitude: keep the int(d·n) largest |δ|', () => {
  // δ = [0.1, -0.4, 0.3, -0.2], d = 0.5 → k = 2 → keep -0.4 and 0.3
  const t = f32([0.1, -0.4, 0.3, -0.2]);
  magnitude(t, { density: 0.5, rescale: false });
  assertClose(t, [0, -0.4, 0.3, 0]);
});

test('magnitude with L1 rescale: factor ‖δ‖₁/‖m⊙δ‖₁ = 1.0/0.7', () => {
  const t = f32([0.1, -0.4, 0.3, -0.2]);
  magnitude(t, { density: 0.5, rescale: true });
  // -0.4/0.7 = -0.5714286, 0.3/0.7 = 0.4285714
  assertClose(t, [0, -0.5714286, 0.4285714, 0], 1e-6);
  assertClose([l1(t)], [1.0], 1e-6);
});

test('magnitude: inverse_density rescale divides by the density (paper form)', () => {
  const t = f32([0.1, -0.4, 0.3, -0.2]);
  magnitude(t, { density: 0.5, rescale: true, rescaleMode: 'inverse_density' });
  assertClose(t, [0, -0.8, 0.6, 0]);
});

test('magnitude: density ≥ 1 is a no-op; k = 0 throws like mergekit', () => {
  const t = f32([1, 2, 3]);
  magnitude(t, { density: 1, rescale: true });
  assertClose(t, [1, 2, 3]);
  assert.throws(() => magnitude(f32([1, 2, 3]), { density: 0.3, rescale: false }), /keeps no entries/); // int(0.9) = 0
  assert.throws(() => magnitude(f32([1, 2, 3]), { density: 0, rescale: false }));
});

test('magnitude agrees with the naive argsort mask on random data', () => {
  for (let s = 0; s < 10; s++) {
    const x = randomTensor(s, 997);
    const t = x.slice();
    magnitude(t, { density: 0.37, rescale: false });
    const mask = topKAbsMaskNaive(x, Math.trunc(0.37 * 997));
    assertClose(t, x.map((v, i) => (mask[i] ? v : 0)), 0);
  }
});

test('magnitude_outliers: hand example n = 10, d = 0.5, γ = 0.1', () => {
  // |δ| = 1..10 in index order. target = 5, n_top = 1, n_bot = 10 − 5 − 1 = 4
  // sort(|δ|).indices = [0..9] → [4:-1] = indices 4..8 → values 5, -6, 7, -8, 9
  const t = f32([1, -2, 3, -4, 5, -6, 7, -8, 9, -10]);
  magnitudeOutliers(t, { density: 0.5, gamma: 0.1, rescale: false });
  assertClose(t, [0, 0, 0, 0, 5, -6, 7, -8, 9, 0]);
});

test('magnitude_outliers: n_bot < 0 moves the cut to the top (d = 0.95, γ = 0.2)', () => {
  // target = int(9.5) = 9, n_top = 2, n_bot = 10 − 9 − 2 = −1 → n_top = 1, n_bot = 0 → [0:-1]
  const t = f32([1, -2, 3, -4, 5, -6, 7, -8, 9, -10]);
  magnitudeOutliers(t, { density: 0.95, gamma: 0.2, rescale: false });
  assertClose(t, [1, -2, 3, -4, 5, -6, 7, -8, 9, 0]);
});

test('magnitude_outliers: n_top = 0 keeps the target_n largest (mergekit 0.1.5 indices[n_bot : n_bot + target_n])', () => {
  // density 0.5 on 10 values, γ = 0: n_top 0, n_bot 5 → keep |x| ranks 5..9 = 6,7,8,9,10; rescale
  // L1: (1+…+10)/(6+…+10) = 55/40.
  const t = f32([1, -2, 3, -4, 5, -6, 7, -8, 9, -10]);
  magnitudeOutliers(t, { density: 0.5, gamma: 0, rescale: true });
  const k = 55 / 40;
  assertClose(t, [0, 0, 0, 0, 0, -6 * k, 7 * k, -8 * k, 9 * k, -10 * k]);
  // default γ = 0.01 on 10 elements: int(0.1) = 0 → the same window
  const u = f32([1, -2, 3, -4, 5, -6, 7, -8, 9, -10]);
  magnitudeOutliers(u, { density: 0.5, rescale: false });
  assertClose(u, [0, 0, 0, 0, 0, -6, 7, -8, 9, -10]);
});

test('magnitude_outliers with L1 rescale: (1+…+10)/(5+…+9) = 55/35', () => {
  const t = f32([1, -2, 3, -4, 5, -6, 7, -8, 9, -10]);
  magnitudeOutliers(t, { density: 0.5, gamma: 0.1, rescale: true });
  const k = 55 / 35;
  assertClose(t, [0, 0, 0, 0, 5 * k, -6 * k, 7 * k, -8 * k, 9 * k, 0], 1e-5);
});

test('random (DARE): deterministic per stream, keeps ≈ density, L1 rescale restores ‖δ‖₁', () => {
  const x = randomTensor(1, 50_000);
  const a = x.slice();
  const b = x.slice();
  bernoulli(a, { density: 0.3, rescale: true, rng: tensorRng(11, 'w').fork('m') });
  bernoulli(b, { density: 0.3, rescale: true, rng: tensorRng(11, 'w').fork('m') });
  assert.deepEqual(a, b);
  const kept = a.reduce((s, v) => s + (v !== 0 ? 1 : 0), 0) / a.length;
  assert.ok(Math.abs(kept - 0.3) < 0.01, `kept fraction ${kept}`);
  assert.ok(Math.abs(l1(a) - l1(x)) / l1(x) < 1e-5);
  const c = x.slice();
  bernoulli(c, { density: 0.3, rescale: true, rng: tensorRng(12, 'w').fork('m') });
  assert.notDeepEqual(a, c);
});

test('random (DARE): inverse_density rescale = the paper’s δ·m/p', () => {
  const x = randomTensor(2, 1000);
  const a = x.slice();
  const b = x.slice();
  bernoulli(a, { density: 0.4, rescale: false, rng: createRng(3) });
  bernoulli(b, { density: 0.4, rescale: true, rescaleMode: 'inverse_density', rng: createRng(3) });
  assertClose(b, a.map((v) => v / Math.fround(0.4)), 1e-6);
});

test('random: density ≥ 1 no-op, 0 drops everything (no rescale), < 0 throws', () => {
  const t = f32([1, 2]);
  bernoulli(t, { density: 1, rescale: true, rng: createRng(0) });
  assertClose(t, [1, 2]);
  const z = f32([1, 2]);
  bernoulli(z, { density: 0, rescale: true, rng: createRng(0) });
  assertClose(z, [0, 0]);
  assert.throws(() => bernoulli(f32([1]), { density: -0.1, rescale: false, rng: createRng(0) }), RangeError);
  assert.throws(() => bernoulli(f32([1]), { density: 0.5, rescale: false }), /random stream/);
});

test('DELLA keep probabilities: p = (d − ε) + 2ε·(rank − 1)/(L − 1) per row', () => {
  // row 0: |δ| = [0.1, 0.4, 0.2] → ranks 1, 3, 2 → r̂ = 0, 1, 0.5
  // row 1: |δ| = [3, 1, 2]      → ranks 3, 1, 2 → r̂ = 1, 0, 0.5
  // d = 0.5, ε = 0.1 → p = 0.4 + 0.2·r̂
  const t = f32([0.1, -0.4, 0.2, 3, -1, 2]);
  const p = dellaKeepProbabilities(t, [2, 3], 0.5, 0.1);
  assertClose(p, [0.4, 0.6, 0.5, 0.6, 0.4, 0.5], 1e-7);
  // 1-D: one row of length 6
  const p1 = dellaKeepProbabilities(t, [6], 0.5, 0.1);
  // |δ| ascending: 0.1(0), 0.2(2), 0.4(1), 1(4), 2(5), 3(3) → r̂ = 0, 2/5, 1/5, 1, 3/5, 4/5
  assertClose(p1, [0.4, 0.48, 0.44, 0.6, 0.52, 0.56], 1e-7);
});

test('DELLA ranks along dim 1 for 3-D tensors', () => {
  // shape [1, 3, 2]: fibres along dim 1 are (0, 2, 4) and (1, 3, 5)
  const t = f32([5, 1, 3, 3, 1, 2]);
  // fibre A: |5, 3, 1| → r̂ = 1, 0.5, 0 ; fibre B: |1, 3, 2| → r̂ = 0, 1, 0.5
  const p = dellaKeepProbabilities(t, [1, 3, 2], 0.5, 0.2);
  // p = 0.3 + 0.4·r̂
  assertClose(p, [0.7, 0.3, 0.5, 0.7, 0.3, 0.5], 1e-7);
});

test('DELLA: errors and edge cases as in mergekit', () => {
  assert.throws(() => dellaKeepProbabilities(f32([1, 2, 3]), [3], 0.9, 0.15), /epsilon/);
  assert.throws(() => dellaKeepProbabilities(f32([1, 2, 3]), [3], 0.1, 0.15), /epsilon/);
  assert.throws(() => dellaKeepProbabilities(f32([1, 2, 3]), [3, 1], 0.5, 0.1), /size 1/);
  const z = f32([1, 2, 3]);
  dellaMagprune(z, [3], { density: 0, rescale: true, rng: createRng(0) });
  assertClose(z, [0, 0, 0]);
  const same = f32([1, 2, 3]);
  dellaMagprune(same, [3], { density: 1, rescale: true, rng: createRng(0) });
  assertClose(same, [1, 2, 3]);
});

test('DELLA: keep frequency follows the rank (large magnitudes kept more often)', () => {
  const n = 20_000;
  const x = Float32Array.from({ length: n }, (_, i) => i + 1); // rank = index
  const t = x.slice();
  dellaMagprune(t, [n], { density: 0.5, epsilon: 0.3, rescale: false, rng: createRng(8) });
  const lowKept = t.subarray(0, 2000).reduce((s, v) => s + (v ? 1 : 0), 0) / 2000; // p ≈ 0.2..0.26
  const highKept = t.subarray(n - 2000).reduce((s, v) => s + (v ? 1 : 0), 0) / 2000; // p ≈ 0.74..0.8
  assert.ok(lowKept > 0.18 && lowKept < 0.28, `low ${lowKept}`);
  assert.ok(highKept > 0.72 && highKept < 0.82, `high ${highKept}`);
});

test('DELLA: inverse_density divides each kept entry by its own p', () => {
  const x = f32([0.1, -0.4, 0.2, 3, -1, 2]);
  const p = dellaKeepProbabilities(x, [2, 3], 0.5, 0.1);
  const a = x.slice();
  const b = x.slice();
  dellaMagprune(a, [2, 3], { density: 0.5, epsilon: 0.1, rescale: false, rng: createRng(4) });
  dellaMagprune(b, [2, 3], { density: 0.5, epsilon: 0.1, rescale: true, rescaleMode: 'inverse_density', rng: createRng(4) });
  assertClose(b, a.map((v, i) => v / p[i]), 1e-6);
});
