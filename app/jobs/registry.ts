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
};
