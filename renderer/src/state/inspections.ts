/**
 * Header-only facts about checkpoint and adapter folders (`inspect`), cached by path. A folder that
 * cannot be read produces one actionable toast (what is wrong, which file, what to do).
 */
import { useEffect } from 'react';
import { api, ApiCallError } from '../api/client';
import type { Inspection } from '../api/types';
import { basename, errorMessage } from '../util/format';
import { Store, useStore } from './store';
import { toastError } from './toasts';

export type InspectionState =
  | { status: 'loading' }
  | { status: 'ok'; data: Inspection }
  | { status: 'error'; message: string; hint?: string; file?: string };

export const inspectionStore = new Store<{ byPath: Record<string, InspectionState> }>({ byPath: {} });

// One inspection at a time: each is a few milliseconds (headers only), and the engine records every
// inspected path in its recent list with a read-modify-write of one file, which parallel calls corrupt.
let chain: Promise<unknown> = Promise.resolve();

export function ensureInspection(path: string, force = false): void {
  if (!path) return;
  const cur = inspectionStore.get().byPath[path];
  if (cur && !force) return;
  setState(path, { status: 'loading' });
  const next = chain.then(() => api.inspect({ path }));
  chain = next.catch(() => undefined);
  next.then(
    (data) => setState(path, { status: 'ok', data }),
    (e: unknown) => {
      setState(path, { status: 'error', message: errorMessage(e), hint: e instanceof ApiCallError ? e.hint : undefined, file: e instanceof ApiCallError ? e.file : undefined });
      toastError(`Cannot read ${basename(path)}`, e, [{ label: 'Retry', run: () => ensureInspection(path, true) }]);
    },
  );
}

function setState(path: string, st: InspectionState): void {
  inspectionStore.set((s) => ({ byPath: { ...s.byPath, [path]: st } }));
}

/** The inspection of `path` (requested on first use). */
export function useInspection(path: string | undefined): InspectionState | undefined {
  const st = useStore(inspectionStore, (s) => (path ? s.byPath[path] : undefined));
  useEffect(() => {
    if (path) ensureInspection(path);
  }, [path]);
  return st;
}
