/**
 * Keeps the engine's cache (cacheDir) from filling the disk. Two areas grow with use:
 * - `artefacts/<key>`: pipeline node outputs (merged models, MoEs, experts), one per distinct set of
 *   inputs and parameters: every changed merge weight writes a new full model;
 * - `onnx/<key>`: runtime graph folders beside hard links to the evaluated model's weights. A link
 *   costs nothing while the model exists, but once the model is deleted or rewritten (atomic outputs
 *   get a new inode) the link is the only name left for the old bytes.
 *
 * Pruning removes, in order: graph folders whose source files are gone or changed ("stale": never
 * reusable, since the folder's key includes the sources' identity), then the least recently used
 * entries until the bytes only the cache holds fit the budget. Bytes of files with other hard links
 * are not counted: deleting them frees nothing. Entries used within `minAgeMs` (another process may
 * be using them) and those in `keep` are never removed. An entry is renamed aside before it is
 * deleted, so a kill mid-way never leaves a half-deleted entry where a cache lookup would find it.
 */
import { lstat, readdir, readFile, rename, rm, stat, utimes } from 'node:fs/promises';
import { join, sep } from 'node:path';
import { cacheDir } from './cache-dir.js';

export type CacheArea = 'artefacts' | 'onnx';
export const CACHE_AREAS: readonly CacheArea[] = ['artefacts', 'onnx'];

/** What a graph folder was built from (`source.json`): the identity of each linked weight file. */
export interface SourceIdent {
  path: string;
  size: number;
  mtime: number;
  ino: number;
}
export const SOURCE_FILE = 'source.json';

export interface CacheEntry {
  area: CacheArea;
  path: string;
  /** Bytes of files no other name links to: what removing this entry alone frees. */
  bytes: number;
  /** Bytes of files with other links (the evaluated model's weights, or another cache entry's). */
  linkedBytes: number;
  /** Last use (ms since epoch): the folder's mtime, refreshed by `touchCacheEntry`. */
  lastUsed: number;
  /** A graph folder whose source files are gone or changed. */
  stale: boolean;
  /** The weight files a graph folder was built from (from source.json). */
  sources: string[];
  /** Each file's inode key (dev:ino), size and link count. */
  files: { inode: string; size: number; nlink: number }[];
}

export interface CacheScan {
  entries: CacheEntry[];
  /** Bytes on disk that only the cache holds, each file once (all of its links inside the cache). */
  heldBytes: number;
}

export interface PruneOptions {
  /** Budget for the bytes only the cache holds, over both areas. */
  maxBytes: number;
  /** Paths never to remove (e.g. the artefacts of the run that just finished). */
  keep?: ReadonlySet<string>;
  /** Entries used more recently than this are never removed. Default 10 minutes. */
  minAgeMs?: number;
  now?: number;
}

export interface PruneResult {
  removed: CacheEntry[];
  freedBytes: number;
  /** Bytes only the cache holds, after pruning. */
  remainingBytes: number;
  entries: number;
}

const TRASH = '.trash-';
const PARTIAL = '.partial-';
const GIB = 1024 ** 3;
/** Default budget: room for a few 7B models in bf16 beside their graphs. */
export const DEFAULT_CACHE_MAX_BYTES = 40 * GIB;

/** The budget from UPCYCLE_CACHE_MAX_GB (GiB; 0 keeps only what `keep`/`minAgeMs` protect), else the default. */
export function cacheBudget(env: NodeJS.ProcessEnv = process.env): number {
  const v = env['UPCYCLE_CACHE_MAX_GB'];
  if (v === undefined || v.trim() === '') return DEFAULT_CACHE_MAX_BYTES;
  const gb = Number(v);
  if (!Number.isFinite(gb) || gb < 0) throw new Error(`UPCYCLE_CACHE_MAX_GB must be a number of GiB ≥ 0, not "${v}"`);
  return gb * GIB;
}

/** Marks an entry as used now (the LRU order). Missing entries are ignored. */
export async function touchCacheEntry(path: string): Promise<void> {
  const now = new Date();
  await utimes(path, now, now).catch(() => undefined);
}

async function folderFiles(dir: string): Promise<CacheEntry['files']> {
  const files: CacheEntry['files'] = [];
  const walk = async (d: string): Promise<void> => {
    const names = await readdir(d).catch(() => [] as string[]);
    for (const name of names) {
      const p = join(d, name);
      const s = await lstat(p).catch(() => undefined);
      if (!s) continue;
      if (s.isDirectory()) await walk(p);
      else files.push({ inode: `${s.dev}:${s.ino}`, size: s.size, nlink: s.nlink });
    }
  };
  await walk(dir);
  return files;
}

async function readSources(dir: string): Promise<{ sources: string[]; stale: boolean }> {
  const text = await readFile(join(dir, SOURCE_FILE), 'utf8').catch(() => undefined);
  if (text === undefined) return { sources: [], stale: false }; // built before source.json existed: LRU only
  let files: SourceIdent[];
  try {
    files = (JSON.parse(text) as { files: SourceIdent[] }).files;
    if (!Array.isArray(files)) return { sources: [], stale: true };
  } catch {
    return { sources: [], stale: true };
  }
  let stale = false;
  for (const f of files) {
    const s = await stat(f.path).catch(() => undefined);
    if (!s || s.size !== f.size || s.mtimeMs !== f.mtime || s.ino !== f.ino) stale = true;
  }
  return { sources: files.map((f) => f.path), stale };
}

/** Bytes of files all of whose links are inside `entries`, each file once. */
function heldBytesOf(entries: readonly CacheEntry[]): number {
  const links = new Map<string, { size: number; nlink: number; seen: number }>();
  for (const e of entries) {
    for (const f of e.files) {
      const l = links.get(f.inode) ?? { size: f.size, nlink: f.nlink, seen: 0 };
      l.seen++;
      links.set(f.inode, l);
    }
  }
  let held = 0;
  for (const l of links.values()) if (l.seen >= l.nlink) held += l.size;
  return held;
}

/** Every entry of both areas, with leftovers of interrupted writes and deletions removed on the way. */
export async function scanCache(root = cacheDir()): Promise<CacheScan> {
  const entries: CacheEntry[] = [];
  for (const area of CACHE_AREAS) {
    const dir = join(root, area);
    const names = await readdir(dir).catch(() => [] as string[]);
    for (const name of names) {
      const path = join(dir, name);
      if (name.includes(TRASH)) {
        await rm(path, { recursive: true, force: true });
        continue;
      }
      const s = await stat(path).catch(() => undefined);
      if (!s?.isDirectory()) continue;
      // A `.partial-` folder is a graph being written (or left by a kill): only old ones are leftovers.
      if (name.includes(PARTIAL)) {
        if (Date.now() - s.mtimeMs > 24 * 3600_000) await rm(path, { recursive: true, force: true });
        continue;
      }
      const files = await folderFiles(path);
      const { sources, stale } = area === 'onnx' ? await readSources(path) : { sources: [], stale: false };
      const bytes = files.filter((f) => f.nlink <= 1).reduce((n, f) => n + f.size, 0);
      const linkedBytes = files.filter((f) => f.nlink > 1).reduce((n, f) => n + f.size, 0);
      entries.push({ area, path, bytes, linkedBytes, lastUsed: s.mtimeMs, stale, sources, files });
    }
  }
  return { entries, heldBytes: heldBytesOf(entries) };
}

async function removeEntry(path: string): Promise<boolean> {
  const aside = `${path}${TRASH}${process.pid}-${Date.now()}`;
  try {
    await rename(path, aside);
  } catch {
    return false; // gone already, or in use on a platform that forbids renaming it
  }
  await rm(aside, { recursive: true, force: true });
  return true;
}

/**
 * Removes stale graph folders, then least recently used entries until what only the cache holds fits
 * `maxBytes`. Removing an artefact also removes the graph folders built from it: they would hold its
 * bytes through their links, and could never be used again.
 */
export async function pruneCache(opts: PruneOptions, root = cacheDir()): Promise<PruneResult> {
  const now = opts.now ?? Date.now();
  const minAge = opts.minAgeMs ?? 10 * 60_000;
  const { entries, heldBytes: before } = await scanCache(root);
  const removable = (e: CacheEntry) => !opts.keep?.has(e.path) && now - e.lastUsed >= minAge;
  const gone = new Set<CacheEntry>();
  const drop = async (e: CacheEntry): Promise<void> => {
    if (gone.has(e) || !(await removeEntry(e.path))) return;
    gone.add(e);
    const inside = (p: string) => p === e.path || p.startsWith(`${e.path}${sep}`);
    for (const g of entries) if (g.area === 'onnx' && !gone.has(g) && g.sources.some(inside) && !opts.keep?.has(g.path)) await drop(g);
  };
  const held = () => heldBytesOf(entries.filter((e) => !gone.has(e)));
  for (const e of entries) if (e.stale && removable(e)) await drop(e);
  const lru = entries.filter((e) => !e.stale && removable(e)).sort((a, b) => a.lastUsed - b.lastUsed);
  let total = held();
  for (const e of lru) {
    if (total <= opts.maxBytes) break;
    if (gone.has(e)) continue;
    await drop(e);
    total = held();
  }
  const removed = entries.filter((e) => gone.has(e));
  return { removed, freedBytes: before - total, remainingBytes: total, entries: entries.length - removed.length };
}
