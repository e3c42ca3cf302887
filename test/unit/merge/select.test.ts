import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  absRankWindowMask,
  bitsView,
  selectAbsRank,
  stableAbsRanks,
  topKAbsMask,
} from '../../../app/core/merge/select.js';
import {
  absRankWindowMaskNaive,
  stableAbsOrder,
  topKAbsMaskNaive,
} from '../../../app/core/merge/select-reference.js';
import { createRng } from '../../../app/core/merge/rng.js';
import { f32, randomTensor, tiedTensor } from './helpers.js';

test('topKAbsMask: hand example with a tie at the threshold', () => {
  // |x| = [0.5, 2, 2, 1, 0.5]
  const x = f32([0.5, -2, 2, 1, -0.5]);
  assert.deepEqual([...topKAbsMask(x, 2)], [0, 1, 1, 0, 0]); // the two 2s
  assert.deepEqual([...topKAbsMask(x, 3)], [0, 1, 1, 1, 0]); // + the 1
  // k = 4: one of the two 0.5s; the lower index (0) wins, like a stable descending argsort
  assert.deepEqual([...topKAbsMask(x, 4)], [1, 1, 1, 1, 0]);
  assert.deepEqual([...topKAbsMask(x, 0)], [0, 0, 0, 0, 0]);
  assert.deepEqual([...topKAbsMask(x, 5)], [1, 1, 1, 1, 1]);
  assert.deepEqual([...topKAbsMask(x, 9)], [1, 1, 1, 1, 1]);
});

test('absRankWindowMask: hand example = sort(|x|).indices[start:stop]', () => {
  // |x| = [3, 1, 2, 2, 5]; stable ascending order of indices: 1 (1), 2 (2), 3 (2), 0 (3), 4 (5)
  const x = f32([3, -1, 2, -2, 5]);
  assert.deepEqual([...absRankWindowMask(x, 1, 4)], [1, 0, 1, 1, 0]); // indices 2, 3, 0
  assert.deepEqual([...absRankWindowMask(x, 2, 4)], [1, 0, 0, 1, 0]); // indices 3, 0: tie cut drops index 2
  assert.deepEqual([...absRankWindowMask(x, 1, 2)], [0, 0, 1, 0, 0]); // index 2 only
  assert.deepEqual([...absRankWindowMask(x, 3, 3)], [0, 0, 0, 0, 0]);
  assert.deepEqual([...absRankWindowMask(x, 0, 5)], [1, 1, 1, 1, 1]);
});

test('selectAbsRank returns key, less and equal counts', () => {
  const x = f32([0, -0, 1.5, -1.5, 1.5, 7, 1e-30, -3e30]);
  const bits = bitsView(x);
  const order = stableAbsOrder(x, false).map((i) => Math.abs(x[i]));
  for (let r = 0; r < x.length; r++) {
    const sel = selectAbsRank(bits, r);
    assert.equal(new Float32Array(new Uint32Array([sel.key]).buffer)[0], order[r], `rank ${r}`);
    assert.equal(sel.less, order.filter((v) => v < order[r]).length);
    assert.equal(sel.equal, order.filter((v) => v === order[r]).length);
  }
  assert.throws(() => selectAbsRank(bits, 8), RangeError);
});

test('fast top-k agrees with the sort-based reference (random and heavily tied data)', () => {
  const rng = createRng(99);
  for (let trial = 0; trial < 60; trial++) {
    const n = 1 + Math.floor(rng.nextFloat() * 700);
    const x = trial % 2 === 0 ? randomTensor(trial, n, 10 ** (trial % 7 - 3)) : tiedTensor(trial, n, 1 + (trial % 5));
    for (const k of [0, 1, Math.floor(n / 3), Math.floor(n / 2), n - 1, n, Math.floor(rng.nextFloat() * (n + 1))]) {
      assert.deepEqual(topKAbsMask(x, k), topKAbsMaskNaive(x, k), `trial ${trial}, n ${n}, k ${k}`);
    }
  }
});

test('fast rank window agrees with the sort-based reference', () => {
  const rng = createRng(5);
  for (let trial = 0; trial < 60; trial++) {
    const n = 1 + Math.floor(rng.nextFloat() * 500);
    const x = trial % 2 === 0 ? randomTensor(1000 + trial, n) : tiedTensor(1000 + trial, n, 2);
    for (let w = 0; w < 6; w++) {
      const a = Math.floor(rng.nextFloat() * (n + 1));
      const b = Math.floor(rng.nextFloat() * (n + 1));
      const [start, stop] = a <= b ? [a, b] : [b, a];
      assert.deepEqual(absRankWindowMask(x, start, stop), absRankWindowMaskNaive(x, start, stop), `n ${n} [${start}, ${stop})`);
    }
  }
});

test('stableAbsRanks agrees with a stable sort, for strided fibres', () => {
  const x = tiedTensor(77, 4 * 50, 3);
  const bits = bitsView(x);
  // fibre: column 2 of a [50, 4] matrix
  const ranks = new Uint32Array(50);
  stableAbsRanks(bits, 2, 4, 50, ranks);
  const col = Float32Array.from({ length: 50 }, (_, j) => x[2 + 4 * j]);
  const order = stableAbsOrder(col, false);
  const expected = new Uint32Array(50);
  order.forEach((j, r) => (expected[j] = r));
  assert.deepEqual(ranks, expected);
});

test('top-k on a large tensor is linear-time and matches the reference', () => {
  const x = randomTensor(3, 300_000);
  const k = 123_457;
  const mask = topKAbsMask(x, k);
  assert.equal(mask.reduce((s, v) => s + v, 0), k);
  assert.deepEqual(mask, topKAbsMaskNaive(x, k));
});
