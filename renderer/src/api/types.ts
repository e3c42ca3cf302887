/**
 * What each service method returns (app/api/service.ts), as the renderer sees it after JSON. The
 * request side comes straight from the contract (app/api/contract.ts); results defined in app/core
 * are imported, the others restated here because their sources live in layers the renderer must not
 * import (io, store, runner).
 */
import type { Inspection } from '../../../app/core/inspection';
import type { MergeMethodInfo } from '../../../app/core/merge/types';
import type { NodeTypeDef } from '../../../app/core/pipeline/node-types';
import type { PipelineDoc } from '../../../app/core/pipeline/document';

export type { Inspection, MergeMethodInfo, NodeTypeDef, PipelineDoc };

export type DirEntryKind = 'dir' | 'model' | 'adapter' | 'dataset' | 'safetensors' | 'file';

export interface DirEntry {
  name: string;
  path: string;
  kind: DirEntryKind;
  size?: number;
}

export interface DirListing {
  path: string;
  parent: string | null;
  entries: DirEntry[];
}

export type RunStatus = 'running' | 'succeeded' | 'failed' | 'cancelled' | 'interrupted';

export interface RunRecord {
  id: number;
  name: string;
  kind: string;
  status: RunStatus;
  startedAt: number;
  finishedAt: number | null;
  pipeline: PipelineDoc | null;
  inputs: { path: string; hash?: string }[];
  params: Record<string, unknown>;
  /** nodeId → that node's metrics. */
  metrics: Record<string, Record<string, unknown>>;
  artefacts: Record<string, string>;
  error: string | null;
  pid: number | null;
}

export interface NodeRecord {
  runId: number;
  nodeId: string;
  type: string;
  status: RunStatus | 'cached' | 'pending';
  startedAt: number | null;
  finishedAt: number | null;
  metrics: Record<string, unknown>;
  artefact: string | null;
  cacheKey: string | null;
}

export interface LogRecord {
  at: number;
  nodeId: string | null;
  level: 'info' | 'warn' | 'error';
  message: string;
}

export interface SeriesPoint {
  step: number;
  value: unknown;
  nodeId: string | null;
}

export interface RunDetail {
  run: RunRecord;
  nodes: NodeRecord[];
  logs: LogRecord[];
  series: Record<'routing_accuracy' | 'expert_load' | 'diversity' | 'fitness', SeriesPoint[]>;
}

export interface CompareResult {
  runs: RunRecord[];
  diff: { key: string; values: unknown[] }[];
  metrics: RunRecord['metrics'][];
}

export interface ProviderInfo {
  name: string;
  available: boolean;
  note?: string;
}

/** Run events pushed by the engine (app/pipeline/runner.ts RunEvent). */
export type RunEvent =
  | { type: 'run'; runId: number; status: 'running' | 'succeeded' | 'failed' | 'cancelled'; error?: string }
  | { type: 'node'; runId: number; nodeId: string; status: 'running' | 'succeeded' | 'failed' | 'cached' | 'skipped'; metrics?: Record<string, unknown>; error?: string }
  | { type: 'progress'; runId: number; nodeId: string; phase: string; fraction: number; etaSeconds?: number | null; detail?: string }
  | { type: 'log'; runId: number; nodeId?: string; level: 'info' | 'warn' | 'error'; message: string };

/** Per-method results, checked against the contract's method list in client.ts. */
export interface Results {
  health: { ok: true; version: string; pid: number };
  nodeTypes: { nodeTypes: Record<string, NodeTypeDef>; mergeMethods: MergeMethodInfo[] };
  inspect: Inspection;
  listDir: DirListing;
  recent: string[];
  validateEdge: { ok: boolean; reason: string | null };
  runPipeline: { runId: number };
  cancelRun: { cancelled: boolean };
  listRuns: RunRecord[];
  getRun: RunDetail;
  compareRuns: CompareResult;
  savePipeline: { path: string };
  openPipeline: PipelineDoc;
  importYaml: PipelineDoc;
  exportYaml: { text: string };
  demoPipeline: PipelineDoc;
  autosave: { saved: boolean };
  loadAutosave: PipelineDoc | null;
  providers: ProviderInfo[];
}
