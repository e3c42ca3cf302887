/** `upcycle run PIPELINE.json [--node ID] [--db PATH]` and `upcycle demo`: run pipelines headless, recorded in the history. */
import { parseArgs } from 'node:util';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from './main.js';

export const runCommand: Command = {
  name: 'run',
  summary: 'Run a pipeline file (or one node and its inputs) headless; every run is recorded in the history database.',
  usage: 'upcycle run PIPELINE.json [--node ID] [--db PATH] [--json]',
  async run(args) {
    const { values, positionals } = parseArgs({ args, options: { node: { type: 'string' }, db: { type: 'string' }, json: { type: 'boolean' } }, allowPositionals: true });
    if (positionals.length !== 1) throw new Error('expected one PIPELINE.json');
    return runFile(positionals[0]!, { node: values.node, db: values.db, json: values.json });
  },
};

export const demoCommand: Command = {
  name: 'demo',
  summary: 'Run the bundled demo offline: an MoE of four FFN specialists with seed-calibrated routers vs the base, the specialists and a TIES merge.',
  usage: 'upcycle demo [--db PATH] [--json]',
  async run(args) {
    const { values } = parseArgs({ args, options: { db: { type: 'string' }, json: { type: 'boolean' } } });
    const file = join(fileURLToPath(new URL('../../../', import.meta.url)), 'resources', 'demo', 'pipelines', 'demo.json');
    return runFile(file, { db: values.db, json: values.json, table: true });
  },
};

async function runFile(file: string, o: { node?: string; db?: string; json?: boolean; table?: boolean }): Promise<number> {
  const { loadPipelineFile } = await import('../pipeline/files.js');
  const { runPipeline } = await import('../pipeline/runner.js');
  const { HistoryStore } = await import('../store/history.js');
  const { defaultHistoryPath } = await import('../io/data-dir.js');
  const doc = await loadPipelineFile(file);
  const store = new HistoryStore(o.db ?? defaultHistoryPath());
  const ac = new AbortController();
  const onSigint = () => ac.abort(new Error('cancelled by the user'));
  process.once('SIGINT', onSigint);
  const tty = process.stderr.isTTY;
  const t0 = performance.now();
  try {
    const r = await runPipeline(doc, {
      store,
      nodeId: o.node,
      signal: ac.signal,
      onEvent: (e) => {
        if (e.type === 'node' && e.status !== 'running') process.stderr.write(`${tty ? '\r\x1b[K' : ''}${e.status.padEnd(9)} ${e.nodeId}${e.error ? `: ${e.error}` : ''}\n`);
        else if (e.type === 'progress' && tty) process.stderr.write(`\r\x1b[K${e.nodeId}: ${e.phase} ${(100 * e.fraction).toFixed(0)}%${e.detail ? ` ${e.detail}` : ''}`.slice(0, process.stderr.columns ?? 120));
        else if (e.type === 'log' && e.level !== 'info') process.stderr.write(`${tty ? '\r\x1b[K' : ''}${e.level}: ${e.message}\n`);
      },
    });
    if (tty) process.stderr.write('\r\x1b[K');
    // With --json, stdout is the JSON document alone (machine-readable); the summary goes to stderr.
    const say = o.json ? (s: string) => process.stderr.write(`${s}\n`) : (s: string) => console.log(s);
    if (o.json) console.log(JSON.stringify({ ...r, db: store.path }, null, 2));
    else if (o.table) console.log(comparisonTable(r.results));
    say(`run #${r.runId} ${r.status} in ${((performance.now() - t0) / 1000).toFixed(1)} s — recorded in ${store.path}${r.error ? `\n${r.error}` : ''}`);
    const exp = Object.entries(r.results).find(([id]) => id === 'export');
    if (exp?.[1].artefact) say(`exported model: ${exp[1].artefact}`);
    return r.status === 'succeeded' ? 0 : 1;
  } finally {
    process.off('SIGINT', onSigint);
    store.close();
  }
}

/** Exact match per skill of every evaluate node (rows) — the demo's comparison table. */
export function comparisonTable(results: Record<string, { metrics?: Record<string, unknown> }>): string {
  const rows = Object.entries(results).filter(([id]) => id.startsWith('eval-'));
  if (rows.length === 0) return '(no evaluations in this pipeline)';
  const tasks = Object.keys((rows[0]![1].metrics?.['tasks'] ?? {}) as object);
  const head = `${'model'.padEnd(10)} ${tasks.map((t) => t.replace(/\.gen$/, '').padStart(7)).join(' ')}    mean`;
  const lines = rows.map(([id, r]) => {
    const t = (r.metrics?.['tasks'] ?? {}) as Record<string, Record<string, number>>;
    const v = tasks.map((k) => t[k]?.['exact_match'] ?? t[k]?.['acc'] ?? NaN);
    return `${id.replace(/^eval-/, '').padEnd(10)} ${v.map((x) => x.toFixed(3).padStart(7)).join(' ')}  ${(v.reduce((a, b) => a + b, 0) / v.length).toFixed(3)}`;
  });
  return ['exact match on the four skills (200 prompts each):', head, ...lines].join('\n');
}
