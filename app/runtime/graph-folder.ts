/**
 * A folder holding model.onnx and the weight files its external data points into. ORT requires
 * external data inside the .onnx's folder, with no `..` and no symlink out of it (research §4.1), so
 * the checkpoint's .safetensors files are hard-linked in (copied where links are impossible); the
 * graph's initializers then point at byte ranges of those files, so weights are never converted or
 * duplicated on disk. Used for the runtime's session cache and for `upcycle export --format onnx`.
 */
import { copyFile, link, mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { checkAdapterAgainstBase } from '../core/compat.js';
import { isReadableDType } from '../core/dtypes.js';
import { CheckpointError } from '../core/errors.js';
import type { ModelConfig } from '../core/hf-config.js';
import { moduleScaling } from '../core/lora.js';
import type { Checkpoint } from '../io/checkpoint.js';
import { summarize } from '../io/summary.js';
import { buildDecoderGraph, type DecoderGraphOptions, type LoraRef, type WeightRef } from './decoder-graph.js';

/** Checks that a base (and adapter) can be run, and returns the base's config. */
export function runnableConfig(base: Checkpoint, adapter?: Checkpoint): ModelConfig {
  if (base.kind !== 'model' || !base.config) {
    throw new CheckpointError('INVALID_CONFIG', base.path, 'is not a model folder with a config.json', 'pass a Hugging Face model folder');
  }
  const cfg = base.config;
  if (!cfg.family) throw new CheckpointError('UNSUPPORTED', base.path, `cannot be run: ${cfg.notes.join('; ')}`);
  const errors = base.problems.filter((p) => p.severity === 'error');
  if (errors.length > 0) throw new CheckpointError('INVALID_CONFIG', base.path, errors[0]!.message, 'fix the checkpoint or its config.json');
  if (adapter) {
    if (adapter.kind !== 'adapter' || !adapter.lora || !adapter.adapterMap) throw new CheckpointError('INVALID_CONFIG', adapter.path, 'is not a PEFT LoRA adapter folder');
    const diffs = checkAdapterAgainstBase(summarize(adapter), summarize(base)).filter((d) => d.severity === 'error');
    if (diffs.length > 0) throw new CheckpointError('INCOMPATIBLE', adapter.path, diffs[0]!.message, diffs[0]!.meaning);
    if (adapter.adapterMap.modules.some((m) => m.embedding)) {
      throw new CheckpointError('UNSUPPORTED', adapter.path, 'has LoRA on embeddings, which cannot be applied unmerged yet', 'merge the adapter into its base first (a model+lora merge)');
    }
  }
  return cfg;
}

/** The weight files a graph of (base, adapter) refers to, with their names inside the folder. */
export function weightFiles(base: Checkpoint, adapter?: Checkpoint): { path: string; local: string }[] {
  return [...base.files, ...(adapter?.files ?? [])].map((f, i) => ({ path: f.path, local: `w${i}.safetensors` }));
}

/** Serialises the graph of (base, adapter) with initializers pointing into `weightFiles`. */
export function buildGraphBytes(base: Checkpoint, adapter: Checkpoint | undefined, opts: DecoderGraphOptions): Uint8Array {
  const cfg = runnableConfig(base, adapter);
  const localName = new Map(weightFiles(base, adapter).map((f) => [f.path, f.local]));
  const ref = (ck: Checkpoint, name: string): WeightRef => {
    const f = ck.fileOf(name);
    const info = f.info(name);
    if (!isReadableDType(info.dtype)) throw new CheckpointError('UNSUPPORTED', f.path, `tensor ${name} is ${info.dtype}, which the runtime cannot use`);
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
  return buildDecoderGraph(cfg, weight, lora, opts);
}

/**
 * Writes `model.onnx` + linked weight files (+ `extra` small files) into `dir` atomically: built in a
 * sibling temp folder and renamed into place. Returns notices (e.g. weights that had to be copied).
 * When `dir` already exists because another process built the same thing first, theirs is kept.
 */
export async function writeGraphFolder(dir: string, graph: Uint8Array, files: { path: string; local: string }[], extra: Record<string, string | Uint8Array> = {}): Promise<string[]> {
  const notices: string[] = [];
  const tmp = `${dir}.partial-${process.pid}-${Date.now()}`;
  await mkdir(tmp, { recursive: true });
  try {
    for (const f of files) {
      if (!(await linkOrCopy(f.path, join(tmp, f.local)))) notices.push(`${f.path} could not be hard-linked (another filesystem?), so it was copied`);
    }
    await writeFile(join(tmp, 'model.onnx'), graph);
    for (const [name, data] of Object.entries(extra)) await writeFile(join(tmp, name), data);
    await rename(tmp, dir).catch(async (e: NodeJS.ErrnoException) => {
      if (e.code !== 'ENOTEMPTY' && e.code !== 'EEXIST') throw e;
      await rm(tmp, { recursive: true, force: true });
    });
  } catch (e) {
    await rm(tmp, { recursive: true, force: true });
    throw e;
  }
  return notices;
}

/** Hard-links `src` to `dst`, or copies it where a link is impossible. True when linked. */
export async function linkOrCopy(src: string, dst: string): Promise<boolean> {
  try {
    await link(src, dst);
    return true;
  } catch {
    await copyFile(src, dst);
    return false;
  }
}
