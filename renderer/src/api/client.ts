/**
 * The renderer's one door to the engine: every contract method as a typed async function, over
 * either transport —
 *  - Electron: the preload's `window.upcycle.call(method, args)` / `window.upcycle.onEvent(cb)`;
 *  - server mode: POST /api/call/<method> with the per-launch bearer token, and a WebSocket of run
 *    events (/api/events?token=…) that reconnects with back-off.
 * The token arrives once in the page URL (?token=…); it is moved to sessionStorage and removed from
 * the address bar so it does not end up in bookmarks, screenshots or the history.
 */
import type { ApiError, ApiResponse, MethodArgs, MethodName } from '../../../app/api/contract';
import type { Results, RunEvent } from './types';

export type { ApiError };

/** What the Electron preload exposes (contextBridge), if present. */
export interface PreloadApi {
  call(method: string, args: unknown): Promise<ApiResponse>;
  onEvent(cb: (e: RunEvent) => void): () => void;
  /** Optional: the absolute path of a dropped OS file (webUtils.getPathForFile). */
  pathForFile?(file: File): string;
}

declare global {
  interface Window {
    upcycle?: PreloadApi;
  }
}

/** A failed call, with the engine's file / hint / code when it gave them. */
export class ApiCallError extends Error {
  override readonly name = 'ApiCallError';
  readonly code?: string;
  readonly file?: string;
  readonly hint?: string;
  constructor(readonly method: string, readonly error: ApiError, readonly status?: number) {
    super(error.message);
    this.code = error.code;
    this.file = error.file;
    this.hint = error.hint;
  }
  /** Everything a bug report needs, as text. */
  details(): string {
    return JSON.stringify({ method: this.method, status: this.status, ...this.error }, null, 2);
  }
}

export type ConnectionState = 'connecting' | 'open' | 'closed' | 'unauthorized';

export type Api = { [M in MethodName]: (args: MethodArgs<M>) => Promise<Results[M]> };

// Every contract method has a result type (compile-time check both ways).
type _Covered = [MethodName] extends [keyof Results] ? ([keyof Results] extends [MethodName] ? true : never) : never;
const _covered: _Covered = true;
void _covered;

const TOKEN_KEY = 'upcycle.token';

/** Takes ?token= from the address bar (then hides it), else the one kept for this tab. */
export function takeToken(): string | null {
  const url = new URL(window.location.href);
  const fromUrl = url.searchParams.get('token');
  if (fromUrl) {
    sessionStorage.setItem(TOKEN_KEY, fromUrl);
    url.searchParams.delete('token');
    window.history.replaceState(window.history.state, '', url.pathname + (url.search === '?' ? '' : url.search) + url.hash);
    return fromUrl;
  }
  return sessionStorage.getItem(TOKEN_KEY);
}

interface Transport {
  call(method: MethodName, args: unknown): Promise<unknown>;
  onEvent(cb: (e: RunEvent) => void): () => void;
  onConnection(cb: (s: ConnectionState) => void): () => void;
  readonly kind: 'electron' | 'http';
}

function unwrap(method: string, r: ApiResponse, status?: number): unknown {
  if (r.ok) return r.result;
  throw new ApiCallError(method, r.error, status);
}

function electronTransport(p: PreloadApi): Transport {
  return {
    kind: 'electron',
    call: async (method, args) => unwrap(method, await p.call(method, args)),
    onEvent: (cb) => p.onEvent(cb),
    onConnection: (cb) => {
      cb('open');
      return () => undefined;
    },
  };
}

function httpTransport(token: string | null): Transport {
  const eventListeners = new Set<(e: RunEvent) => void>();
  const connListeners = new Set<(s: ConnectionState) => void>();
  let state: ConnectionState = 'connecting';
  let ws: WebSocket | null = null;
  let delay = 500;
  const setState = (s: ConnectionState) => {
    state = s;
    for (const l of connListeners) l(s);
  };
  const connect = () => {
    if (!token) return setState('unauthorized');
    const proto = window.location.protocol === 'https:' ? 'wss' : 'ws';
    const sock = new WebSocket(`${proto}://${window.location.host}/api/events?token=${encodeURIComponent(token)}`);
    ws = sock;
    sock.onopen = () => {
      delay = 500;
      setState('open');
    };
    sock.onmessage = (m) => {
      let e: RunEvent;
      try {
        e = JSON.parse(String(m.data)) as RunEvent;
      } catch {
        return;
      }
      for (const l of eventListeners) l(e);
    };
    sock.onclose = () => {
      if (ws !== sock) return;
      ws = null;
      if (state !== 'unauthorized') setState('closed');
      window.setTimeout(connect, delay);
      delay = Math.min(delay * 2, 8000);
    };
  };
  connect();
  return {
    kind: 'http',
    async call(method, args) {
      if (!token) throw new ApiCallError(method, { message: 'no access token: open the address printed by `upcycle serve` (it ends in ?token=…)', code: 'NO_TOKEN' }, 401);
      let res: Response;
      try {
        res = await fetch(`${window.location.origin}/api/call/${method}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
          body: JSON.stringify(args ?? {}),
        });
      } catch (e) {
        throw new ApiCallError(method, { message: `the engine is not reachable (${e instanceof Error ? e.message : String(e)})`, code: 'OFFLINE', hint: 'is `upcycle serve` still running?' });
      }
      if (res.status === 401) setState('unauthorized');
      let body: ApiResponse;
      try {
        body = (await res.json()) as ApiResponse;
      } catch {
        throw new ApiCallError(method, { message: `unexpected reply (HTTP ${res.status})`, code: 'BAD_REPLY' }, res.status);
      }
      return unwrap(method, body, res.status);
    },
    onEvent(cb) {
      eventListeners.add(cb);
      return () => eventListeners.delete(cb);
    },
    onConnection(cb) {
      connListeners.add(cb);
      cb(state);
      return () => connListeners.delete(cb);
    },
  };
}

// A record, so a method added to the contract is a compile error here until the client has it.
const METHOD_SET: Record<MethodName, true> = {
  health: true, nodeTypes: true, inspect: true, listDir: true, recent: true, validateEdge: true, runPipeline: true, cancelRun: true, listRuns: true,
  getRun: true, compareRuns: true, savePipeline: true, openPipeline: true, importYaml: true, exportYaml: true, demoPipeline: true, autosave: true,
  loadAutosave: true, providers: true,
};
const METHOD_NAMES = Object.keys(METHOD_SET) as MethodName[];

export interface Client {
  api: Api;
  kind: 'electron' | 'http';
  onEvent(cb: (e: RunEvent) => void): () => void;
  onConnection(cb: (s: ConnectionState) => void): () => void;
  pathForFile?(file: File): string;
}

export function createClient(): Client {
  const preload = window.upcycle;
  const t = preload ? electronTransport(preload) : httpTransport(takeToken());
  const api = Object.fromEntries(METHOD_NAMES.map((m) => [m, (args: unknown) => t.call(m, args)])) as unknown as Api;
  return { api, kind: t.kind, onEvent: t.onEvent, onConnection: t.onConnection, pathForFile: preload?.pathForFile?.bind(preload) };
}

/** The app's client (one per page). */
export const client: Client = createClient();
export const api: Api = client.api;
