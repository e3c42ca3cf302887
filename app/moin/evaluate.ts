/**
 * Evaluating sequence-level experts: every item of every task is embedded by the base, routed whole
 * to one expert, and scored by that expert (base + its adapter, its merged model, or the expert model).
 *
 * Scoring reuses app/eval unchanged: the items routed to one expert are written, task by task, to
 * temporary JSONL files named like the task (so task names stay `add.gen`, …), and `evaluateModel`
 * runs once per expert over all of them (one session per expert). The per-expert metrics are then
 * combined exactly:
 * - exact_match, acc, acc_norm are means over items → weighted by item counts;
 * - perplexities come from a total log-likelihood → each part's log-likelihood is recovered from its
 *   perplexity and token count (counted here with the same tokenizer and BOS policy), summed, and
 *   the four perplexity metrics recomputed from the totals.
 * Generation budgets: evaluateModel's default (longest answer in bytes + 8, at least 16) would be
 * computed per subset; we pass the largest default of the full tasks instead. A larger budget gives
 * the same exact match: an output that has not stopped within the smaller budget is already longer
 * than its answer.
 *
 * Routing accuracy needs the expert each task belongs to: `gold` maps task names to expert names;
 * otherwise a task `add.gen` belongs to the expert named `add`, or `*-add` / `add-*`.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { CheckpointError } from '../core/errors.js';
import { evaluateModel, type EvalProgress, type TaskMetrics } from '../eval/evaluate.js';
import { loadTask, type Task } from '../eval/tasks.js';
import type { ProviderRequest } from '../runtime/ort.js';
import { TextTokenizer } from '../runtime/tokenizer.js';
import { BaseEmbedder, describeSpec } from './embedding.js';
import { embedTexts } from './fit.js';
import { baseIdentity } from './identity.js';
import { routeEmbeddings, routerFromJson, type RouteDecision, type SequenceRouter } from './router.js';
import { queryOf } from './texts.js';

export interface RouterFolder {
  router: SequenceRouter;
  /** Paths in the router are relative to this folder (absolute paths are used as they are). */
  dir: string;
}

export async function loadRouterFolder(dir: string): Promise<RouterFolder> {
  const file = join(resolve(dir), 'router.json');
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new CheckpointError('NOT_FOUND', file, `cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, 'point at a folder written by `upcycle moin build`');
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new CheckpointError('INVALID_CONFIG', file, `is not valid JSON (${(e as Error).message})`, 'rebuild the router folder');
  }
  return { router: routerFromJson(doc, file), dir: resolve(dir) };
}

export const resolveIn = (dir: string, p: string): string => (isAbsolute(p) ? p : resolve(dir, p));

/** The base folder of a router, checked against the tokenizer hash and weights fingerprint. */
export async function resolveBase(rf: RouterFolder, override?: string): Promise<string> {
  const base = override ? resolve(override) : resolveIn(rf.dir, rf.router.base.path);
  let id;
  try {
    id = await baseIdentity(base);
  } catch (e) {
    if (e instanceof CheckpointError && e.code === 'NOT_FOUND') throw new CheckpointError('NOT_FOUND', base, 'the router\'s base model is not there', 'move the base back, or pass --base PATH');
    throw e;
  }
  if (id.tokenizerSha256 !== rf.router.base.tokenizerSha256) throw new CheckpointError('INCOMPATIBLE', base, 'has a different tokenizer.json from the one the router was built with', 'use the base the router was built on');
  if (id.weightsFingerprint !== rf.router.base.weightsFingerprint) throw new CheckpointError('INCOMPATIBLE', base, 'has different weights from the base the router was built on', 'use the original base: the centroids and adapters belong to it');
  return base;
}

export interface MoinEvalOptions {
  /** task name → expert name, for routing accuracy. */
  gold?: Record<string, string>;
  /** `gold` runs every item on its task's expert (the routing-free ceiling). */
  routeBy?: 'router' | 'gold';
  /** Use the exported merged models instead of base + adapter. */
  useMerged?: boolean;
  /** Another location of the base (checked against the router's fingerprint). */
  base?: string;
  limit?: number;
  provider?: ProviderRequest;
  stop?: string[];
  maxNewTokens?: number;
  signal?: AbortSignal;
  onProgress?: (p: EvalProgress & { expert?: string }) => void;
}

export interface TaskRouting {
  /** Expert the task belongs to (null when unknown). */
  gold: string | null;
  /** Share routed to the gold expert (null when unknown). */
  accuracy: number | null;
  /** Items per routed expert. */
  counts: Record<string, number>;
}

export interface MoinEvalReport {
  router: string;
  embedding: string;
  experts: string[];
  routeBy: 'router' | 'gold';
  /** Combined metrics per task, as evaluateModel reports them. */
  tasks: Record<string, TaskMetrics>;
  routing: {
    /** Over all items of tasks with a known gold expert. */
    accuracy: number | null;
    per_task: Record<string, TaskRouting>;
    /** confusion[gold][routed] item counts, experts in router order. */
    confusion: number[][];
  };
  per_expert: Record<string, { items: number; seconds: number }>;
  notices: string[];
  seconds: number;
}

export function goldExpert(taskName: string, experts: string[], gold?: Record<string, string>): number | null {
  if (gold && gold[taskName] !== undefined) {
    const i = experts.indexOf(gold[taskName]!);
    if (i < 0) throw new Error(`gold expert "${gold[taskName]}" of task ${taskName} is not one of ${experts.join(', ')}`);
    return i;
  }
  const skill = taskName.split('.')[0]!;
  const exact = experts.indexOf(skill);
  if (exact >= 0) return exact;
  const fuzzy = experts.map((e, i) => (e.endsWith(`-${skill}`) || e.startsWith(`${skill}-`) ? i : -1)).filter((i) => i >= 0);
  return fuzzy.length === 1 ? fuzzy[0]! : null;
}

/** What the router embeds for an item of a task. */
export function itemQuery(task: Task, i: number): string {
  if (task.kind === 'generation') return task.items[i]!.prompt;
  if (task.kind === 'multiple_choice') return task.items[i]!.query;
  return task.items[i]!.text;
}

/** Routes texts with a router folder (loads the base once). */
export async function routeTexts(rf: RouterFolder, texts: string[], opts: { base?: string; provider?: ProviderRequest; signal?: AbortSignal } = {}): Promise<RouteDecision[]> {
  const base = await resolveBase(rf, opts.base);
  const emb = await BaseEmbedder.load(base, { provider: opts.provider, signal: opts.signal });
  try {
    return routeEmbeddings(rf.router, await embedTexts(emb, rf.router.spec, texts.map((t) => queryOf(t, rf.router.queryDelimiter))));
  } finally {
    await emb.release();
  }
}

export async function evaluateMoin(src: string | RouterFolder, taskPaths: string[], opts: MoinEvalOptions = {}): Promise<MoinEvalReport> {
  const t0 = performance.now();
  const rf = typeof src === 'string' ? await loadRouterFolder(src) : src;
  const { router } = rf;
  const names = router.experts.map((e) => e.name);
  const E = names.length;
  const tasks: Task[] = [];
  for (const p of taskPaths) tasks.push(await loadTask(p, opts.limit));
  if (new Set(tasks.map((t) => t.name)).size !== tasks.length) throw new Error('two tasks have the same name; rename one of the files');
  const routeBy = opts.routeBy ?? 'router';
  const golds = tasks.map((t) => goldExpert(t.name, names, opts.gold));
  if (routeBy === 'gold') {
    const missing = tasks.filter((_, i) => golds[i] === null).map((t) => t.name);
    if (missing.length) throw new Error(`routing by gold needs the expert of ${missing.join(', ')} (pass gold task=expert)`);
  }
  const base = await resolveBase(rf, opts.base);
  const notices: string[] = [];

  // 1. Route every item (one base session for all of them).
  let decisions: number[][];
  if (routeBy === 'gold') {
    decisions = tasks.map((task, ti) => task.items.map(() => golds[ti]!));
  } else {
    decisions = [];
    const emb = await BaseEmbedder.load(base, { provider: opts.provider, signal: opts.signal });
    try {
      notices.push(...emb.notices);
      for (const task of tasks) {
        opts.onProgress?.({ task: task.name, done: 0, total: task.items.length });
        const queries = task.items.map((_, i) => queryOf(itemQuery(task, i), router.queryDelimiter));
        decisions.push(routeEmbeddings(router, await embedTexts(emb, router.spec, queries)).map((d) => d.expert));
      }
    } finally {
      await emb.release();
    }
  }

  // 2. Routing statistics.
  const confusion = Array.from({ length: E }, () => new Array<number>(E).fill(0));
  const perTaskRouting: Record<string, TaskRouting> = {};
  let hit = 0;
  let known = 0;
  tasks.forEach((task, ti) => {
    const counts: Record<string, number> = {};
    for (const n of names) counts[n] = 0;
    const g = golds[ti] ?? null;
    let h = 0;
    for (const d of decisions[ti]!) {
      counts[names[d]!]!++;
      if (g !== null) {
        confusion[g]![d]!++;
        if (d === g) h++;
      }
    }
    perTaskRouting[task.name] = { gold: g === null ? null : names[g]!, accuracy: g === null ? null : h / task.items.length, counts };
    if (g !== null) {
      hit += h;
      known += task.items.length;
    }
  });

  // 3. Score each expert's share of every task with app/eval, one session per expert.
  const maxNew = opts.maxNewTokens ?? Math.max(16, ...tasks.flatMap((t) => (t.kind === 'generation' ? t.items.map((i) => Buffer.byteLength(i.answer) + 8) : [])));
  const tmp = await mkdtemp(join(tmpdir(), 'upcycle-moin-eval-'));
  const parts: Record<string, { metrics: TaskMetrics; items: number[] }[]> = {};
  const perExpert: MoinEvalReport['per_expert'] = {};
  const tok = TextTokenizer.load(base);
  try {
    for (let e = 0; e < E; e++) {
      opts.signal?.throwIfAborted();
      const ex = router.experts[e]!;
      const files: string[] = [];
      const members: number[][] = [];
      for (const [ti, task] of tasks.entries()) {
        const idx = decisions[ti]!.flatMap((d, i) => (d === e ? [i] : []));
        members.push(idx);
        if (idx.length === 0) continue;
        const f = join(tmp, String(e), `${task.name}.jsonl`);
        await writeSubset(f, task, idx);
        files.push(f);
      }
      const n = members.reduce((a, m) => a + m.length, 0);
      perExpert[ex.name] = { items: n, seconds: 0 };
      if (files.length === 0) continue;
      const t1 = performance.now();
      const useMerged = opts.useMerged && ex.merged;
      if (opts.useMerged && !ex.merged && ex.adapter) notices.push(`${ex.name} has no merged model; base + adapter was used`);
      const modelDir = useMerged ? resolveIn(rf.dir, ex.merged!) : ex.model ? resolveIn(rf.dir, ex.model) : base;
      const adapter = !useMerged && ex.adapter ? resolveIn(rf.dir, ex.adapter) : undefined;
      const r = await evaluateModel(modelDir, files, {
        adapter, provider: opts.provider, stop: opts.stop, maxNewTokens: maxNew, signal: opts.signal,
        onProgress: (p) => opts.onProgress?.({ ...p, expert: ex.name }),
      });
      for (const nt of r.notices) if (!notices.includes(nt)) notices.push(nt);
      perExpert[ex.name]!.seconds = (performance.now() - t1) / 1000;
      tasks.forEach((task, ti) => {
        if (members[ti]!.length === 0) return;
        (parts[task.name] ??= []).push({ metrics: r.tasks[task.name]!, items: members[ti]! });
      });
    }
    const combined: Record<string, TaskMetrics> = {};
    for (const task of tasks) combined[task.name] = await combine(task, parts[task.name] ?? [], tok);
    return {
      router: rf.dir,
      embedding: describeSpec(router.spec),
      experts: names,
      routeBy,
      tasks: combined,
      routing: { accuracy: known === 0 ? null : hit / known, per_task: perTaskRouting, confusion },
      per_expert: perExpert,
      notices,
      seconds: (performance.now() - t0) / 1000,
    };
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

async function writeSubset(file: string, task: Task, idx: number[]): Promise<void> {
  await mkdir(resolve(file, '..'), { recursive: true });
  const rows = idx.map((i) => JSON.stringify(task.items[i]));
  await writeFile(file, rows.join('\n') + '\n');
}

/** Combines per-expert metrics of one task (see the header). */
async function combine(task: Task, parts: { metrics: TaskMetrics; items: number[] }[], tok: TextTokenizer): Promise<TaskMetrics> {
  const n = parts.reduce((a, p) => a + p.items.length, 0);
  if (task.kind !== 'perplexity') {
    const keys = task.kind === 'generation' ? ['exact_match'] : ['acc', 'acc_norm'];
    const out: Record<string, number> = {};
    for (const k of keys) out[k] = parts.reduce((a, p) => a + p.metrics[k]! * p.items.length, 0) / n;
    return { ...out, n } as TaskMetrics;
  }
  let ll = 0;
  let tokens = 0;
  let words = 0;
  let bytes = 0;
  for (const p of parts) {
    const texts = p.items.map((i) => task.items[i]!.text);
    const ids = await tok.encodeBatch(texts, true);
    const t = ids.reduce((a, s) => a + Math.max(0, s.length - 1), 0);
    ll += -Math.log(p.metrics['perplexity']!) * t;
    tokens += t;
    words += texts.reduce((a, s) => a + s.split(/\s+/).length, 0);
    bytes += texts.reduce((a, s) => a + Buffer.byteLength(s, 'utf8'), 0);
  }
  return {
    perplexity: Math.exp(-ll / tokens),
    word_perplexity: Math.exp(-ll / words),
    byte_perplexity: Math.exp(-ll / bytes),
    bits_per_byte: -ll / bytes / Math.LN2,
    n,
  } as TaskMetrics;
}
