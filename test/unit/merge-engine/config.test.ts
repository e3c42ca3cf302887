import assert from 'node:assert/strict';
import { test } from 'node:test';
import { evaluateSetting, parseMergeYaml, RecipeError } from '../../../app/merge/config.js';

const Y = (s: string) => parseMergeYaml(s, '/work/recipes/r.yml');

test('a models: config becomes one full-depth slice with the base added; paths are relative to the YAML', () => {
  const r = Y(`merge_method: ties\nbase_model: ../m/base\nmodels:\n  - model: ../m/a\n    parameters: {weight: 0.5, density: [0.2, 0.8]}\n  - model: ../m/base+../a/lora\nparameters: {normalize: false, int8_mask: true}\ndtype: bfloat16\n`);
  assert.equal(r.method.id, 'ties');
  assert.equal(r.base?.path, '/work/m/base');
  assert.equal(r.slices.length, 1);
  assert.deepEqual(r.slices[0]!.sources.map((s) => s.model.label), ['../m/a', '../m/base+../a/lora', '../m/base']);
  assert.equal(r.slices[0]!.sources[1]!.model.lora, '/work/a/lora');
  assert.equal(r.outDtype, 'BF16');
  assert.deepEqual(r.models.map((m) => m.label), ['../m/base', '../m/a', '../m/base+../a/lora']);
});

test('unsupported methods, options and parameters are errors naming them', () => {
  assert.throws(() => Y('merge_method: frobnicate\nmodels: [a]'), (e: unknown) => e instanceof RecipeError && /merge_method "frobnicate" is not supported/.test(e.message));
  assert.throws(() => Y('merge_method: linear\nmodels: [{model: a, parameters: {weight: 1}}]\nfancy: 1'), /unknown key "fancy"/);
  assert.throws(() => Y('merge_method: linear\nmodels: [{model: a, parameters: {wieght: 1}}]'), /wieght is not a parameter of linear/);
  assert.throws(() => Y('merge_method: ties\nbase_model: b\nmodels: [{model: a, parameters: {normalize: true}}]'), /normalize is a global parameter/);
  assert.throws(() => Y('merge_method: ties\nmodels: [{model: a}]'), /needs a base_model/);
  assert.throws(() => Y('merge_method: linear\nmodels: [a]\ntokenizer_source: union'), /union is not supported/);
  assert.throws(() => Y('merge_method: linear\nmodules: {}'), /modules/);
  assert.throws(() => Y('merge_method: linear\nmodels: [a]\ndtype: int8'), /dtype "int8"/);
  assert.throws(() => Y('merge_method: passthrough\nslices:\n  - sources: [{model: a, layer_range: [2, 1]}]'), /layer_range/);
  assert.throws(() => Y(': : :'), /not valid YAML/);
});

test('gradients interpolate across a slice; conditionals pick the first matching filter', () => {
  assert.equal(evaluateSetting(0.3, 0.7, 'x'), 0.3);
  assert.equal(evaluateSetting([0, 1], 0.25, 'x'), 0.25);
  // [0, 0.5, 1, 0] at t = 0.5: scaled 1.5 → between v1=0.5 and v2=1 → 0.75
  assert.equal(evaluateSetting([0, 0.5, 1, 0], 0.5, 'x'), 0.75);
  assert.equal(evaluateSetting([0, 0.5, 1, 0], 1, 'x'), 0);
  assert.equal(evaluateSetting(['a', 'b'], 0.99, 'x'), 'a');
  const cond = [{ filter: 'self_attn', value: [0, 1] }, { filter: 'mlp', value: 0.9 }, { value: 0.5 }];
  assert.equal(evaluateSetting(cond, 0.5, 'model.layers.1.self_attn.q_proj.weight'), 0.5);
  assert.equal(evaluateSetting(cond, 0.5, 'model.layers.1.mlp.up_proj.weight'), 0.9);
  assert.equal(evaluateSetting(cond, 0.5, 'model.norm.weight'), 0.5);
});

test('slices: per-source parameters take precedence over slice and top-level ones', () => {
  const r = Y(`merge_method: slerp\nbase_model: a\nslices:\n  - sources:\n      - {model: a, layer_range: [0, 2]}\n      - {model: b, layer_range: [0, 2]}\n    parameters: {t: 0.3}\nparameters: {t: 0.9}\n`);
  assert.equal(r.fullDepth, false);
  assert.equal(r.slices[0]!.parameters['t'], 0.3);
  assert.throws(() => Y(`merge_method: slerp\nbase_model: a\nslices:\n  - sources:\n      - {model: a, layer_range: [0, 2]}\n      - {model: b, layer_range: [0, 3]}\n`), /same number of layers/);
});
