import { test } from 'node:test';
import assert from 'node:assert/strict';
import { modelStock } from '../../../app/core/merge/model-stock.js';
import { sce, sceMask } from '../../../app/core/merge/sce.js';
import { nearswap } from '../../../app/core/merge/nearswap.js';
import { passthrough } from '../../../app/core/merge/passthrough.js';
import { assertClose, f32, run } from './helpers.js';

// t for two task vectors at 45°: cos = 1/√2, N = 2 → t = 2c/(1 + c) = 0.8284271
const T45 = (2 * Math.SQRT1_2) / (1 + Math.SQRT1_2);

test('model_stock: t = N·cos/(1 + (N−1)·cos), θ = t·avg + (1−t)·θ₀', () => {
  // base [1, 1]; θ₁ = [2, 1], θ₂ = [2, 2] → δ = [1, 0], [1, 1], cos = 1/√2
  // avg = [2, 1.5] → t·avg + (1 − t)·[1, 1] = [1 + t, 1 + 0.5t] = [1.8284271, 1.4142136]
  const out = run(modelStock, { base: [1, 1], models: [[2, 1], [2, 2]] });
  assertClose(out, [1 + T45, 1 + 0.5 * T45], 1e-6);
  assertClose(out, [1.8284271, 1.4142136], 1e-6);
});

test('model_stock: orthogonal task vectors keep the base; the singular case t = 0', () => {
  // N = 3 orthogonal → cos = 0 → t = 0 → base
  assertClose(run(modelStock, { base: [0, 0, 0], models: [[1, 0, 0], [0, 1, 0], [0, 0, 1]] }), [0, 0, 0]);
  // N = 2 opposite: cos = −1 → 1 + (N−1)·cos = 0 → mergekit's guard: t = 0
  assertClose(run(modelStock, { base: [0.5, 0], models: [[1.5, 0], [-0.5, 0]] }), [0.5, 0]);
  assert.throws(() => run(modelStock, { base: [0, 0], models: [[1, 0]] }), /at least 2/);
});

test('model_stock: filter_wise computes t per row', () => {
  // shape [2, 2], base 0: row 0 task vectors [1, 0], [0, 1] → cos 0 → t 0 → [0, 0]
  //                      row 1 [1, 0], [1, 1] → cos 1/√2 → t·avg = t·[1, 0.5]
  const models = [[1, 0, 1, 0], [0, 1, 1, 1]];
  const out = run(modelStock, { base: [0, 0, 0, 0], models, shape: [2, 2], globals: { filter_wise: true } });
  assertClose(out, [0, 0, T45, 0.5 * T45], 1e-6);
  // whole tensor instead: δ₁ = [1,0,1,0], δ₂ = [0,1,1,1]: cos = 1/(√2·√3) = 0.4082483
  const c = 1 / Math.sqrt(6);
  const t = (2 * c) / (1 + c);
  const flat = run(modelStock, { base: [0, 0, 0, 0], models, shape: [2, 2] });
  assertClose(flat, [0.5 * t, 0.5 * t, t, 0.5 * t], 1e-6);
});

test('sce: variance-weighted, sign-erased merge (select_topk = 1)', () => {
  // τ₁ = [1, −2, 0.5], τ₂ = [3, 2, −0.5]
  // mean(τ₁²) = (1 + 4 + 0.25)/3 = 1.75, mean(τ₂²) = (9 + 4 + 0.25)/3 = 4.4166667
  // w = 1.75/6.1666667 = 0.2837838, 4.4166667/6.1666667 = 0.7162162
  // signs of Σ = [4, 0, 0] → [+, +, +] (0 counts as +)
  // j0: (1·w₁ + 3·w₂)/(w₁ + w₂) = 2.4324324 ; j1: only τ₂ = 2 → 2 ; j2: only τ₁ = 0.5 → 0.5
  const out = run(sce, { base: [0, 0, 0], models: [[1, -2, 0.5], [3, 2, -0.5]] });
  assertClose(out, [2.4324324, 2, 0.5], 1e-6);
  // with a base offset everything shifts
  assertClose(run(sce, { base: [1, 1, 1], models: [[2, -1, 1.5], [4, 3, 0.5]] }), [3.4324324, 3, 1.5], 1e-6);
});

test('sce: select_topk keeps the highest-variance positions', () => {
  // population variances: j0 (1, 3) → 1, j1 (−2, 2) → 4, j2 (0.5, −0.5) → 0.25; nnz = 3
  // select_topk 0.5 → k = int(1.5) = 1 → only j1; τ = [0, −2, 0], [0, 2, 0] → w = 0.5, 0.5
  // j1: Σ = 0 → + → τ₂ = 2 → 2·0.5/0.5 = 2
  const models = [[1, -2, 0.5], [3, 2, -0.5]];
  assertClose(run(sce, { base: [0, 0, 0], models, globals: { select_topk: 0.5 } }), [0, 2, 0], 1e-6);
  assert.deepEqual([...sceMask([f32([1, -2, 0.5]), f32([3, 2, -0.5])], 0.7)], [1, 1, 0]); // k = int(2.1) = 2
  // select_topk ≤ 0 → everything erased → base
  assertClose(run(sce, { base: [0, 0, 0], models, globals: { select_topk: 0 } }), [0, 0, 0]);
  // no models → base
  assertClose(run(sce, { base: [1, 2, 3], models: [] }), [1, 2, 3]);
});

test('sce: all-zero task vectors use uniform weights and the 1e-6 divisor floor', () => {
  assertClose(run(sce, { base: [1, 2], models: [[1, 2], [1, 2]] }), [1, 2]);
});

test('nearswap: w = clamp(t/|a−b|, 0, 1), θ = w·b + (1−w)·a', () => {
  // a = [0, 0, 0, 1], b = [0.05, 1, −0.2, 1], t = 0.1
  // |a−b| = [0.05, 1, 0.2, 0→1e-6] → w = [1, 0.1, 0.5, 1] → [0.05, 0.1, −0.1, 1]
  const out = run(nearswap, { base: [0, 0, 0, 1], models: [[0.05, 1, -0.2, 1]], globals: { t: 0.1 } });
  assertClose(out, [0.05, 0.1, -0.1, 1], 1e-7);
  assert.throws(() => run(nearswap, { base: [0], models: [[1]] }), /"t"/);
  assert.throws(() => run(nearswap, { base: [0], models: [[1], [2]], globals: { t: 1 } }), /1\.\.1/);
});

test('passthrough: copies the single input, optionally scaled', () => {
  assertClose(run(passthrough, { models: [[1, -2, 3]] }), [1, -2, 3]);
  assertClose(run(passthrough, { models: [{ t: [1, -2, 3], p: { scale: 0.5 } }] }), [0.5, -1, 1.5]);
  assertClose(run(passthrough, { base: [4, 5], models: [] }), [4, 5]);
  assert.throws(() => run(passthrough, { base: [4, 5], models: [[1, 2]] }), /1\.\.1/);
  // the input is not aliased
  const src = f32([1, 2]);
  const out = passthrough.merge({ tensorName: 'x', shape: [2], models: [{ tensor: src }] });
  out[0] = 9;
  assert.equal(src[0], 1);
});
