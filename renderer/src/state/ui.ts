/** View state: theme, which view is shown, canvas selection, open dialog, panels. */
import type { ParamField } from '../../../app/core/pipeline/node-types';
import { Store } from './store';

export type Theme = 'dark' | 'light';
export type View = 'canvas' | 'history';

export type FileDialogMode =
  | { mode: 'add'; at?: { x: number; y: number } }
  | { mode: 'pick'; nodeId: string; field: ParamField }
  | { mode: 'open' }
  | { mode: 'save' };

export type Dialog =
  | null
  | ({ kind: 'files' } & FileDialogMode)
  | { kind: 'importYaml' }
  | { kind: 'exportYaml'; nodeId: string; text: string }
  | { kind: 'help' };

export interface UiState {
  theme: Theme;
  view: View;
  selectedNodes: string[];
  selectedEdges: string[];
  dialog: Dialog;
  logOpen: boolean;
  /** History view: the run shown in detail, the runs ticked for comparison, and whether comparing. */
  historyRun: number | null;
  historyChecked: number[];
  comparing: boolean;
  /** Last folder browsed in the file dialog (per session). */
  lastDir: string | null;
}

const THEME_KEY = 'upcycle.theme';

function initialTheme(): Theme {
  const saved = localStorage.getItem(THEME_KEY);
  if (saved === 'dark' || saved === 'light') return saved;
  return window.matchMedia?.('(prefers-color-scheme: light)').matches ? 'light' : 'dark';
}

export const uiStore = new Store<UiState>({
  theme: initialTheme(),
  view: 'canvas',
  selectedNodes: [],
  selectedEdges: [],
  dialog: null,
  logOpen: true,
  historyRun: null,
  historyChecked: [],
  comparing: false,
  lastDir: localStorage.getItem('upcycle.lastDir'),
});

export function applyTheme(t: Theme): void {
  document.documentElement.dataset['theme'] = t;
  document.documentElement.style.colorScheme = t;
}

export function setTheme(t: Theme): void {
  localStorage.setItem(THEME_KEY, t);
  applyTheme(t);
  uiStore.set({ theme: t });
}

export function toggleTheme(): void {
  setTheme(uiStore.get().theme === 'dark' ? 'light' : 'dark');
}

export function openDialog(d: Dialog): void {
  uiStore.set({ dialog: d });
}

export function closeDialog(): void {
  uiStore.set({ dialog: null });
}

export function select(nodes: string[], edges: string[] = []): void {
  uiStore.set({ selectedNodes: nodes, selectedEdges: edges });
}

export function rememberDir(dir: string): void {
  localStorage.setItem('upcycle.lastDir', dir);
  uiStore.set({ lastDir: dir });
}

export function setView(view: View): void {
  uiStore.set({ view });
}
