import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadPipelineFile } from '../../../app/pipeline/files.js';
import { runPipeline, type RunEvent } from '../../../app/pipeline/runner.js';
import { HistoryStore, SCHEMA_VERSION } from '../../../app/store/history.js';
import { DEMO, ROOT, tempDir } from '../../helpers/paths.js';

test('history: migrations, runs, nodes, logs, series; a run of a dead process is marked interrupted on open', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const db = join(dir, 'h.sqlite');
    const s = new HistoryStore(db);
    const id = s.startRun({ name: 'r', kind: 'pipeline', pipeline: { nodes: [] }, params: { a: 1 } });
    s.setNode({ runId: id, nodeId: 'n', type: 'merge', status: 'running', startedAt: 1, cacheKey: 'k' });
    s.setNode({ runId: id, nodeId: 'n', type: 'merge', status: 'succeeded', finishedAt: 2, metrics: { x: 1 }, artefact: '/tmp/x' });
    s.log(id, 'info', 'hello', 'n');
    s.addSeries(id, 'fitness', 0, 0.5);
    s.addSeries(id, 'fitness', 1, 0.7);
    s.finishRun(id, 'succeeded', { metrics: { m: 2 } });
    assert.equal(s.getRun(id)!.status, 'succeeded');
    assert.deepEqual(s.nodes(id)[0]!.metrics, { x: 1 });
    assert.equal(s.cachedNode('k')!.artefact, '/tmp/x');
    assert.deepEqual(s.series(id, 'fitness').map((x) => x.value), [0.5, 0.7]);
    assert.equal(s.logs(id)[0]!.message, 'hello');
    assert.equal(s.listRuns({ text: 'r' }).length, 1);
    s.close();
    // A child process starts a run and is killed mid-way.
    const child = spawn(process.execPath, ['--input-type=module', '-e', `
      const { HistoryStore } = await import(${JSON.stringify(join(ROOT, 'build/app/store/history.js'))});
      const s = new HistoryStore(${JSON.stringify(db)});
      const id = s.startRun({ name: 'killed', kind: 'pipeline', pipeline: {} });
      s.setNode({ runId: id, nodeId: 'a', type: 'merge', status: 'running' });
      console.log('started'); setInterval(() => {}, 1000);`]);
    await new Promise<void>((resolve) => child.stdout.on('data', () => resolve()));
    child.kill('SIGKILL');
    await new Promise((r) => child.on('exit', r));
    const s2 = new HistoryStore(db);
    const killed = s2.listRuns().find((r) => r.name === 'killed')!;
    assert.equal(killed.status, 'interrupted');
    assert.deepEqual(s2.recovered, [killed.id]);
    assert.equal(s2.nodes(killed.id)[0]!.status, 'interrupted');
    assert.equal(s2.getRun(id)!.status, 'succeeded', 'finished runs are untouched');
    s2.close();
    assert.equal(SCHEMA_VERSION, 2);
  } finally {
    cleanup();
  }
});

test('the demo pipeline runs, records everything, and reuses unchanged nodes', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const doc = await loadPipelineFile(join(DEMO, 'pipelines', 'demo.json'));
    // Keep the test short: evaluate 20 prompts per task and export into the temp folder.
    const quick = { ...doc, nodes: doc.nodes.map((n) => (n.type === 'evaluate' ? { ...n, params: { ...n.params, limit: 20 } } : n.type === 'export' ? { ...n, params: { ...n.params, path: join(dir, 'exported') } } : n)) };
    const store = new HistoryStore(join(dir, 'h.sqlite'));
    try {
      const events: RunEvent[] = [];
      const r = await runPipeline(quick, { store, onEvent: (e) => events.push(e) });
      assert.equal(r.status, 'succeeded', r.error);
      assert.ok(existsSync(join(dir, 'exported', 'config.json')));
      const moeEval = r.results['eval-moe']!.metrics!['tasks'] as Record<string, { exact_match: number }>;
      const mean = Object.values(moeEval).reduce((a, t) => a + t.exact_match, 0) / 4;
      assert.ok(mean > 0.5, `MoE mean exact match ${mean}`);
      assert.ok(events.some((e) => e.type === 'progress' && e.nodeId === 'moe'));
      const run = store.getRun(r.runId)!;
      assert.equal(run.status, 'succeeded');
      assert.ok(store.nodes(r.runId).every((n) => n.status === 'succeeded'));
      assert.equal(store.series(r.runId, 'routing_accuracy').length, 4);
      // Second run: only the export runs again.
      const r2 = await runPipeline(quick, { store });
      const statuses = store.nodes(r2.runId).map((n) => `${n.nodeId}:${n.status}`);
      assert.deepEqual(statuses.filter((s) => !s.endsWith(':cached')), ['export:succeeded']);
      // Changing one parameter recomputes that node and what depends on it, nothing else.
      const changed = { ...quick, nodes: quick.nodes.map((n) => (n.id === 'ties' ? { ...n, params: { ...n.params, density: 0.3 } } : n)) };
      const r3 = await runPipeline(changed, { store });
      const rerun = store.nodes(r3.runId).filter((n) => n.status === 'succeeded').map((n) => n.nodeId).sort();
      assert.deepEqual(rerun, ['eval-ties', 'export', 'ties']);
    } finally {
      store.close();
    }
  } finally {
    cleanup();
  }
});

test('a failing node fails the run with its reason; cancel is recorded as cancelled', async () => {
  const { dir, cleanup } = tempDir();
  const store = new HistoryStore(join(dir, 'h.sqlite'));
  try {
    const doc = { version: 2, name: 'bad', nodes: [{ id: 'a', type: 'checkpoint', position: { x: 0, y: 0 }, params: { path: join(dir, 'missing') } }], edges: [] };
    const r = await runPipeline(doc, { store });
    assert.equal(r.status, 'failed');
    assert.match(r.error!, /missing/);
    assert.equal(store.getRun(r.runId)!.status, 'failed');
    const ac = new AbortController();
    ac.abort();
    const c = await runPipeline(await loadPipelineFile(join(DEMO, 'pipelines', 'demo.json')), { store, signal: ac.signal });
    assert.equal(c.status, 'cancelled');
    assert.equal(store.getRun(c.runId)!.status, 'cancelled');
  } finally {
    store.close();
    cleanup();
  }
});

test('after a run the cache is pruned to UPCYCLE_CACHE_MAX_GB: old artefacts go, the run\'s own stay, and the log says so', async () => {
  const { dir, cleanup } = tempDir();
  const saved = { dir: process.env['UPCYCLE_CACHE_DIR'], max: process.env['UPCYCLE_CACHE_MAX_GB'] };
  process.env['UPCYCLE_CACHE_DIR'] = join(dir, 'cache');
  process.env['UPCYCLE_CACHE_MAX_GB'] = '0';
  const store = new HistoryStore(join(dir, 'h.sqlite'));
  try {
    const old = join(dir, 'cache', 'artefacts', 'old-merge');
    mkdirSync(old, { recursive: true });
    writeFileSync(join(old, 'model.safetensors'), Buffer.alloc(1024 * 1024));
    const twoDaysAgo = new Date(Date.now() - 48 * 3600_000);
    utimesSync(old, twoDaysAgo, twoDaysAgo);
    const models = join(DEMO, 'models');
    const doc = {
      version: 2, name: 'prune', edges: [
        { id: 'e1', source: 'base', sourcePort: 'model', target: 'm', targetPort: 'base' },
        { id: 'e2', source: 'add', sourcePort: 'model', target: 'm', targetPort: 'models' },
      ],
      nodes: [
        { id: 'base', type: 'checkpoint', position: { x: 0, y: 0 }, params: { path: join(models, 'base') } },
        { id: 'add', type: 'checkpoint', position: { x: 0, y: 100 }, params: { path: join(models, 'ffn-add') } },
        { id: 'm', type: 'merge', position: { x: 200, y: 0 }, params: { method: 'task_arithmetic', weight: 0.5, dtype: 'float32' } },
      ],
    };
    const r = await runPipeline(doc, { store });
    assert.equal(r.status, 'succeeded', r.error);
    assert.ok(!existsSync(old), 'the two-day-old artefact was pruned');
    assert.ok(existsSync(r.results['m']!.artefact!), 'the run\'s own artefact stays');
    assert.ok(store.logs(r.runId).some((l) => /cache: removed 1 .*UPCYCLE_CACHE_MAX_GB/.test(l.message)), 'the run log says what was pruned');
  } finally {
    store.close();
    for (const [k, v] of [['UPCYCLE_CACHE_DIR', saved.dir], ['UPCYCLE_CACHE_MAX_GB', saved.max]] as const) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    cleanup();
  }
});
