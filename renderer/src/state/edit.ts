/**
 * Canvas edits built from Change objects: add nodes (from the palette or from files), delete,
 * copy / paste / duplicate, insert a whole imported pipeline. Each user action is one undo step.
 */
import { api } from '../api/client';
import { canvas } from '../canvas/controller';
import type { PipelineDoc } from '../api/types';
import type { Change } from '../../../app/core/pipeline/changes';
import type { PipelineEdge, PipelineNode } from '../../../app/core/pipeline/document';
import { basename } from '../util/format';
import { apply, currentDoc, edgeId, newNode, uniqueNodeId } from './document';
import { toast, toastError } from './toasts';
import { select, uiStore } from './ui';

/** The nearest place at or below `at` where a new node does not land on top of another. */
export function freeSpot(at: { x: number; y: number }): { x: number; y: number } {
  const c = canvas();
  if (c) return c.freeSpot(at);
  const nodes = currentDoc().nodes;
  const p = { ...at };
  for (let i = 0; i < 200 && nodes.some((n) => Math.abs(n.position.x - p.x) < 240 && Math.abs(n.position.y - p.y) < 160); i++) p.y += 40;
  return p;
}

export function addNode(type: string, at: { x: number; y: number }, params: Record<string, unknown> = {}, label?: string): string | null {
  const node = newNode(type, freeSpot(at), params, label);
  if (!apply({ type: 'addNode', node })) return null;
  select([node.id]);
  return node.id;
}

/** Node type for a file or folder: checkpoint, adapter or dataset (asks the engine about folders). */
export async function nodeTypeForPath(path: string, kindHint?: string): Promise<'checkpoint' | 'adapter' | 'dataset'> {
  if (kindHint === 'model' || kindHint === 'safetensors') return 'checkpoint';
  if (kindHint === 'adapter') return 'adapter';
  if (kindHint === 'dataset' || /\.jsonl$/i.test(path)) return 'dataset';
  const ins = await api.inspect({ path });
  return ins.kind === 'adapter' ? 'adapter' : 'checkpoint';
}

/** Adds a node for a model folder, adapter folder or dataset file. */
export async function addPath(path: string, at: { x: number; y: number }, kindHint?: string): Promise<string | null> {
  let type: 'checkpoint' | 'adapter' | 'dataset';
  try {
    type = await nodeTypeForPath(path, kindHint);
  } catch (e) {
    toastError(`${basename(path)} cannot be added`, e);
    return null;
  }
  return addNode(type, at, { path }, basename(path));
}

export function deleteSelection(): void {
  const { selectedNodes, selectedEdges } = uiStore.get();
  const doc = currentDoc();
  const nodes = new Set(selectedNodes.filter((id) => doc.nodes.some((n) => n.id === id)));
  const changes: Change[] = [];
  // Edges first (those not removed with their node), then nodes.
  for (const id of selectedEdges) {
    const e = doc.edges.find((x) => x.id === id);
    if (e && !nodes.has(e.source) && !nodes.has(e.target)) changes.push({ type: 'disconnect', id });
  }
  for (const id of nodes) changes.push({ type: 'removeNode', id });
  if (!changes.length) return;
  if (apply(changes.length === 1 ? changes[0]! : { type: 'batch', changes })) select([]);
}

interface Clip {
  nodes: PipelineNode[];
  edges: PipelineEdge[];
}

let clipboard: Clip | null = null;
let pasteCount = 0;
const CLIP_MIME = 'upcycle-studio/nodes';

export function copySelection(): void {
  const doc = currentDoc();
  const ids = new Set(uiStore.get().selectedNodes);
  if (!ids.size) return;
  const nodes = doc.nodes.filter((n) => ids.has(n.id));
  const edges = doc.edges.filter((e) => ids.has(e.source) && ids.has(e.target));
  clipboard = { nodes, edges };
  pasteCount = 0;
  // Also on the system clipboard, as JSON (best effort: the page may not be allowed).
  void navigator.clipboard?.writeText(JSON.stringify({ [CLIP_MIME]: clipboard })).catch(() => undefined);
  toast({ kind: 'info', title: `Copied ${nodes.length} node${nodes.length === 1 ? '' : 's'}` });
}

export async function paste(): Promise<void> {
  let clip = clipboard;
  if (!clip) {
    try {
      const text = await navigator.clipboard.readText();
      const parsed = JSON.parse(text) as Record<string, Clip>;
      clip = parsed[CLIP_MIME] ?? null;
    } catch {
      clip = null;
    }
  }
  if (!clip || !clip.nodes.length) return;
  pasteCount++;
  insertNodes(clip.nodes, clip.edges, { dx: 40 * pasteCount, dy: 40 * pasteCount });
}

export function duplicateSelection(): void {
  const doc = currentDoc();
  const ids = new Set(uiStore.get().selectedNodes);
  if (!ids.size) return;
  insertNodes(doc.nodes.filter((n) => ids.has(n.id)), doc.edges.filter((e) => ids.has(e.source) && ids.has(e.target)), { dx: 40, dy: 40 });
}

/** Inserts nodes and the edges among them under fresh ids, offset, as one undo step; selects them. */
export function insertNodes(nodes: PipelineNode[], edges: PipelineEdge[], offset: { dx: number; dy: number }): string[] {
  const doc = currentDoc();
  const taken = new Set<string>();
  const map = new Map<string, string>();
  for (const n of nodes) {
    const id = uniqueNodeId(doc, n.id, taken);
    taken.add(id);
    map.set(n.id, id);
  }
  const changes: Change[] = nodes.map((n) => ({ type: 'addNode', node: { ...n, id: map.get(n.id)!, position: { x: Math.round(n.position.x + offset.dx), y: Math.round(n.position.y + offset.dy) }, params: structuredClone(n.params) } }));
  for (const e of edges) {
    const ne = { ...e, source: map.get(e.source)!, target: map.get(e.target)! };
    if (!ne.source || !ne.target) continue;
    changes.push({ type: 'connect', edge: { ...ne, id: edgeId(ne) } });
  }
  if (!apply({ type: 'batch', changes })) return [];
  const ids = [...map.values()];
  select(ids);
  return ids;
}

/** Inserts an imported pipeline beside what is on the canvas. */
export function insertDoc(imported: PipelineDoc): string[] {
  const doc = currentDoc();
  const right = doc.nodes.length ? Math.max(...doc.nodes.map((n) => n.position.x)) + 360 : 0;
  const top = doc.nodes.length ? Math.min(...doc.nodes.map((n) => n.position.y)) : 0;
  const left = imported.nodes.length ? Math.min(...imported.nodes.map((n) => n.position.x)) : 0;
  const itop = imported.nodes.length ? Math.min(...imported.nodes.map((n) => n.position.y)) : 0;
  return insertNodes(imported.nodes, imported.edges, { dx: right - left, dy: top - itop });
}

export function selectAll(): void {
  const doc = currentDoc();
  select(doc.nodes.map((n) => n.id), doc.edges.map((e) => e.id));
}

export function setParam(id: string, key: string, value: unknown): void {
  const node = currentDoc().nodes.find((n) => n.id === id);
  if (!node) return;
  if (JSON.stringify(node.params[key]) === JSON.stringify(value)) return;
  apply({ type: 'setParam', id, key, value });
}

export function setLabel(id: string, label: string): void {
  const node = currentDoc().nodes.find((n) => n.id === id);
  const next = label.trim() || undefined;
  if (!node || node.label === next) return;
  apply({ type: 'setLabel', id, label: next });
}

export function renameDoc(name: string): void {
  const n = name.trim();
  if (!n || n === currentDoc().name) return;
  apply({ type: 'rename', name: n.slice(0, 200) });
}
