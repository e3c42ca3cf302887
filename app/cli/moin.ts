/**
 * `upcycle moin` — sequence-level "introvert" experts (MoIN): one adapter or model per data cluster
 * on a frozen base, each query routed whole to one expert.
 *
 *   upcycle moin build CONFIG.yml OUT_DIR [--overwrite] [--json]
 *   upcycle moin eval ROUTER_DIR --task FILE.jsonl [--task …] [--gold TASK=EXPERT …] [--route-by router|gold]
 *                     [--merged] [--base DIR] [--limit N] [--max-new-tokens N] [--json]
 *   upcycle moin route ROUTER_DIR TEXT [TEXT …] [--base DIR] [--json]
 *   upcycle moin compare CONFIG.yml --task FILE.jsonl [--task …] [--gold TASK=EXPERT …] [--json]
 *
 * The config format is in app/moin/config.ts; router.json is described in app/moin/README.md.
 */
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import type { Command } from './main.js';

const USAGE = [
  'upcycle moin build CONFIG.yml OUT_DIR [--overwrite] [--json]',
  '       upcycle moin eval ROUTER_DIR --task FILE.jsonl [--task …] [--gold TASK=EXPERT …] [--route-by router|gold] [--merged] [--base DIR] [--limit N] [--max-new-tokens N] [--json]',
  '       upcycle moin route ROUTER_DIR TEXT [TEXT …] [--base DIR] [--json]',
  '       upcycle moin compare CONFIG.yml --task FILE.jsonl [--task …] [--gold TASK=EXPERT …] [--json]',
].join('\n');

export const moinCommand: Command = {
  name: 'moin',
  summary: 'Sequence-level experts (MoIN): route each query whole to one adapter/model by nearest centroid of base-model embeddings (seed data or k-means); build, evaluate, route, compare embeddings.',
  usage: USAGE,
  async run(args) {
    const [sub, ...rest] = args;
    if (sub === 'build') return build(rest);
    if (sub === 'eval') return evaluate(rest);
    if (sub === 'route') return route(rest);
    if (sub === 'compare') return compare(rest);
    throw new Error(`expected a subcommand: build, eval, route or compare${sub ? ` (got "${sub}")` : ''}`);
  },
};

async function readConfig(path: string) {
  const { parseMoinYaml } = await import('../moin/config.js');
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new Error(`${path}: cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  return parseMoinYaml(text, path);
}

function withSigint<T>(fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const ac = new AbortController();
  const onSigint = () => ac.abort(new Error('cancelled by the user'));
  process.once('SIGINT', onSigint);
  return fn(ac.signal).finally(() => process.off('SIGINT', onSigint));
}

function positiveInt(s: string, flag: string): number {
  const n = Number(s);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`${flag} must be a positive integer, got "${s}"`);
  return n;
}

function goldMap(list: string[] | undefined): Record<string, string> | undefined {
  if (!list?.length) return undefined;
  const out: Record<string, string> = {};
  for (const g of list) {
    const at = g.lastIndexOf('=');
    if (at <= 0 || at === g.length - 1) throw new Error(`--gold must be TASK=EXPERT (e.g. add.gen=lora-add), got "${g}"`);
    out[g.slice(0, at)] = g.slice(at + 1);
  }
  return out;
}

const f3 = (x: number | null | undefined) => (x === null || x === undefined ? '—' : x.toFixed(3));

async function build(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, options: { overwrite: { type: 'boolean' }, json: { type: 'boolean' } }, allowPositionals: true });
  if (positionals.length !== 2) throw new Error('expected CONFIG.yml and OUT_DIR');
  const recipe = await readConfig(positionals[0]!);
  const { buildMoin } = await import('../moin/build.js');
  const tty = process.stderr.isTTY;
  const r = await withSigint((signal) => buildMoin(recipe, positionals[1]!, {
    overwrite: values.overwrite, signal,
    onProgress: (p) => {
      if (tty) process.stderr.write(`\r\x1b[K${p.phase}${p.detail ? ` ${p.detail}` : ''}`);
    },
  }));
  if (tty) process.stderr.write('\r\x1b[K');
  for (const n of r.notices) process.stderr.write(`note: ${n}\n`);
  if (values.json) {
    console.log(JSON.stringify(r, null, 2));
    return 0;
  }
  const lines = [
    `built sequence-level experts in ${r.out} (${r.seconds.toFixed(1)} s)`,
    `  router: ${r.method === 'kmeans' ? `k-means, ${r.centroids} clusters` : `${r.centroids} seed centroids`}; embedding ${r.embedding}`,
  ];
  if (r.seedRoutingAccuracy !== null) lines.push(`  seed texts routed back to their own expert: ${(100 * r.seedRoutingAccuracy).toFixed(1)}%`);
  for (const e of r.experts) lines.push(`  expert ${e.name}: ${e.adapter ? `adapter ${e.adapter}` : `model ${e.model}`}${e.merged ? `, merged ${e.merged}` : ''}`);
  if (r.clusters) {
    lines.push('  clusters → experts:');
    for (const c of r.clusters) {
      lines.push(`    cluster ${c.cluster} (${c.size} texts) → ${r.experts[c.expert]!.name}  [${c.method}: ${c.scores.map((s) => s.toFixed(3)).join(' / ')}]${c.purity === undefined ? '' : `  purity ${c.purity.toFixed(3)}`}  e.g. ${c.examples.map((x) => JSON.stringify(x)).join(', ')}`);
    }
  }
  console.log(lines.join('\n'));
  return 0;
}

async function evaluate(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: {
      task: { type: 'string', multiple: true }, gold: { type: 'string', multiple: true }, 'route-by': { type: 'string' }, merged: { type: 'boolean' },
      base: { type: 'string' }, limit: { type: 'string' }, 'max-new-tokens': { type: 'string' }, json: { type: 'boolean' },
    },
    allowPositionals: true,
  });
  if (positionals.length !== 1) throw new Error('expected one ROUTER_DIR');
  if (!values.task?.length) throw new Error('give at least one --task FILE.jsonl');
  const routeBy = values['route-by'] ?? 'router';
  if (routeBy !== 'router' && routeBy !== 'gold') throw new Error('--route-by must be router or gold');
  const { evaluateMoin } = await import('../moin/evaluate.js');
  const tty = process.stderr.isTTY;
  const r = await withSigint((signal) => evaluateMoin(positionals[0]!, values.task!, {
    gold: goldMap(values.gold), routeBy, useMerged: values.merged, base: values.base, signal,
    limit: values.limit !== undefined ? positiveInt(values.limit, '--limit') : undefined,
    maxNewTokens: values['max-new-tokens'] !== undefined ? positiveInt(values['max-new-tokens'], '--max-new-tokens') : undefined,
    onProgress: (p) => {
      if (tty) process.stderr.write(`\r\x1b[K${p.expert ? `${p.expert}: ` : 'routing '}${p.task} ${p.done}/${p.total}`);
    },
  }));
  if (tty) process.stderr.write('\r\x1b[K');
  for (const n of r.notices) process.stderr.write(`note: ${n}\n`);
  if (values.json) {
    console.log(JSON.stringify(r, null, 2));
    return 0;
  }
  const w = Math.max(4, ...Object.keys(r.tasks).map((k) => k.length));
  const lines = [`${r.router}  (${r.routeBy === 'gold' ? 'routed by gold labels' : `embedding ${r.embedding}`}, ${r.seconds.toFixed(1)} s)`];
  lines.push(`  ${'task'.padEnd(w)}  ${'expert'.padEnd(12)} routing  metrics`);
  for (const [name, m] of Object.entries(r.tasks)) {
    const rt = r.routing.per_task[name]!;
    const metrics = Object.entries(m).filter(([k]) => k !== 'n').map(([k, v]) => `${k} ${f3(v)}`).join('  ');
    lines.push(`  ${name.padEnd(w)}  ${(rt.gold ?? '?').padEnd(12)} ${f3(rt.accuracy).padStart(7)}  ${metrics}  (n=${m.n})`);
  }
  lines.push(`  routing accuracy: ${f3(r.routing.accuracy)}`);
  lines.push(`  confusion (rows: expected expert, columns: routed to ${r.experts.join(', ')}):`);
  r.routing.confusion.forEach((row, i) => {
    if (row.some((x) => x > 0)) lines.push(`    ${r.experts[i]!.padEnd(12)} ${row.map((x) => String(x).padStart(5)).join(' ')}`);
  });
  console.log(lines.join('\n'));
  return 0;
}

async function route(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, options: { base: { type: 'string' }, json: { type: 'boolean' } }, allowPositionals: true });
  if (positionals.length < 2) throw new Error('expected ROUTER_DIR and at least one TEXT');
  const { loadRouterFolder, routeTexts } = await import('../moin/evaluate.js');
  const rf = await loadRouterFolder(positionals[0]!);
  const texts = positionals.slice(1);
  const ds = await routeTexts(rf, texts, { base: values.base });
  const names = rf.router.experts.map((e) => e.name);
  if (values.json) {
    console.log(JSON.stringify(ds.map((d, i) => ({ text: texts[i], expert: names[d.expert], centroid: d.centroid, scores: Object.fromEntries(names.map((n, e) => [n, d.scores[e]])) })), null, 2));
    return 0;
  }
  ds.forEach((d, i) => console.log(`${JSON.stringify(texts[i])} → ${names[d.expert]}  (${names.map((n, e) => `${n} ${f3(d.scores[e])}`).join(', ')})`));
  return 0;
}

async function compare(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, options: { task: { type: 'string', multiple: true }, gold: { type: 'string', multiple: true }, json: { type: 'boolean' } }, allowPositionals: true });
  if (positionals.length !== 1) throw new Error('expected one CONFIG.yml');
  if (!values.task?.length) throw new Error('give at least one --task FILE.jsonl (held-out queries, labelled by their task)');
  const recipe = await readConfig(positionals[0]!);
  const { BaseEmbedder } = await import('../moin/embedding.js');
  const { compareEmbeddings, comparisonMarkdown, COMPARISON_SPECS, pickBest } = await import('../moin/compare.js');
  const { expertSeedTexts } = await import('../moin/fit.js');
  const { goldExpert, itemQuery } = await import('../moin/evaluate.js');
  const { loadTask } = await import('../eval/tasks.js');
  const { queryOf } = await import('../moin/texts.js');
  const names = recipe.experts.map((e) => e.name);
  const train = [];
  for (const e of recipe.experts) train.push(await expertSeedTexts(e, recipe.queryDelimiter));
  const heldOut = [];
  const gold = goldMap(values.gold);
  for (const p of values.task) {
    const t = await loadTask(p);
    const g = goldExpert(t.name, names, gold);
    if (g === null) throw new Error(`task ${t.name}: which expert does it belong to? pass --gold ${t.name}=EXPERT`);
    heldOut.push({ name: t.name, expert: g, queries: t.items.map((_, i) => queryOf(itemQuery(t, i), recipe.queryDelimiter)) });
  }
  const emb = await BaseEmbedder.load(recipe.base);
  try {
    const rows = await compareEmbeddings(emb, { expertNames: names, train, heldOut }, [{ spec: recipe.embedding, note: 'this config' }, ...COMPARISON_SPECS]);
    if (values.json) console.log(JSON.stringify(rows.map((r) => ({ ...r, spec: undefined })), null, 2));
    else console.log(`${comparisonMarkdown(rows)}\n\nbest: ${pickBest(rows).description}`);
  } finally {
    await emb.release();
  }
  return 0;
}
