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

  /**
   * The cached session for this model and config, created on first use. Concurrent calls share one
   * creation; a failed creation is not cached; a session released elsewhere is recreated.
   */
  async get(modelPath: string, config: SessionConfig = {}): Promise<OrtSession> {
    if (config.externalData !== undefined) {
      throw new Error('SessionCache is for file-backed models; externalData buffers are not cached');
    }
    const key = sessionKey(modelPath, config);
    const hit = this.entries.get(key);
    if (hit !== undefined) {
      const s = await hit.session;
      if (!s.released) return s;
      if (this.entries.get(key) === hit) this.entries.delete(key);
      return this.get(modelPath, config);
    }
    const entry: Entry = { modelPath: path.resolve(modelPath), session: this.create(modelPath, config), users: 0, idleSince: performance.now() };
    this.entries.set(key, entry);
    try {
      return await entry.session;
    } catch (e) {
      if (this.entries.get(key) === entry) this.entries.delete(key);
      throw e;
    }
  }

  /**
   * The cached session plus a lease: while any lease is open the idle sweep keeps the session
   * (an explicit `release` still frees it).
   */
  async acquire(modelPath: string, config: SessionConfig = {}): Promise<SessionLease> {
    const session = await this.get(modelPath, config);
    const entry = this.entries.get(sessionKey(modelPath, config));
    if (entry === undefined) return { session, release: () => {} };
    entry.users++;
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
    const keys = [...this.entries].filter(([, e]) => e.users === 0 && now - e.idleSince >= idleMs).map(([k]) => k);
    return this.releaseKeys(keys);
  }

  private schedule(): void {
    if (this.idleMs === undefined || this.timer !== undefined) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.releaseIdle().then(() => {
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

  private async releaseKeys(keys: readonly string[]): Promise<number> {
    let n = 0;
    for (const k of keys) {
      const e = this.entries.get(k);
      if (e === undefined) continue;
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
