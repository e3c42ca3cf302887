import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  breadcrumbs,
  breadcrumbsTies,
  dareLinear,
  dareTies,
  della,
  dellaLinear,
  taskArithmetic,
  ties,
} from '../../../app/core/merge/task-arithmetic.js';
import { tensorRng } from '../../../app/core/merge/rng.js';
import { absRankWindowMaskNaive, topKAbsMaskNaive } from '../../../app/core/merge/select-reference.js';
import { assertClose, maxAbsDiff, randomTensor, run, scriptedRng } from './helpers.js';

// Shared hand example (n = 4):
//   θ₀ = [1, 2, 3, 4]
//   θ₁ = [2, 2, 1, 7]        δ₁ = [1, 0, -2, 3]
//   θ₂ = [-0.5, 3, 3.25, 4.5] δ₂ = [-1.5, 1, 0.25, 0.5]
const base = [1, 2, 3, 4];
const m1 = [2, 2, 1, 7];
const m2 = [-0.5, 3, 3.25, 4.5];

test('task_arithmetic: θ₀ + Σ wᵢδᵢ (w = 1, 0.5)', () => {
  // Σ wδ = [1 − 0.75, 0 + 0.5, −2 + 0.125, 3 + 0.25] = [0.25, 0.5, −1.875, 3.25]
  const out = run(taskArithmetic, { base, models: [{ t: m1, p: { weight: 1 } }, { t: m2, p: { weight: 0.5 } }] });
  assertClose(out, [1.25, 2.5, 1.125, 7.25]);
});

test('task_arithmetic: normalize divides by Σw = 1.5; lambda scales', () => {
  const models = [{ t: m1, p: { weight: 1 } }, { t: m2, p: { weight: 0.5 } }];
  // [0.25, 0.5, −1.875, 3.25] / 1.5 = [0.1666667, 0.3333333, −1.25, 2.1666667]
  assertClose(run(taskArithmetic, { base, models, globals: { normalize: true } }), [1.1666667, 2.3333333, 1.75, 6.1666667]);
  // λ = 2, no normalize: [0.5, 1, −3.75, 6.5]
  assertClose(run(taskArithmetic, { base, models, globals: { lambda: 2 } }), [1.5, 3, -0.75, 10.5]);
  // Σw ≈ 0 → divisor 1 (mergekit's |D| < 1e-8 guard)
  const zero = [{ t: m1, p: { weight: 1 } }, { t: m2, p: { weight: -1 } }];
  // δ₁ − δ₂ = [2.5, −1, −2.25, 2.5]
  assertClose(run(taskArithmetic, { base, models: zero, globals: { normalize: true } }), [3.5, 1, 0.75, 6.5]);
});

// TIES with d = 0.75 (k = 3), w₁ = 1, w₂ = 2:
//   trim: δ̃₁ = [1, 0, −2, 3] (drops |0|), δ̃₂ = [−1.5, 1, 0, 0.5] (drops |0.25|)
//   weight: Δ₁ = [1, 0, −2, 3], Δ₂ = [−3, 2, 0, 1]
//   elect: ΣΔ = [−2, 2, −2, 4] → s = [−, +, −, +]
//   j0: only Δ₂ = −3 agrees, D = 2 → −1.5      j1: only Δ₂ = 2 (Δ₁ = 0 never agrees), D = 2 → 1
//   j2: only Δ₁ = −2, D = 1 → −2                j3: both, (3 + 1)/(1 + 2) = 4/3
const tiesModels = [
  { t: m1, p: { weight: 1, density: 0.75 } },
  { t: m2, p: { weight: 2, density: 0.75 } },
];

test('ties: trim, elect by weighted sum, weighted disjoint mean (mergekit default)', () => {
  assertClose(run(ties, { base, models: tiesModels }), [-0.5, 3, 1, 5.3333333]);
});

test('ties: normalize=false, lambda, and the paper’s count mean', () => {
  // no normalize: θ₀ + [−3, 2, −2, 4]
  assertClose(run(ties, { base, models: tiesModels, globals: { normalize: false } }), [-2, 4, 1, 8]);
  // λ = 0.5 after normalizing: [−0.75, 0.5, −1, 0.6666667]
  assertClose(run(ties, { base, models: tiesModels, globals: { lambda: 0.5 } }), [0.25, 2.5, 2, 4.6666667]);
  // disjoint_mean = count: j3 → 4/2 = 2; others divide by 1
  assertClose(run(ties, { base, models: tiesModels, globals: { disjoint_mean: 'count' } }), [-2, 4, 1, 6]);
});

test('ties: consensus_method = count elects by the number of signs', () => {
  // signs Δ₁ = [+, 0, −, +], Δ₂ = [−, +, 0, +] → Σ = [0, 1, −1, 2] → s = [+, +, −, +]
  // j0 now keeps Δ₁ = 1 (D = 1) → 1
  assertClose(run(ties, { base, models: tiesModels, globals: { consensus_method: 'count' } }), [2, 3, 1, 5.3333333]);
});

test('ties: a negative weight flips the model’s vote', () => {
  // w₂ = −1: Δ₂ = [1.5, −1, 0, −0.5]; with Δ₁ = [1, 0, −2, 3]: Σ = [2.5, −1, −2, 2.5] → s = [+, −, −, +]
  // j0: both agree: (1 + 1.5)/(1 − 1) → D = 0 → 1 → 2.5 ; j1: Δ₂ = −1 agrees, D = −1 → 1
  // j2: Δ₁ = −2, D = 1 → −2 ; j3: Δ₁ = 3 agrees, D = 1 → 3
  const models = [
    { t: m1, p: { weight: 1, density: 0.75 } },
    { t: m2, p: { weight: -1, density: 0.75 } },
  ];
  assertClose(run(ties, { base, models }), [3.5, 3, 1, 7]);
});

test('GTA: no models returns the base; missing base or weight throws', () => {
  assertClose(run(ties, { base, models: [] }), base);
  assert.throws(() => run(ties, { models: [{ t: m1, p: { weight: 1 } }] }), /requires a base/);
  assert.throws(() => run(taskArithmetic, { base, models: [m1] }), /missing required parameter "weight"/);
  assert.throws(() => run(taskArithmetic, { base, models: [{ t: [1, 2], p: { weight: 1 } }], shape: [4] }), /elements/);
});

test('breadcrumbs: keeps the middle magnitudes (n = 10, d = 0.5, γ = 0.1)', () => {
  const b0 = new Array(10).fill(0);
  const d1 = [1, -2, 3, -4, 5, -6, 7, -8, 9, -10];
  // keeps indices 4..8 (see sparsify test); weight 2, no normalize
  const out = run(breadcrumbs, { base: b0, models: [{ t: d1, p: { weight: 2, density: 0.5, gamma: 0.1 } }] });
  assertClose(out, [0, 0, 0, 0, 10, -12, 14, -16, 18, 0]);
});

test('breadcrumbs_ties: breadcrumbs masks then sign election', () => {
  const b0 = new Array(10).fill(0);
  const d1 = [1, -2, 3, -4, 5, -6, 7, -8, 9, -10]; // keeps indices 4..8
  const d2 = [-1, 2, -3, 4, -5, 6, -7, 8, -9, 10]; // also indices 4..8, opposite signs
  // w₁ = 1, w₂ = 2: Σ at 4..8 = −5, 6, −7, 8, −9 → s follows model 2, Δ₂ = 2·δ₂, D = 2 → δ₂
  const out = run(breadcrumbsTies, {
    base: b0,
    models: [
      { t: d1, p: { weight: 1, density: 0.5, gamma: 0.1 } },
      { t: d2, p: { weight: 2, density: 0.5, gamma: 0.1 } },
    ],
    globals: { normalize: true },
  });
  assertClose(out, [0, 0, 0, 0, -5, 6, -7, 8, -9, 0]);
});

test('density 1 makes every sparsifying variant equal to task arithmetic / plain TIES election', () => {
  const b = randomTensor(1, 64);
  const ms = [randomTensor(2, 64), randomTensor(3, 64)].map((t, i) => ({ t, p: { weight: 0.5 + i, density: 1 } }));
  const ta = run(taskArithmetic, { base: b, models: ms });
  for (const m of [dareLinear, breadcrumbs, dellaLinear]) {
    assertClose(run(m, { base: b, models: ms }), ta, 0, m.id);
  }
  const t1 = run(ties, { base: b, models: ms, globals: { normalize: false } });
  for (const m of [dareTies, breadcrumbsTies]) {
    assertClose(run(m, { base: b, models: ms, globals: { normalize: false } }), t1, 0, m.id);
  }
});

/** Naive double-precision GTA with sort-based masks, straight from the formulas. */
function naiveGta(
  baseT: Float32Array,
  models: { t: Float32Array; w: number; d: number; g?: number }[],
  kind: 'magnitude' | 'outliers' | null,
  consensus: boolean,
  normalize: boolean,
  lambda: number,
): Float64Array {
  const n = baseT.length;
  const deltas = models.map(({ t, d, g }) => {
    const delta = Float32Array.from(t, (v, j) => v - baseT[j]);
    if (kind === 'magnitude' && d < 1) {
      const mask = topKAbsMaskNaive(delta, Math.trunc(d * n));
      return delta.map((v, j) => (mask[j] ? v : 0));
    }
    if (kind === 'outliers' && d < 1) {
      let nTop = Math.trunc((g ?? 0.01) * n);
      let nBot = n - Math.trunc(d * n) - nTop;
      if (nBot < 0) [nTop, nBot] = [nTop + nBot, 0];
      const mask = absRankWindowMaskNaive(delta, nBot, nTop === 0 ? 0 : n - nTop);
      return delta.map((v, j) => (mask[j] ? v : 0));
    }
    return delta;
  });
  const out = new Float64Array(n);
  for (let j = 0; j < n; j++) {
    const vals = deltas.map((d, i) => models[i].w * d[j]);
    let mixed = 0;
    let div = 0;
    if (consensus) {
      const s = vals.reduce((a, b) => a + b, 0) >= 0 ? 1 : -1;
      vals.forEach((v, i) => {
        if (Math.sign(v) === s) {
          mixed += v;
          div += models[i].w;
        }
      });
      if (div === 0) div = 1;
    } else {
      mixed = vals.reduce((a, b) => a + b, 0);
      div = models.reduce((a, m) => a + m.w, 0);
      if (Math.abs(div) < 1e-8) div = 1;
    }
    out[j] = baseT[j] + lambda * (normalize ? mixed / div : mixed);
  }
  return out;
}

test('fast GTA path agrees with the naive reference on random tensors (≤ 1e-5)', () => {
  for (let s = 0; s < 12; s++) {
    const n = 257 + s * 31;
    const b = randomTensor(100 + s, n);
    const raw = [0, 1, 2].map((i) => ({
      t: Float32Array.from(randomTensor(200 + 10 * s + i, n, 0.05), (v, j) => b[j] + v),
      w: [1, 0.7, -0.3][i],
      d: [0.3, 0.55, 0.8][i],
      g: 0.05,
    }));
    const models = raw.map((m) => ({ t: m.t, p: { weight: m.w, density: m.d, gamma: m.g } }));
    const cases = [
      { def: taskArithmetic, kind: null, consensus: false, normalize: s % 2 === 0, lambda: 1 },
      { def: ties, kind: 'magnitude', consensus: true, normalize: true, lambda: 1 },
      { def: ties, kind: 'magnitude', consensus: true, normalize: false, lambda: 0.8 },
      { def: breadcrumbs, kind: 'outliers', consensus: false, normalize: false, lambda: 1 },
      { def: breadcrumbsTies, kind: 'outliers', consensus: true, normalize: true, lambda: 1.3 },
    ] as const;
    for (const c of cases) {
      const fast = run(c.def, { base: b, models, globals: { normalize: c.normalize, lambda: c.lambda } });
      const ref = naiveGta(b, raw, c.kind, c.consensus, c.normalize, c.lambda);
      assert.ok(maxAbsDiff(fast, ref) <= 1e-5, `${c.def.id} seed ${s}: max diff ${maxAbsDiff(fast, ref)}`);
    }
  }
});

// DARE by hand, with scripted uniforms (entry kept when u < p = density = 0.5):
//   δa = [1, −2, 3, −4], draws [0.1, 0.9, 0.2, 0.6] → m = [1, 0, 1, 0] → [1, 0, 3, 0]
//        L1 rescale ‖δ‖₁/‖m⊙δ‖₁ = 10/4 = 2.5 → [2.5, 0, 7.5, 0]
//   δb = [−1, 1, 2, 2],  draws [0.1, 0.3, 0.9, 0.1] → m = [1, 1, 0, 1] → [−1, 1, 0, 2]
//        6/4 = 1.5 → [−1.5, 1.5, 0, 3]
const dareModels = [
  { t: [1, -2, 3, -4], p: { weight: 1, density: 0.5 }, id: 'a' },
  { t: [-1, 1, 2, 2], p: { weight: 1, density: 0.5 }, id: 'b' },
];
const dareDraws = { a: [0.1, 0.9, 0.2, 0.6], b: [0.1, 0.3, 0.9, 0.1] };

test('dare_linear by hand: Bernoulli mask, L1 rescale, weighted sum', () => {
  const out = run(dareLinear, { base: [0, 0, 0, 0], models: dareModels, rng: scriptedRng(dareDraws) });
  assertClose(out, [1, 1.5, 7.5, 3]); // [2.5 − 1.5, 0 + 1.5, 7.5, 3]
  // the paper's rescale divides by p = 0.5: [2, 0, 6, 0] + [−2, 2, 0, 4]
  const paper = run(dareLinear, {
    base: [0, 0, 0, 0],
    models: dareModels,
    globals: { rescale_mode: 'inverse_density' },
    rng: scriptedRng(dareDraws),
  });
  assertClose(paper, [0, 2, 6, 4]);
});

test('dare_ties by hand: elected sign drops model b at j0', () => {
  // Σ = [1, 1.5, 7.5, 3] → all +; j0 keeps only a's 2.5 (normalize is off by default)
  const out = run(dareTies, { base: [0, 0, 0, 0], models: dareModels, rng: scriptedRng(dareDraws) });
  assertClose(out, [2.5, 1.5, 7.5, 3]);
});

// DELLA by hand, 1-D tensor (one row), d = 0.5, ε = 0.2 → p = 0.3 + 0.4·(rank − 1)/3:
//   δa = [1, −2, 3, −4]: ranks 1, 2, 3, 4 → p = [0.3, 0.4333, 0.5667, 0.7]
//        draws [0.35, 0.4, 0.6, 0.65] → m = [0, 1, 0, 1] → [0, −2, 0, −4] × 10/6 = [0, −3.3333, 0, −6.6667]
//   δb = [−1, 1, 2, 2]: tied magnitudes rank by index → ranks 1, 2, 3, 4 → same p
//        draws [0.2, 0.5, 0.5, 0.9] → m = [1, 0, 1, 0] → [−1, 0, 2, 0] × 6/3 = [−2, 0, 4, 0]
//   weights wa = 2, wb = 1 → Δa = [0, −6.6667, 0, −13.3333], Δb = [−2, 0, 4, 0]
const dellaModels = [
  { t: [1, -2, 3, -4], p: { weight: 2, density: 0.5, epsilon: 0.2 }, id: 'a' },
  { t: [-1, 1, 2, 2], p: { weight: 1, density: 0.5, epsilon: 0.2 }, id: 'b' },
];
const dellaDraws = { a: [0.35, 0.4, 0.6, 0.65], b: [0.2, 0.5, 0.5, 0.9] };

test('della_linear by hand: MagPrune, L1 rescale, weighted sum', () => {
  const out = run(dellaLinear, { base: [0, 0, 0, 0], models: dellaModels, rng: scriptedRng(dellaDraws) });
  assertClose(out, [-2, -6.6666667, 4, -13.3333333], 1e-5);
});

test('della by hand: sign election and weighted disjoint mean (normalize on)', () => {
  // each position has one agreeing model: divide by its weight → [−2/1, −6.6667/2, 4/1, −13.3333/2]
  const out = run(della, { base: [0, 0, 0, 0], models: dellaModels, rng: scriptedRng(dellaDraws) });
  assertClose(out, [-2, -3.3333333, 4, -6.6666667], 1e-5);
});

test('DARE/DELLA are deterministic for (seed, tensor name, model id) and order-independent', () => {
  const n = 512;
  const b = randomTensor(1, n);
  const mk = (seed: number, id: string) => ({
    t: Float32Array.from(randomTensor(seed, n, 0.1), (v, j) => b[j] + v),
    p: { weight: 0.6, density: 0.4, epsilon: 0.1 },
    id,
  });
  const a = mk(2, 'org/model-a');
  const c = mk(3, 'org/model-b');
  const name = 'model.layers.3.self_attn.q_proj.weight';
  for (const def of [dareLinear, dareTies, della, dellaLinear]) {
    const shape = [16, 32];
    const r1 = run(def, { base: b, models: [a, c], shape, tensorName: name, rng: tensorRng(42, name) });
    // processing another tensor first, or re-running, changes nothing
    run(def, { base: b, models: [a, c], shape, tensorName: 'other', rng: tensorRng(42, 'other') });
    const r2 = run(def, { base: b, models: [a, c], shape, tensorName: name, rng: tensorRng(42, name) });
    assert.deepEqual(r1, r2, def.id);
    // model order does not change each model's mask (sums may differ in the last ulp)
    const r3 = run(def, { base: b, models: [c, a], shape, tensorName: name, rng: tensorRng(42, name) });
    assert.ok(maxAbsDiff(r1, r3) < 1e-6, `${def.id} reorder ${maxAbsDiff(r1, r3)}`);
    // another seed gives another result
    const r4 = run(def, { base: b, models: [a, c], shape, tensorName: name, rng: tensorRng(43, name) });
    assert.ok(maxAbsDiff(r1, r4) > 1e-4, `${def.id} seed sensitivity`);
    // no rng given → deterministic fallback tensorRng(0, tensorName)
    const r5 = run(def, { base: b, models: [a, c], shape, tensorName: name });
    const r6 = run(def, { base: b, models: [a, c], shape, tensorName: name, rng: tensorRng(0, name) });
    assert.deepEqual(r5, r6, `${def.id} default rng`);
  }
});

test('dare_linear (default rescale) keeps each task vector’s L1 norm', () => {
  const n = 4000;
  const b = new Float32Array(n);
  const t = randomTensor(9, n);
  const out = run(dareLinear, { base: b, models: [{ t, p: { weight: 1, density: 0.25 } }], rng: tensorRng(5, 'x') });
  const l1 = (x: ArrayLike<number>): number => Array.from(x).reduce((s, v) => s + Math.abs(v), 0);
  assert.ok(Math.abs(l1(out) - l1(t)) / l1(t) < 1e-5);
  const zeros = out.reduce((s, v) => s + (v === 0 ? 1 : 0), 0) / n;
  assert.ok(Math.abs(zeros - 0.75) < 0.03, `dropped ${zeros}`);
});

test('della rejects an invalid epsilon like mergekit', () => {
  assert.throws(
    () => run(della, { base, models: [{ t: m1, p: { weight: 1, density: 0.9 } }], shape: [2, 2] }),
    /epsilon/,
  );
});
