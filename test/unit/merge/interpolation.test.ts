import { test } from 'node:test';
import assert from 'node:assert/strict';
import { linear } from '../../../app/core/merge/linear.js';
import { slerp } from '../../../app/core/merge/slerp.js';
import { nuslerp } from '../../../app/core/merge/nuslerp.js';
import { multislerp } from '../../../app/core/merge/multislerp.js';
import { karcher } from '../../../app/core/merge/karcher.js';
import { assertClose, randomTensor, run } from './helpers.js';

const S = Math.SQRT1_2; // 0.70710678

test('linear: Σ wᵢθᵢ / Σ wᵢ', () => {
  // a = [1, 2], b = [3, 6], w = 1, 3: Σ = [1 + 9, 2 + 18] = [10, 20]; / 4 = [2.5, 5]
  const models = [{ t: [1, 2], p: { weight: 1 } }, { t: [3, 6], p: { weight: 3 } }];
  assertClose(run(linear, { models }), [2.5, 5]);
  assertClose(run(linear, { models, globals: { normalize: false } }), [10, 20]);
});

test('linear: the base is an ordinary entry with its own weight', () => {
  // base [0, 4] w 2 + a [3, 6] w 2 → [6 + 0, 12 + 8] / 4 = [1.5, 5]
  const out = run(linear, { base: [0, 4], baseParams: { weight: 2 }, models: [{ t: [3, 6], p: { weight: 2 } }] });
  assertClose(out, [1.5, 5]);
  assert.throws(() => run(linear, { base: [0, 4], models: [{ t: [3, 6], p: { weight: 2 } }] }), /weight/);
});

test('linear: Σw = 0 gives non-finite values, as in mergekit (no guard)', () => {
  const out = run(linear, { models: [{ t: [1], p: { weight: 1 } }, { t: [2], p: { weight: -1 } }] });
  assert.ok(!Number.isFinite(out[0]));
});

test('slerp: orthogonal vectors at t = 0.5 → sin(π/4)/sin(π/2) each', () => {
  // v₀ = [1, 0], v₁ = [0, 1]: dot = 0, Ω = π/2, s₀ = s₁ = sin(π/4) = 0.7071068
  assertClose(run(slerp, { base: [1, 0], models: [[0, 1]], globals: { t: 0.5 } }), [S, S]);
  // coefficients apply to the UN-normalised tensors: v₀ = [2, 0], v₁ = [0, 4] → [1.4142136, 2.8284271]
  assertClose(run(slerp, { base: [2, 0], models: [[0, 4]], globals: { t: 0.5 } }), [2 * S, 4 * S]);
  // t = 0.25: s₀ = sin(3π/8) = 0.9238795, s₁ = sin(π/8) = 0.3826834
  assertClose(run(slerp, { base: [1, 0], models: [[0, 1]], globals: { t: 0.25 } }), [0.9238795, 0.3826834]);
});

test('slerp: endpoints and the |dot| > 0.9995 lerp fallback', () => {
  const a = randomTensor(1, 50);
  const b = randomTensor(2, 50);
  assertClose(run(slerp, { base: a, models: [b], globals: { t: 0 } }), a, 1e-6);
  assertClose(run(slerp, { base: a, models: [b], globals: { t: 1 } }), b, 1e-6);
  // v₀ = [1, 1], v₁ = [2, 2.001]: cos = 0.99999994 > 0.9995 → (1−t)v₀ + t·v₁ at t = 0.25
  assertClose(run(slerp, { base: [1, 1], models: [[2, 2.001]], globals: { t: 0.25 } }), [1.25, 1.25025]);
  // antiparallel: |dot| = 1 → lerp → midpoint 0
  assertClose(run(slerp, { base: [1, 0], models: [[-1, 0]], globals: { t: 0.5 } }), [0, 0]);
  // zero vector: not normalised (norm ≤ 1e-8), dot = 0 → Ω = π/2 → s₀·0 + s₁·v₁
  assertClose(run(slerp, { base: [0, 0], models: [[0, 2]], globals: { t: 0.5 } }), [0, 2 * S]);
  assert.throws(() => run(slerp, { base: [1, 0], models: [[0, 1]] }), /"t"/);
});

test('nuslerp: t = w₂/(w₁ + w₂) over the flattened tensor', () => {
  assertClose(run(nuslerp, { models: [{ t: [1, 0], p: { weight: 1 } }, { t: [0, 1], p: { weight: 1 } }] }), [S, S]);
  // w = 1, 3 → t = 0.75: [sin(π/8), sin(3π/8)] = [0.3826834, 0.9238795]
  const out = run(nuslerp, { models: [{ t: [1, 0], p: { weight: 1 } }, { t: [0, 1], p: { weight: 3 } }] });
  assertClose(out, [0.3826834, 0.9238795]);
  // |Σw| < 1e-6 → t = 0.5
  const z = run(nuslerp, { models: [{ t: [1, 0], p: { weight: 1 } }, { t: [0, 1], p: { weight: -1 } }] });
  assertClose(z, [S, S]);
});

test('nuslerp: per-row (dim −1) and per-column (row_wise, dim 0) vectors', () => {
  // shape [2, 2]; m₁ = [[1, 0], [1, 1]], m₂ = [[0, 1], [2, 2]], t = 0.5
  const models = [
    { t: [1, 0, 1, 1], p: { weight: 1 } },
    { t: [0, 1, 2, 2], p: { weight: 1 } },
  ];
  // rows: row 0 orthogonal → [S, S]; row 1 colinear → lerp → [1.5, 1.5]
  assertClose(run(nuslerp, { models, shape: [2, 2], globals: { nuslerp_flatten: false } }), [S, S, 1.5, 1.5]);
  // columns: col 0: [1, 1] vs [0, 2], cos = 1/√2, Ω = π/4, k = sin(π/8)/sin(π/4) = 0.5411961
  //          → k·([1, 1] + [0, 2]) = [0.5411961, 1.6235884]
  //          col 1: [0, 1] vs [1, 2], cos = 2/√5, Ω = 0.4636476, k = sin(Ω/2)/sin Ω = 0.5137431
  //          → k·([0, 1] + [1, 2]) = [0.5137431, 1.5412293]
  const cols = run(nuslerp, { models, shape: [2, 2], globals: { nuslerp_flatten: false, nuslerp_row_wise: true } });
  const k0 = Math.sin(Math.PI / 8) / Math.sin(Math.PI / 4);
  const om = Math.acos(2 / Math.sqrt(5));
  const k1 = Math.sin(om / 2) / Math.sin(om);
  assertClose(cols, [k0, k1, 3 * k0, 3 * k1], 1e-6);
  assertClose(cols, [0.5411961, 0.5137431, 1.6235884, 1.5412293], 1e-6);
});

test('nuslerp: with a base it interpolates task vectors', () => {
  // base [1, 1]; task vectors [1, 0] and [0, 1] → base + [S, S]
  const out = run(nuslerp, {
    base: [1, 1],
    models: [{ t: [2, 1], p: { weight: 1 } }, { t: [1, 2], p: { weight: 1 } }],
  });
  assertClose(out, [1 + S, 1 + S]);
  assert.throws(() => run(nuslerp, { models: [{ t: [2, 1], p: { weight: 1 } }] }), /expects 2\.\.2 models/);
});

test('multislerp: normalised weighted mean direction × weighted mean norm', () => {
  // x₁ = [2, 0], x₂ = [0, 4], w = 1, 1 → ŵ = 0.5, 0.5; u = [1, 0], [0, 1]
  // m = normalise([0.5, 0.5]) = [S, S]; the tangent sum Σwᵢ(uᵢ − (uᵢ·m)m) is 0 for any inputs
  // (it equals m̃ − ‖m̃‖m), so θ = m · (0.5·2 + 0.5·4) = [3S, 3S]
  const models = [{ t: [2, 0], p: { weight: 1 } }, { t: [0, 4], p: { weight: 1 } }];
  assertClose(run(multislerp, { models }), [3 * S, 3 * S], 1e-6);
  // w = 1, 3 → ŵ = 0.25, 0.75: m = normalise([0.25, 0.75]) = [0.3162278, 0.9486833]; scale 0.5 + 3 = 3.5
  const w13 = [{ t: [2, 0], p: { weight: 1 } }, { t: [0, 4], p: { weight: 3 } }];
  assertClose(run(multislerp, { models: w13 }), [3.5 * 0.3162278, 3.5 * 0.9486833], 1e-6);
  // normalize_weights = false with w = 0.25, 0.75 is the same
  const raw = [{ t: [2, 0], p: { weight: 0.25 } }, { t: [0, 4], p: { weight: 0.75 } }];
  assertClose(run(multislerp, { models: raw, globals: { normalize_weights: false } }), [3.5 * 0.3162278, 3.5 * 0.9486833], 1e-6);
});

test('multislerp: base, single model, antipodal fallback and error', () => {
  const models = [{ t: [3, 1], p: { weight: 1 } }, { t: [1, 5], p: { weight: 1 } }];
  // task vectors [2, 0], [0, 4] → base + [3S, 3S]
  assertClose(run(multislerp, { base: [1, 1], models }), [1 + 3 * S, 1 + 3 * S], 1e-6);
  // one model is returned unchanged (even with a base)
  assertClose(run(multislerp, { base: [1, 1], models: [{ t: [3, 1], p: { weight: 1 } }] }), [3, 1]);
  // antipodal pair, equal weights: ‖Σwu‖ = 0 < eps → linear: 0.5·[1, 0] + 0.5·[−1, 0]
  const anti = [{ t: [1, 0], p: { weight: 1 } }, { t: [-1, 0], p: { weight: 1 } }];
  assertClose(run(multislerp, { models: anti }), [0, 0]);
  const three = [...anti, { t: [0, 0], p: { weight: 1 } }];
  assert.throws(() => run(multislerp, { models: three }), /antipodal/);
});

test('karcher: geodesic mean direction × mean norm; weights are ignored', () => {
  // [2, 0] and [0, 4]: the geodesic midpoint is [S, S]; scale (2 + 4)/2 = 3
  const out = run(karcher, { models: [[2, 0], [0, 4]] });
  assertClose(out, [3 * S, 3 * S], 1e-6);
  // per-model weights are not a karcher parameter (mergekit hard-codes αᵢ = 1/N)
  assertClose(run(karcher, { models: [{ t: [2, 0], p: { weight: 9 } }, { t: [0, 4], p: { weight: 1 } }] }), out, 0);
});

test('karcher: three unit vectors at 0°, 60°, 90° → the intrinsic mean at 50°', () => {
  // on a circle the Karcher mean of angles within a half-circle is their arithmetic mean;
  // the Euclidean start point is at ≈ 47.9°, so this exercises the iteration
  const deg = Math.PI / 180;
  const pts = [0, 60, 90].map((a) => [Math.cos(a * deg), Math.sin(a * deg)]);
  const out = run(karcher, { models: pts });
  assertClose(out, [Math.cos(50 * deg), Math.sin(50 * deg)], 1e-5);
});

test('karcher: zero-norm entries are dropped from the direction but count in the scale', () => {
  // entries [0, 0], [1, 0], [0, 1]: direction from the two valid ones → [S, S]; scale (0 + 1 + 1)/3
  const out = run(karcher, { models: [[0, 0], [1, 0], [0, 1]] });
  assertClose(out, [(2 / 3) * S, (2 / 3) * S], 1e-6);
  assertClose(run(karcher, { models: [[0, 0], [0, 0]] }), [0, 0]);
  // the base is one more entry: base [1, 0] + model [0, 1]
  assertClose(run(karcher, { base: [1, 0], models: [[0, 1]] }), [S, S], 1e-6);
  assertClose(run(karcher, { models: [[5, 6]] }), [5, 6]);
});
