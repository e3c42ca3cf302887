import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { fromFloat32, type DType } from '../../../app/core/dtypes.js';
import { createRng } from '../../../app/core/merge/index.js';
import { Checkpoint } from '../../../app/io/checkpoint.js';
import { OutputFolder } from '../../../app/io/output-folder.js';
import { writeTensors } from '../../../app/io/safetensors-writer.js';
import {
  addDots, chooseCandidate, chooseDistinct, cosineOf, diversity, Gram, mostDissimilarPair, planSample, type Pair, type SamplePlan,
} from '../../../app/expand/similarity.js';
import { similarityTensors, taskVectorDots } from '../../../app/expand/task-vectors.js';
import { tempDir } from '../../helpers/paths.js';

const close = (a: number, b: number, tol = 1e-12) => assert.ok(Math.abs(a - b) <= tol, `${a} vs ${b}`);

test('cosine from dot products, with the zero-norm convention', () => {
  // a = (1, 2, 2), b = (2, 0, 1): ⟨a,b⟩ = 4, ‖a‖² = 9, ‖b‖² = 5
  close(cosineOf(4, 9, 5), 4 / (3 * Math.sqrt(5)));
  close(cosineOf(-9, 9, 9), -1);
  assert.equal(cosineOf(0, 0, 0), 1); // both equal to the base: identical
  assert.equal(cosineOf(0, 0, 5), 0); // one equal to the base: no shared direction
  assert.equal(cosineOf(9.000000001, 9, 9), 1); // clamped to [-1, 1]
});

test('addDots accumulates pairwise dot products in float64; Gram gives the cosine matrix', () => {
  const v = [Float32Array.from([1, 2, 2, 9]), Float32Array.from([2, 0, 1, 9]), Float32Array.from([-1, -2, -2, 9])];
  const pairs: Pair[] = [[0, 0], [1, 1], [2, 2], [0, 1], [0, 2], [1, 2]];
  const sums = new Float64Array(pairs.length);
  addDots(v, 3, pairs, sums); // only the first 3 elements count
  addDots(v, 3, pairs, sums); // and twice
  assert.deepEqual([...sums], [18, 10, 18, 8, -18, -8]);
  const g = new Gram();
  pairs.forEach(([a, b], p) => g.set(b, a, sums[p]!)); // order of a pair does not matter
  const m = g.matrix([0, 1, 2]);
  close(m[0]![1]!, 4 / (3 * Math.sqrt(5)));
  close(m[0]![2]!, -1);
  assert.deepEqual(m.map((r, i) => r[i]), [1, 1, 1]);
  assert.deepEqual(m, m.map((r, i) => r.map((_, j) => m[j]![i]!)));
  assert.throws(() => g.dot(0, 3), /no dot product/);
});

test('most dissimilar pair and diversity on a hand-made similarity matrix', () => {
  const sim = [
    [1, 0.9, 0.2, 0.5],
    [0.9, 1, 0.4, 0.2],
    [0.2, 0.4, 1, 0.7],
    [0.5, 0.2, 0.7, 1],
  ];
  assert.deepEqual(mostDissimilarPair(sim), [0, 2]); // ties (0.2 at (0,2) and (1,3)) go to the first
  close(diversity(sim), (0.1 + 0.8 + 0.5 + 0.6 + 0.8 + 0.3) / 6);
  assert.equal(diversity([[1]]), 0);
  assert.throws(() => mostDissimilarPair([[1]]), /two experts/);
});

test('candidate choice: lowest max similarity; with seed scores the documented min-max mix', () => {
  assert.deepEqual(chooseCandidate([{ maxSimilarity: 0.9 }, { maxSimilarity: 0.8 }, { maxSimilarity: 0.85 }]), { index: 1, scores: null });
  assert.equal(chooseCandidate([{ maxSimilarity: 0.8 }, { maxSimilarity: 0.8 }]).index, 0);
  const c = [
    { maxSimilarity: 0.80, seedLogLikelihood: -2.0 }, // most novel, worst fit
    { maxSimilarity: 0.90, seedLogLikelihood: -1.0 }, // least novel, best fit
    { maxSimilarity: 0.84, seedLogLikelihood: -1.2 },
  ];
  // D = (1, 0, 0.6), Q = (0, 1, 0.8)
  const half = chooseCandidate(c, 0.5);
  assert.equal(half.index, 2);
  half.scores!.forEach((s, i) => close(s, [0.5, 0.5, 0.7][i]!, 1e-12));
  assert.equal(chooseCandidate(c, 0).index, 0); // weight 0: diversity only
  assert.equal(chooseCandidate(c, 1).index, 1); // weight 1: seed fit only
  assert.equal(chooseCandidate(c.slice(0, 2), 0.5).index, 0); // a tie goes to the more novel
});

test('chooseDistinct draws k distinct sorted integers below n, deterministically', () => {
  const a = chooseDistinct(1000, 50, createRng(3));
  assert.equal(a.length, 50);
  assert.equal(new Set(a).size, 50);
  assert.ok(a.every((x, i) => x >= 0 && x < 1000 && (i === 0 || x > a[i - 1]!)));
  assert.deepEqual(chooseDistinct(1000, 50, createRng(3)), a);
  assert.notDeepEqual(chooseDistinct(1000, 50, createRng(4)), a);
  assert.deepEqual(chooseDistinct(5, 9, createRng(1)), [0, 1, 2, 3, 4]);
  // Uniform: each of 10 values is drawn about k/n of the time.
  const counts = new Array<number>(10).fill(0);
  const rng = createRng(9);
  for (let r = 0; r < 4000; r++) for (const x of chooseDistinct(10, 3, rng)) counts[x]!++;
  for (const n of counts) assert.ok(Math.abs(n - 1200) < 150, `count ${n}`);
});

test('planSample: everything for 0 or a large size; else stratified, deterministic chunks', () => {
  const tensors = [{ name: 'a', numel: 10_000 }, { name: 'b', numel: 300 }, { name: 'c', numel: 50_000 }, { name: 'd', numel: 5 }];
  for (const size of [0, 60_305, 1e9]) {
    const full = planSample(tensors, size, 1, 64);
    assert.equal(full.full, true);
    assert.equal(full.sampledParameters, 60_305);
    assert.deepEqual(full.tensors.map((t) => t.ranges), [[[0, 10_000]], [[0, 300]], [[0, 50_000]], [[0, 5]]]);
  }
  const p = planSample(tensors, 6400, 1, 64); // 100 of the 945 chunks of 64
  assert.equal(p.full, false);
  assert.equal(p.totalParameters, 60_305);
  // Chunks per tensor a 157, b 5, c 782, d 1 → quotas 16.61, 0.53, 82.75, 0.11 → largest remainders: 17, 0, 83, 0.
  const chunks = p.tensors.map((t) => t.ranges.reduce((a, [s, e]) => a + Math.ceil((e - s) / 64), 0));
  assert.deepEqual(chunks, [17, 0, 83, 0]);
  assert.equal(p.sampledParameters, p.tensors.reduce((a, t) => a + t.count, 0));
  for (const t of p.tensors) {
    let prev = -1;
    for (const [s, e] of t.ranges) {
      assert.ok(s > prev && e > s && e <= t.numel && s % 64 === 0, `${t.name} [${s}, ${e})`);
      prev = e;
    }
  }
  assert.deepEqual(planSample(tensors, 6400, 1, 64), p);
  assert.notDeepEqual(planSample(tensors, 6400, 2, 64).tensors, p.tensors);
});

/** Writes a bare model folder (no config) with the given tensors. */
async function writeModel(dir: string, tensors: { name: string; shape: number[]; data: Float32Array }[], dtype: DType): Promise<string> {
  const out = await OutputFolder.create(dir);
  await writeTensors(out, tensors.map((t) => ({ name: t.name, dtype, shape: t.shape, bytes: fromFloat32(t.data, dtype) })));
  return out.commit();
}

test('taskVectorDots equals the dot products of θ − θ_base over the planned sample (F32, BF16 and F16 inputs)', async () => {
  const { dir, cleanup } = tempDir('upcycle-expand-');
  try {
    const shapes: Record<string, number[]> = { 'model.embed.weight': [300, 70], 'model.layers.0.mlp.up_proj.weight': [64, 33], 'model.norm.weight': [70] };
    const rnd = (seed: number, n: number, scale: number) => {
      const r = createRng(seed);
      return Float32Array.from({ length: n }, () => (r.nextFloat() - 0.5) * scale);
    };
    const make = (k: number) => Object.entries(shapes).map(([name, shape], i) => {
      const n = shape.reduce((a, d) => a * d, 1);
      const base = rnd(100 + i, n, 2);
      if (k === 0) return { name, shape, data: base };
      const d = rnd(1000 * k + i, n, 0.1);
      const own = rnd(7 + i, n, 0.05);
      return { name, shape, data: base.map((x, j) => x + d[j]! + (k === 3 ? own[j]! : 0)) };
    });
    const base = await writeModel(join(dir, 'base'), make(0), 'F32');
    const models = [await writeModel(join(dir, 'm1'), make(1), 'F32'), await writeModel(join(dir, 'm2'), make(2), 'BF16'), await writeModel(join(dir, 'm3'), make(3), 'F16')];
    const ck = await Checkpoint.open(base);
    const tensors = similarityTensors(ck, 'all');
    assert.deepEqual(tensors.map((t) => t.name), ['model.embed.weight', 'model.layers.0.mlp.up_proj.weight', 'model.norm.weight']);
    assert.deepEqual(similarityTensors(ck, 'mlp').map((t) => t.name), ['model.layers.0.mlp.up_proj.weight']);
    await ck.close();
    const pairs: Pair[] = [[0, 0], [1, 1], [2, 2], [0, 1], [0, 2], [1, 2]];
    const reference = async (plan: SamplePlan): Promise<number[]> => {
      const cks = await Promise.all([base, ...models].map((p) => Checkpoint.open(p)));
      const sums = new Array<number>(pairs.length).fill(0);
      for (const t of plan.tensors) {
        const xs = await Promise.all(cks.map((c) => c.readF32(t.name)));
        const d = xs.slice(1).map((x) => x.map((v, j) => v - xs[0]![j]!));
        for (const [s, e] of t.ranges) for (let j = s; j < e; j++) pairs.forEach(([a, b], p) => (sums[p]! += d[a]![j]! * d[b]![j]!));
      }
      await Promise.all(cks.map((c) => c.close()));
      return sums;
    };
    for (const size of [0, 3000]) {
      const plan = planSample(tensors, size, 5, 16);
      const got = await taskVectorDots(base, models.slice(0, 3), plan, pairs);
      const want = await reference(plan);
      got.sums.forEach((s, p) => assert.ok(Math.abs(s - want[p]!) <= 1e-9 * Math.max(1, Math.abs(want[p]!)), `size ${size} pair ${pairs[p]}: ${s} vs ${want[p]}`));
      assert.ok(got.bytesRead > 0);
      if (size === 0) assert.equal(got.bytesRead, plan.sampledParameters * (4 + 4 + 2 + 2));
    }
    // A sample of a few thousand estimates the full cosine closely.
    const full = await taskVectorDots(base, models, planSample(tensors, 0, 5), pairs);
    const part = await taskVectorDots(base, models, planSample(tensors, 4000, 5, 16), pairs);
    const cos = (s: Float64Array, a: number, b: number, p: number) => cosineOf(s[p]!, s[a]!, s[b]!);
    assert.ok(Math.abs(cos(full.sums, 0, 2, 4) - cos(part.sums, 0, 2, 4)) < 0.05);
    // A model whose tensor has another shape is refused, naming it.
    const odd = await writeModel(join(dir, 'odd'), make(1).map((t) => (t.name === 'model.norm.weight' ? { ...t, shape: [7, 10] } : t)), 'F32');
    await assert.rejects(taskVectorDots(base, [models[0]!, odd], planSample(tensors, 0, 5), [[0, 1]]), /model\.norm\.weight is \[7, 10\]/);
    // Cancellation is checked between tensors.
    const ac = new AbortController();
    ac.abort(new Error('stop'));
    await assert.rejects(taskVectorDots(base, models, planSample(tensors, 0, 5), pairs, { signal: ac.signal }), /stop/);
  } finally {
    cleanup();
  }
});
