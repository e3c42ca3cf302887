/**
 * A merge worker thread: takes tensor tasks, reads their inputs (lazily, positioned reads), runs the
 * method, converts to the output dtype and writes the bytes at the tensor's planned offset in its
 * shard with its own file handle. Methods with a stream form run streamed (stream-task.ts: inputs
 * in stored dtype, chunk by chunk, converted inside the method's loop); the others read whole
 * float32 tensors. Only one task's tensors are alive at a time per worker.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { parentPort, workerData } from 'node:worker_threads';
import { fromFloat32 } from '../core/dtypes.js';
import { isCheckpointError } from '../core/errors.js';
import { getMergeMethod, tensorRng } from '../core/merge/index.js';
import { readableDType } from '../core/safetensors-header.js';
import type { ModelRef } from './config.js';
import type { TensorTask } from './plan.js';
import { InputReader } from './sources.js';
import { runStreamTask, taskStream, type StreamInput } from './stream-task.js';

export interface WorkerInit {
  models: ModelRef[];
  method: string;
  seed: number;
  /** Elements per I/O chunk of streamed tasks (tests use small chunks). */
  chunkElements?: number;
}

/** How the main thread wants a task run: streamed (inputs cached whole in stored dtype, or not) or whole. */
export type TaskMode = { stream: true; cacheRaw: boolean; /** Bytes the stream keeps for the whole tensor. */ heldBytes?: number } | { stream: false };

export type ToWorker = { type: 'task'; task: TensorTask; slot: { file: string; offset: number; bytes: number }; mode: TaskMode } | { type: 'stop' };
export type FromWorker =
  | { type: 'done'; name: string; bytes: number; readBytes: number }
  | { type: 'error'; name: string; message: string; code?: string; file?: string };

const init = workerData as WorkerInit;
const port = parentPort!;
const reader = new InputReader(init.models);
const method = getMergeMethod(init.method)!;
const outFiles = new Map<string, FileHandle>();
const inFiles = new Map<string, Promise<FileHandle>>();

async function outHandle(file: string): Promise<FileHandle> {
  let fh = outFiles.get(file);
  if (!fh) {
    fh = await open(file, 'r+');
    outFiles.set(file, fh);
  }
  return fh;
}

function inHandle(file: string): Promise<FileHandle> {
  let fh = inFiles.get(file);
  if (!fh) {
    fh = open(file, 'r');
    inFiles.set(file, fh);
  }
  return fh;
}

async function handleWhole(task: TensorTask, slot: { file: string; offset: number; bytes: number }): Promise<void> {
  const load = async (r: NonNullable<TensorTask['base']>) => ({ id: init.models[r.model]!.label, tensor: await reader.read(r.model, r.tensor, r.rows), params: r.params });
  const base = task.base ? await load(task.base) : undefined;
  const models = [];
  for (const m of task.models) models.push(await load(m));
  const merged = method.merge({ tensorName: task.name, shape: task.shape, base, models, globals: task.globals, rng: tensorRng(init.seed, task.name) });
  const bytes = fromFloat32(merged, task.outDtype);
  if (bytes.byteLength !== slot.bytes) throw new Error(`${task.name}: produced ${bytes.byteLength} bytes, planned ${slot.bytes}`);
  const fh = await outHandle(slot.file);
  let done = 0;
  while (done < bytes.byteLength) done += (await fh.write(bytes, done, bytes.byteLength - done, slot.offset + done)).bytesWritten;
}

async function handle(task: TensorTask, slot: { file: string; offset: number; bytes: number }, mode: TaskMode): Promise<void> {
  if (!mode.stream) return handleWhole(task, slot);
  const stream = taskStream(method, task, init.models, init.seed);
  if (!stream) return handleWhole(task, slot);
  const numel = task.shape.reduce((a, d) => a * d, 1);
  const refs = task.base ? [task.base, ...task.models] : task.models;
  const inputs: StreamInput[] = [];
  for (const r of refs) {
    const ck = await reader.checkpoint(r.model);
    const file = ck.fileOf(r.tensor);
    const info = ck.info(r.tensor);
    const dtype = readableDType(info, file.path);
    if (info.shape.reduce((a, d) => a * d, 1) < numel) throw new Error(`${task.name}: ${r.tensor} has fewer than ${numel} elements`);
    inputs.push({ fh: await inHandle(file.path), file: file.path, position: file.header.dataStart + info.begin, dtype });
  }
  const fh = await outHandle(slot.file);
  const bytes = await runStreamTask(stream, numel, !!task.base, inputs, { fh, file: slot.file, offset: slot.offset, dtype: task.outDtype }, { cacheRaw: mode.cacheRaw, chunkElements: init.chunkElements });
  if (bytes !== slot.bytes) throw new Error(`${task.name}: produced ${bytes} bytes, planned ${slot.bytes}`);
}

port.on('message', (m: ToWorker) => {
  if (m.type === 'stop') {
    void (async () => {
      for (const fh of outFiles.values()) await fh.close().catch(() => undefined);
      for (const fh of inFiles.values()) await fh.then((h) => h.close()).catch(() => undefined);
      await reader.close();
      port.close();
    })();
    return;
  }
  handle(m.task, m.slot, m.mode).then(
    () => port.postMessage({ type: 'done', name: m.task.name, bytes: m.slot.bytes, readBytes: m.task.readBytes } satisfies FromWorker),
    (e: unknown) => port.postMessage({
      type: 'error', name: m.task.name, message: e instanceof Error ? e.message : String(e),
      ...(isCheckpointError(e) ? { code: e.code, file: e.file } : {}),
    } satisfies FromWorker),
  );
});
