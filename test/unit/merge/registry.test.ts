import { test } from 'node:test';
import assert from 'node:assert/strict';
import { getMergeMethod, listMergeMethods, MERGE_METHOD_IDS, MERGE_METHODS } from '../../../app/core/merge/registry.js';
import type { MergeMethodInfo, ParamDef } from '../../../app/core/merge/types.js';

const byName = (defs: readonly ParamDef[]): Record<string, ParamDef> => Object.fromEntries(defs.map((d) => [d.name, d]));
const defaults = (defs: readonly ParamDef[]): Record<string, unknown> =>
  Object.fromEntries(defs.map((d) => [d.name, d.default]));

test('every implemented mergekit method is registered once', () => {
  assert.deepEqual([...MERGE_METHOD_IDS].sort(), [
    'breadcrumbs',
    'breadcrumbs_ties',
    'dare_linear',
    'dare_ties',
    'della',
    'della_linear',
    'karcher',
    'linear',
    'model_stock',
    'multislerp',
    'nearswap',
    'nuslerp',
    'passthrough',
    'sce',
    'slerp',
    'task_arithmetic',
    'ties',
  ]);
  for (const id of MERGE_METHOD_IDS) assert.equal(getMergeMethod(id).id, id);
  assert.throws(() => getMergeMethod('della_ties'), /unknown merge method "della_ties"/);
});

test('GTA defaults match mergekit’s registry table', () => {
  const table: Record<string, [normalize: boolean, rescale: boolean]> = {
    task_arithmetic: [false, false],
    ties: [true, false],
    dare_ties: [false, true],
    dare_linear: [false, true],
    breadcrumbs: [false, false],
    breadcrumbs_ties: [false, false],
    della: [true, true],
    della_linear: [false, true],
  };
  for (const [id, [normalize, rescale]] of Object.entries(table)) {
    const m = MERGE_METHODS[id];
    const g = defaults(m.globalParams);
    assert.equal(g.normalize, normalize, `${id} normalize`);
    assert.equal(g.rescale, rescale, `${id} rescale`);
    assert.equal(g.lambda, 1.0, `${id} lambda`);
    assert.equal(g.int8_mask, false, `${id} int8_mask`);
    assert.ok(m.requiresBase, id);
    const p = byName(m.perModelParams);
    assert.equal(p.weight.required, true, `${id} weight required`);
    assert.equal(p.weight.default, null);
    assert.equal(p.density.default, 1.0, `${id} density`);
    assert.equal(p.gamma?.default, id.startsWith('breadcrumbs') ? 0.01 : undefined, `${id} gamma`);
    assert.equal(p.epsilon?.default, id.startsWith('della') ? 0.15 : undefined, `${id} epsilon`);
    assert.equal(m.random, id.startsWith('dare') || id.startsWith('della'), `${id} random`);
  }
});

test('extension options default to mergekit’s behaviour', () => {
  for (const id of ['ties', 'dare_ties', 'breadcrumbs_ties', 'della']) {
    const g = byName(MERGE_METHODS[id].globalParams);
    assert.equal(g.consensus_method.default, 'sum');
    assert.equal(g.disjoint_mean.default, 'weighted');
    assert.ok(g.consensus_method.extension && g.disjoint_mean.extension);
  }
  for (const id of ['ties', 'dare_ties', 'dare_linear', 'breadcrumbs', 'breadcrumbs_ties', 'della', 'della_linear']) {
    const g = byName(MERGE_METHODS[id].globalParams);
    assert.equal(g.rescale_mode.default, 'l1', id);
    assert.deepEqual(g.rescale_mode.choices, ['l1', 'inverse_density']);
  }
  assert.equal(byName(MERGE_METHODS.task_arithmetic.globalParams).rescale_mode, undefined);
  assert.equal(byName(MERGE_METHODS.dare_linear.globalParams).consensus_method, undefined);
});

test('defaults of the other methods', () => {
  assert.deepEqual(defaults(MERGE_METHODS.linear.globalParams), { normalize: true });
  assert.deepEqual(defaults(MERGE_METHODS.slerp.globalParams), { t: null });
  assert.equal(byName(MERGE_METHODS.slerp.globalParams).t.required, true);
  assert.deepEqual(defaults(MERGE_METHODS.nuslerp.globalParams), { nuslerp_flatten: true, nuslerp_row_wise: false });
  assert.deepEqual(defaults(MERGE_METHODS.multislerp.globalParams), { normalize_weights: true, eps: 1e-8 });
  assert.deepEqual(defaults(MERGE_METHODS.karcher.globalParams), { max_iter: 10, tol: 1e-5 });
  assert.deepEqual(MERGE_METHODS.karcher.perModelParams, []);
  assert.deepEqual(defaults(MERGE_METHODS.model_stock.globalParams), { filter_wise: false });
  assert.deepEqual(defaults(MERGE_METHODS.sce.globalParams), { int8_mask: false, select_topk: 1.0 });
  assert.deepEqual(MERGE_METHODS.sce.perModelParams, []);
  assert.deepEqual(defaults(MERGE_METHODS.nearswap.globalParams), { t: null });
  assert.deepEqual(defaults(MERGE_METHODS.passthrough.perModelParams), { scale: null });
  for (const id of ['linear', 'nuslerp', 'multislerp']) {
    assert.equal(byName(MERGE_METHODS[id].perModelParams).weight.required, true, id);
  }
});

test('base usage and model counts', () => {
  const info = (id: string): MergeMethodInfo => MERGE_METHODS[id];
  assert.deepEqual([info('slerp').minModels, info('slerp').maxModels, info('slerp').requiresBase], [1, 1, true]);
  assert.deepEqual([info('nuslerp').minModels, info('nuslerp').maxModels, info('nuslerp').baseUsage], [2, 2, 'optional']);
  assert.equal(info('model_stock').minModels, 2);
  assert.equal(info('linear').baseUsage, 'entry');
  assert.equal(info('karcher').baseUsage, 'entry');
  assert.equal(info('multislerp').requiresBase, false);
});

test('listMergeMethods is plain, serialisable data with a paper link for every method', () => {
  const list = listMergeMethods();
  assert.equal(list.length, MERGE_METHOD_IDS.length);
  assert.deepEqual(JSON.parse(JSON.stringify(list)), list);
  for (const m of list) {
    assert.equal((m as unknown as Record<string, unknown>).merge, undefined);
    assert.match(m.paper, /^https:\/\//);
    assert.ok(m.description.length > 10 && m.label.length > 0);
    for (const p of [...m.perModelParams, ...m.globalParams]) {
      assert.ok(p.description.length > 0, `${m.id}.${p.name}`);
      if (p.type === 'enum') assert.ok(p.choices?.includes(p.default as string), `${m.id}.${p.name}`);
    }
  }
  // mutating the listing does not touch the registry
  (list[0].globalParams as ParamDef[]).length = 0;
  assert.ok(MERGE_METHODS[list[0].id].globalParams.length > 0);
});

test('parameter validation: types and enum choices', () => {
  const ties = MERGE_METHODS.ties;
  const call = (globals: Record<string, unknown>) =>
    ties.merge({
      tensorName: 'w',
      shape: [2],
      base: { tensor: Float32Array.from([0, 0]) },
      models: [{ tensor: Float32Array.from([1, 2]), params: { weight: 1 } }],
      globals: globals as never,
    });
  assert.throws(() => call({ normalize: 'yes' }), /must be a boolean/);
  assert.throws(() => call({ lambda: Number.NaN }), /must be a number/);
  assert.throws(() => call({ disjoint_mean: 'median' }), /one of weighted, count/);
  assert.throws(() => MERGE_METHODS.karcher.merge({ tensorName: 'w', shape: [1], models: [{ tensor: Float32Array.from([1]) }], globals: { max_iter: 2.5 } }), /integer/);
  assert.doesNotThrow(() => call({}));
});
