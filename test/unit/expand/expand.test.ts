import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { after, before, test } from 'node:test';
import { expandCommand } from '../../../app/cli/expand.js';
import { parseExpandConfig } from '../../../app/expand/config.js';
import type { ExpansionLog } from '../../../app/expand/log.js';
import { candidateDraws, LOG_FILE, runExpansion, type ExpandProgress, type ExpandResult } from '../../../app/expand/run.js';
import { diversity, mostDissimilarPair } from '../../../app/expand/similarity.js';
import { Checkpoint } from '../../../app/io/checkpoint.js';
import { DEMO, model, tempDir } from '../../helpers/paths.js';

const SFT = ['sft-step250', 'sft-step500', 'sft-step750', 'sft-step1000'];
const recipe = (over: Record<string, unknown> = {}) => parseExpandConfig({
  base_model: 'models/base',
  models: SFT.map((m) => `models/${m}`),
  num_experts: 8,
  candidates: 2,
  density: 0.7,
  sample_size: 50_000,
  seed: 7,
  ...over,
}, DEMO);

/** Every file under `dir` (relative path → bytes). */
function tree(dir: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out.set(relative(dir, p), readFileSync(p));
    }
  };
  walk(dir);
  return out;
}

const withoutTimings = (log: ExpansionLog) => ({ ...log, timings: undefined });

const tmp = tempDir('upcycle-expand-');
let a: ExpandResult;
let b: ExpandResult;
const events: ExpandProgress[] = [];

before(async () => {
  // The same recipe and seed into two different folders, at the same time.
  [a, b] = await Promise.all([
    runExpansion(recipe(), join(tmp.dir, 'a', 'experts'), { onProgress: (p) => events.push(p) }),
    runExpansion(recipe(), join(tmp.dir, 'b', 'elsewhere')),
  ]);
});
after(() => tmp.cleanup());

test('sft-step250…1000 grown to 8 experts: byte-identical for the same seed, wherever written', () => {
  const ta = tree(a.out);
  const tb = tree(b.out);
  assert.deepEqual([...ta.keys()].sort(), [...tb.keys()].sort());
  const names = Array.from({ length: 8 }, (_, i) => `expert-0${i + 1}`);
  assert.deepEqual(readdirSync(a.out).sort(), ['README.md', LOG_FILE, ...names].sort());
  for (const [file, bytes] of ta) {
    if (file === LOG_FILE) continue;
    assert.ok(bytes.equals(tb.get(file)!), `${file} differs between two runs with the same seed`);
  }
  const la = JSON.parse(ta.get(LOG_FILE)!.toString()) as ExpansionLog;
  const lb = JSON.parse(tb.get(LOG_FILE)!.toString()) as ExpansionLog;
  assert.deepEqual(withoutTimings(la), withoutTimings(lb));
  assert.deepEqual(withoutTimings(la), withoutTimings(a.log)); // the file is what runExpansion returned
  // Progress: phases in order, fraction rising to 1.
  assert.deepEqual(events.map((e) => e.phase).filter((p, i, all) => all.indexOf(p) === i), ['similarity', 'merging', 'writing', 'done']);
  assert.equal(events.at(-1)!.fraction, 1);
  assert.ok(events.every((e, i) => i === 0 || e.fraction >= events[i - 1]!.fraction - 1e-12));
});

test('the generation log records, per generation, the similarity matrix, parents, α, kept child and diversity', () => {
  const log = a.log;
  assert.equal(log.kind, 'upcycle-expansion');
  assert.deepEqual(log.config.models.map((m) => m.path), SFT.map(model));
  assert.equal(log.sampling.total_parameters, 458_592);
  assert.ok(log.sampling.sampled_parameters >= 50_000 && log.sampling.sampled_parameters < 50_000 + 256 * 40);
  assert.equal(log.generations.length, 4);
  assert.deepEqual(log.experts.map((e) => [e.name, e.origin]), [1, 2, 3, 4, 5, 6, 7, 8].map((i) => [`expert-0${i}`, i <= 4 ? 'checkpoint' : 'generation']));
  assert.deepEqual(log.experts.slice(0, 4).map((e) => e.source), SFT.map(model));
  for (const [gi, g] of log.generations.entries()) {
    const P = 4 + gi;
    assert.equal(g.generation, gi + 1);
    assert.deepEqual(g.pool, log.experts.slice(0, P).map((e) => e.name));
    assert.equal(g.similarity.length, P);
    for (let i = 0; i < P; i++) {
      assert.equal(g.similarity[i]![i], 1);
      for (let j = 0; j < P; j++) {
        assert.equal(g.similarity[i]![j], g.similarity[j]![i]);
        assert.ok(g.similarity[i]![j]! > -1 && g.similarity[i]![j]! <= 1);
      }
    }
    // Parents: the most dissimilar pair of the pool.
    assert.deepEqual(g.parents.indices, mostDissimilarPair(g.similarity));
    assert.deepEqual(g.parents.names, g.parents.indices.map((i) => g.pool[i]));
    assert.equal(g.parents.similarity, g.similarity[g.parents.indices[0]]![g.parents.indices[1]]);
    // Candidates: α from the seed, similarities to the pool; the kept one is the least similar.
    assert.equal(g.candidates.length, 2);
    for (const c of g.candidates) {
      const d = candidateDraws(7, g.generation, c.candidate, [0, 1]);
      assert.deepEqual([c.alpha, c.merge_seed], [d.alpha, d.mergeSeed]);
      assert.equal(c.similarity.length, P);
      assert.equal(c.max_similarity, Math.max(...c.similarity));
      assert.ok(c.max_similarity < 0.99, 'DARE at density 0.7 makes children clearly new');
    }
    const best = g.candidates.reduce((x, y) => (y.max_similarity < x.max_similarity ? y : x));
    assert.equal(g.kept.candidate, best.candidate);
    assert.equal(g.kept.name, `expert-0${P + 1}`);
    assert.equal(g.kept.alpha, best.alpha);
    const child = log.experts[P]!;
    assert.deepEqual([child.generation, child.parents, child.alpha, child.merge_seed], [g.generation, g.parents.names, best.alpha, best.merge_seed]);
    // Diversity before and after: mean pairwise (1 − cos) of the pool; the child's row is its candidate's similarities.
    assert.equal(g.diversity_before, diversity(g.similarity));
    const next: number[][] = gi + 1 < log.generations.length ? log.generations[gi + 1]!.similarity : log.final.similarity;
    assert.deepEqual(next[P]!.slice(0, P), best.similarity);
    assert.equal(g.diversity, diversity(next.slice(0, P + 1).map((r) => r.slice(0, P + 1))));
    assert.ok(g.diversity > g.diversity_before, 'a novel child raises the pool diversity');
  }
  assert.deepEqual(log.initial.similarity, log.generations[0]!.similarity);
  assert.equal(log.final.similarity.length, 8);
  // Sampled similarities estimate the full ones: the checkpoints of one run are ordered in time.
  const s = log.initial.similarity;
  assert.ok(s[0]![1]! > s[0]![2]! && s[0]![2]! > s[0]![3]! && s[2]![3]! > 0.95, JSON.stringify(s));
  assert.equal(log.timings.merges.length, 8);
  assert.equal(log.timings.similarity.length, 1 + 4 * 2); // the pool, then each candidate
});

test('the experts are model folders: originals hard-linked, children complete HF folders of the base architecture', async () => {
  for (const [i, m] of SFT.entries()) {
    const src = join(model(m), 'model.safetensors');
    const dst = join(a.out, `expert-0${i + 1}`, 'model.safetensors');
    assert.equal(statSync(dst).ino, statSync(src).ino, 'weights are hard links');
    assert.notEqual(statSync(join(a.out, `expert-0${i + 1}`, 'config.json')).ino, statSync(join(model(m), 'config.json')).ino, 'small files are copies');
  }
  const base = await Checkpoint.open(model('base'));
  try {
    for (const e of a.experts.slice(4)) {
      const ck = await Checkpoint.open(e);
      try {
        assert.deepEqual(ck.names.sort(), base.names.sort());
        assert.deepEqual(ck.problems.filter((p) => p.severity === 'error'), []);
        assert.ok(ck.tokenizerSha256 && ck.tokenizerSha256 === base.tokenizerSha256);
      } finally {
        await ck.close();
      }
      assert.match(readFileSync(join(e, 'README.md'), 'utf8'), /genetic expert expansion/);
      assert.match(readFileSync(join(e, 'mergekit_config.yml'), 'utf8'), /merge_method: dare_linear/);
    }
  } finally {
    await base.close();
  }
});

test('another seed grows other experts', async () => {
  const r = await runExpansion(recipe({ seed: 8, num_experts: 5 }), join(tmp.dir, 'seed8'));
  assert.deepEqual(r.log.initial.similarity.length, 4);
  assert.notDeepEqual(r.log.generations[0]!.candidates.map((c) => c.alpha), a.log.generations[0]!.candidates.map((c) => c.alpha));
  const mine = readFileSync(join(r.out, 'expert-05', 'model.safetensors'));
  assert.ok(!mine.equals(readFileSync(join(a.out, 'expert-05', 'model.safetensors'))));
  // The originals are the same files whatever the seed.
  assert.ok(readFileSync(join(r.out, 'expert-04', 'model.safetensors')).equals(readFileSync(join(a.out, 'expert-04', 'model.safetensors'))));
});

test('seed data weighs the choice: with seed_weight 1 the best-fitting candidate is kept', async () => {
  const r = await runExpansion(recipe({ num_experts: 5, candidates: 3, seed_data: ['eval/add.seed.jsonl', 'eval/rev.seed.jsonl'], seed_weight: 1 }), join(tmp.dir, 'seeded'));
  const g = r.log.generations[0]!;
  const ll = g.candidates.map((c) => c.seed_loglik!);
  assert.ok(ll.every((x) => Number.isFinite(x) && x < 0), JSON.stringify(ll));
  assert.equal(g.kept.candidate, ll.indexOf(Math.max(...ll)));
  assert.ok(g.candidates.every((c) => typeof c.score === 'number'));
  assert.equal(r.log.timings.scoring.length, 3);
  // Candidates are deleted after scoring; a kept one that was not the last is merged again, identically.
  assert.equal(r.log.timings.merges.length, g.kept.candidate === 2 ? 3 : 4);
  const again = await runExpansion(recipe({ num_experts: 5, candidates: 3, seed_data: ['eval/add.seed.jsonl', 'eval/rev.seed.jsonl'], seed_weight: 1, originals: 'reference' }), join(tmp.dir, 'seeded-again'));
  assert.ok(readFileSync(join(again.out, 'expert-05', 'model.safetensors')).equals(readFileSync(join(r.out, 'expert-05', 'model.safetensors'))));
});

test('cancelling mid-expansion leaves no output folder, partial or not', async () => {
  const parent = join(tmp.dir, 'cancel');
  const ac = new AbortController();
  await assert.rejects(
    runExpansion(recipe(), join(parent, 'out'), { signal: ac.signal, onProgress: (p) => p.phase === 'merging' && p.candidate === 1 && ac.abort(new Error('user cancelled')) }),
    /user cancelled/,
  );
  assert.deepEqual(existsSync(parent) ? readdirSync(parent) : [], []);
  // An existing output is refused before any work.
  await assert.rejects(runExpansion(recipe(), a.out), /already exists/);
});

test('upcycle expand CONFIG OUT: runs a YAML config (originals by reference) and prints a summary', async () => {
  const yml = join(tmp.dir, 'expand.yml');
  writeFileSync(yml, `base_model: ${join(DEMO, 'models', 'base')}\nmodels: [${SFT.slice(0, 2).map((m) => model(m)).join(', ')}]\nnum_experts: 3\ncandidates: 1\nsample_size: 10000\noriginals: reference\n`);
  const lines: string[] = [];
  const log = console.log;
  console.log = (s: string) => lines.push(s);
  try {
    assert.equal(await expandCommand.run([yml, join(tmp.dir, 'cli'), '--seed', '3']), 0);
  } finally {
    console.log = log;
  }
  assert.match(lines.join('\n'), /expanded 2 checkpoints to 3 experts .*seed 3\)\n.*\n {2}gen 1: expert-01 × expert-02 \(cos 0\.\d+\) → expert-03/);
  assert.deepEqual(readdirSync(join(tmp.dir, 'cli')).sort(), ['README.md', LOG_FILE, 'expert-03']);
  const written = JSON.parse(readFileSync(join(tmp.dir, 'cli', LOG_FILE), 'utf8')) as ExpansionLog;
  assert.deepEqual(written.experts.map((e) => e.path), [model(SFT[0]!), model(SFT[1]!), 'expert-03']);
  await assert.rejects(expandCommand.run([yml]), /expected CONFIG\.yml and OUT_DIR/);
  await assert.rejects(expandCommand.run([yml, join(tmp.dir, 'x'), '--seed', '-1']), /--seed/);
});
