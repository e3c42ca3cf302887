/**
 * A merge worker thread: takes tensor tasks, reads their inputs (lazily, positioned reads), runs the
 * method, converts to the output dtype and writes the bytes at the tensor's planned offset in its
 * shard with its own file handle. Only one task's tensors are alive at a time per worker.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { parentPort, workerData } from 'node:worker_threads';
import { fromFloat32 } from '../core/dtypes.js';
import { isCheckpointError } from '../core/errors.js';
import { getMergeMethod, tensorRng } from '../core/merge/index.js';
import type { ModelRef } from './config.js';
import type { TensorTask } from './plan.js';
import { InputReader } from './sources.js';

export interface WorkerInit {
  models: ModelRef[];
  method: string;
  seed: number;
}

export type ToWorker = { type: 'task'; task: TensorTask; slot: { file: string; offset: number; bytes: number } } | { type: 'stop' };
export type FromWorker =
  | { type: 'done'; name: string; bytes: number; readBytes: number }
  | { type: 'error'; name: string; message: string; code?: string; file?: string };

const init = workerData as WorkerInit;
const port = parentPort!;
const reader = new InputReader(init.models);
const method = getMergeMethod(init.method)!;
const files = new Map<string, FileHandle>();

async function handle(task: TensorTask, slot: { file: string; offset: number; bytes: number }): Promise<void> {
  const load = async (r: NonNullable<TensorTask['base']>) => ({ id: init.models[r.model]!.label, tensor: await reader.read(r.model, r.tensor, r.rows), params: r.params });
  const base = task.base ? await load(task.base) : undefined;
  const models = [];
  for (const m of task.models) models.push(await load(m));
  const merged = method.merge({ tensorName: task.name, shape: task.shape, base, models, globals: task.globals, rng: tensorRng(init.seed, task.name) });
  const bytes = fromFloat32(merged, task.outDtype);
  if (bytes.byteLength !== slot.bytes) throw new Error(`${task.name}: produced ${bytes.byteLength} bytes, planned ${slot.bytes}`);
  let fh = files.get(slot.file);
  if (!fh) {
    fh = await open(slot.file, 'r+');
    files.set(slot.file, fh);
  }
  let done = 0;
  while (done < bytes.byteLength) done += (await fh.write(bytes, done, bytes.byteLength - done, slot.offset + done)).bytesWritten;
}

port.on('message', (m: ToWorker) => {
  if (m.type === 'stop') {
    void (async () => {
      for (const fh of files.values()) await fh.close().catch(() => undefined);
      await reader.close();
      port.close();
    })();
    return;
  }
  handle(m.task, m.slot).then(
    () => port.postMessage({ type: 'done', name: m.task.name, bytes: m.slot.bytes, readBytes: m.task.readBytes } satisfies FromWorker),
    (e: unknown) => port.postMessage({
      type: 'error', name: m.task.name, message: e instanceof Error ? e.message : String(e),
      ...(isCheckpointError(e) ? { code: e.code, file: e.file } : {}),
    } satisfies FromWorker),
  );
});
