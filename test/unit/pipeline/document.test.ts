import assert from 'node:assert/strict';
import { test } from 'node:test';
import { applyChange, History, type Change } from '../../../app/core/pipeline/changes.js';
import { migratePipeline, PipelineFormatError, topoOrder, type PipelineDoc } from '../../../app/core/pipeline/document.js';
import { edgeProblem, missingInputs } from '../../../app/core/pipeline/node-types.js';

const doc = (): PipelineDoc => ({
  version: 2,
  name: 'p',
  nodes: [
    { id: 'a', type: 'checkpoint', position: { x: 0, y: 0 }, params: { path: '/m/a' } },
    { id: 'b', type: 'checkpoint', position: { x: 0, y: 100 }, params: { path: '/m/b' } },
    { id: 'm', type: 'merge', position: { x: 200, y: 0 }, params: { method: 'ties' } },
    { id: 'd', type: 'dataset', position: { x: 0, y: 200 }, params: { path: '/d.jsonl' } },
    { id: 'e', type: 'evaluate', position: { x: 400, y: 0 }, params: {} },
  ],
  edges: [{ id: 'e1', source: 'a', sourcePort: 'model', target: 'm', targetPort: 'base' }],
});

test('edits are pure and their inverses undo them exactly', () => {
  const d0 = doc();
  const changes: Change[] = [
    { type: 'addNode', node: { id: 'x', type: 'adapter', position: { x: 1, y: 2 }, params: {} } },
    { type: 'moveNode', id: 'a', position: { x: 50, y: 60 } },
    { type: 'setParam', id: 'm', key: 'density', value: 0.3 },
    { type: 'setParam', id: 'm', key: 'method', value: undefined },
    { type: 'connect', edge: { id: 'e2', source: 'b', sourcePort: 'model', target: 'm', targetPort: 'models' } },
    { type: 'removeNode', id: 'a' },
    { type: 'rename', name: 'q' },
  ];
  let d = d0;
  const inverses: Change[] = [];
  for (const c of changes) {
    const before = JSON.stringify(d);
    const r = applyChange(d, c);
    assert.equal(JSON.stringify(d), before, 'the input document is not mutated');
    inverses.unshift(r.inverse);
    d = r.doc;
  }
  assert.equal(d.edges.length, 1, 'removing a node removed its edge');
  for (const inv of inverses) d = applyChange(d, inv).doc;
  assert.deepEqual(d, d0);
});

test('undo/redo history', () => {
  const h = new History(doc());
  h.apply({ type: 'setParam', id: 'm', key: 'method', value: 'linear' });
  h.apply({ type: 'removeNode', id: 'b' });
  assert.equal(h.doc.nodes.length, 4);
  h.undo();
  assert.equal(h.doc.nodes.length, 5);
  h.undo();
  assert.equal(h.doc.nodes.find((n) => n.id === 'm')!.params['method'], 'ties');
  assert.equal(h.canUndo, false);
  h.redo();
  h.redo();
  assert.equal(h.doc.nodes.length, 4);
  assert.equal(h.canRedo, false);
});

test('edges are validated with a reason: port types, single inputs, cycles', () => {
  const d = doc();
  assert.equal(edgeProblem(d, { source: 'b', sourcePort: 'model', target: 'm', targetPort: 'models' }), null);
  assert.match(edgeProblem(d, { source: 'd', sourcePort: 'data', target: 'm', targetPort: 'models' })!, /takes model, not dataset/);
  assert.match(edgeProblem(d, { source: 'b', sourcePort: 'model', target: 'm', targetPort: 'base' })!, /already has an input/);
  const d2 = applyChange(d, { type: 'connect', edge: { id: 'e3', source: 'm', sourcePort: 'model', target: 'e', targetPort: 'model' } }).doc;
  const d3 = { ...d2, nodes: [...d2.nodes, { id: 'm2', type: 'merge', position: { x: 0, y: 0 }, params: {} }], edges: [...d2.edges, { id: 'e4', source: 'm', sourcePort: 'model', target: 'm2', targetPort: 'models' }] };
  assert.match(edgeProblem(d3, { source: 'm2', sourcePort: 'model', target: 'm', targetPort: 'models' })!, /cycle/);
  assert.deepEqual(missingInputs(d, 'm'), ['models']);
  assert.deepEqual(missingInputs(d, 'e'), ['model', 'tasks']);
  assert.deepEqual(topoOrder(d2).map((n) => n.id).indexOf('a') < topoOrder(d2).map((n) => n.id).indexOf('m'), true);
});

test('old pipeline files migrate; malformed ones are refused with a reason', () => {
  const v1 = { name: 'old', nodes: [{ id: 'a', type: 'checkpoint', data: { path: 'x' } }, { id: 'm', type: 'merge', position: { x: 1, y: 1 }, data: {} }], links: [{ from: 'a.model', to: 'm.models' }] };
  const d = migratePipeline(v1);
  assert.equal(d.version, 2);
  assert.deepEqual(d.nodes[0]!.params, { path: 'x' });
  assert.deepEqual(d.edges[0], { id: 'e0', source: 'a', sourcePort: 'model', target: 'm', targetPort: 'models' });
  assert.throws(() => migratePipeline({ version: 99, nodes: [], edges: [] }), /newer than this build/);
  assert.throws(() => migratePipeline({ version: 2, nodes: [{ id: 'a', type: 't', position: { x: 0, y: 0 }, params: {} }, { id: 'a', type: 't', position: { x: 0, y: 0 }, params: {} }], edges: [] }), (e: unknown) => e instanceof PipelineFormatError && /twice/.test(e.message));
  assert.throws(() => migratePipeline({ version: 2, nodes: [], edges: [{ id: 'x', source: 'a', sourcePort: 'o', target: 'b', targetPort: 'i' }] }), /does not exist/);
});
