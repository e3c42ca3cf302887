import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import type { PipelineDoc } from '../../../app/core/pipeline/document.js';
import { runPipeline } from '../../../app/pipeline/runner.js';
import { HistoryStore } from '../../../app/store/history.js';
import { DEMO, adapter, model, tempDir } from '../../helpers/paths.js';

const SKILLS = ['add', 'upper', 'rev', 'sort'];
const n = (id: string, type: string, params: Record<string, unknown> = {}) => ({ id, type, position: { x: 0, y: 0 }, params });
const e = (s: string, sp: string, t: string, tp: string) => ({ id: `${s}.${sp}->${t}.${tp}`, source: s, sourcePort: sp, target: t, targetPort: tp });

test('sequence-router and evolve nodes run in a pipeline and record their results', async () => {
  const { dir, cleanup } = tempDir();
  const store = new HistoryStore(join(dir, 'h.sqlite'));
  try {
    const doc: PipelineDoc = {
      version: 2,
      name: 'beyond merging',
      nodes: [
        n('base', 'checkpoint', { path: model('base') }),
        ...SKILLS.flatMap((s) => [
          n(`lora-${s}`, 'adapter', { path: adapter(`lora-${s}`) }),
          n(`ffn-${s}`, 'checkpoint', { path: model(`ffn-${s}`) }),
          n(`seed-${s}`, 'dataset', { path: join(DEMO, 'eval', `${s}.seed.jsonl`) }),
          n(`gen-${s}`, 'dataset', { path: join(DEMO, 'eval', `${s}.gen.jsonl`) }),
        ]),
        n('router', 'sequence_router', { limit: 10 }),
        n('evolve', 'evolve', { method: 'ties', layer_groups: 1, budget: 12, limit: 3, seed: 2 }),
      ],
      edges: [
        e('base', 'model', 'router', 'base'),
        e('base', 'model', 'evolve', 'base'),
        ...SKILLS.flatMap((s) => [
          e(`lora-${s}`, 'adapter', 'router', 'experts'),
          e(`seed-${s}`, 'data', 'router', 'seed'),
          e(`gen-${s}`, 'data', 'router', 'tasks'),
          e(`ffn-${s}`, 'model', 'evolve', 'models'),
          e(`seed-${s}`, 'data', 'evolve', 'fitness'),
        ]),
      ],
    };
    const r = await runPipeline(doc, { store });
    assert.equal(r.status, 'succeeded', r.error);
    const m = r.results['router']!.metrics!;
    assert.ok((m['routing_accuracy'] as number) >= 0.95, `routing ${m['routing_accuracy']}`);
    const tasks = m['tasks'] as Record<string, { exact_match: number }>;
    assert.equal(tasks['rev.gen']!.exact_match, 1);
    const ev = r.results['evolve']!.metrics!;
    assert.ok((ev['best_fitness'] as number) >= (ev['default_fitness'] as number));
    assert.ok(store.series(r.runId, 'fitness').length >= 1);
  } finally {
    store.close();
    cleanup();
  }
});

test('an Expand node feeds its experts into an MoE node', async () => {
  const { dir, cleanup } = tempDir();
  const store = new HistoryStore(join(dir, 'h.sqlite'));
  try {
    const steps = [250, 500, 750, 1000];
    const doc: PipelineDoc = {
      version: 2,
      name: 'expand then MoE',
      nodes: [
        n('base', 'checkpoint', { path: model('sft-step1000') }),
        n('root', 'checkpoint', { path: model('base') }),
        ...steps.map((s) => n(`s${s}`, 'checkpoint', { path: model(`sft-step${s}`) })),
        n('expand', 'expand', { num_experts: 5, candidates: 2, density: 0.9, seed: 0 }),
        n('moe', 'moe', { gate_mode: 'random', experts_per_token: 2 }),
      ],
      edges: [
        e('root', 'model', 'expand', 'base'),
        ...steps.map((s) => e(`s${s}`, 'model', 'expand', 'models')),
        e('base', 'model', 'moe', 'base'),
        e('expand', 'experts', 'moe', 'experts'),
      ],
    };
    const r = await runPipeline(doc, { store });
    assert.equal(r.status, 'succeeded', r.error);
    assert.equal(r.results['expand']!.artefacts!.length, 5);
    assert.equal(r.results['moe']!.metrics!['experts'], 5);
    assert.equal(store.series(r.runId, 'diversity').length, 1);
  } finally {
    store.close();
    cleanup();
  }
});
