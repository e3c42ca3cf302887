import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ExpandRecipeError, parseExpandConfig, parseExpandYaml } from '../../../app/expand/config.js';

const SFT = ['models/sft-step250', 'models/sft-step500', 'models/sft-step750', 'models/sft-step1000'];

test('expansion YAML: paths relative to the file, defaults, every option', () => {
  const r = parseExpandYaml(`
base_model: models/base
models: [models/sft-step250, {model: /abs/step500, name: step500}]
num_experts: 8
`, '/proj/expand.yml');
  assert.equal(r.base, '/proj/models/base');
  assert.deepEqual(r.models, [{ label: 'models/sft-step250', path: '/proj/models/sft-step250' }, { label: 'step500', path: '/abs/step500' }]);
  assert.equal(r.numExperts, 8);
  assert.deepEqual([r.candidates, r.density, r.alpha, r.sampleSize, r.scope, r.seed, r.seedWeight, r.originals, r.rescaleMode, r.outDtype], [4, 0.9, [0, 1], 1_000_000, 'all', 0, 0, 'link', 'l1', undefined]);
  assert.deepEqual(r.seedData, []);

  const full = parseExpandConfig({
    base_model: 'b', models: SFT, num_experts: 6, candidates: 3, density: 0.5, alpha: { min: 0.2, max: 0.8 }, rescale_mode: 'inverse_density',
    sample_size: 0, similarity_scope: 'mlp', random_seed: 42, seed_data: 'eval/add.seed.jsonl', seed_weight: 0.25, dtype: 'bfloat16', originals: 'reference',
  }, '/d');
  assert.deepEqual([full.candidates, full.density, full.alpha, full.rescaleMode, full.sampleSize, full.scope, full.seed, full.seedData, full.seedWeight, full.outDtype, full.originals],
    [3, 0.5, [0.2, 0.8], 'inverse_density', 0, 'mlp', 42, ['/d/eval/add.seed.jsonl'], 0.25, 'BF16', 'reference']);
  assert.equal(parseExpandConfig({ base_model: 'b', models: SFT, num_experts: 4, seed_data: ['x.jsonl'] }, '/d').seedWeight, 0.5);
  assert.deepEqual(parseExpandConfig({ base_model: 'b', models: SFT, num_experts: 4, alpha: 0.5 }, '/d').alpha, [0.5, 0.5]);
});

test('bad expansion configs name the problem', () => {
  const bad = (over: Record<string, unknown>, re: RegExp) => assert.throws(() => parseExpandConfig({ base_model: 'b', models: SFT, num_experts: 8, ...over }, '/d', 'x.yml'), (e: unknown) => e instanceof ExpandRecipeError && re.test(e.message));
  bad({ merge_method: 'ties' }, /x\.yml: unknown key "merge_method"/);
  bad({ models: ['a'] }, /at least two/);
  bad({ num_experts: 3 }, /num_experts must be an integer ≥ the number of models \(4\)/);
  bad({ num_experts: undefined }, /num_experts is missing/);
  bad({ candidates: 0 }, /candidates must be a positive integer/);
  bad({ density: 0 }, /density must be in \(0, 1\]/);
  bad({ density: 1.5 }, /density/);
  bad({ alpha: [0.8, 0.2] }, /alpha must be \[min, max\]/);
  bad({ alpha: [0, 2] }, /alpha/);
  bad({ sample_size: -1 }, /sample_size/);
  bad({ similarity_scope: 'attn' }, /similarity_scope must be all or mlp/);
  bad({ seed: 1.5 }, /seed must be a non-negative integer/);
  bad({ seed: 1, random_seed: 2 }, /seed or random_seed/);
  bad({ seed_weight: 0.5 }, /seed_weight needs seed_data/);
  bad({ seed_data: [] }, /seed_data must be/);
  bad({ dtype: 'int8' }, /dtype "int8"/);
  bad({ originals: 'move' }, /originals must be link, copy or reference/);
  bad({ rescale_mode: 'l2' }, /rescale_mode/);
  bad({ models: [...SFT, 'b'] }, /base_model is also listed/);
  bad({ models: [...SFT, 'models/sft-step250'] }, /twice/);
  bad({ models: [{ model: 'a', weight: 1 }, 'c'] }, /models\[0\]: unknown key "weight"/);
  assert.throws(() => parseExpandYaml('models: [a', 'y.yml'), /y\.yml: not valid YAML/);
});
