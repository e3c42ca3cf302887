/**
 * Runs a pipeline document (the whole graph, or one node with what it depends on). Nodes run in
 * dependency order; each node's result is cached under a hash of its type, parameters and inputs
 * (source files by path, size and modification time), so unchanged nodes are not recomputed. Every
 * run, node, log line and metric is recorded in the history store as it happens.
 */
import { createHash } from 'node:crypto';
import { cp, mkdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { missingInputs, NODE_TYPES, paramDefaults } from '../core/pipeline/node-types.js';
import { topoOrder, upstream, type PipelineDoc, type PipelineNode } from '../core/pipeline/document.js';
import { evaluateModel, type EvalReport } from '../eval/evaluate.js';
import { cacheDir } from '../io/cache-dir.js';
import { cacheBudget, cacheSize, pinPaths, pruneCache, touchCacheEntry, unpin } from '../io/cache-prune.js';
import { Checkpoint } from '../io/checkpoint.js';
import { parseMergeConfig } from '../merge/config.js';
import { runMerge } from '../merge/execute.js';
import { buildMoe } from '../moe/assemble.js';
import { parseMoeConfig } from '../moe/config.js';
import { exportOnnx } from '../runtime/export-onnx.js';
import type { HistoryStore } from '../store/history.js';

export interface NodeResult {
  /** A folder or file the node produced (models, datasets) — what downstream nodes read. */
  artefact?: string;
  /** Several models from one node (expansion): downstream multi-inputs receive each of them. */
  artefacts?: string[];
  kind?: 'model' | 'adapter' | 'dataset' | 'report';
  metrics?: Record<string, unknown>;
  cached?: boolean;
}

export type RunEvent =
  | { type: 'run'; runId: number; status: 'running' | 'succeeded' | 'failed' | 'cancelled'; error?: string }
  | { type: 'node'; runId: number; nodeId: string; status: 'running' | 'succeeded' | 'failed' | 'cancelled' | 'cached' | 'skipped'; metrics?: Record<string, unknown>; error?: string }
  | { type: 'progress'; runId: number; nodeId: string; phase: string; fraction: number; etaSeconds?: number | null; detail?: string }
  | { type: 'log'; runId: number; nodeId?: string; level: 'info' | 'warn' | 'error'; message: string };

export interface RunOptions {
  store: HistoryStore;
  /** Run only this node and its upstream. */
  nodeId?: string;
  signal?: AbortSignal;
  onEvent?: (e: RunEvent) => void;
  name?: string;
}

export interface RunSummary {
  runId: number;
  status: 'succeeded' | 'failed' | 'cancelled';
  results: Record<string, NodeResult>;
  error?: string;
}

export async function runPipeline(doc: PipelineDoc, opts: RunOptions): Promise<RunSummary> {
  const { store } = opts;
  const emit = (e: RunEvent) => opts.onEvent?.(e);
  const order = topoOrder(doc);
  const wanted = opts.nodeId ? upstream(doc, opts.nodeId) : undefined;
  const nodes = order.filter((n) => !wanted || wanted.has(n.id));
  const inputs = doc.nodes.filter((n) => ['checkpoint', 'adapter', 'dataset'].includes(n.type)).map((n) => ({ path: String(n.params['path'] ?? '') }));
  const runId = store.startRun({ name: opts.name ?? doc.name, kind: opts.nodeId ? `node:${opts.nodeId}` : 'pipeline', pipeline: doc, inputs, params: { nodes: nodes.length } });
  emit({ type: 'run', runId, status: 'running' });
  const results: Record<string, NodeResult> = {};
  const keys: Record<string, string> = {};
  const log = (level: 'info' | 'warn' | 'error', message: string, nodeId?: string) => {
    store.log(runId, level, message, nodeId);
    emit({ type: 'log', runId, nodeId, level, message });
  };
  for (const n of nodes) store.setNode({ runId, nodeId: n.id, type: n.type, status: 'pending' });
  // Pins: what this run reads and writes, so that pruning (in this or another process) keeps it meanwhile.
  const sources = nodes.map((n) => n.params['path']).filter((p): p is string => typeof p === 'string');
  const inUse = () => [...sources, ...Object.values(keys).map((k) => cacheDir('artefacts', k)), ...Object.values(results).flatMap((r) => [r.artefact ?? '', ...(r.artefacts ?? [])]).filter(Boolean)];
  const pin = () => pinPaths(String(runId), inUse()).catch(() => undefined);
  try {
    for (const node of nodes) {
      opts.signal?.throwIfAborted();
      const missing = missingInputs(doc, node.id);
      if (missing.length) throw new Error(`${label(node)} needs its ${missing.join(', ')} input connected`);
      const ins = doc.edges.filter((e) => e.target === node.id);
      const key = await cacheKey(node, ins.map((e) => `${e.targetPort}<-${keys[e.source] ?? e.source}`));
      keys[node.id] = key;
      await pin();
      const started = Date.now();
      store.setNode({ runId, nodeId: node.id, type: node.type, status: 'running', startedAt: started, cacheKey: key });
      emit({ type: 'node', runId, nodeId: node.id, status: 'running' });
      const hit = store.cachedNode(key);
      if (hit?.artefact && (await exists(hit.artefact)) && node.type !== 'export') {
        results[node.id] = { artefact: hit.artefact, metrics: hit.metrics, kind: kindOf(node), cached: true, ...(Array.isArray(hit.metrics['expert_paths']) ? { artefacts: hit.metrics['expert_paths'] as string[] } : {}) };
        store.setNode({ runId, nodeId: node.id, type: node.type, status: 'cached', finishedAt: Date.now(), metrics: hit.metrics, artefact: hit.artefact, cacheKey: key });
        emit({ type: 'node', runId, nodeId: node.id, status: 'cached', metrics: hit.metrics });
        log('info', `${label(node)}: unchanged, reused ${hit.artefact}`, node.id);
        await touchCacheEntry(cacheDir('artefacts', key)); // recently used: last in line for pruning
        continue;
      }
      const inputOf = (port: string) => ins.filter((e) => e.targetPort === port).map((e) => ({ node: doc.nodes.find((x) => x.id === e.source)!, result: results[e.source]! }));
      try {
        const r = await runNode(node, inputOf, key, {
          signal: opts.signal,
          progress: (phase, fraction, detail, etaSeconds) => emit({ type: 'progress', runId, nodeId: node.id, phase, fraction, detail, etaSeconds }),
          log: (level, message) => log(level, message, node.id),
          series: (name, step, value) => store.addSeries(runId, name, step, value, node.id),
        });
        results[node.id] = r;
        store.setNode({ runId, nodeId: node.id, type: node.type, status: 'succeeded', finishedAt: Date.now(), metrics: r.metrics ?? {}, artefact: r.artefact, cacheKey: key });
        emit({ type: 'node', runId, nodeId: node.id, status: 'succeeded', metrics: r.metrics });
        log('info', `${label(node)}: done in ${((Date.now() - started) / 1000).toFixed(1)} s`, node.id);
      } catch (e) {
        const msg = e instanceof Error ? e.message : String(e);
        store.setNode({ runId, nodeId: node.id, type: node.type, status: opts.signal?.aborted ? 'cancelled' : 'failed', finishedAt: Date.now() });
        emit({ type: 'node', runId, nodeId: node.id, status: opts.signal?.aborted ? 'cancelled' : 'failed', error: msg });
        throw e;
      }
    }
    const metrics: Record<string, unknown> = {};
    for (const [id, r] of Object.entries(results)) if (r.metrics && Object.keys(r.metrics).length) metrics[id] = r.metrics;
    const artefacts = Object.fromEntries(Object.entries(results).filter(([, r]) => r.artefact).map(([id, r]) => [id, r.artefact!]));
    await pruneAfterRun(inUse(), log);
    await unpin(String(runId));
    store.finishRun(runId, 'succeeded', { metrics, artefacts });
    emit({ type: 'run', runId, status: 'succeeded' });
    return { runId, status: 'succeeded', results };
  } catch (e) {
    const cancelled = !!opts.signal?.aborted;
    const msg = cancelled ? 'cancelled' : e instanceof Error ? e.message : String(e);
    log(cancelled ? 'warn' : 'error', msg);
    await pruneAfterRun(inUse(), log);
    await unpin(String(runId));
    store.finishRun(runId, cancelled ? 'cancelled' : 'failed', { error: msg });
    emit({ type: 'run', runId, status: cancelled ? 'cancelled' : 'failed', error: msg });
    return { runId, status: cancelled ? 'cancelled' : 'failed', results, error: msg };
  }
}

/**
 * Keeps the cache within its budget (UPCYCLE_CACHE_MAX_GB, default 40 GiB) after a run: every changed
 * parameter writes a new artefact, so without this an afternoon of merging 7B models fills the disk.
 * What this run used is kept (so are other runs' pins); a failure to prune never fails the run.
 */
async function pruneAfterRun(used: string[], log: (level: 'info' | 'warn', message: string) => void): Promise<void> {
  try {
    const budget = cacheBudget();
    const r = await pruneCache({ maxBytes: budget, keep: new Set(used) });
    if (r.removed.length) {
      log('info', `cache: removed ${r.removed.length} least recently used or stale entr${r.removed.length === 1 ? 'y' : 'ies'} (${cacheSize(r.freedBytes)}) to stay within ${cacheSize(budget)} (UPCYCLE_CACHE_MAX_GB); ${cacheSize(r.remainingBytes)} remain`);
    }
  } catch (e) {
    log('warn', `cache: could not prune ${cacheDir()}: ${e instanceof Error ? e.message : String(e)}`);
  }
}

function label(n: PipelineNode): string {
  return n.label ?? `${NODE_TYPES[n.type]?.label ?? n.type} ${n.id}`;
}

function kindOf(n: PipelineNode): NodeResult['kind'] {
  return n.type === 'adapter' ? 'adapter' : n.type === 'dataset' ? 'dataset' : n.type === 'evaluate' ? 'report' : 'model';
}

async function exists(p: string): Promise<boolean> {
  return stat(p).then(() => true, () => false);
}

/** Hash of what determines a node's output. Source nodes include their file's size and mtime. */
async function cacheKey(node: PipelineNode, inputKeys: string[]): Promise<string> {
  const h = createHash('sha256').update(JSON.stringify({ v: 1, type: node.type, params: { ...paramDefaults(node.type), ...node.params }, inputs: inputKeys }));
  if (typeof node.params['path'] === 'string' && ['checkpoint', 'adapter', 'dataset'].includes(node.type)) {
    const s = await stat(node.params['path']).catch(() => undefined);
    h.update(`${s?.size}:${s?.mtimeMs}`);
  }
  return h.digest('hex').slice(0, 32);
}

interface NodeContext {
  signal?: AbortSignal;
  progress: (phase: string, fraction: number, detail?: string, etaSeconds?: number | null) => void;
  log: (level: 'info' | 'warn' | 'error', message: string) => void;
  series: (name: string, step: number, value: unknown) => void;
}

type InputOf = (port: string) => { node: PipelineNode; result: NodeResult }[];

async function runNode(node: PipelineNode, inputOf: InputOf, key: string, ctx: NodeContext): Promise<NodeResult> {
  const p = { ...paramDefaults(node.type), ...node.params };
  const out = cacheDir('artefacts', key);
  switch (node.type) {
    case 'checkpoint':
    case 'adapter': {
      const path = String(p['path'] ?? '');
      const ck = await Checkpoint.open(path);
      try {
        if (node.type === 'checkpoint' && ck.kind !== 'model') throw new Error(`${path} is a ${ck.kind}, not a model folder`);
        if (node.type === 'adapter' && ck.kind !== 'adapter') throw new Error(`${path} is not a PEFT adapter folder`);
        for (const pr of ck.problems) ctx.log(pr.severity === 'error' ? 'error' : 'warn', `${basename(path)}: ${pr.message}`);
        return { artefact: ck.path, kind: node.type === 'adapter' ? 'adapter' : 'model', metrics: { parameters: ck.numParameters, family: ck.config?.family ?? null } };
      } finally {
        await ck.close();
      }
    }
    case 'dataset': {
      const path = String(p['path'] ?? '');
      if (!(await exists(path))) throw new Error(`${path} does not exist`);
      return { artefact: path, kind: 'dataset' };
    }
    case 'merge': {
      const base = inputOf('base')[0]?.result.artefact;
      const models = inputOf('models').map((x) => x.result.artefact!);
      const perModel: Record<string, unknown> = { weight: p['weight'] };
      if (/ties|dare|della|breadcrumbs/.test(String(p['method']))) perModel['density'] = p['density'];
      const doc = {
        merge_method: p['method'],
        ...(base ? { base_model: base } : {}),
        models: models.map((m) => ({ model: m, parameters: perModel })),
        parameters: (p['parameters'] as Record<string, unknown>) ?? {},
        dtype: p['dtype'],
      };
      await rm(out, { recursive: true, force: true });
      const r = await runMerge(parseMergeConfig(doc, '/'), out, {
        seed: Number(p['seed'] ?? 0),
        signal: ctx.signal,
        onProgress: (e) => ctx.progress(e.phase, e.bytesTotal ? e.bytesDone / e.bytesTotal : 0, e.current, e.etaSeconds),
      });
      for (const n of r.notices) ctx.log('warn', n);
      return { artefact: r.out, kind: 'model', metrics: { tensors: r.tensors, bytes: r.bytesWritten, seconds: r.seconds } };
    }
    case 'moe': {
      const base = inputOf('base')[0]!.result.artefact!;
      // An Expand node feeding `experts` contributes each of its experts.
      const experts = inputOf('experts').flatMap((x) => (x.result.artefacts ?? [x.result.artefact!]).map((a) => ({ node: x.node, result: { ...x.result, artefact: a } })));
      const seeds = inputOf('seed').map((x) => x.result.artefact!);
      const prompts = (p['prompts'] as string[][] | undefined) ?? [];
      const doc: Record<string, unknown> = {
        base_model: base,
        gate_mode: p['gate_mode'],
        experts_per_token: p['experts_per_token'],
        dtype: p['dtype'],
        random_seed: p['seed'],
        non_expert_weights: p['non_expert_weights'],
        ...(p['architecture'] && p['architecture'] !== 'auto' ? { architecture: p['architecture'] } : {}),
        ...(p['shared_expert'] ? { shared_expert: true } : {}),
        experts: experts.map((x, i) => ({
          ...(x.result.kind === 'adapter' ? { source_adapter: x.result.artefact } : { source_model: x.result.artefact }),
          name: x.result.artefacts ? basename(x.result.artefact!) : (x.node.label ?? basename(x.result.artefact!)),
          ...(seeds[i] ? { seed_data: seeds[i] } : {}),
          ...(prompts[i]?.length ? { positive_prompts: prompts[i] } : {}),
        })),
      };
      await rm(out, { recursive: true, force: true });
      const r = await buildMoe(parseMoeConfig(doc, '/'), out, { signal: ctx.signal, onWarning: (m) => ctx.log('warn', m), onProgress: (e) => ctx.progress(e.phase, e.total ? e.done / e.total : 0, e.detail) });
      for (const n of r.notices) if (n !== r.drift.warning) ctx.log('warn', n);
      r.routingAccuracy?.forEach((a, l) => ctx.series('routing_accuracy', l, a));
      return { artefact: r.out, kind: 'model', metrics: { architecture: r.architecture.arch, experts: r.numExperts, top_k: r.topK, routing_accuracy: r.routingAccuracy, seed_agreement: r.seedAgreement } };
    }
    case 'expand': {
      const { parseExpandConfig } = await import('../expand/config.js');
      const { runExpansion } = await import('../expand/run.js');
      const seeds = inputOf('seed').map((x) => x.result.artefact!);
      const recipe = parseExpandConfig({
        base_model: inputOf('base')[0]!.result.artefact!,
        models: inputOf('models').map((x) => x.result.artefact!),
        num_experts: p['num_experts'],
        candidates: p['candidates'],
        density: p['density'],
        seed: p['seed'],
        ...(seeds.length ? { seed_data: seeds } : {}),
      }, '/');
      await rm(out, { recursive: true, force: true });
      const r = await runExpansion(recipe, out, { signal: ctx.signal, onProgress: (e) => ctx.progress(e.phase, e.fraction ?? 0, e.detail) });
      r.log.generations.forEach((g, i) => ctx.series('diversity', i + 1, { before: g.diversity_before, after: g.diversity, kept: g.kept.name, alpha: g.kept.alpha, parents: g.parents.names }));
      return { artefact: r.out, artefacts: r.experts, kind: 'model', metrics: { experts: r.experts.length, expert_paths: r.experts, seconds: r.seconds } };
    }
    case 'sequence_router': {
      const { parseMoinConfig } = await import('../moin/config.js');
      const { buildMoin } = await import('../moin/build.js');
      const { evaluateMoin } = await import('../moin/evaluate.js');
      const { taskName } = await import('../eval/tasks.js');
      const experts = inputOf('experts');
      const seeds = inputOf('seed').map((x) => x.result.artefact!);
      if (seeds.length !== experts.length) throw new Error(`connect one seed dataset per expert, in the experts' order (${experts.length} experts, ${seeds.length} seed sets)`);
      const names = experts.map((x) => x.node.label ?? basename(x.result.artefact!));
      const recipe = parseMoinConfig({
        base_model: inputOf('base')[0]!.result.artefact!,
        routing: 'sequence',
        query_delimiter: p['query_delimiter'] || null,
        experts: experts.map((x, i) => ({ name: names[i], ...(x.result.kind === 'adapter' ? { source_adapter: x.result.artefact } : { source_model: x.result.artefact }), seed_data: seeds[i] })),
      }, '/');
      await rm(out, { recursive: true, force: true });
      const built = await buildMoin(recipe, out, { signal: ctx.signal, onProgress: (e) => ctx.progress(e.phase, 0, e.detail) });
      for (const n of built.notices) ctx.log('warn', n);
      const tasks = inputOf('tasks').map((x) => x.result.artefact!);
      if (tasks.length === 0) return { artefact: built.out, kind: 'report', metrics: { seed_routing_accuracy: built.seedRoutingAccuracy } };
      // A task belongs to the expert whose seed file shares its skill prefix (add.gen ↔ add.seed), when there is one.
      const gold: Record<string, string> = {};
      for (const t of tasks) {
        const skill = taskName(t).split('.')[0]!;
        const i = seeds.findIndex((s) => taskName(s).split('.')[0] === skill);
        if (i >= 0) gold[taskName(t)] = names[i]!;
      }
      const limit = Number(p['limit'] ?? 0) || undefined;
      const r = await evaluateMoin(built.out, tasks, { gold, limit, signal: ctx.signal });
      return { artefact: built.out, kind: 'report', metrics: { tasks: r.tasks, routing_accuracy: r.routing.accuracy, seed_routing_accuracy: built.seedRoutingAccuracy } };
    }
    case 'evolve': {
      const { evolveMerge } = await import('../evolve/evolve.js');
      const limit = Number(p['limit'] ?? 0) || undefined;
      await rm(out, { recursive: true, force: true });
      const r = await evolveMerge({
        base: inputOf('base')[0]!.result.artefact!,
        models: inputOf('models').map((x) => x.result.artefact!),
        method: p['method'] as 'ties',
        layerGroups: Number(p['layer_groups'] ?? 2),
        normalize: p['normalize'] === true,
        fitness: inputOf('fitness').map((x) => x.result.artefact!),
        budget: Number(p['budget'] ?? 40),
        sigma: 1 / 6,
        seed: Number(p['seed'] ?? 0),
        dtype: 'float32',
        limit,
      }, out, {
        signal: ctx.signal,
        onEvaluation: (n) => ctx.progress('evolving', Math.min(1, n / Number(p['budget'] ?? 40)), `${n} evaluations`),
        onGeneration: (g) => ctx.series('fitness', g.generation, { best: g.best, mean: g.mean, best_so_far: g.bestSoFar, sigma: g.sigma }),
      });
      return { artefact: join(r.out, 'model'), kind: 'model', metrics: { best_fitness: r.bestFitness, default_fitness: r.defaultFitness, start_fitness: r.startFitness, evaluations: r.evaluations } };
    }
    case 'evaluate': {
      const model = inputOf('model')[0]!.result.artefact!;
      const adapter = inputOf('adapter')[0]?.result.artefact;
      const tasks = inputOf('tasks').map((x) => x.result.artefact!);
      const limit = Number(p['limit'] ?? 0) || undefined;
      const r: EvalReport = await evaluateModel(model, tasks, { adapter, limit, provider: p['provider'] as 'cpu', chatTemplate: p['chat_template'] === true, signal: ctx.signal, onProgress: (e) => ctx.progress(`eval ${e.task}`, e.total ? e.done / e.total : 0) });
      for (const n of r.notices) ctx.log('warn', n);
      r.routing?.layers.forEach((l) => ctx.series('expert_load', l.layer, { load: l.load, entropy: l.entropy }));
      // The report is the node's artefact: reusable when nothing upstream changed, and readable by users.
      const file = `${out}.report.json`;
      await mkdir(dirname(file), { recursive: true });
      await writeFile(`${file}.partial`, JSON.stringify(r, null, 2));
      await rename(`${file}.partial`, file);
      return { artefact: file, kind: 'report', metrics: { tasks: r.tasks, routing: r.routing, seconds: r.seconds, provider: r.provider } };
    }
    case 'export': {
      const model = inputOf('model')[0]!.result.artefact!;
      const path = String(p['path'] ?? '');
      if (!path) throw new Error('choose an output folder for the export');
      if (p['format'] === 'onnx') {
        const r = await exportOnnx(model, path, { overwrite: !!p['overwrite'] });
        return { artefact: r.out, kind: 'model', metrics: { format: 'onnx', files: r.files.length } };
      }
      if ((await exists(path)) && !p['overwrite']) throw new Error(`${path} already exists; choose another folder or allow replacing it`);
      // Copy beside the target, then swap: the user never sees a half-copied model.
      const tmp = `${path}.partial-${process.pid}`;
      await rm(tmp, { recursive: true, force: true });
      await cp(model, tmp, { recursive: true });
      await rm(path, { recursive: true, force: true });
      await rename(tmp, path);
      return { artefact: path, kind: 'model', metrics: { format: 'hf' } };
    }
    default:
      throw new Error(`node type "${node.type}" cannot run in this build`);
  }
}
