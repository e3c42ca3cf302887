/**
 * The open pipeline document. Every edit is a pure Change (app/core/pipeline/changes.ts) applied
 * through History, so undo/redo, autosave and the canvas all see the same document. Autosave is
 * debounced; `saveState` drives the indicator in the top bar.
 */
import { api } from '../api/client';
import type { PipelineDoc } from '../api/types';
import { History, type Change } from '../../../app/core/pipeline/changes';
import { paramDefaults } from '../../../app/core/pipeline/node-types';
import type { PipelineNode } from '../../../app/core/pipeline/document';
import { errorMessage } from '../util/format';
import { Store } from './store';
import { toast, toastError } from './toasts';

export type SaveState = 'saved' | 'saving' | 'pending' | 'error';

export interface DocState {
  doc: PipelineDoc;
  canUndo: boolean;
  canRedo: boolean;
  /** The pipeline file this document was opened from or saved to. */
  filePath: string | null;
  /** Autosave state. */
  saveState: SaveState;
  /** Edits since the last save to `filePath`. */
  dirty: boolean;
  /** Bumped by every edit. */
  revision: number;
  /** Bumped when another document is loaded (the canvas fits it in view). */
  generation: number;
}

const EMPTY: PipelineDoc = { version: 2, name: 'Untitled pipeline', nodes: [], edges: [] };

let history = new History(EMPTY, 300);
export const docStore = new Store<DocState>({ doc: EMPTY, canUndo: false, canRedo: false, filePath: null, saveState: 'saved', dirty: false, revision: 0, generation: 0 });

let loaded = false;
let autosaveTimer: number | undefined;
const AUTOSAVE_MS = 700;

function publish(dirty = true): void {
  const s = docStore.get();
  // One store update per edit (with the autosave state): every subscriber's selector runs once, not twice.
  docStore.set({ doc: history.doc, canUndo: history.canUndo, canRedo: history.canRedo, revision: s.revision + 1, dirty: dirty || s.dirty, ...(loaded ? { saveState: 'pending' as const } : {}) });
  scheduleAutosave(false);
}

function scheduleAutosave(announce = true): void {
  if (!loaded) return;
  window.clearTimeout(autosaveTimer);
  if (announce) docStore.set({ saveState: 'pending' });
  autosaveTimer = window.setTimeout(() => void autosaveNow(), AUTOSAVE_MS);
}

export async function autosaveNow(): Promise<void> {
  window.clearTimeout(autosaveTimer);
  const rev = docStore.get().revision;
  docStore.set({ saveState: 'saving' });
  try {
    await api.autosave({ doc: history.doc });
    if (docStore.get().revision === rev) docStore.set({ saveState: 'saved' });
  } catch (e) {
    docStore.set({ saveState: 'error' });
    toastError('Autosave failed', e, [{ label: 'Retry', run: () => void autosaveNow() }]);
  }
}

/** Applies one edit (undoable). Returns false, with a toast, if the edit does not apply. */
export function apply(change: Change): boolean {
  try {
    history.apply(change);
  } catch (e) {
    toast({ kind: 'warn', title: 'That edit could not be applied', message: errorMessage(e) });
    return false;
  }
  publish();
  return true;
}

export function undo(): void {
  if (!history.canUndo) return;
  history.undo();
  publish();
}

export function redo(): void {
  if (!history.canRedo) return;
  history.redo();
  publish();
}

/** Replaces the document (open, demo, re-open a run). Starts a fresh undo history. */
export function loadDoc(doc: PipelineDoc, opts: { filePath?: string | null; autosave?: boolean } = {}): void {
  history = new History(doc, 300);
  loaded = true;
  const s = docStore.get();
  docStore.set({ doc, canUndo: false, canRedo: false, filePath: opts.filePath ?? null, dirty: false, revision: s.revision + 1, generation: s.generation + 1, saveState: 'saved' });
  if (opts.autosave !== false) scheduleAutosave();
}

export function markSaved(filePath: string): void {
  docStore.set({ filePath, dirty: false });
}

export function currentDoc(): PipelineDoc {
  return history.doc;
}

/** A node id not used in `doc`, readable: "merge", "merge-2", … or a slug of a file name. */
export function uniqueNodeId(doc: PipelineDoc, base: string, taken: Set<string> = new Set()): string {
  const slug = base.toLowerCase().replace(/[^a-z0-9._-]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 48) || 'node';
  const used = (id: string) => taken.has(id) || doc.nodes.some((n) => n.id === id);
  if (!used(slug)) return slug;
  for (let i = 2; ; i++) if (!used(`${slug}-${i}`)) return `${slug}-${i}`;
}

/** A new node of `type` with its defaults (and `params` on top). */
export function newNode(type: string, position: { x: number; y: number }, params: Record<string, unknown> = {}, label?: string): PipelineNode {
  const doc = history.doc;
  const id = uniqueNodeId(doc, label ?? type);
  return { id, type, position: { x: Math.round(position.x), y: Math.round(position.y) }, params: { ...paramDefaults(type), ...params }, ...(label ? { label } : {}) };
}

export function edgeId(e: { source: string; sourcePort: string; target: string; targetPort: string }): string {
  return `${e.source}.${e.sourcePort}->${e.target}.${e.targetPort}`;
}
