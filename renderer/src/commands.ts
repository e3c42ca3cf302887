/**
 * Every keyboard shortcut as a registered command: keys, label, group and what it does. The key
 * handler and the help overlay (?) both read this list, so they cannot disagree.
 */
import { canvas } from './canvas/controller';
import { currentDoc, redo, undo } from './state/document';
import { copySelection, deleteSelection, duplicateSelection, paste, selectAll } from './state/edit';
import { exportYaml, open, save, saveAs } from './state/files';
import { cancelRun, runPipeline, runStore } from './state/runs';
import { closeDialog, openDialog, select, setView, toggleTheme, uiStore } from './state/ui';

export interface Command {
  id: string;
  label: string;
  group: 'Run' | 'Edit' | 'File' | 'View';
  /** Shown in the help overlay, e.g. "Ctrl+Shift+Z". */
  keys: string[];
  /** Key-event test. `mod` is Ctrl, or ⌘ on macOS. */
  match: (e: KeyboardEvent, mod: boolean) => boolean;
  run: () => void;
  /** Only while the canvas is the current view. */
  canvasOnly?: boolean;
  /** Also while typing in a field. */
  inFields?: boolean;
}

const k = (e: KeyboardEvent) => e.key.toLowerCase();
const plain = (e: KeyboardEvent) => !e.ctrlKey && !e.metaKey && !e.altKey;

function selectedRunnable(): string | undefined {
  return uiStore.get().selectedNodes[0];
}

export const COMMANDS: Command[] = [
  { id: 'run', label: 'Run pipeline', group: 'Run', keys: ['Ctrl+Enter'], match: (e, m) => m && !e.shiftKey && !e.altKey && e.key === 'Enter', run: () => void runPipeline(), inFields: true },
  { id: 'runNode', label: 'Run selected node (and what it needs)', group: 'Run', keys: ['Ctrl+Shift+Enter'], match: (e, m) => m && e.shiftKey && !e.altKey && e.key === 'Enter', run: () => { const id = selectedRunnable(); if (id) void runPipeline(id); }, inFields: true },
  { id: 'cancel', label: 'Cancel the run', group: 'Run', keys: ['Ctrl+Alt+Enter'], match: (e, m) => m && e.altKey && e.key === 'Enter', run: () => void cancelRun(), inFields: true },

  { id: 'undo', label: 'Undo', group: 'Edit', keys: ['Ctrl+Z'], match: (e, m) => m && !e.shiftKey && k(e) === 'z', run: undo, canvasOnly: true },
  { id: 'redo', label: 'Redo', group: 'Edit', keys: ['Ctrl+Shift+Z', 'Ctrl+Y'], match: (e, m) => m && ((e.shiftKey && k(e) === 'z') || (!e.shiftKey && k(e) === 'y')), run: redo, canvasOnly: true },
  { id: 'copy', label: 'Copy selected nodes', group: 'Edit', keys: ['Ctrl+C'], match: (e, m) => m && !e.shiftKey && k(e) === 'c', run: copySelection, canvasOnly: true },
  { id: 'paste', label: 'Paste', group: 'Edit', keys: ['Ctrl+V'], match: (e, m) => m && !e.shiftKey && k(e) === 'v', run: () => void paste(), canvasOnly: true },
  { id: 'duplicate', label: 'Duplicate selected nodes', group: 'Edit', keys: ['Ctrl+D'], match: (e, m) => m && !e.shiftKey && k(e) === 'd', run: duplicateSelection, canvasOnly: true },
  { id: 'selectAll', label: 'Select all', group: 'Edit', keys: ['Ctrl+A'], match: (e, m) => m && !e.shiftKey && k(e) === 'a', run: selectAll, canvasOnly: true },
  { id: 'delete', label: 'Delete selection', group: 'Edit', keys: ['Delete', 'Backspace'], match: (e) => plain(e) && (e.key === 'Delete' || e.key === 'Backspace'), run: deleteSelection, canvasOnly: true },
  { id: 'addFiles', label: 'Add checkpoints, adapters or datasets…', group: 'Edit', keys: ['A'], match: (e) => plain(e) && !e.shiftKey && k(e) === 'a', run: () => openDialog({ kind: 'files', mode: 'add' }), canvasOnly: true },

  { id: 'save', label: 'Save pipeline', group: 'File', keys: ['Ctrl+S'], match: (e, m) => m && !e.shiftKey && k(e) === 's', run: save, inFields: true },
  { id: 'saveAs', label: 'Save pipeline as…', group: 'File', keys: ['Ctrl+Shift+S'], match: (e, m) => m && e.shiftKey && k(e) === 's', run: saveAs, inFields: true },
  { id: 'open', label: 'Open pipeline…', group: 'File', keys: ['Ctrl+O'], match: (e, m) => m && !e.shiftKey && k(e) === 'o', run: open, inFields: true },
  { id: 'importYaml', label: 'Import mergekit YAML…', group: 'File', keys: ['Ctrl+I'], match: (e, m) => m && !e.shiftKey && k(e) === 'i', run: () => openDialog({ kind: 'importYaml' }) },
  { id: 'exportYaml', label: 'Export selected Merge/MoE as YAML', group: 'File', keys: ['Ctrl+E'], match: (e, m) => m && !e.shiftKey && k(e) === 'e', run: () => void exportYaml(), canvasOnly: true },

  { id: 'fit', label: 'Fit the pipeline in view', group: 'View', keys: ['F'], match: (e) => plain(e) && k(e) === 'f', run: () => canvas()?.fitView(), canvasOnly: true },
  { id: 'tidy', label: 'Move overlapping nodes apart', group: 'View', keys: ['Shift+T'], match: (e) => !e.ctrlKey && !e.metaKey && !e.altKey && e.shiftKey && k(e) === 't', run: () => canvas()?.tidy(), canvasOnly: true },
  { id: 'log', label: 'Show / hide the log', group: 'View', keys: ['L'], match: (e) => plain(e) && k(e) === 'l', run: () => uiStore.set((s) => ({ logOpen: !s.logOpen })) },
  { id: 'theme', label: 'Dark / light theme', group: 'View', keys: ['T'], match: (e) => plain(e) && !e.shiftKey && k(e) === 't', run: toggleTheme },
  { id: 'canvas', label: 'Canvas', group: 'View', keys: ['1'], match: (e) => plain(e) && e.key === '1', run: () => setView('canvas') },
  { id: 'history', label: 'Run history', group: 'View', keys: ['2'], match: (e) => plain(e) && e.key === '2', run: () => setView('history') },
  { id: 'help', label: 'Keyboard shortcuts', group: 'View', keys: ['?'], match: (e) => !e.ctrlKey && !e.metaKey && e.key === '?', run: () => openDialog({ kind: 'help' }) },
  { id: 'escape', label: 'Close dialog / clear selection', group: 'View', keys: ['Esc'], match: (e) => e.key === 'Escape', run: () => (uiStore.get().dialog ? closeDialog() : select([])), inFields: true },
];

function inField(t: EventTarget | null): boolean {
  const el = t as HTMLElement | null;
  if (!el || !el.tagName) return false;
  return el.isContentEditable || ['INPUT', 'TEXTAREA', 'SELECT'].includes(el.tagName);
}

const isMac = /Mac|iPhone|iPad/.test(navigator.platform);

/** The window's keydown handler. */
export function handleKey(e: KeyboardEvent): void {
  const mod = isMac ? e.metaKey : e.ctrlKey;
  const typing = inField(e.target);
  const ui = uiStore.get();
  for (const c of COMMANDS) {
    if (!c.match(e, mod)) continue;
    if (typing && !c.inFields) return; // the field keeps its own undo, copy, delete…
    // While a dialog is open only Escape and the file commands it does not shadow get through.
    if (ui.dialog && c.id !== 'escape') return;
    if (c.canvasOnly && ui.view !== 'canvas') return;
    if (c.id === 'escape' && typing && !ui.dialog) return;
    e.preventDefault();
    c.run();
    return;
  }
}

export function shortcutFor(id: string): string {
  return COMMANDS.find((c) => c.id === id)?.keys[0]?.replace('Ctrl', isMac ? '⌘' : 'Ctrl') ?? '';
}

/** True when there is something on the canvas to act on (buttons' disabled state). */
export function hasNodes(): boolean {
  return currentDoc().nodes.length > 0;
}

export function runActive(): boolean {
  return !!runStore.get().active;
}
