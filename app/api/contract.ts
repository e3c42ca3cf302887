/**
 * The engine's service contract, written once: request schemas (zod) for every method, shared by the
 * Electron main process (IPC), the local server (HTTP + WebSocket) and the renderer's client. Every
 * request is validated where it arrives; paths must be absolute and free of NUL bytes.
 */
import { z } from 'zod';

const absPath = z.string().min(1).max(4096).refine((p) => !p.includes('\0'), 'path contains a NUL byte').refine((p) => p.startsWith('/') || /^[A-Za-z]:[\\/]/.test(p), 'path must be absolute');

const node = z.object({
  id: z.string().min(1).max(200),
  type: z.string().min(1).max(64),
  position: z.object({ x: z.number().finite(), y: z.number().finite() }),
  params: z.record(z.string(), z.unknown()),
  label: z.string().max(200).optional(),
});
const edge = z.object({ id: z.string().min(1).max(400), source: z.string(), sourcePort: z.string(), target: z.string(), targetPort: z.string() });
export const pipelineSchema = z.object({ version: z.number().int(), name: z.string().max(200), nodes: z.array(node).max(5000), edges: z.array(edge).max(20000) });

export const METHODS = {
  health: z.object({}),
  nodeTypes: z.object({}),
  inspect: z.object({ path: absPath }),
  listDir: z.object({ path: absPath.optional() }),
  recent: z.object({}),
  validateEdge: z.object({ doc: pipelineSchema, edge: edge.omit({ id: true }) }),
  runPipeline: z.object({ doc: pipelineSchema, nodeId: z.string().optional() }),
  cancelRun: z.object({ runId: z.number().int().positive() }),
  listRuns: z.object({ status: z.enum(['running', 'succeeded', 'failed', 'cancelled', 'interrupted']).optional(), text: z.string().max(200).optional(), limit: z.number().int().positive().max(1000).optional() }),
  getRun: z.object({ id: z.number().int().positive() }),
  compareRuns: z.object({ ids: z.array(z.number().int().positive()).min(2).max(10) }),
  savePipeline: z.object({ path: absPath, doc: pipelineSchema }),
  openPipeline: z.object({ path: absPath }),
  importYaml: z.object({ text: z.string().max(1_000_000), baseDir: absPath.optional() }),
  exportYaml: z.object({ doc: pipelineSchema, nodeId: z.string() }),
  demoPipeline: z.object({}),
  autosave: z.object({ doc: pipelineSchema }),
  loadAutosave: z.object({}),
  providers: z.object({}),
} as const;

export type MethodName = keyof typeof METHODS;
export type MethodArgs<M extends MethodName> = z.infer<(typeof METHODS)[M]>;

export interface ApiError {
  message: string;
  code?: string;
  file?: string;
  hint?: string;
}

export type ApiResponse = { ok: true; result: unknown } | { ok: false; error: ApiError };

/** Validates a call's arguments; the error lists each bad field. */
export function parseCall(method: string, args: unknown): { method: MethodName; args: unknown } {
  if (!Object.prototype.hasOwnProperty.call(METHODS, method)) throw new ContractError(`unknown method "${method}"`);
  const r = METHODS[method as MethodName].safeParse(args ?? {});
  if (!r.success) throw new ContractError(`invalid arguments for ${method}: ${r.error.issues.map((i) => `${i.path.join('.') || '(args)'}: ${i.message}`).join('; ')}`);
  return { method: method as MethodName, args: r.data };
}

export class ContractError extends Error {
  override readonly name = 'ContractError';
}

/** Largest request body the transports accept (a 5,000-node pipeline is ~2 MB). */
export const MAX_REQUEST_BYTES = 8 * 1024 * 1024;
