/**
 * Keeps ORT sessions open per (model file, options), because creating one maps and sometimes
 * pre-packs or constant-folds gigabytes of weights. Native memory is only returned by an explicit
 * release, so the cache offers release per model and for everything.
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
}

export class SessionCache {
  private readonly entries = new Map<string, Entry>();

  constructor(private readonly create: Create = createSession) {}

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
    const entry: Entry = { modelPath: path.resolve(modelPath), session: this.create(modelPath, config) };
    this.entries.set(key, entry);
    try {
      return await entry.session;
    } catch (e) {
      if (this.entries.get(key) === entry) this.entries.delete(key);
      throw e;
    }
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
