import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { CmaEs, jacobiEigen } from '../../../app/core/cmaes.js';
import { baselineConfig, decodeGenome, defaultGenome, evolveMerge, fitnessItems, parseEvolveYaml } from '../../../app/evolve/evolve.js';
import { DEMO, model, tempDir } from '../../helpers/paths.js';

test('CMA-ES minimises a shifted ellipsoid and is deterministic for a seed', () => {
  const f = (x: number[]) => x.reduce((a, v, i) => a + (i + 1) * (v - 0.3) ** 2, 0);
  const run = (seed: number) => {
    const es = new CmaEs([1, 1, 1, 1, 1], { sigma0: 0.5, seed });
    for (let g = 0; g < 150; g++) {
      const xs = es.ask();
      es.tell(xs.map(f));
    }
    return es.mean;
  };
  const m = run(3);
  assert.ok(f(m) < 1e-10, `f(mean) = ${f(m)}`);
  assert.deepEqual(run(3), m);
  const { values, vectors } = jacobiEigen([[2, 1], [1, 2]]);
  assert.deepEqual(values.map((v) => Math.round(v * 1e9) / 1e9).sort(), [1, 3]);
  assert.ok(Math.abs(Math.abs(vectors[0]![0]!) - Math.SQRT1_2) < 1e-9);
});

test('genomes decode to mergekit recipes with per-layer-group gradients; fitness items split at " ="', async () => {
  const r = parseEvolveYaml(`base_model: b\nmodels: [x, y]\nmerge_method: ties\nlayer_groups: 2\nfitness: [f.jsonl]\n`, '/w/evo.yml');
  const x = defaultGenome(r);
  assert.equal(x.length, 2 * 2 * 2);
  x[1] = -0.2; // density → |x|
  x[3] = 0.001; // density floor 0.05
  x[2] = 0.7; // weight of model 0, group 1
  const c = decodeGenome(r, x) as { models: { model: string; parameters: { weight: number[]; density: number[] } }[]; base_model: string; parameters: unknown };
  assert.equal(c.base_model, '/w/b');
  // Unnormalised TIES starts at the mean task vector (weights 1/n); normalised TIES at weights 1.
  assert.deepEqual(c.models[0]!.parameters, { weight: [0.5, 0.7], density: [0.2, 0.05] });
  assert.deepEqual(c.parameters, { normalize: false });
  const rn = parseEvolveYaml(`base_model: b\nmodels: [x, y]\nfitness: [f.jsonl]\nnormalize: true\n`, '/w/evo.yml');
  assert.deepEqual((decodeGenome(rn, defaultGenome(rn)) as { models: { parameters: unknown }[]; parameters: unknown }).models[1]!.parameters, { weight: [1, 1], density: [0.5, 0.5] });
  assert.deepEqual(baselineConfig(r).parameters, { normalize: true });
  assert.throws(() => parseEvolveYaml('models: [a, b]\nfitness: [f]\nnormalize: 1\nbase_model: b', '/w/e.yml'), /normalize must be true or false/);
  assert.throws(() => parseEvolveYaml('models: [a, b]\nfitness: [f]\nmerge_method: slerp\nbase_model: b', '/w/e.yml'), /cannot be evolved/);
  const head = 'base_model: b\nmodels: [x, y]\nfitness: [f.jsonl]\n';
  assert.throws(() => parseEvolveYaml('models: [a\n b', '/w/e.yml'), /^Error: \/w\/e\.yml: not valid YAML/);
  assert.throws(() => parseEvolveYaml('- a\n- b\n', '/w/e.yml'), /the config must be a mapping/);
  assert.throws(() => parseEvolveYaml(`${head}sigma: "0.5"\n`, '/w/e.yml'), /sigma must be a positive number/);
  assert.throws(() => parseEvolveYaml(`${head}dtype: int8\n`, '/w/e.yml'), /dtype must be one of float32, float16, bfloat16/);
  assert.throws(() => parseEvolveYaml('base_model: b\nmodels: [{model: x, parameters: {weight: 1}}, y]\nfitness: [f]\n', '/w/e.yml'), /models\[0\]: only "model" is read.*"parameters"/);
  // 2 models × 2 groups × (weight, density) = 8 parameters → λ = 4 + ⌊3 ln 8⌋ = 10.
  assert.throws(() => parseEvolveYaml(`${head}budget: 11\n`, '/w/e.yml'), /budget 11 leaves no generation: it needs at least 12/);
  assert.equal(parseEvolveYaml(`${head}budget: 12\n`, '/w/e.yml').budget, 12);
  // Linear over one layer group: the start is the baseline recipe (its fitness is reused), so 1 + λ is enough:
  // 2 models × 1 group × weight = 2 parameters → λ = 4 + ⌊3 ln 2⌋ = 6.
  const lin = `${head}merge_method: linear\nlayer_groups: 1\n`;
  assert.throws(() => parseEvolveYaml(`${lin}budget: 6\n`, '/w/e.yml'), /budget 6 leaves no generation: it needs at least 7 evaluations \(the baseline, and one generation of 6\)/);
  assert.equal(parseEvolveYaml(`${lin}budget: 7\n`, '/w/e.yml').budget, 7);
  const items = await fitnessItems([join(DEMO, 'eval', 'add.seed.jsonl')], 3);
  assert.equal(items.length, 3);
  assert.match(items[0]!.prompt, /^add \d+ \d+ =$/);
  assert.match(items[0]!.answer, /^ \d+$/);
});

test('evolving TIES of the ffn-* specialists improves the fitness over the default recipe, deterministically', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const yaml = `base_model: ${model('base')}\nmodels: [${['add', 'upper', 'rev', 'sort'].map((s) => model(`ffn-${s}`)).join(', ')}]\nmerge_method: ties\nlayer_groups: 1\nfitness: [${['add', 'upper', 'rev', 'sort'].map((s) => join(DEMO, 'eval', `${s}.seed.jsonl`)).join(', ')}]\nbudget: 14\npopsize: 6\nlimit: 6\nrandom_seed: 5\n`;
    const r = parseEvolveYaml(yaml, join(dir, 'evo.yml'));
    const gens: number[] = [];
    const a = await evolveMerge(r, join(dir, 'a'), { onGeneration: (g) => gens.push(g.bestSoFar) });
    assert.equal(a.generations.length, 2);
    assert.ok(a.bestFitness > a.defaultFitness, `${a.bestFitness} vs default ${a.defaultFitness}`);
    assert.ok(a.bestFitness >= a.startFitness);
    assert.equal(a.evaluations, 14); // baseline + start + 2 generations of 6
    assert.ok(gens[1]! >= gens[0]!);
    assert.deepEqual(readdirSync(join(dir, 'a')).sort(), ['best_recipe.yml', 'evolution_log.json', 'model']);
    const log = JSON.parse(readFileSync(join(dir, 'a', 'evolution_log.json'), 'utf8'));
    assert.equal(log.generations.length, 2);
    assert.equal(log.default_fitness, a.defaultFitness);
    assert.equal(log.start_fitness, a.startFitness);
    const b = await evolveMerge(r, join(dir, 'b'));
    assert.equal(b.bestFitness, a.bestFitness);
    assert.deepEqual(b.bestConfig, a.bestConfig);
  } finally {
    cleanup();
  }
});
