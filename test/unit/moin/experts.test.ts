import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { moinCommand } from '../../../app/cli/moin.js';
import { loadTask } from '../../../app/eval/tasks.js';
import { buildMoin } from '../../../app/moin/build.js';
import { compareEmbeddings, COMPARISON_SPECS } from '../../../app/moin/compare.js';
import { BaseEmbedder, DEFAULT_EMBEDDING, describeSpec } from '../../../app/moin/embedding.js';
import { evaluateMoin, loadRouterFolder, routeTexts } from '../../../app/moin/evaluate.js';
import { demoConfig, SKILLS, writeDemoCorpus } from '../../../app/moin/results.js';
import { fitRouter } from '../../../app/moin/fit.js';
import { readTexts } from '../../../app/moin/texts.js';
import { DEMO, adapter, model, tempDir } from '../../helpers/paths.js';

const gen = SKILLS.map((s) => join(DEMO, 'eval', `${s}.gen.jsonl`));
const em = (r: Awaited<ReturnType<typeof evaluateMoin>>) => SKILLS.map((s) => r.tasks[`${s}.gen`]!['exact_match']!);
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

test('lora-* adapters as sequence-level experts, routed by nearest seed centroid: routing ≥ 0.95, mean exact match ≥ 0.93', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const out = join(dir, 'moin-lora');
    const r = await buildMoin(demoConfig(DEMO, 'lora'), out);
    assert.equal(r.method, 'centroids');
    assert.equal(r.centroids, 4);
    assert.equal(r.seedRoutingAccuracy, 1);
    // The folder: router.json, README, adapters copied byte for byte; the base referenced.
    for (const s of SKILLS) {
      assert.deepEqual(readFileSync(join(out, 'experts', s, 'adapter_model.safetensors')), readFileSync(join(adapter(`lora-${s}`), 'adapter_model.safetensors')));
    }
    assert.ok(existsSync(join(out, 'README.md')) && existsSync(join(out, 'moin_recipe.json')));
    const doc = JSON.parse(readFileSync(join(out, 'router.json'), 'utf8'));
    assert.equal(doc.format, 'upcycle-moin-router');
    assert.equal(doc.routing, 'sequence');
    assert.deepEqual(doc.experts.map((e: { adapter: string }) => e.adapter), SKILLS.map((s) => `experts/${s}`));
    assert.equal(join(out, doc.base_model.path), model('base'));
    assert.deepEqual(doc.embedding.layers, [2]);

    const ev = await evaluateMoin(out, gen);
    const scores = em(ev);
    assert.ok(ev.routing.accuracy! >= 0.95, `routing accuracy ${ev.routing.accuracy}`);
    assert.ok(mean(scores) >= 0.93, `mean exact match ${mean(scores)} (${scores})`);
    // Each adapter on its own skill: add 1.00, upper 0.86, rev 1.00, sort 1.00.
    assert.deepEqual([scores[0], scores[2], scores[3]], [1, 1, 1]);
    assert.ok(scores[1]! >= 0.84, `upper ${scores[1]}`);
    assert.equal(ev.routing.per_task['add.gen']!.gold, 'add');
    assert.equal(ev.routing.confusion.flat().reduce((a, b) => a + b, 0), 800);
    assert.equal(Object.values(ev.per_expert).reduce((a, p) => a + p.items, 0), 800);

    // Routing by the gold labels equals each adapter alone on its skill (expected-metrics.json).
    const expected = JSON.parse(readFileSync(join(DEMO, 'expected-metrics.json'), 'utf8')) as Record<string, Record<string, { exact_match: number }>>;
    const oracle = await evaluateMoin(out, gen, { routeBy: 'gold' });
    assert.deepEqual(em(oracle), SKILLS.map((s) => expected[`base+lora-${s}`]![`${s}.gen`]!.exact_match));
  } finally {
    cleanup();
  }
});

test('ffn-* models as sequence-level experts: routing ≥ 0.95, mean exact match ≥ 0.93; models referenced, merged copies optional', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const out = join(dir, 'moin-ffn');
    const r = await buildMoin(demoConfig(DEMO, 'ffn'), out);
    // Model experts are referenced (relative to the folder), not copied.
    assert.deepEqual(r.experts.map((e) => join(out, e.model!)), SKILLS.map((s) => model(`ffn-${s}`)));
    assert.ok(!existsSync(join(out, 'experts')));
    const rf = await loadRouterFolder(out);
    assert.equal(join(out, rf.router.experts[1]!.model!), model('ffn-upper'));
    const ev = await evaluateMoin(out, gen);
    const scores = em(ev);
    assert.ok(ev.routing.accuracy! >= 0.95, `routing accuracy ${ev.routing.accuracy}`);
    assert.ok(mean(scores) >= 0.93, `mean exact match ${mean(scores)} (${scores})`);
  } finally {
    cleanup();
  }
});

test('embedding comparison: cutting seed lines at "=" fixes the independent implementation\'s mis-routed upper prompts; the default routes ≥ 0.99', async () => {
  const emb = await BaseEmbedder.load(model('base'));
  try {
    const train = await Promise.all(SKILLS.map((s) => readTexts(join(DEMO, 'eval', `${s}.seed.jsonl`), '=')));
    const heldOut = await Promise.all(SKILLS.map(async (s, e) => ({ name: s, expert: e, queries: (await loadTask(join(DEMO, 'eval', `${s}.gen.jsonl`))).items.map((i) => (i as { prompt: string }).prompt) })));
    const independent = COMPARISON_SPECS[0]!;
    const [ind, def] = await compareEmbeddings(emb, { expertNames: [...SKILLS], train, heldOut }, [independent, { spec: DEFAULT_EMBEDDING, note: 'default' }]);
    // Whole seed lines + mean of the last hidden states: ~0.90, upper sent to rev.
    assert.ok(ind!.fullLineAccuracy < 0.93 && ind!.fullLinePerSet['upper']! < 0.7, `independent ${ind!.fullLineAccuracy}`);
    // Same embedding with seeds cut like the queries, and the default.
    assert.ok(ind!.accuracy >= 0.99);
    assert.ok(def!.accuracy >= 0.99 && def!.kmeansPurity >= 0.99, `${describeSpec(DEFAULT_EMBEDDING)}: ${def!.accuracy}, purity ${def!.kmeansPurity}`);
    assert.ok(def!.fullLineAccuracy > ind!.fullLineAccuracy);
  } finally {
    await emb.release();
  }
  // Right-padded batches give the states of each query alone.
  const one = await BaseEmbedder.load(model('base'), { batchSize: 1 });
  const many = await BaseEmbedder.load(model('base'));
  try {
    const texts = ['add 1 2 =', 'up a much longer query with words =', 'rev x =', 'sort 3 1 2 ='];
    const [a, b] = [await one.features(texts), await many.features(texts)];
    for (let i = 0; i < texts.length; i++) {
      for (const k of ['meanNoBos', 'last'] as const) {
        for (let l = 0; l <= 4; l++) a[i]![k][l]!.forEach((v, j) => assert.ok(Math.abs(v - b[i]![k][l]![j]!) < 1e-4, `${texts[i]} ${k} h${l}`));
      }
    }
  } finally {
    await one.release();
    await many.release();
  }
});

test('k-means on an unlabelled corpus: clusters are shown with the expert each maps to (perplexity, no seed data); the router routes ≥ 0.95', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const corpus = join(dir, 'corpus.jsonl');
    assert.equal(await writeDemoCorpus(DEMO, corpus), 800);
    const cfg = demoConfig(DEMO, 'lora', { router: { method: 'kmeans', corpus, k: 4, assign: 'perplexity', seed: 1 } });
    for (const e of cfg.experts) delete e.seedData;
    const r = await buildMoin(cfg, join(dir, 'km'));
    assert.equal(r.method, 'kmeans');
    assert.equal(r.seedRoutingAccuracy, null);
    const clusters = r.clusters!;
    assert.equal(clusters.length, 4);
    // Every cluster is one skill (its examples say which) and maps to that skill's expert.
    for (const c of clusters) {
      const skill = SKILLS[c.expert]!;
      const prefix = skill === 'upper' ? 'up ' : `${skill} `;
      assert.ok(c.examples.every((x) => x.startsWith(prefix)), `cluster ${c.cluster} → ${skill}: ${c.examples}`);
      assert.equal(c.size, 200);
      assert.equal(Math.min(...c.scores), c.scores[c.expert]);
    }
    assert.equal(new Set(clusters.map((c) => c.expert)).size, 4);
    const readme = readFileSync(join(dir, 'km', 'README.md'), 'utf8');
    assert.match(readme, /## Clusters/);
    // Same seed → the same router.
    const again = await buildMoin(cfg, join(dir, 'km2'));
    assert.deepEqual(JSON.parse(readFileSync(join(dir, 'km2', 'router.json'), 'utf8')).centroids, JSON.parse(readFileSync(join(dir, 'km', 'router.json'), 'utf8')).centroids);
    assert.deepEqual(again.clusters!.map((c) => c.expert), clusters.map((c) => c.expert));
    const ds = await routeTexts(await loadRouterFolder(join(dir, 'km')), ['add 12 34 =', 'up cat dog =', 'rev hello =', 'sort 3 1 2 =']);
    assert.deepEqual(ds.map((d) => d.expert), [0, 1, 2, 3]);
    const ev = await evaluateMoin(join(dir, 'km'), gen);
    assert.ok(ev.routing.accuracy! >= 0.95, `routing ${ev.routing.accuracy}`);

    // The other mappings, in memory: by seed centroids (k = 6), and by majority of corpus labels.
    const labelled = join(dir, 'labelled.jsonl');
    const lines = readFileSync(corpus, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { text: string });
    const skillOf = (t: string) => SKILLS.find((s) => t.startsWith(s === 'upper' ? 'up ' : `${s} `))!;
    writeFileSync(labelled, lines.map((l) => JSON.stringify({ text: l.text, label: skillOf(l.text) })).join('\n'));
    const emb = await BaseEmbedder.load(model('base'));
    try {
      const byCentroid = await fitRouter(demoConfig(DEMO, 'lora', { router: { method: 'kmeans', corpus, k: 6, assign: 'centroid' } }), emb);
      assert.equal(byCentroid.router.centroids.length, 6);
      for (const c of byCentroid.router.clusters!) assert.ok(c.examples.every((x) => skillOf(x) === SKILLS[c.expert]), `cluster ${c.cluster}: ${c.examples}`);
      assert.equal(new Set(byCentroid.router.centroids.map((c) => c.expert)).size, 4);
      assert.ok(byCentroid.seedAccuracy! >= 0.99, `seed accuracy ${byCentroid.seedAccuracy}`);
      const byMajority = await fitRouter(demoConfig(DEMO, 'lora', { router: { method: 'kmeans', corpus: labelled, assign: 'majority' } }), emb);
      // One upper and one rev line swap clusters: purity 199/200 in two clusters.
      for (const c of byMajority.router.clusters!) assert.ok(c.purity! >= 0.99, `cluster ${c.cluster} purity ${c.purity}`);
      assert.equal(new Set(byMajority.router.clusters!.map((c) => c.expert)).size, 4);
    } finally {
      await emb.release();
    }
  } finally {
    cleanup();
  }
});

test('router folders refuse a different base, and the CLI builds, routes and evaluates', async () => {
  const { dir, cleanup } = tempDir();
  const logs: string[] = [];
  const log = console.log;
  try {
    const yml = join(dir, 'moin.yml');
    writeFileSync(yml, [
      `base_model: ${model('base')}`,
      'routing: sequence',
      'query_delimiter: "="',
      'experts:',
      ...SKILLS.map((s) => `  - {name: ${s}, source_adapter: ${adapter(`lora-${s}`)}, seed_data: ${join(DEMO, 'eval', `${s}.seed.jsonl`)}}`),
      'merged_models: true',
    ].join('\n'));
    console.log = (...a: unknown[]) => logs.push(a.join(' '));
    assert.equal(await moinCommand.run(['build', yml, join(dir, 'out')]), 0);
    assert.equal(await moinCommand.run(['route', join(dir, 'out'), 'rev planet =', '--json']), 0);
    assert.equal(JSON.parse(logs.at(-1)!)[0].expert, 'rev');
    assert.equal(await moinCommand.run(['eval', join(dir, 'out'), '--task', gen[2]!, '--limit', '20', '--merged', '--json']), 0);
    const rep = JSON.parse(logs.at(-1)!);
    assert.equal(rep.tasks['rev.gen'].exact_match, 1);
    assert.equal(rep.routing.accuracy, 1);
    console.log = log;
    assert.ok(existsSync(join(dir, 'out', 'merged', 'rev', 'model.safetensors')));
    await assert.rejects(moinCommand.run(['frobnicate']), /expected a subcommand/);
    // Another base with the same tokenizer but other weights is refused.
    await assert.rejects(evaluateMoin(join(dir, 'out'), [gen[0]!], { base: model('sft-step250'), limit: 2 }), /different weights/);
  } finally {
    console.log = log;
    cleanup();
  }
});
