/** Worker-thread entry: runs one job from the registry and reports progress, result or error. */
import { parentPort, workerData } from 'node:worker_threads';
import { isCheckpointError } from '../core/errors.js';
import { JOBS } from './registry.js';

export interface WorkerError {
  name: string;
  message: string;
  code?: string;
  file?: string;
  cancelled?: boolean;
}

const port = parentPort!;
const { job, args } = workerData as { job: string; args: unknown };
const controller = new AbortController();
port.on('message', (m: { type: string }) => {
  if (m.type === 'cancel') controller.abort(new Error('cancelled'));
});

try {
  const load = JOBS[job];
  if (!load) throw new Error(`unknown job "${job}"`);
  const fn = await load();
  const result = await fn(args, { signal: controller.signal, progress: (p) => port.postMessage({ type: 'progress', data: p }) });
  port.postMessage({ type: 'result', data: result });
} catch (e) {
  const err: WorkerError = {
    name: e instanceof Error ? e.name : 'Error',
    message: e instanceof Error ? e.message : String(e),
    cancelled: controller.signal.aborted,
  };
  if (isCheckpointError(e)) Object.assign(err, { code: e.code, file: e.file });
  port.postMessage({ type: 'error', error: err });
} finally {
  port.close();
}
