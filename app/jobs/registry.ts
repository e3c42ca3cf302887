/**
 * Long jobs that run off the calling thread (worker_threads), by name. Each takes JSON-able
 * arguments, an AbortSignal and a progress callback, and resolves to a JSON-able result.
 * Loaded lazily inside the worker so the parent never pays for a job's imports.
 */
export interface JobContext {
  signal: AbortSignal;
  progress: (p: unknown) => void;
}

export type JobFn = (args: unknown, ctx: JobContext) => Promise<unknown>;

export const JOBS: Record<string, () => Promise<JobFn>> = {
  eval: async () => {
    const { evaluateModel } = await import('../eval/evaluate.js');
    return async (args, ctx) => {
      const a = args as { model: string; tasks: string[]; options?: Record<string, unknown> };
      return evaluateModel(a.model, a.tasks, { ...(a.options ?? {}), signal: ctx.signal, onProgress: ctx.progress });
    };
  },
  /** A pipeline run; its RunEvents are the progress messages. The worker has its own SQLite connection (WAL). */
  pipeline: async () => {
    const { runPipeline } = await import('../pipeline/runner.js');
    const { HistoryStore } = await import('../store/history.js');
    return async (args, ctx) => {
      const a = args as { doc: import('../core/pipeline/document.js').PipelineDoc; nodeId?: string; db: string };
      const store = new HistoryStore(a.db);
      try {
        return await runPipeline(a.doc, { store, nodeId: a.nodeId, signal: ctx.signal, onEvent: ctx.progress });
      } finally {
        store.close();
      }
    };
  },
};
