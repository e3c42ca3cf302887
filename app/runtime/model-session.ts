/**
 * Loads a model folder (optionally with a LoRA adapter applied unmerged) as an onnxruntime session.
 *
 * The graph's initializers point into the checkpoint's own .safetensors files (no copy, mmapped by
 * ORT). ORT requires external data to sit inside the .onnx's folder, with no `..` and no symlink out
 * of it (research §4.1), so each session gets a cache folder holding model.onnx and hard links to
 * the weight files; where hard links are impossible (another filesystem), the files are copied and a
 * notice says so. Folders are keyed by the graph options and the files' identity, so reloading is
 * instant and a changed checkpoint gets a new graph.
 */
import { createHash } from 'node:crypto';
import { copyFile, link, mkdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { checkAdapterAgainstBase } from '../core/compat.js';
import { isReadableDType } from '../core/dtypes.js';
import { CheckpointError } from '../core/errors.js';
import { moduleScaling } from '../core/lora.js';
import type { ModelConfig } from '../core/hf-config.js';
import { cacheDir } from '../io/cache-dir.js';
import { Checkpoint } from '../io/checkpoint.js';
import { summarize } from '../io/summary.js';
import { buildDecoderGraph, graphOutputs, type DecoderGraphOptions, type LoraRef, type WeightRef } from './decoder-graph.js';
import { createSession, type OrtSession, type SessionConfig } from './ort.js';

/** Bumped whenever the graph builder changes what it emits, so cached graphs are rebuilt. */
const GRAPH_VERSION = 1;

export interface LoadOptions extends DecoderGraphOptions {
  adapter?: string;
  session?: SessionConfig;
}

export interface LoadedSession {
  config: ModelConfig;
  session: OrtSession;
  outputs: string[];
  /** Things the user should know (provider fallback, copied weights). */
  notices: string[];
  dir: string;
}

export async function loadModelSession(modelDir: string, opts: LoadOptions = {}): Promise<LoadedSession> {
  const base = await Checkpoint.open(modelDir);
  const adapter = opts.adapter ? await Checkpoint.open(opts.adapter) : undefined;
  try {
    if (base.kind !== 'model' || !base.config) {
      throw new CheckpointError('INVALID_CONFIG', base.path, 'is not a model folder with a config.json', 'evaluate a Hugging Face model folder');
    }
    const cfg = base.config;
    if (!cfg.family) throw new CheckpointError('UNSUPPORTED', base.path, `cannot be run: ${cfg.notes.join('; ')}`);
    const errors = base.problems.filter((p) => p.severity === 'error');
    if (errors.length > 0) throw new CheckpointError('INVALID_CONFIG', base.path, errors[0]!.message, 'fix the checkpoint or its config.json');
    if (adapter) {
      if (adapter.kind !== 'adapter' || !adapter.lora || !adapter.adapterMap) throw new CheckpointError('INVALID_CONFIG', adapter.path, 'is not a PEFT LoRA adapter folder');
      const diffs = checkAdapterAgainstBase(summarize(adapter), summarize(base)).filter((d) => d.severity === 'error');
      if (diffs.length > 0) throw new CheckpointError('INCOMPATIBLE', adapter.path, diffs[0]!.message, diffs[0]!.meaning);
      if (adapter.adapterMap.modules.some((m) => m.embedding)) throw new CheckpointError('UNSUPPORTED', adapter.path, 'has LoRA on embeddings, which evaluation cannot apply unmerged yet', 'merge the adapter into its base first (upcycle merge with model+lora)');
    }

    // Files referenced by the graph, each hard-linked into the session folder as w<i>.safetensors.
    const files = [...base.files, ...(adapter?.files ?? [])];
    const localName = new Map(files.map((f, i) => [f.path, `w${i}.safetensors`]));
    const ident = await Promise.all(files.map(async (f) => {
      const s = await stat(f.path);
      return { path: f.path, size: s.size, mtime: s.mtimeMs, ino: s.ino };
    }));
    const graphOpts: DecoderGraphOptions = { kvCache: !!opts.kvCache, hiddenStates: !!opts.hiddenStates, routing: !!opts.routing, maxPositions: opts.maxPositions };
    const key = createHash('sha256').update(JSON.stringify({ GRAPH_VERSION, graphOpts, ident })).digest('hex').slice(0, 24);
    const dir = cacheDir('onnx', key);
    const notices: string[] = [];

    const ref = (ck: Checkpoint, name: string): WeightRef => {
      const f = ck.fileOf(name);
      const info = f.info(name);
      if (!isReadableDType(info.dtype)) throw new CheckpointError('UNSUPPORTED', f.path, `tensor ${name} is ${info.dtype}`);
      return { dtype: info.dtype, shape: info.shape, data: { external: { location: localName.get(f.path)!, offset: f.header.dataStart + info.begin, length: info.end - info.begin } } };
    };
    const replacements = new Map((adapter?.adapterMap?.replacements ?? []).map((r) => [r.baseTensor, r.adapterTensor]));
    const modules = new Map((adapter?.adapterMap?.modules ?? []).map((m) => [m.baseTensor, m]));
    const weight = (name: string): WeightRef => {
      const rep = replacements.get(name);
      if (rep && adapter) return ref(adapter, rep);
      if (!base.has(name)) throw new CheckpointError('MISSING_TENSOR', base.path, `has no tensor "${name}"`, 'the checkpoint is incomplete');
      return ref(base, name);
    };
    const lora = (baseTensor: string): LoraRef | undefined => {
      const m = modules.get(baseTensor);
      if (!m || !adapter?.lora) return undefined;
      return { a: ref(adapter, m.a), b: ref(adapter, m.b), scaling: moduleScaling(adapter.lora, m.module).scaling };
    };

    const modelPath = join(dir, 'model.onnx');
    const ready = await stat(modelPath).then(() => true, () => false);
    if (!ready) {
      const bytes = buildDecoderGraph(cfg, weight, lora, graphOpts);
      const tmp = `${dir}.partial-${process.pid}-${Date.now()}`;
      await mkdir(tmp, { recursive: true });
      try {
        for (const f of files) {
          const target = join(tmp, localName.get(f.path)!);
          try {
            await link(f.path, target);
          } catch {
            await copyFile(f.path, target);
            notices.push(`${f.path} could not be hard-linked into the cache (another filesystem?), so it was copied`);
          }
        }
        await writeFile(join(tmp, 'model.onnx'), bytes);
        await rename(tmp, dir).catch(async (e: NodeJS.ErrnoException) => {
          // Another process finished the same graph first: use theirs.
          if (e.code !== 'ENOTEMPTY' && e.code !== 'EEXIST') throw e;
          await rm(tmp, { recursive: true, force: true });
        });
      } catch (e) {
        await rm(tmp, { recursive: true, force: true });
        throw e;
      }
    }
    const session = await createSession(modelPath, { optimization: 'all', ...opts.session });
    if (session.fallback) notices.push(`${session.fallback.requested} could not be used (${session.fallback.reason}); running on CPU`);
    return { config: cfg, session, outputs: graphOutputs(cfg, graphOpts), notices, dir };
  } finally {
    await base.close();
    await adapter?.close();
  }
}
