import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseMoinConfig, MoinRecipeError } from '../../../app/moin/config.js';
import { applyTransform, fitTransform, parseEmbeddingSpec, resolveLayers, DEFAULT_EMBEDDING } from '../../../app/moin/embedding.js';
import { assignClusters } from '../../../app/moin/fit.js';
import { kmeans, maxAssignment } from '../../../app/moin/kmeans.js';
import { formatRouterJson, routeEmbeddings, routerFromJson, routerToJson, RouterFormatError, type SequenceRouter } from '../../../app/moin/router.js';
import { queryOf, routedText } from '../../../app/moin/texts.js';
import { createRng } from '../../../app/core/merge/index.js';

/** Four well-separated Gaussian blobs in 8 dimensions, in a shuffled order. */
function blobs(n: number, seed: number): { X: Float32Array[]; y: number[] } {
  const rng = createRng(seed);
  const X: Float32Array[] = [];
  const y: number[] = [];
  for (let i = 0; i < n; i++) {
    const c = Math.floor(rng.nextFloat() * 4);
    X.push(Float32Array.from({ length: 8 }, (_, d) => (d === c ? 5 : 0) + (rng.nextFloat() - 0.5)));
    y.push(c);
  }
  return { X, y };
}

test('k-means++ is deterministic for a seed, finds separated clusters, and labels clusters by first member', () => {
  const { X, y } = blobs(200, 3);
  const a = kmeans(X, { k: 4, seed: 7 });
  const b = kmeans(X, { k: 4, seed: 7 });
  assert.deepEqual(a.assignment, b.assignment);
  assert.deepEqual(a.centroids, b.centroids);
  assert.equal(a.inertia, b.inertia);
  // Perfect clusters: each cluster holds exactly one blob.
  for (let c = 0; c < 4; c++) assert.equal(new Set(y.filter((_, i) => a.assignment[i] === c)).size, 1);
  assert.equal(a.assignment[0], 0);
  assert.deepEqual(a.sizes.reduce((s, v) => s + v, 0), 200);
  // Another seed finds the same partition (canonical labels make it identical).
  assert.deepEqual(kmeans(X, { k: 4, seed: 99 }).assignment, a.assignment);
  assert.throws(() => kmeans(X.slice(0, 3), { k: 4 }), /cannot form 4 clusters/);
});

test('Hungarian assignment maximises the total score; clusters map one-to-one while they can', () => {
  const score = [[1, 9, 3], [8, 7, 1], [2, 9, 9]];
  assert.deepEqual(maxAssignment(score), [1, 0, 2]);
  // Brute force over all permutations agrees on a random 5×5.
  const rng = createRng(1);
  const m = Array.from({ length: 5 }, () => Array.from({ length: 5 }, () => rng.nextFloat()));
  const perms = (xs: number[]): number[][] => (xs.length <= 1 ? [xs] : xs.flatMap((x) => perms(xs.filter((z) => z !== x)).map((p) => [x, ...p])));
  const best = Math.max(...perms([0, 1, 2, 3, 4]).map((p) => p.reduce((s, c, r) => s + m[r]![c]!, 0)));
  const got = maxAssignment(m).reduce((s, c, r) => s + m[r]![c]!, 0);
  assert.ok(Math.abs(best - got) < 1e-12);
  // Two clusters both prefer expert 0: one-to-one gives the second its next best; without, both go to 0.
  assert.deepEqual(assignClusters([[0.9, 0.8, 0.1], [0.95, 0.1, 0.2], [0.1, 0.2, 0.9]], true), [1, 0, 2]);
  assert.deepEqual(assignClusters([[0.9, 0.8, 0.1], [0.95, 0.1, 0.2], [0.1, 0.2, 0.9]], false), [0, 0, 2]);
  // More clusters than experts: every expert gets one, the rest go to their best.
  assert.deepEqual(assignClusters([[0.9, 0.1], [0.8, 0.2], [0.7, 0.3]], true), [0, 0, 1]);
});

test('transforms: centring, standardising and whitening (identity covariance without shrinkage)', () => {
  const { X } = blobs(300, 5);
  const w = fitTransform('whiten', X, 0);
  const Y = X.map((x) => applyTransform(w, x));
  for (let i = 0; i < 8; i++) {
    for (let j = 0; j < 8; j++) {
      const c = Y.reduce((s, v) => s + v[i]! * v[j]!, 0) / Y.length;
      assert.ok(Math.abs(c - (i === j ? 1 : 0)) < 1e-3, `cov[${i},${j}] = ${c}`);
    }
  }
  const s = fitTransform('standardize', X, 0);
  const Z = X.map((x) => applyTransform(s, x));
  const mean0 = Z.reduce((a, v) => a + v[0]!, 0) / Z.length;
  assert.ok(Math.abs(mean0) < 1e-5);
  assert.equal(applyTransform(fitTransform('none', X, 0), X[0]!), X[0]);
});

test('embedding specs: defaults, layer names, and bad specs named', () => {
  assert.deepEqual(parseEmbeddingSpec(undefined), DEFAULT_EMBEDDING);
  const s = parseEmbeddingSpec({ layers: [0, 'middle', -1], pooling: 'mean+last', transform: 'whiten', shrinkage: 0.5 });
  assert.deepEqual(resolveLayers(s.layers, 4), [0, 2, 4]);
  assert.deepEqual(resolveLayers(['last'], 32), [32]);
  assert.throws(() => resolveLayers([7], 4), /out of range/);
  assert.throws(() => parseEmbeddingSpec({ pooling: 'max' }), /pooling must be one of/);
  assert.throws(() => parseEmbeddingSpec({ layer: 2 }), /unknown key "layer"/);
  assert.throws(() => parseEmbeddingSpec({ shrinkage: 2 }), /shrinkage/);
});

test('query texts: seed lines are cut after the delimiter, like the prompts they must match', () => {
  assert.equal(queryOf('add 1 2 = 3', '='), 'add 1 2 =');
  assert.equal(queryOf('no delimiter', '='), 'no delimiter');
  assert.equal(queryOf('add 1 2 = 3', null), 'add 1 2 = 3');
  assert.deepEqual(routedText({ prompt: 'up a =', answer: ' A' }, '='), { query: 'up a =', full: 'up a = A' });
  assert.deepEqual(routedText({ text: 'rev ab = ba', label: 'rev' }, '='), { query: 'rev ab =', full: 'rev ab = ba', label: 'rev' });
});

function syntheticRouter(): SequenceRouter {
  const spec = { ...parseEmbeddingSpec({ layers: [2], transform: 'standardize' }) };
  return {
    base: { path: '../base', architecture: 'LlamaForCausalLM', hiddenSize: 3, numLayers: 4, tokenizerSha256: 'ab'.repeat(32), weightsFingerprint: 'sampled-sha256:00' },
    spec,
    transform: { kind: 'standardize', mean: Float32Array.from([0.1, -0.2, 0.3]), scale: Float32Array.from([1 / 3, 2.5, 1e-7]) },
    queryDelimiter: '=',
    centroids: [
      { expert: 0, vector: Float32Array.from([1, 0, 0.123456789]), count: 32, source: 'seed' },
      { expert: 1, vector: Float32Array.from([0, 1, Math.PI]), count: 32, source: 'seed' },
      { expert: 1, vector: Float32Array.from([0, -1, 0]), count: 5, source: 'cluster 2' },
    ],
    experts: [{ name: 'add', adapter: 'experts/add' }, { name: 'upper', model: '../models/ffn-upper', merged: 'merged/upper' }],
    method: 'kmeans',
    clusters: [{ cluster: 0, size: 10, expert: 0, method: 'perplexity', scores: [0.5, 4.2], examples: ['add 1 2 ='], purity: 1 }],
    info: { seed_routing_accuracy: 1 },
  };
}

test('router.json round trip is exact (float32 vectors survive), and bad files are refused with the reason', () => {
  const r = syntheticRouter();
  const text = formatRouterJson(routerToJson(r));
  const back = routerFromJson(JSON.parse(text));
  assert.deepEqual(back, r);
  // Routing is unchanged by the round trip.
  const q = [Float32Array.from([1.1, 0, 0]), Float32Array.from([0, -3, 0.2])];
  assert.deepEqual(routeEmbeddings(back, q), routeEmbeddings(r, q));
  assert.deepEqual(routeEmbeddings(r, q).map((d) => d.expert), [0, 1]);
  const doc = () => JSON.parse(text) as Record<string, unknown>;
  const bad = (d: Record<string, unknown>, re: RegExp) => assert.throws(() => routerFromJson(d), (e: unknown) => e instanceof RouterFormatError && re.test(e.message));
  bad({ ...doc(), version: 2 }, /version 2 is not supported/);
  bad({ ...doc(), format: 'x' }, /format/);
  const d1 = doc();
  (d1['centroids'] as { vector: number[] }[])[0]!.vector.pop();
  bad(d1, /centroids\[0\]\.vector has 2 numbers, expected 3/);
  const d2 = doc();
  (d2['centroids'] as { expert: number }[])[0]!.expert = 5;
  bad(d2, /index into experts/);
  const d3 = doc();
  (d3['experts'] as Record<string, unknown>[])[0]!['adapter'] = null;
  bad(d3, /needs an adapter or a model/);
  bad({ ...doc(), transform: { kind: 'center', mean: [0, 0, 0] } }, /does not match/);
});

test('MoIN configs: mergekit-moe expert keys, routing: sequence, and mistakes named', () => {
  const r = parseMoinConfig({ base_model: 'b', routing: 'sequence', query_delimiter: '=', experts: [{ source_adapter: 'a/lora-x', seed_data: 's.jsonl' }, { source_model: 'm/y', positive_prompts: ['y ='] }] }, '/d');
  assert.equal(r.base, '/d/b');
  assert.deepEqual(r.experts.map((e) => e.name), ['lora-x', 'y']);
  assert.equal(r.experts[0]!.adapter, '/d/a/lora-x');
  assert.equal(r.router.method, 'centroids');
  const km = parseMoinConfig({ base_model: 'b', experts: [{ source_model: 'x' }, { source_model: 'y' }], router: { method: 'kmeans', corpus: 'c.jsonl', k: 8 } }, '/d');
  assert.ok(km.router.method === 'kmeans' && km.router.assign === 'perplexity' && km.router.k === 8 && km.router.corpus === '/d/c.jsonl');
  const two = [{ source_model: 'x', seed_data: 's' }, { source_model: 'y', seed_data: 't' }];
  const bad = (doc: Record<string, unknown>, re: RegExp) => assert.throws(() => parseMoinConfig(doc, '/d'), (e: unknown) => e instanceof MoinRecipeError && re.test(e.message));
  bad({ base_model: 'b', experts: two, gate_mode: 'hidden' }, /token-routed MoE key/);
  bad({ base_model: 'b', experts: two, routing: 'token' }, /routing must be "sequence"/);
  bad({ base_model: 'b', experts: [{ source_model: 'x' }, { source_model: 'y' }] }, /needs seed_data or positive_prompts/);
  bad({ base_model: 'b', experts: [{ source_model: 'x', seed_data: 's' }, { source_model: 'x', seed_data: 't' }] }, /two experts are named "x"/);
  bad({ base_model: 'b', experts: two, router: { method: 'kmeans' } }, /router.corpus must be a local path/);
  bad({ base_model: 'b', experts: two, router: { method: 'kmeans', corpus: 'c', assign: 'vote' } }, /router.assign/);
  bad({ base_model: 'b', experts: two, router: { k: 3 } }, /applies to method kmeans only/);
  bad({ base_model: 'b', experts: two, embedding: { pooling: 'max' } }, /embedding: pooling/);
});
