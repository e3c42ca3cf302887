/**
 * Loads a model folder (optionally with a LoRA adapter applied unmerged) as an onnxruntime session.
 * The graph lives in a cache folder keyed by the graph options and the weight files' identity, so
 * reloading is instant and a changed checkpoint gets a new graph (see graph-folder.ts for why the
 * weights are hard-linked beside it).
 */
import { createHash } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { ModelConfig } from '../core/hf-config.js';
import { cacheDir } from '../io/cache-dir.js';
import { SOURCE_FILE, touchCacheEntry } from '../io/cache-prune.js';
import { Checkpoint } from '../io/checkpoint.js';
import { graphOutputs, type DecoderGraphOptions } from './decoder-graph.js';
import { buildGraphBytes, runnableConfig, weightFiles, writeGraphFolder } from './graph-folder.js';
import { createSession, type OrtSession, type SessionConfig } from './ort.js';
import { SessionCache } from './session-cache.js';

/** Bumped whenever the graph builder changes what it emits, so cached graphs are rebuilt. */
const GRAPH_VERSION = 3;

export interface LoadOptions extends DecoderGraphOptions {
  adapter?: string;
  session?: SessionConfig;
  /**
   * Take the session from this cache (shared with other loads of the same graph and options)
   * instead of creating a private one; `release()` then ends this load's lease only.
   */
  cache?: SessionCache;
}

export interface LoadedSession {
  config: ModelConfig;
  session: OrtSession;
  outputs: string[];
  /** Things the user should know (provider fallback, copied weights). */
  notices: string[];
  dir: string;
  /** Done with the model: frees a private session, or ends the lease on a cached one. */
  release(): Promise<void>;
}

/**
 * The per-thread cache for long-lived callers (the server's evaluation and generation, pipelines):
 * reloading the same model reuses its session, and one nobody holds is freed after 5 idle minutes.
 */
export const sharedSessions = new SessionCache({ idleMs: 5 * 60_000 });

export async function loadModelSession(modelDir: string, opts: LoadOptions = {}): Promise<LoadedSession> {
  const base = await Checkpoint.open(modelDir);
  const adapter = opts.adapter ? await Checkpoint.open(opts.adapter) : undefined;
  try {
    const cfg = runnableConfig(base, adapter);
    const files = weightFiles(base, adapter);
    const ident = await Promise.all(files.map(async (f) => {
      const s = await stat(f.path);
      return { path: f.path, size: s.size, mtime: s.mtimeMs, ino: s.ino };
    }));
    // Cached graphs (the ones generation uses) take `logits_to_keep` unless told otherwise.
    const graphOpts: DecoderGraphOptions = {
      kvCache: !!opts.kvCache, hiddenStates: !!opts.hiddenStates, routing: !!opts.routing, maxPositions: opts.maxPositions,
      routerInputs: !!opts.routerInputs, logitsToKeep: opts.logitsToKeep ?? !!opts.kvCache,
      recentPast: !!opts.kvCache && (opts.recentPast ?? true), tokenLogprobs: !!opts.tokenLogprobs,
    };
    const key = createHash('sha256').update(JSON.stringify({ GRAPH_VERSION, graphOpts, ident })).digest('hex').slice(0, 24);
    const dir = cacheDir('onnx', key);
    const modelPath = join(dir, 'model.onnx');
    const notices: string[] = [];
    if (!(await stat(modelPath).then(() => true, () => false))) {
      // source.json lets cache pruning find folders whose model was deleted or rewritten (app/io/cache-prune.ts).
      const source = JSON.stringify({ files: ident });
      notices.push(...(await writeGraphFolder(dir, buildGraphBytes(base, adapter, graphOpts), files, { [SOURCE_FILE]: source })));
    } else {
      await touchCacheEntry(dir);
    }
    // No prepacking and no arena: weights stay file-backed (−1× weight bytes of RSS) at no measured
    // speed cost (bench:runtime: decode 68.0 vs 68.7 tok/s on the 100M llama).
    const sessionConfig: SessionConfig = { optimization: 'all', disablePrepacking: true, cpuMemArena: false, ...opts.session };
    const outputs = graphOutputs(cfg, graphOpts);
    const lease = opts.cache ? await opts.cache.acquire(modelPath, sessionConfig) : undefined;
    const session = lease?.session ?? await createSession(modelPath, sessionConfig);
    if (session.fallback) notices.push(`${session.fallback.requested} could not be used (${session.fallback.reason}); running on CPU`);
    const release = lease ? async () => lease.release() : () => session.release();
    return { config: cfg, session, outputs, notices, dir, release };
  } finally {
    // Read-only handles: failing to close one must not lose the session just opened (nor its lease).
    await base.close().catch(() => undefined);
    await adapter?.close().catch(() => undefined);
  }
}
