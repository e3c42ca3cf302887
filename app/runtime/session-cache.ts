/**
 * Keeps ORT sessions open per (model file, options), because creating one maps and sometimes
 * pre-packs or constant-folds gigabytes of weights. Native memory is only returned by an explicit
 * release, so the cache offers release per model and for everything, and — for long-lived
 * processes — leases: a session nobody holds is released once idle for `idleMs`.
 */
import path from 'node:path';
import { createSession, type OrtSession, type SessionConfig } from './ort.js';

type Create = (modelPath: string, config: SessionConfig) => Promise<OrtSession>;

/** Deterministic JSON (sorted keys), so equal configs give equal keys. */
function stableJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(stableJson).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    const keys = Object.keys(o).filter((k) => o[k] !== undefined).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${stableJson(o[k])}`).join(',')}}`;
  }
  return JSON.stringify(v);
}

export function sessionKey(modelPath: string, config: SessionConfig): string {
  return `${path.resolve(modelPath)}\n${stableJson(config)}`;
}

interface Entry {
  modelPath: string;
  session: Promise<OrtSession>;
  /** Open leases. */
  users: number;
  /** When the last lease ended (performance.now()). */
  idleSince: number;
}

/** A hold on a cached session: `release()` ends the hold (idempotent), not the session. */
export interface SessionLease {
  session: OrtSession;
  release(): void;
}

export interface SessionCacheOptions {
  create?: Create;
  /**
   * Release sessions no lease has held for this long (ms), checked by an unref'd timer (it never
   * keeps the process alive). Unset: sessions stay until released explicitly.
   */
  idleMs?: number;
}

export class SessionCache {
  private readonly entries = new Map<string, Entry>();
  private readonly create: Create;
  private readonly idleMs: number | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(options: Create | SessionCacheOptions = {}) {
    const o = typeof options === 'function' ? { create: options } : options;
    this.create = o.create ?? createSession;
    this.idleMs = o.idleMs;
  }

  get size(): number {
    return this.entries.size;
  }

  /** The entry of this model and config, created (with its session's creation started) if absent. */
  private entryFor(modelPath: string, config: SessionConfig): Entry {
    if (config.externalData !== undefined) {
      throw new Error('SessionCache is for file-backed models; externalData buffers are not cached');
    }
    const key = sessionKey(modelPath, config);
    const hit = this.entries.get(key);
    if (hit !== undefined) return hit;
    const entry: Entry = { modelPath: path.resolve(modelPath), session: this.create(modelPath, config), users: 0, idleSince: performance.now() };
    this.entries.set(key, entry);
    // A failed creation is not cached (callers awaiting it still see the error).
    entry.session.catch(() => {
      if (this.entries.get(key) === entry) this.entries.delete(key);
    });
    return entry;
  }

  /**
   * The cached session for this model and config, created on first use. Concurrent calls share one
   * creation; a failed creation is not cached; a session released elsewhere is recreated.
   */
  async get(modelPath: string, config: SessionConfig = {}): Promise<OrtSession> {
    const entry = this.entryFor(modelPath, config);
    const s = await entry.session;
    if (!s.released) return s;
    const key = sessionKey(modelPath, config);
    if (this.entries.get(key) === entry) this.entries.delete(key);
    return this.get(modelPath, config);
  }

  /**
   * The cached session plus a lease: while any lease is open the idle sweep keeps the session
   * (an explicit `release` still frees it). The lease is counted before the creation is awaited, so
   * a sweep during a long creation cannot release the session it is about to return.
   */
  async acquire(modelPath: string, config: SessionConfig = {}): Promise<SessionLease> {
    const entry = this.entryFor(modelPath, config);
    entry.users++;
    let session: OrtSession;
    try {
      session = await entry.session;
    } catch (e) {
      entry.users--;
      throw e;
    }
    if (session.released) {
      entry.users--;
      const key = sessionKey(modelPath, config);
      if (this.entries.get(key) === entry) this.entries.delete(key);
      return this.acquire(modelPath, config);
    }
    let open = true;
    return {
      session,
      release: () => {
        if (!open) return;
        open = false;
        entry.users--;
        if (entry.users === 0) {
          entry.idleSince = performance.now();
          this.schedule();
        }
      },
    };
  }

  /** Releases sessions without leases idle for at least `idleMs` (default: the cache's own). Returns how many. */
  async releaseIdle(idleMs = this.idleMs ?? 0): Promise<number> {
    const now = performance.now();
    const idle = [...this.entries].filter(([, e]) => e.users === 0 && now - e.idleSince >= idleMs);
    return this.releaseKeys(idle.map(([k]) => k), new Set(idle.map(([, e]) => e)));
  }

  private schedule(): void {
    if (this.idleMs === undefined || this.timer !== undefined) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      // A failing release must not become an unhandled rejection (which ends the process).
      void this.releaseIdle().catch(() => 0).then(() => {
        if ([...this.entries.values()].some((e) => e.users === 0)) this.schedule();
      });
    }, this.idleMs);
    this.timer.unref();
  }

  has(modelPath: string, config: SessionConfig = {}): boolean {
    return this.entries.has(sessionKey(modelPath, config));
  }

  /** Releases the sessions of one model: only the given config's, or all of them. Returns how many. */
  async release(modelPath: string, config?: SessionConfig): Promise<number> {
    const resolved = path.resolve(modelPath);
    const keys = config !== undefined
      ? [sessionKey(modelPath, config)].filter((k) => this.entries.has(k))
      : [...this.entries].filter(([, e]) => e.modelPath === resolved).map(([k]) => k);
    return this.releaseKeys(keys);
  }

  /** Releases every cached session. */
  async releaseAll(): Promise<number> {
    return this.releaseKeys([...this.entries.keys()]);
  }

  /**
   * With `onlyIdle` (the entries found idle), an entry leased since (during an earlier await), or one
   * created anew under the same key, is kept.
   */
  private async releaseKeys(keys: readonly string[], onlyIdle?: ReadonlySet<Entry>): Promise<number> {
    let n = 0;
    for (const k of keys) {
      const e = this.entries.get(k);
      if (e === undefined || (onlyIdle && (!onlyIdle.has(e) || e.users > 0))) continue;
      this.entries.delete(k);
      // A creation still in flight is awaited, then released; one that failed has nothing to free.
      const s = await e.session.catch(() => undefined);
      if (s !== undefined && !s.released) {
        await s.release();
        n++;
      }
    }
    return n;
  }
}
