/**
 * The engine behind the contract: one object both doors (Electron IPC, the local server) call.
 * Pipeline runs go to a worker thread (never the caller's event loop); their events fan out to
 * subscribers (the window, WebSocket clients). History reads use a SQLite connection of its own.
 */
import { mkdir, readdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { parse as parseYaml, stringify as toYaml } from 'yaml';
import { checkAdapterAgainstBase, compareCheckpoints } from '../core/compat.js';
import { isCheckpointError } from '../core/errors.js';
import { listMergeMethods } from '../core/merge/index.js';
import { migratePipeline, type PipelineDoc, type PipelineNode } from '../core/pipeline/document.js';
import { edgeProblem, NODE_TYPES, paramDefaults } from '../core/pipeline/node-types.js';
import { Checkpoint } from '../io/checkpoint.js';
import { dataDir } from '../io/data-dir.js';
import { inspectCheckpoint } from '../io/inspect.js';
import { summarize } from '../io/summary.js';
import { runJob } from '../jobs/run-job.js';
import { loadPipelineFile, savePipelineFile } from '../pipeline/files.js';
import type { RunEvent } from '../pipeline/runner.js';
import { HistoryStore } from '../store/history.js';
import { parseCall, type ApiError, type MethodArgs, type MethodName } from './contract.js';

export interface ServiceOptions {
  dbPath: string;
  demoDir: string;
  version: string;
}

export class Service {
  private readonly store: HistoryStore;
  private readonly listeners = new Set<(e: RunEvent) => void>();
  private readonly running = new Map<number, AbortController>();

  constructor(private readonly opts: ServiceOptions) {
    this.store = new HistoryStore(opts.dbPath);
  }

  onEvent(fn: (e: RunEvent) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  private emit(e: RunEvent): void {
    for (const l of this.listeners) l(e);
  }

  /** Validates and dispatches one call; errors come back as data with the file and the fix. */
  async call(method: string, rawArgs: unknown): Promise<{ ok: true; result: unknown } | { ok: false; error: ApiError }> {
    try {
      const { method: m, args } = parseCall(method, rawArgs);
      return { ok: true, result: await this.dispatch(m, args) };
    } catch (e) {
      if (isCheckpointError(e)) return { ok: false, error: { message: e.message, code: e.code, file: e.file, hint: e.hint } };
      return { ok: false, error: { message: e instanceof Error ? e.message : String(e), code: e instanceof Error ? e.name : undefined } };
    }
  }

  private async dispatch(method: MethodName, a: unknown): Promise<unknown> {
    switch (method) {
      case 'health':
        return { ok: true, version: this.opts.version, pid: process.pid };
      case 'nodeTypes':
        return { nodeTypes: NODE_TYPES, mergeMethods: listMergeMethods() };
      case 'inspect': {
        const { path } = a as MethodArgs<'inspect'>;
        const r = await inspectCheckpoint(path);
        await this.addRecent(path);
        return r;
      }
      case 'listDir':
        return this.listDir((a as MethodArgs<'listDir'>).path ?? homedir());
      case 'recent':
        return this.readJson(dataDir('recent.json'), [] as string[]);
      case 'validateEdge': {
        const { doc, edge } = a as MethodArgs<'validateEdge'>;
        const reason = edgeProblem(doc, edge) ?? (await this.headerProblem(doc, edge));
        return { ok: reason === null, reason };
      }
      case 'runPipeline': {
        const { doc, nodeId } = a as MethodArgs<'runPipeline'>;
        return this.startRun(doc, nodeId);
      }
      case 'cancelRun': {
        const c = this.running.get((a as MethodArgs<'cancelRun'>).runId);
        c?.abort();
        return { cancelled: !!c };
      }
      case 'listRuns':
        return this.store.listRuns(a as MethodArgs<'listRuns'>);
      case 'getRun': {
        const { id } = a as MethodArgs<'getRun'>;
        const run = this.store.getRun(id);
        if (!run) throw new Error(`no run #${id}`);
        return { run, nodes: this.store.nodes(id), logs: this.store.logs(id), series: Object.fromEntries(['routing_accuracy', 'expert_load', 'diversity', 'fitness'].map((s) => [s, this.store.series(id, s)])) };
      }
      case 'compareRuns':
        return this.compare((a as MethodArgs<'compareRuns'>).ids);
      case 'savePipeline': {
        const { path, doc } = a as MethodArgs<'savePipeline'>;
        await savePipelineFile(path, doc);
        return { path };
      }
      case 'openPipeline':
        return loadPipelineFile((a as MethodArgs<'openPipeline'>).path);
      case 'importYaml': {
        const { text, baseDir } = a as MethodArgs<'importYaml'>;
        return importYaml(text, baseDir);
      }
      case 'exportYaml': {
        const { doc, nodeId } = a as MethodArgs<'exportYaml'>;
        return { text: exportYaml(doc, nodeId) };
      }
      case 'demoPipeline':
        return loadPipelineFile(join(this.opts.demoDir, 'pipelines', 'demo.json'));
      case 'autosave': {
        const file = dataDir('autosave.json');
        await mkdir(dirname(file), { recursive: true });
        await writeFile(`${file}.partial`, JSON.stringify((a as MethodArgs<'autosave'>).doc));
        await rename(`${file}.partial`, file);
        return { saved: true };
      }
      case 'loadAutosave': {
        const raw = await this.readJson<unknown>(dataDir('autosave.json'), null);
        return raw === null ? null : migratePipeline(raw);
      }
      case 'providers': {
        const { listProviders } = await import('../runtime/ort.js');
        return listProviders();
      }
    }
  }

  private async startRun(doc: PipelineDoc, nodeId?: string): Promise<{ runId: number }> {
    const ac = new AbortController();
    let resolveId!: (id: number) => void;
    let rejectId!: (e: unknown) => void;
    const idPromise = new Promise<number>((res, rej) => {
      resolveId = res;
      rejectId = rej;
    });
    let runId: number | undefined;
    const job = runJob<{ status: string }>('pipeline', { doc, nodeId, db: this.opts.dbPath }, {
      signal: ac.signal,
      onProgress: (p) => {
        const e = p as RunEvent;
        if (runId === undefined && e.type === 'run') {
          runId = e.runId;
          this.running.set(runId, ac);
          resolveId(runId);
        }
        this.emit(e);
      },
    });
    job.then(
      () => runId !== undefined && this.running.delete(runId),
      (e: unknown) => {
        if (runId === undefined) rejectId(e);
        else {
          this.running.delete(runId);
          this.emit({ type: 'run', runId, status: ac.signal.aborted ? 'cancelled' : 'failed', error: e instanceof Error ? e.message : String(e) });
        }
      },
    );
    return { runId: await idPromise };
  }

  private async listDir(path: string): Promise<unknown> {
    const entries = await readdir(path, { withFileTypes: true }).catch((e: NodeJS.ErrnoException) => {
      throw new Error(`${path}: cannot be listed (${e.code ?? e.message})`);
    });
    const out = [];
    for (const d of entries) {
      if (d.name.startsWith('.')) continue;
      const full = join(path, d.name);
      if (d.isDirectory()) {
        const inner = await readdir(full).catch(() => [] as string[]);
        const kind = inner.includes('adapter_config.json') ? 'adapter' : inner.includes('config.json') && inner.some((f) => f.endsWith('.safetensors') || f.endsWith('.safetensors.index.json')) ? 'model' : 'dir';
        out.push({ name: d.name, path: full, kind });
      } else if (/\.(jsonl|json|ya?ml|safetensors)$/i.test(d.name)) {
        const s = await stat(full).catch(() => undefined);
        out.push({ name: d.name, path: full, kind: d.name.endsWith('.jsonl') ? 'dataset' : d.name.endsWith('.safetensors') ? 'safetensors' : 'file', size: s?.size });
      }
    }
    out.sort((x, y) => Number(y.kind !== 'file' && y.kind !== 'dataset') - Number(x.kind !== 'file' && x.kind !== 'dataset') || x.name.localeCompare(y.name));
    return { path, parent: dirname(path) === path ? null : dirname(path), entries: out };
  }

  /** Header-level reasons an edge is meaningless: adapter for another base, different shapes or tokenizers. */
  private async headerProblem(doc: PipelineDoc, edge: { source: string; target: string; targetPort: string }): Promise<string | null> {
    const src = doc.nodes.find((n) => n.id === edge.source)!;
    const tgt = doc.nodes.find((n) => n.id === edge.target)!;
    if (!['checkpoint', 'adapter'].includes(src.type) || !['merge', 'moe'].includes(tgt.type)) return null;
    const others = doc.edges.filter((e) => e.target === tgt.id && ['base', 'models', 'experts'].includes(e.targetPort)).map((e) => doc.nodes.find((n) => n.id === e.source)!).filter((n) => n.type === 'checkpoint' && typeof n.params['path'] === 'string');
    const ref = others.find((n) => doc.edges.some((e) => e.source === n.id && e.target === tgt.id && e.targetPort === 'base')) ?? others[0];
    if (!ref || ref.id === src.id || typeof src.params['path'] !== 'string') return null;
    const [a, b] = await Promise.all([Checkpoint.open(String(ref.params['path'])), Checkpoint.open(String(src.params['path']))]).catch(() => [undefined, undefined]);
    if (!a || !b) return null; // unreadable inputs are reported when the node runs
    try {
      const diffs = src.type === 'adapter' ? checkAdapterAgainstBase(summarize(b), summarize(a)) : compareCheckpoints(summarize(a), summarize(b));
      const bad = diffs.find((d) => d.severity === 'error' && !(tgt.type === 'moe' && d.code === 'family')) ?? diffs.find((d) => d.code === 'tokenizer');
      return bad ? `${bad.message} — ${bad.meaning}` : null;
    } finally {
      await a.close();
      await b.close();
    }
  }

  private compare(ids: number[]): unknown {
    const runs = ids.map((id) => {
      const r = this.store.getRun(id);
      if (!r) throw new Error(`no run #${id}`);
      return r;
    });
    const params = runs.map((r) => flattenParams(r.pipeline));
    const keys = [...new Set(params.flatMap((p) => Object.keys(p)))].sort();
    const diff = keys.filter((k) => new Set(params.map((p) => JSON.stringify(p[k]))).size > 1).map((k) => ({ key: k, values: params.map((p) => p[k] ?? null) }));
    return { runs, diff, metrics: runs.map((r) => r.metrics) };
  }

  private recentChain: Promise<void> = Promise.resolve();

  /** Read-modify-write of the recent list, serialised (parallel inspects) and atomic (tmp + rename). */
  private addRecent(path: string): Promise<void> {
    this.recentChain = this.recentChain.then(async () => {
      const file = dataDir('recent.json');
      const list = (await this.readJson(file, [] as string[])).filter((p) => p !== path);
      list.unshift(path);
      await mkdir(dirname(file), { recursive: true });
      await writeFile(`${file}.partial-${process.pid}`, JSON.stringify(list.slice(0, 20)));
      await rename(`${file}.partial-${process.pid}`, file);
    }).catch(() => undefined);
    return this.recentChain;
  }

  private async readJson<T>(file: string, fallback: T): Promise<T> {
    try {
      return JSON.parse(await readFile(file, 'utf8')) as T;
    } catch {
      return fallback;
    }
  }

  close(): void {
    for (const c of this.running.values()) c.abort();
    this.store.close();
  }
}

/** Node parameters of a pipeline snapshot as `nodeId.key` → value, for run comparison. */
function flattenParams(p: unknown): Record<string, unknown> {
  const doc = p as PipelineDoc | null;
  const out: Record<string, unknown> = {};
  for (const n of doc?.nodes ?? []) for (const [k, v] of Object.entries(n.params)) out[`${n.label ?? n.id}.${k}`] = v;
  return out;
}

/** A mergekit (merge) or mergekit-moe YAML as a pipeline: source nodes, the build node, edges. */
export function importYaml(text: string, baseDir = '/'): PipelineDoc {
  const y = parseYaml(text) as Record<string, unknown>;
  if (typeof y !== 'object' || y === null) throw new Error('the YAML is not a mapping');
  const abs = (p: string) => (p.startsWith('/') ? p : join(baseDir, p));
  const nodes: PipelineNode[] = [];
  const edges: PipelineDoc['edges'] = [];
  const src = (id: string, path: string, type = 'checkpoint', x = 0, y0 = 0): string => {
    if (!nodes.some((n) => n.id === id)) nodes.push({ id, type, position: { x, y: y0 }, params: { path: abs(path) }, label: basename(path) });
    return id;
  };
  const connect = (s: string, sp: string, t: string, tp: string) => edges.push({ id: `${s}.${sp}->${t}.${tp}`, source: s, sourcePort: sp, target: t, targetPort: tp });
  if (typeof y['merge_method'] === 'string') {
    const models = (y['models'] as { model: string; parameters?: Record<string, unknown> }[] | undefined) ?? [];
    const first = models[0]?.parameters ?? {};
    nodes.push({ id: 'merge', type: 'merge', position: { x: 320, y: 80 }, params: { ...paramDefaults('merge'), method: y['merge_method'], weight: first['weight'] ?? 1, density: first['density'] ?? 0.5, parameters: y['parameters'] ?? {}, dtype: y['dtype'] ?? 'float32' } });
    if (typeof y['base_model'] === 'string') connect(src('base', y['base_model']), 'model', 'merge', 'base');
    models.forEach((m, i) => {
      if (m.model === y['base_model']) return;
      connect(src(`m${i}`, m.model, 'checkpoint', 0, 120 * (i + 1)), 'model', 'merge', 'models');
    });
    if (y['slices']) throw new Error('slices (frankenmerges) cannot be shown on the canvas yet; run them with `upcycle merge`');
    return { version: 2, name: 'imported merge', nodes, edges };
  }
  if (Array.isArray(y['experts'])) {
    nodes.push({ id: 'moe', type: 'moe', position: { x: 320, y: 80 }, params: { ...paramDefaults('moe'), gate_mode: y['gate_mode'] ?? 'hidden', experts_per_token: y['experts_per_token'] ?? 2, dtype: y['dtype'] ?? 'float32', prompts: (y['experts'] as { positive_prompts?: string[] }[]).map((e) => e.positive_prompts ?? []) } });
    connect(src('base', String(y['base_model'])), 'model', 'moe', 'base');
    (y['experts'] as Record<string, unknown>[]).forEach((e, i) => {
      const isAdapter = typeof e['source_adapter'] === 'string';
      connect(src(`x${i}`, String(e['source_adapter'] ?? e['source_model']), isAdapter ? 'adapter' : 'checkpoint', 0, 120 * (i + 1)), isAdapter ? 'adapter' : 'model', 'moe', 'experts');
      if (typeof e['seed_data'] === 'string') connect(src(`s${i}`, e['seed_data'], 'dataset', -260, 120 * (i + 1)), 'data', 'moe', 'seed');
    });
    return { version: 2, name: 'imported MoE', nodes, edges };
  }
  throw new Error('not a mergekit config: expected merge_method (mergekit-yaml) or experts (mergekit-moe)');
}

/** The YAML mergekit (or mergekit-moe) would run for a merge or MoE node with its current inputs. */
export function exportYaml(doc: PipelineDoc, nodeId: string): string {
  const node = doc.nodes.find((n) => n.id === nodeId);
  if (!node) throw new Error(`no node ${nodeId}`);
  const p = { ...paramDefaults(node.type), ...node.params };
  const inputs = (port: string) => doc.edges.filter((e) => e.target === nodeId && e.targetPort === port).map((e) => doc.nodes.find((n) => n.id === e.source)!);
  const path = (n: PipelineNode) => {
    if (typeof n.params['path'] !== 'string') throw new Error(`${n.label ?? n.id} is computed by the pipeline; export the YAML of a node whose inputs are files`);
    return n.params['path'];
  };
  if (node.type === 'merge') {
    const per: Record<string, unknown> = { weight: p['weight'] };
    if (/ties|dare|della|breadcrumbs/.test(String(p['method']))) per['density'] = p['density'];
    const base = inputs('base')[0];
    return toYaml({ merge_method: p['method'], ...(base ? { base_model: path(base) } : {}), models: inputs('models').map((m) => ({ model: path(m), parameters: per })), parameters: p['parameters'], dtype: p['dtype'] });
  }
  if (node.type === 'moe') {
    const seeds = inputs('seed');
    const prompts = (p['prompts'] as string[][]) ?? [];
    return toYaml({
      base_model: path(inputs('base')[0]!), gate_mode: p['gate_mode'], dtype: p['dtype'], experts_per_token: p['experts_per_token'],
      experts: inputs('experts').map((x, i) => ({ [x.type === 'adapter' ? 'source_adapter' : 'source_model']: path(x), ...(prompts[i]?.length ? { positive_prompts: prompts[i] } : {}), ...(seeds[i] ? { seed_data: path(seeds[i]) } : {}) })),
    });
  }
  throw new Error(`${node.type} nodes have no mergekit YAML`);
}
