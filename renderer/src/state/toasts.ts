/**
 * Notifications: what happened, why, and what to do next. Errors stay until dismissed and can copy
 * their details (method, code, file, hint) for a bug report; others fade after a few seconds.
 */
import { ApiCallError } from '../api/client';
import { errorMessage } from '../util/format';
import { Store } from './store';

export type ToastKind = 'error' | 'warn' | 'info' | 'success';

export interface ToastAction {
  label: string;
  run: () => void;
}

export interface Toast {
  id: number;
  kind: ToastKind;
  title: string;
  message?: string;
  hint?: string;
  file?: string;
  details?: string;
  actions?: ToastAction[];
}

export const toastStore = new Store<{ toasts: Toast[] }>({ toasts: [] });

let nextId = 1;
const LIFETIME: Record<ToastKind, number> = { error: 0, warn: 9000, info: 4000, success: 4000 };

export function toast(t: Omit<Toast, 'id'>): number {
  const id = nextId++;
  // Same title and message twice in a row: keep one.
  const last = toastStore.get().toasts.at(-1);
  if (last && last.title === t.title && last.message === t.message) return last.id;
  toastStore.set((s) => ({ toasts: [...s.toasts, { ...t, id }].slice(-6) }));
  const life = LIFETIME[t.kind];
  if (life) window.setTimeout(() => dismiss(id), life);
  return id;
}

export function dismiss(id: number): void {
  toastStore.set((s) => ({ toasts: s.toasts.filter((t) => t.id !== id) }));
}

/** An error toast from anything thrown, with the engine's hint and file when it gave them. */
export function toastError(title: string, e: unknown, actions?: ToastAction[]): number {
  if (e instanceof ApiCallError) {
    return toast({ kind: 'error', title, message: e.message, hint: e.hint, file: e.file, details: e.details(), actions });
  }
  const message = errorMessage(e);
  return toast({ kind: 'error', title, message, details: JSON.stringify({ title, message, stack: e instanceof Error ? e.stack : undefined }, null, 2), actions });
}
