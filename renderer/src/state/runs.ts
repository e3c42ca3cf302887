/**
 * Runs started from this window: per-node status, progress (phase, fraction, ETA), results and the
 * live log. Engine events can arrive faster than the screen refreshes (a merge reports every tensor),
 * so they are queued and applied once per animation frame.
 */
import { api, client, type ConnectionState } from '../api/client';
import type { RunDetail, RunEvent } from '../api/types';
import { upstream } from '../../../app/core/pipeline/document';
import { missingInputs } from '../../../app/core/pipeline/node-types';
import { humanDuration } from '../util/format';
import { currentDoc } from './document';
import { Store } from './store';
import { toast, toastError } from './toasts';
import { select, uiStore } from './ui';

export type NodeRunStatus = 'queued' | 'running' | 'succeeded' | 'failed' | 'cached' | 'skipped' | 'cancelled' | 'interrupted' | 'pending';

export interface NodeRun {
  runId: number;
  status: NodeRunStatus;
  phase?: string;
  fraction?: number;
  eta?: number | null;
  detail?: string;
  metrics?: Record<string, unknown>;
  error?: string;
  startedAt?: number;
  finishedAt?: number;
}

export interface LogLine {
  id: number;
  at: number;
  runId: number;
  nodeId?: string;
  level: 'info' | 'warn' | 'error';
  message: string;
}

export interface ActiveRun {
  /** null until the engine has answered with the run's id. */
  runId: number | null;
  nodeId: string | null;
  startedAt: number;
  nodeIds: string[];
  cancelling?: boolean;
}

export interface RunsState {
  active: ActiveRun | null;
  nodes: Record<string, NodeRun>;
  logs: LogLine[];
  connection: ConnectionState;
  /** Bumped whenever a run ends (the history view refreshes). */
  finished: number;
}

export const runStore = new Store<RunsState>({ active: null, nodes: {}, logs: [], connection: 'connecting', finished: 0 });

const MAX_LOGS = 3000;
let logId = 1;
const ours = new Set<number>();
let early: RunEvent[] = [];
let queue: RunEvent[] = [];
let frame = 0;

export function startEventStream(): void {
  client.onEvent(onEvent);
  client.onConnection((c) => {
    const was = runStore.get().connection;
    runStore.set({ connection: c });
    if (c === 'open' && was === 'closed') void reconcile();
  });
}

function onEvent(e: RunEvent): void {
  const active = runStore.get().active;
  if (active && active.runId === null && !ours.has(e.runId)) {
    early.push(e); // our run's first events can beat the reply that tells us its id
    return;
  }
  if (!ours.has(e.runId)) return;
  queue.push(e);
  if (!frame) frame = requestAnimationFrame(flush);
}

function flush(): void {
  frame = 0;
  if (!queue.length) return;
  // A node that started (or reported progress) in this batch keeps its progress bar for at least
  // one frame: its end waits for the next flush, so fast nodes still show that they ran.
  const startedHere = new Set<string>();
  let cut = queue.length;
  for (let i = 0; i < queue.length; i++) {
    const e = queue[i]!;
    if (e.type === 'progress' || (e.type === 'node' && e.status === 'running')) startedHere.add(e.nodeId);
    else if (e.type === 'node' && startedHere.has(e.nodeId)) {
      cut = i;
      break;
    }
  }
  const events = queue.slice(0, cut);
  queue = queue.slice(cut);
  if (queue.length) frame = requestAnimationFrame(flush);
  const s = runStore.get();
  const nodes = { ...s.nodes };
  const logs: LogLine[] = [];
  let active = s.active;
  let finished = s.finished;
  for (const e of events) {
    switch (e.type) {
      case 'progress': {
        const prev = nodes[e.nodeId];
        nodes[e.nodeId] = { ...prev, runId: e.runId, status: 'running', phase: e.phase, fraction: e.fraction, eta: e.etaSeconds ?? null, detail: e.detail };
        break;
      }
      case 'node': {
        const prev = nodes[e.nodeId];
        const now = Date.now();
        if (e.status === 'running') nodes[e.nodeId] = { runId: e.runId, status: 'running', startedAt: now, phase: 'starting', fraction: 0 };
        else {
          // A node stopped by Cancel reports "failed" with the abort as its error.
          const cancelled = e.status === 'failed' && (!!active?.cancelling || /^(cancelled|aborted)$|operation was aborted/i.test(e.error ?? ''));
          nodes[e.nodeId] = { runId: e.runId, status: cancelled ? 'cancelled' : e.status, metrics: e.metrics ?? prev?.metrics, error: cancelled ? undefined : e.error, startedAt: prev?.startedAt, finishedAt: now };
        }
        break;
      }
      case 'log':
        logs.push({ id: logId++, at: Date.now(), runId: e.runId, nodeId: e.nodeId, level: e.level, message: e.message });
        break;
      case 'run':
        if (e.status === 'running' || !active || active.runId !== e.runId) break;
        for (const id of active.nodeIds) {
          const n = nodes[id];
          if (n && (n.status === 'queued' || n.status === 'running')) nodes[id] = { ...n, status: e.status === 'cancelled' ? 'cancelled' : 'skipped', fraction: undefined, phase: undefined };
        }
        announceEnd(e.runId, e.status, e.error, Date.now() - active.startedAt);
        active = null;
        finished++;
        break;
    }
  }
  runStore.set({ nodes, active, finished, logs: logs.length ? [...s.logs, ...logs].slice(-MAX_LOGS) : s.logs });
}

function announceEnd(runId: number, status: 'succeeded' | 'failed' | 'cancelled', error: string | undefined, ms: number): void {
  const openHistory = { label: 'Open in history', run: () => showRunInHistory(runId) };
  if (status === 'succeeded') toast({ kind: 'success', title: `Run #${runId} finished`, message: `in ${humanDuration(ms)}`, actions: [openHistory] });
  else if (status === 'cancelled') toast({ kind: 'info', title: `Run #${runId} cancelled` });
  else {
    const failedNode = Object.entries(runStore.get().nodes).find(([, n]) => n.runId === runId && n.status === 'failed')?.[0];
    toast({
      kind: 'error',
      title: `Run #${runId} failed`,
      message: error ?? 'see the log',
      details: JSON.stringify({ runId, status, error, node: failedNode }, null, 2),
      actions: [
        ...(failedNode ? [{ label: 'Select node', run: () => select([failedNode]) }] : []),
        { label: 'Show log', run: () => uiStore.set({ logOpen: true, view: 'canvas' }) },
        openHistory,
      ],
    });
  }
}

export function showRunInHistory(runId: number): void {
  uiStore.set({ view: 'history', historyRun: runId, comparing: false });
}

/** Runs the whole pipeline, or one node with what it depends on. */
export async function runPipeline(nodeId?: string): Promise<void> {
  if (runStore.get().active) {
    toast({ kind: 'info', title: 'A run is already in progress', message: 'cancel it first (Ctrl+Alt+Enter) or wait for it to finish' });
    return;
  }
  const doc = currentDoc();
  if (!doc.nodes.length) {
    toast({ kind: 'info', title: 'Nothing to run', message: 'add nodes from the palette or open a pipeline first' });
    return;
  }
  const involved = nodeId ? [...upstream(doc, nodeId)] : doc.nodes.map((n) => n.id);
  const blocked = involved.map((id) => ({ id, missing: missingInputs(doc, id) })).filter((x) => x.missing.length);
  if (blocked.length) {
    const first = blocked[0]!;
    const label = doc.nodes.find((n) => n.id === first.id)?.label ?? first.id;
    toast({
      kind: 'warn',
      title: `${label} needs its ${first.missing.join(', ')} input${first.missing.length > 1 ? 's' : ''} connected`,
      message: blocked.length > 1 ? `${blocked.length} nodes have unconnected inputs` : undefined,
      actions: [{ label: 'Select node', run: () => select(blocked.map((b) => b.id)) }],
    });
    return;
  }
  const nodes = { ...runStore.get().nodes };
  for (const id of involved) nodes[id] = { runId: -1, status: 'queued' };
  early = [];
  runStore.set({ active: { runId: null, nodeId: nodeId ?? null, startedAt: Date.now(), nodeIds: involved }, nodes });
  try {
    const { runId } = await api.runPipeline({ doc, ...(nodeId ? { nodeId } : {}) });
    ours.add(runId);
    runStore.set((s) => ({ active: s.active ? { ...s.active, runId } : null }));
    const mine = early.filter((e) => e.runId === runId);
    early = [];
    for (const e of mine) onEvent(e);
    if (runStore.get().connection !== 'open') void reconcile();
  } catch (e) {
    const s = runStore.get();
    const back = { ...s.nodes };
    for (const id of involved) if (back[id]?.status === 'queued') delete back[id];
    runStore.set({ active: null, nodes: back });
    toastError('The run could not start', e);
  }
}

export async function cancelRun(): Promise<void> {
  const a = runStore.get().active;
  if (!a || a.runId === null) return;
  runStore.set({ active: { ...a, cancelling: true } });
  try {
    await api.cancelRun({ runId: a.runId });
  } catch (e) {
    toastError('Cancel failed', e);
  }
}

/** After a reconnect: events may have been missed, so ask the history how the active run is doing. */
async function reconcile(): Promise<void> {
  const a = runStore.get().active;
  if (!a || a.runId === null) return;
  try {
    const d = await api.getRun({ id: a.runId });
    if (d.run.status === 'running') return;
    applyRunDetail(d);
    const s = runStore.get();
    announceEnd(d.run.id, d.run.status === 'succeeded' ? 'succeeded' : d.run.status === 'cancelled' ? 'cancelled' : 'failed', d.run.error ?? undefined, (d.run.finishedAt ?? Date.now()) - d.run.startedAt);
    runStore.set({ active: null, finished: s.finished + 1 });
  } catch {
    // still offline; the next reconnect tries again
  }
}

/** Shows a recorded run's node results on the canvas (re-opened runs, reconciliation). */
export function applyRunDetail(d: RunDetail): void {
  const nodes: Record<string, NodeRun> = {};
  for (const n of d.nodes) {
    nodes[n.nodeId] = { runId: d.run.id, status: n.status === 'running' ? 'interrupted' : n.status, metrics: n.metrics, startedAt: n.startedAt ?? undefined, finishedAt: n.finishedAt ?? undefined };
  }
  const failed = d.nodes.find((n) => n.status === 'failed');
  if (failed && d.run.error) nodes[failed.nodeId] = { ...nodes[failed.nodeId]!, error: d.run.error };
  runStore.set({ nodes });
}

export function clearResults(): void {
  runStore.set({ nodes: {} });
}

export function clearLogs(): void {
  runStore.set({ logs: [] });
}
