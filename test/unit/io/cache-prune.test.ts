import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, linkSync, mkdirSync, readdirSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { cacheBudget, pinPaths, pruneCache, scanCache, SOURCE_FILE, unpin } from '../../../app/io/cache-prune.js';
import { ROOT, tempDir } from '../../helpers/paths.js';

const MIB = 1024 * 1024;
const HOUR = 3600_000;

/** A cache entry folder with one file of `mib` MiB, last used `hoursAgo` hours ago. */
function entry(root: string, area: string, name: string, mib: number, hoursAgo: number, now: number): string {
  const dir = join(root, area, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'model.safetensors'), Buffer.alloc(mib * MIB, 1));
  age(dir, hoursAgo, now);
  return dir;
}

function age(dir: string, hoursAgo: number, now: number): void {
  const t = new Date(now - hoursAgo * HOUR);
  utimesSync(dir, t, t);
}

/** A graph folder hard-linking `source` (as loadModelSession builds it), with its source.json. */
function graph(root: string, name: string, source: string, hoursAgo: number, now: number): string {
  const dir = join(root, 'onnx', name);
  mkdirSync(dir, { recursive: true });
  linkSync(source, join(dir, 'w0.safetensors'));
  writeFileSync(join(dir, 'model.onnx'), Buffer.alloc(1000));
  const s = statSync(source);
  writeFileSync(join(dir, SOURCE_FILE), JSON.stringify({ files: [{ path: source, size: s.size, mtime: s.mtimeMs, ino: s.ino }] }));
  age(dir, hoursAgo, now);
  return dir;
}

test('cache pruning: least recently used first down to the budget; kept and recent entries stay; linked bytes count once', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const now = Date.now();
    const a = entry(dir, 'artefacts', 'a', 4, 30, now);
    const b = entry(dir, 'artefacts', 'b', 4, 20, now);
    const c = entry(dir, 'artefacts', 'c', 4, 10, now);
    const recent = entry(dir, 'artefacts', 'recent', 4, 0, now);
    // A graph of artefact c (links its weights): c's bytes are counted once, not twice, and not as free.
    const gc = graph(dir, 'gc', join(c, 'model.safetensors'), 5, now);
    // A graph of a model outside the cache: its linked weights are not the cache's bytes.
    const outside = join(dir, 'user-model.safetensors');
    writeFileSync(outside, Buffer.alloc(3 * MIB, 2));
    const gu = graph(dir, 'gu', outside, 40, now);

    const scan = await scanCache(dir);
    assert.equal(scan.entries.length, 6);
    assert.equal(scan.heldBytes, 16 * MIB + 2 * 1000 + statSync(join(gc, SOURCE_FILE)).size + statSync(join(gu, SOURCE_FILE)).size, 'each file once; the outside model not counted');

    // Budget 9 MiB, artefact b kept: a goes (oldest), b is kept, then c goes with the graph built from it.
    const r = await pruneCache({ maxBytes: 9 * MIB, keep: new Set([b]), now }, dir);
    assert.deepEqual(r.removed.map((e) => e.path).sort(), [a, c, gc, gu].sort());
    assert.ok(existsSync(b) && existsSync(recent));
    assert.ok(existsSync(outside), 'a model outside the cache is never touched');
    assert.equal(r.remainingBytes, 8 * MIB);
    assert.equal(r.freedBytes, scan.heldBytes - 8 * MIB);
    assert.deepEqual(readdirSync(join(dir, 'artefacts')).sort(), ['b', 'recent'], 'nothing left aside');

    // Entries used within minAgeMs are never removed, whatever the budget.
    const r2 = await pruneCache({ maxBytes: 0, now }, dir);
    assert.deepEqual(r2.removed.map((e) => e.path), [b]);
    assert.ok(existsSync(recent));
  } finally {
    cleanup();
  }
});

test('cache pruning: a graph whose model was rewritten or deleted is stale and goes first, even within budget', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const now = Date.now();
    const models = join(dir, 'models');
    mkdirSync(models);
    const m1 = join(models, 'm1.safetensors');
    const m2 = join(models, 'm2.safetensors');
    writeFileSync(m1, Buffer.alloc(MIB, 1));
    writeFileSync(m2, Buffer.alloc(MIB, 1));
    const g1 = graph(dir, 'g1', m1, 1, now);
    const g2 = graph(dir, 'g2', m2, 1, now);
    const g3 = graph(dir, 'g3', m2, 1, now);
    writeFileSync(join(g3, SOURCE_FILE), '{ not json');
    // m1 is rewritten the way atomic outputs are (a new file renamed over it): g1 keeps the old bytes alive.
    writeFileSync(`${m1}.tmp`, Buffer.alloc(MIB, 3));
    execFileSync('mv', [`${m1}.tmp`, m1]);
    const scan = await scanCache(dir);
    assert.deepEqual(scan.entries.filter((e) => e.stale).map((e) => e.path).sort(), [g1, g3].sort());
    assert.ok(scan.heldBytes >= MIB, 'the old bytes only the stale graph holds are counted');
    const r = await pruneCache({ maxBytes: 100 * MIB, now }, dir);
    assert.deepEqual(r.removed.map((e) => e.path).sort(), [g1, g3].sort());
    assert.ok(existsSync(g2) && existsSync(m1) && existsSync(m2));
  } finally {
    cleanup();
  }
});

/** The pid of a process that has exited. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'console.log(process.pid)'], { encoding: 'utf8' });
  return Number(r.stdout.trim());
}

test('cache pruning: leftovers of an interrupted deletion are removed; an output being written stays while its process lives, however old', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const now = Date.now();
    entry(dir, 'artefacts', 'x.trash-123-456', 1, 1, now);
    const writing = entry(dir, 'artefacts', `.k.partial-${process.pid}-2`, 1, 24 * 30, now);
    const orphan = entry(dir, 'onnx', `k.partial-${deadPid()}-2`, 1, 0, now);
    const scan = await scanCache(dir);
    assert.equal(scan.entries.length, 0);
    assert.ok(!existsSync(join(dir, 'artefacts', 'x.trash-123-456')));
    assert.ok(existsSync(writing), 'a month-old evolve search of a live process');
    assert.ok(!existsSync(orphan), 'left by a process that is gone');
  } finally {
    cleanup();
  }
});

test('cache pruning: what running pipelines pinned stays, in any process; an artefact whose graph was just used stays', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const now = Date.now();
    const pinned = entry(dir, 'artefacts', 'pinned', 1, 48, now);
    const free = entry(dir, 'artefacts', 'free', 1, 48, now);
    // A pipeline of this process uses pinned/model.safetensors (e.g. a checkpoint node pointing into the cache).
    await pinPaths('run-7', [join(pinned, 'model.safetensors')], dir);
    // A pin left by a dead process protects nothing and is cleaned up.
    writeFileSync(join(dir, 'pins', `${deadPid()}-run-1.json`), JSON.stringify([free]));
    // An old artefact whose graph folder was used a minute ago (a model being chatted with).
    const chatted = entry(dir, 'artefacts', 'chatted', 1, 48, now);
    graph(dir, 'gchat', join(chatted, 'model.safetensors'), 1 / 60, now);
    const r = await pruneCache({ maxBytes: 0, now }, dir);
    assert.deepEqual(r.removed.map((e) => e.path), [free]);
    assert.ok(existsSync(pinned) && existsSync(chatted));
    assert.deepEqual(readdirSync(join(dir, 'pins')), [`${process.pid}-run-7.json`]);
    await unpin('run-7', dir);
    const r2 = await pruneCache({ maxBytes: 0, now }, dir);
    assert.deepEqual(r2.removed.map((e) => e.path), [pinned]);
  } finally {
    cleanup();
  }
});

test('cache budget from UPCYCLE_CACHE_MAX_GB; `upcycle cache prune --max-gb 0 --json` reports what it removed', () => {
  assert.equal(cacheBudget({ UPCYCLE_CACHE_MAX_GB: '2' }), 2 * 1024 ** 3);
  assert.equal(cacheBudget({}), 40 * 1024 ** 3);
  assert.throws(() => cacheBudget({ UPCYCLE_CACHE_MAX_GB: 'lots' }), /UPCYCLE_CACHE_MAX_GB/);
  const { dir, cleanup } = tempDir();
  try {
    const now = Date.now();
    const old = entry(dir, 'artefacts', 'old', 1, 48, now);
    const env = { ...process.env, UPCYCLE_CACHE_DIR: dir };
    const out = JSON.parse(execFileSync(process.execPath, [join(ROOT, 'bin/upcycle.js'), 'cache', 'prune', '--max-gb', '0', '--json'], { env, encoding: 'utf8' })) as { removed: { path: string }[]; held_bytes: number; freed_bytes: number };
    assert.deepEqual(out.removed.map((e) => e.path), [old]);
    assert.equal(out.held_bytes, 0);
    assert.equal(out.freed_bytes, MIB);
    assert.ok(!existsSync(old));
    const bad = (() => {
      try {
        execFileSync(process.execPath, [join(ROOT, 'bin/upcycle.js'), 'cache', 'sweep'], { env, encoding: 'utf8', stdio: 'pipe' });
        return '';
      } catch (e) {
        return String((e as { stderr: string }).stderr);
      }
    })();
    assert.match(bad, /unknown cache action "sweep"/);
  } finally {
    cleanup();
  }
});
