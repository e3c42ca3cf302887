/**
 * Runs a merge: opens the inputs (headers only), plans, runs the compatibility check, then streams
 * tensor tasks through a pool of worker threads (both cores) under a memory budget, writing shards
 * as tensors finish; the output folder appears only when complete. Progress events carry tensors
 * and bytes done, phase and ETA; cancelling or any failure leaves no output folder.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { CheckpointError } from '../core/errors.js';
import type { DType } from '../core/dtypes.js';
import { Checkpoint } from '../io/checkpoint.js';
import { OutputFolder } from '../io/output-folder.js';
import { DEFAULT_SHARD_BYTES, SafetensorsWriter } from '../io/safetensors-writer.js';
import type { MergeRecipe } from './config.js';
import type { FromWorker, TaskMode, ToWorker, WorkerInit } from './merge-worker.js';
import { writeMergeArtifacts } from './outputs.js';
import { planMerge, type MergePlan, type TensorTask } from './plan.js';
import { streamTaskBytes, taskStream } from './stream-task.js';

export interface MergeProgress {
  phase: 'planning' | 'merging' | 'finishing' | 'done';
  tensorsDone: number;
  tensorsTotal: number;
  bytesDone: number;
  bytesTotal: number;
  etaSeconds: number | null;
  current?: string;
}

export interface MergeOptions {
  seed?: number;
  shardBytes?: number;
  outDtype?: DType;
  overwrite?: boolean;
  workers?: number;
  /**
   * Bytes of tensor data allowed in flight across workers (a single larger task runs alone):
   * streamed tasks count their chunk buffers, plus their raw inputs when those are kept whole for a
   * multi-pass method (done when they fit in budget / workers); whole-tensor tasks count their
   * float32 tensors.
   */
  memoryBudget?: number;
  /** Elements per I/O chunk of streamed tasks (default 256 Ki; tests use tiny chunks). */
  chunkElements?: number;
  signal?: AbortSignal;
  onProgress?: (p: MergeProgress) => void;
  /** Our pipeline JSON to store beside the model (recipe.json) and in the safetensors metadata. */
  pipeline?: unknown;
}

export interface MergeResult {
  out: string;
  files: string[];
  tensors: number;
  bytesWritten: number;
  notices: string[];
  seconds: number;
}

export async function runMerge(recipe: MergeRecipe, outDir: string, opts: MergeOptions = {}): Promise<MergeResult> {
  const t0 = performance.now();
  opts.onProgress?.({ phase: 'planning', tensorsDone: 0, tensorsTotal: 0, bytesDone: 0, bytesTotal: 0, etaSeconds: null });
  const cks: Checkpoint[] = [];
  let out: OutputFolder | undefined;
  let writer: SafetensorsWriter | undefined;
  try {
    for (const m of recipe.models) {
      cks.push(await Checkpoint.open(m.path));
      if (m.lora) {
        const a = await Checkpoint.open(m.lora);
        await a.close();
        if (a.kind !== 'adapter') throw new CheckpointError('INVALID_CONFIG', m.lora, 'is not a PEFT adapter folder', `"${m.label}": the part after + must be an adapter`);
      }
    }
    const plan = planMerge(recipe, cks, { outDtype: opts.outDtype });
    opts.signal?.throwIfAborted();
    out = await OutputFolder.create(outDir, { overwrite: opts.overwrite });
    const seed = opts.seed ?? recipe.randomSeed ?? 0;
    const metadata: Record<string, string> = { upcycle_recipe: JSON.stringify({ merge_method: recipe.method.id, models: recipe.models.map((m) => m.label), seed }) };
    if (opts.pipeline !== undefined) metadata['upcycle_pipeline'] = JSON.stringify(opts.pipeline);
    writer = await SafetensorsWriter.create(out, plan.tasks.map((t) => ({ name: t.name, dtype: t.outDtype, shape: t.shape })), { maxShardBytes: opts.shardBytes ?? DEFAULT_SHARD_BYTES, metadata });
    await runTasks(plan, recipe, writer, seed, opts);
    opts.onProgress?.({ phase: 'finishing', tensorsDone: plan.tasks.length, tensorsTotal: plan.tasks.length, bytesDone: writer.bytesWritten, bytesTotal: writer.bytesWritten, etaSeconds: 0 });
    const { files } = await writer.finish();
    await writeMergeArtifacts(out, recipe, plan, cks, { seed, outDtype: plan.tasks[0]?.outDtype, pipeline: opts.pipeline });
    const target = await out.commit();
    opts.onProgress?.({ phase: 'done', tensorsDone: plan.tasks.length, tensorsTotal: plan.tasks.length, bytesDone: writer.bytesWritten, bytesTotal: writer.bytesWritten, etaSeconds: 0 });
    return { out: target, files, tensors: plan.tasks.length, bytesWritten: writer.bytesWritten, notices: plan.notices, seconds: (performance.now() - t0) / 1000 };
  } catch (e) {
    await writer?.close();
    await out?.abort();
    throw e;
  } finally {
    await Promise.all(cks.map((c) => c.close()));
  }
}

async function runTasks(plan: MergePlan, recipe: MergeRecipe, writer: SafetensorsWriter, seed: number, opts: MergeOptions): Promise<void> {
  // Largest tasks first (the writer places tensors by name, in any order): the embedding and output
  // head, ~10 % of a Llama each, then run beside the layers instead of alone at the end.
  const tasks = [...plan.tasks].sort((a, b) => b.readBytes + b.writeBytes - (a.readBytes + a.writeBytes));
  const n = Math.max(1, Math.min(opts.workers ?? Math.min(availableParallelism(), 4), tasks.length));
  const budget = opts.memoryBudget ?? 1024 ** 3;
  // Streamed tasks (the method has a stream form for the task's parameters): multi-pass streams keep
  // their raw inputs when they fit in this worker's share of the budget, else re-read them per pass.
  const modeOf = (t: TensorTask): TaskMode => {
    const s = taskStream(recipe.method, t, recipe.models, seed);
    if (!s) return { stream: false };
    return { stream: true, cacheRaw: s.wantsPass(0) && t.readBytes <= budget / n, heldBytes: s.heldBytes?.() ?? 0 };
  };
  const cost = (t: TensorTask, mode: TaskMode) => mode.stream
    ? streamTaskBytes(t, mode.cacheRaw, opts.chunkElements) + (mode.heldBytes ?? 0)
    : (t.models.length + (t.base ? 1 : 0) + 2) * t.shape.reduce((a, d) => a * d, 1) * 4;
  const bytesTotal = tasks.reduce((a, t) => a + t.readBytes + t.writeBytes, 0);
  const init: WorkerInit = { models: recipe.models, method: recipe.method.id, seed, chunkElements: opts.chunkElements };
  const workers = Array.from({ length: n }, () => new Worker(new URL('./merge-worker.js', import.meta.url), { workerData: init }));
  const t0 = performance.now();
  let next = 0;
  let inFlight = 0;
  let inFlightBytes = 0;
  let done = 0;
  let bytesDone = 0;
  const idle = [...workers];
  const costOf = new Map<string, number>();
  try {
    await new Promise<void>((resolve, reject) => {
      let failed = false;
      const fail = (e: unknown) => {
        if (failed) return;
        failed = true;
        reject(e);
      };
      const onAbort = () => fail(opts.signal!.reason ?? new Error('cancelled'));
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      const dispatch = () => {
        while (!failed && idle.length > 0 && next < tasks.length) {
          const t = tasks[next]!;
          const mode = modeOf(t);
          const c = cost(t, mode);
          if (inFlight > 0 && inFlightBytes + c > budget) break;
          const w = idle.pop()!;
          next++;
          inFlight++;
          inFlightBytes += c;
          costOf.set(t.name, c);
          w.postMessage({ type: 'task', task: t, slot: writer.slot(t.name), mode } satisfies ToWorker);
        }
        if (done === tasks.length && !failed) {
          opts.signal?.removeEventListener('abort', onAbort);
          resolve();
        }
      };
      for (const w of workers) {
        w.on('message', (m: FromWorker) => {
          if (m.type === 'error') {
            fail(m.code ? new CheckpointError(m.code as CheckpointError['code'], m.file ?? m.name, m.message) : new Error(`${m.name}: ${m.message}`));
            return;
          }
          writer.markWritten(m.name);
          done++;
          inFlight--;
          inFlightBytes -= costOf.get(m.name) ?? 0;
          bytesDone += m.readBytes + m.bytes;
          const elapsed = (performance.now() - t0) / 1000;
          opts.onProgress?.({ phase: 'merging', tensorsDone: done, tensorsTotal: tasks.length, bytesDone, bytesTotal, etaSeconds: bytesDone > 0 ? (elapsed * (bytesTotal - bytesDone)) / bytesDone : null, current: m.name });
          idle.push(w);
          dispatch();
        });
        w.on('error', fail);
        w.on('exit', (code) => {
          if (done < tasks.length) fail(new Error(`a merge worker exited (code ${code}) before the merge finished`));
        });
      }
      dispatch();
    });
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
}
