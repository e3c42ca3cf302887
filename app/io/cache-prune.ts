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
import { lstat, mkdir, readdir, readFile, rename, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { join, sep } from 'node:path';
import { cacheDir } from './cache-dir.js';
import { processAlive } from './process-alive.js';

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
  /** Paths never to remove, nor the entries that contain them (e.g. what the run that just finished used). */
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
  /** The entries left (a caller showing the cache after pruning needs no second scan). */
  kept: CacheEntry[];
}

const TRASH = '.trash-';
const PARTIAL = '.partial-';
const PINS = 'pins';
const GIB = 1024 ** 3;
/** Cache sizes in the budget's unit (GiB), or MiB below one GiB. */
export function cacheSize(bytes: number): string {
  return bytes >= GIB ? `${(bytes / GIB).toFixed(2)} GiB` : `${(bytes / 1024 ** 2).toFixed(1)} MiB`;
}

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
        // Best effort: a folder held open (e.g. by a virus scanner on Windows) is tried again next time.
        await rm(path, { recursive: true, force: true }).catch(() => undefined);
        continue;
      }
      const s = await stat(path).catch(() => undefined);
      if (!s?.isDirectory()) continue;
      // A `.partial-<pid>-<time>` folder is an output being written (a merge, a graph, an evolve search that
      // may run for days): a leftover only once its process is gone.
      if (name.includes(PARTIAL)) {
        const pid = Number(/\.partial-(\d+)-/.exec(name)?.[1]);
        const orphan = Number.isInteger(pid) && pid > 0 ? !processAlive(pid) : Date.now() - s.mtimeMs > 7 * 24 * 3600_000;
        if (orphan) await rm(path, { recursive: true, force: true }).catch(() => undefined);
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
  await rm(aside, { recursive: true, force: true }).catch(() => undefined);
  return true;
}

/**
 * Paths that running pipelines use, from their pin files (`pins/<pid>-<run>.json`, written by
 * `pinPaths`); pins of processes that are gone are removed.
 */
export async function pinnedPaths(root = cacheDir()): Promise<string[]> {
  const dir = join(root, PINS);
  const out: string[] = [];
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    const pid = Number(name.split('-')[0]);
    if (!Number.isInteger(pid) || !processAlive(pid)) {
      await rm(join(dir, name), { force: true }).catch(() => undefined);
      continue;
    }
    const paths = await readFile(join(dir, name), 'utf8').then((t) => JSON.parse(t) as unknown, () => []);
    if (Array.isArray(paths)) out.push(...paths.filter((p): p is string => typeof p === 'string'));
  }
  return out;
}

/**
 * Records (atomically, replacing the previous list) the paths a run uses, so that pruning in any
 * process keeps them until `unpin`. One file per run: a server runs several pipelines at once.
 */
export async function pinPaths(runKey: string, paths: readonly string[], root = cacheDir()): Promise<void> {
  const dir = join(root, PINS);
  await mkdir(dir, { recursive: true });
  const file = join(dir, `${process.pid}-${runKey}.json`);
  await writeFile(`${file}.tmp`, JSON.stringify([...new Set(paths)]));
  await rename(`${file}.tmp`, file);
}

export async function unpin(runKey: string, root = cacheDir()): Promise<void> {
  await rm(join(root, PINS, `${process.pid}-${runKey}.json`), { force: true }).catch(() => undefined);
}

/**
 * Removes stale graph folders, then least recently used entries until what only the cache holds fits
 * `maxBytes`. Removing an artefact also removes the graph folders built from it (their links would keep
 * its bytes, and they could never be used again), so an artefact counts as used when any of them was,
 * and is kept when one of them must be. Entries that running pipelines pinned, entries in `keep`, entries
 * containing a kept path and entries used within `minAgeMs` (checked again just before removal) stay.
 */
export async function pruneCache(opts: PruneOptions, root = cacheDir()): Promise<PruneResult> {
  const minAge = opts.minAgeMs ?? 10 * 60_000;
  const { entries, heldBytes: before } = await scanCache(root);
  const kept = [...(opts.keep ?? []), ...(await pinnedPaths(root))];
  const inside = (p: string, dir: string) => p === dir || p.startsWith(`${dir}${sep}`);
  const isKept = (e: CacheEntry) => kept.some((k) => inside(k, e.path));
  const dependents = new Map(entries.map((e) => [e, e.area === 'artefacts' ? entries.filter((g) => g.area === 'onnx' && g.sources.some((p) => inside(p, e.path))) : []]));
  const oldEnough = (e: CacheEntry) => (opts.now ?? Date.now()) - e.lastUsed >= minAge;
  const removable = (e: CacheEntry): boolean => !isKept(e) && oldEnough(e) && dependents.get(e)!.every((g) => !isKept(g) && oldEnough(g));
  const gone = new Set<CacheEntry>();
  const group = (e: CacheEntry) => [e, ...dependents.get(e)!].filter((x) => !gone.has(x));
  const held = (without: readonly CacheEntry[] = []) => heldBytesOf(entries.filter((e) => !gone.has(e) && !without.includes(e)));
  const drop = async (e: CacheEntry): Promise<void> => {
    for (const x of group(e)) {
      // Used since the scan (by another process)? Then it stays.
      const now = await stat(x.path).then((st) => st.mtimeMs, () => x.lastUsed);
      if (now !== x.lastUsed && (opts.now ?? Date.now()) - now < minAge) return;
    }
    for (const x of group(e)) if (await removeEntry(x.path)) gone.add(x);
  };
  for (const e of entries) if (e.stale && removable(e)) await drop(e);
  // Least recently used first; an artefact is as recent as the newest graph built from it.
  const lastUse = (e: CacheEntry) => Math.max(e.lastUsed, ...dependents.get(e)!.map((g) => g.lastUsed));
  const lru = entries.filter((e) => !e.stale && removable(e)).sort((a, b) => lastUse(a) - lastUse(b));
  let total = held();
  for (const e of lru) {
    if (total <= opts.maxBytes) break;
    if (gone.has(e)) continue;
    // Removing what frees nothing (a graph linking a model outside the cache) would only cost a rebuild.
    if (held(group(e)) >= total) continue;
    await drop(e);
    total = held();
  }
  const removed = entries.filter((e) => gone.has(e));
  return { removed, freedBytes: before - total, remainingBytes: total, kept: entries.filter((e) => !gone.has(e)) };
}
