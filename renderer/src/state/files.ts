/**
 * Pipeline files and mergekit YAML: open, save (Ctrl+S to the current file, else ask where), import a
 * mergekit / mergekit-moe YAML onto the canvas, export a merge or MoE node as YAML. First launch opens
 * the autosave, else the demo pipeline.
 */
import { api } from '../api/client';
import { canvas } from '../canvas/controller';
import type { PipelineDoc } from '../api/types';
import { basename, dirname } from '../util/format';
import { autosaveNow, currentDoc, docStore, loadDoc, markSaved } from './document';
import { insertDoc } from './edit';
import { clearResults } from './runs';
import { toast, toastError } from './toasts';
import { openDialog, rememberDir, uiStore } from './ui';

export async function startup(): Promise<void> {
  try {
    const saved = await api.loadAutosave({});
    if (saved) {
      loadDoc(saved, { autosave: false });
      return;
    }
  } catch (e) {
    toastError('The autosaved pipeline could not be restored', e);
  }
  try {
    loadDoc(await api.demoPipeline({}));
  } catch (e) {
    loadDoc({ version: 2, name: 'Untitled pipeline', nodes: [], edges: [] }, { autosave: false });
    toastError('The demo pipeline could not be loaded', e);
  }
}

export async function openPipelineFile(path: string): Promise<boolean> {
  try {
    const doc = await api.openPipeline({ path });
    loadDoc(doc, { filePath: path });
    clearResults();
    rememberDir(dirname(path));
    toast({ kind: 'success', title: `Opened ${basename(path)}`, message: `${doc.nodes.length} nodes` });
    return true;
  } catch (e) {
    toastError(`Cannot open ${basename(path)}`, e);
    return false;
  }
}

export async function savePipelineFile(path: string): Promise<boolean> {
  const p = /\.json$/i.test(path) ? path : `${path}.json`;
  try {
    await api.savePipeline({ path: p, doc: currentDoc() });
    markSaved(p);
    rememberDir(dirname(p));
    toast({ kind: 'success', title: `Saved ${basename(p)}`, message: dirname(p) });
    void autosaveNow();
    return true;
  } catch (e) {
    toastError(`Cannot save ${basename(p)}`, e);
    return false;
  }
}

export function save(): void {
  const path = docStore.get().filePath;
  if (path) void savePipelineFile(path);
  else openDialog({ kind: 'files', mode: 'save' });
}

export function saveAs(): void {
  openDialog({ kind: 'files', mode: 'save' });
}

export function open(): void {
  openDialog({ kind: 'files', mode: 'open' });
}

export function newPipeline(): void {
  loadDoc({ version: 2, name: 'Untitled pipeline', nodes: [], edges: [] });
  clearResults();
}

export async function loadDemo(): Promise<void> {
  try {
    loadDoc(await api.demoPipeline({}));
    clearResults();
  } catch (e) {
    toastError('The demo pipeline could not be loaded', e);
  }
}

/** Imports mergekit YAML; returns an error message for the dialog, or null on success. */
export async function importYaml(text: string, baseDir?: string): Promise<string | null> {
  let doc: PipelineDoc;
  try {
    doc = await api.importYaml({ text, ...(baseDir ? { baseDir } : {}) });
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  }
  const ids = insertDoc(doc);
  // Imported positions are a rough grid; make room once the new nodes have been measured.
  window.setTimeout(() => {
    canvas()?.tidy(true);
    canvas()?.fitView();
  }, 120);
  toast({ kind: 'success', title: 'Imported the mergekit YAML', message: `${doc.name}: ${ids.length} nodes added` });
  return null;
}

export async function exportYaml(nodeId?: string): Promise<void> {
  const doc = currentDoc();
  const id = nodeId ?? uiStore.get().selectedNodes.find((x) => ['merge', 'moe'].includes(doc.nodes.find((n) => n.id === x)?.type ?? ''));
  if (!id) {
    toast({ kind: 'info', title: 'Select a Merge or MoE node to export its mergekit YAML' });
    return;
  }
  try {
    const { text } = await api.exportYaml({ doc, nodeId: id });
    openDialog({ kind: 'exportYaml', nodeId: id, text });
  } catch (e) {
    toastError('Cannot export this node as YAML', e);
  }
}
