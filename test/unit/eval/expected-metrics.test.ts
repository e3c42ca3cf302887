// Every model and adapter of the fixtures scores what the independent implementation measured.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { evaluateModel } from '../../../app/eval/evaluate.js';
import { DEMO } from '../../helpers/paths.js';

type Expected = Record<string, Record<string, { exact_match?: number; acc?: number; acc_norm?: number; perplexity?: number; n: number }>>;
const expected = JSON.parse(readFileSync(join(DEMO, 'expected-metrics.json'), 'utf8')) as Expected;

for (const [key, tasks] of Object.entries(expected)) {
  test(`metrics equal expected-metrics.json: ${key}`, async () => {
    const [model, adapterName] = key.split('+') as [string, string | undefined];
    const files = Object.keys(tasks).map((t) => join(DEMO, 'eval', `${t}.jsonl`));
    const r = await evaluateModel(join(DEMO, 'models', model), files, { adapter: adapterName ? join(DEMO, 'adapters', adapterName) : undefined });
    for (const [task, want] of Object.entries(tasks)) {
      const got = r.tasks[task]!;
      assert.equal(got.n, want.n, `${task} n`);
      for (const m of ['exact_match', 'acc', 'acc_norm'] as const) {
        if (want[m] === undefined) continue;
        assert.ok(Math.abs(got[m]! - want[m]!) <= 1 / want.n + 1e-9, `${key} ${task} ${m}: got ${got[m]}, expected ${want[m]} (within one item)`);
      }
      if (want.perplexity !== undefined) {
        const rel = Math.abs(got['perplexity']! - want.perplexity) / want.perplexity;
        assert.ok(rel <= 1e-4, `${key} ${task} perplexity: got ${got['perplexity']}, expected ${want.perplexity} (rel ${rel})`);
      }
    }
    if (key === 'moe-4x') {
      assert.ok(r.routing, 'an MoE reports routing');
      for (const l of r.routing.layers) {
        assert.ok(Math.abs(l.load.reduce((a, b) => a + b, 0) - 1) < 1e-9);
        assert.ok(l.entropy > 0 && l.entropy < Math.log(4));
      }
      assert.deepEqual(Object.keys(r.routing.per_task).sort(), Object.keys(tasks).sort());
    } else {
      assert.equal(r.routing, null);
    }
  });
}
