/**
 * A minimal observable store for React (useSyncExternalStore). Components select the slice they need;
 * a slice whose reference did not change does not re-render its component, which keeps a 300-node
 * canvas cheap while progress events stream in.
 */
import { useSyncExternalStore } from 'react';

export class Store<T extends object> {
  private readonly listeners = new Set<() => void>();

  constructor(private state: T) {}

  readonly get = (): T => this.state;

  readonly set = (patch: Partial<T> | ((s: T) => Partial<T>)): void => {
    const p = typeof patch === 'function' ? patch(this.state) : patch;
    this.state = { ...this.state, ...p };
    for (const l of this.listeners) l();
  };

  readonly subscribe = (l: () => void): (() => void) => {
    this.listeners.add(l);
    return () => {
      this.listeners.delete(l);
    };
  };
}

/** The selected slice of a store; re-renders only when that slice changes (by reference). */
export function useStore<T extends object, U>(store: Store<T>, select: (s: T) => U): U {
  return useSyncExternalStore(store.subscribe, () => select(store.get()));
}
