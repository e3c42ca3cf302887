/**
 * Runs a job in a worker thread: heavy work (evaluation, merging) never blocks the caller's event
 * loop (the Electron main process, the server, the CLI's Ctrl-C handling). Cancel with the signal:
 * the worker aborts cooperatively, and is terminated if it does not finish within a grace period.
 */
import { Worker } from 'node:worker_threads';
import type { WorkerError } from './job-worker.js';

export class JobError extends Error {
  override readonly name = 'JobError';
  constructor(readonly info: WorkerError) {
    super(info.message);
  }
  get cancelled(): boolean {
    return !!this.info.cancelled;
  }
}

export interface RunJobOptions {
  signal?: AbortSignal;
  onProgress?: (p: unknown) => void;
  /** How long a cancelled job may take to stop before its thread is terminated. */
  graceMs?: number;
}

export function runJob<T>(job: string, args: unknown, opts: RunJobOptions = {}): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    if (opts.signal?.aborted) {
      reject(new JobError({ name: 'AbortError', message: 'cancelled', cancelled: true }));
      return;
    }
    const worker = new Worker(new URL('./job-worker.js', import.meta.url), { workerData: { job, args } });
    let settled = false;
    let killTimer: NodeJS.Timeout | undefined;
    const finish = (fn: () => void) => {
      if (settled) return;
      settled = true;
      opts.signal?.removeEventListener('abort', onAbort);
      if (killTimer) clearTimeout(killTimer);
      fn();
    };
    const onAbort = () => {
      worker.postMessage({ type: 'cancel' });
      killTimer = setTimeout(() => {
        void worker.terminate();
        finish(() => reject(new JobError({ name: 'AbortError', message: 'cancelled', cancelled: true })));
      }, opts.graceMs ?? 5000);
    };
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    worker.on('message', (m: { type: string; data?: unknown; error?: WorkerError }) => {
      if (m.type === 'progress') opts.onProgress?.(m.data);
      else if (m.type === 'result') finish(() => resolve(m.data as T));
      else if (m.type === 'error') finish(() => reject(new JobError(m.error!)));
    });
    worker.on('error', (e) => finish(() => reject(e)));
    worker.on('exit', (code) => finish(() => reject(new Error(`job worker exited with code ${code} before finishing`))));
  });
}
