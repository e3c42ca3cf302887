/** Execution-provider selection and fallback, session options, tensor I/O and the session cache, on real ORT. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { GraphBuilder } from '../../../app/runtime/graph-builder.js';
import { zeros } from '../../../app/runtime/host-tensor.js';
import { createSession, listProviders, resolveAuto, toOrtOptions, toOrtTensor } from '../../../app/runtime/ort.js';
import { platformProviders } from '../../../app/runtime/providers.js';
import { SessionCache } from '../../../app/runtime/session-cache.js';
import { tempDir } from './helpers.js';

/** y = x + 1 over float32 [n]. */
function addOneModel(): Uint8Array {
  const g = new GraphBuilder();
  g.input('x', 'FLOAT', ['n']);
  g.initializer('one', 'FLOAT', [1], new Float32Array([1]));
  g.node('Add', ['x', 'one'], ['y']);
  g.output('y', 'FLOAT', ['n']);
  return g.toModelBytes({ opset: 23 });
}

const feeds = { x: { dims: [3], data: new Float32Array([1, 2, 3]) } };

const onLinuxX64 = process.platform === 'linux' && process.arch === 'x64';

test('platform table: providers shipped in onnxruntime-node 1.30 per platform', () => {
  assert.deepEqual(platformProviders('linux', 'x64'), ['cuda', 'webgpu', 'cpu']);
  assert.deepEqual(platformProviders('linux', 'arm64'), ['cpu']);
  assert.deepEqual(platformProviders('win32', 'x64'), ['dml', 'webgpu', 'cpu']);
  assert.deepEqual(platformProviders('darwin', 'arm64'), ['coreml', 'webgpu', 'cpu']);
  assert.deepEqual(platformProviders('darwin', 'x64'), []);
});

test('listProviders on this machine: cpu available; dml/coreml not on Linux; cuda only if installed', { skip: !onLinuxX64 }, () => {
  const byName = Object.fromEntries(listProviders().map((p) => [p.name, p]));
  assert.equal(byName.cpu!.available, true);
  assert.equal(byName.dml!.available, false);
  assert.equal(byName.coreml!.available, false);
  assert.match(byName.dml!.note ?? '', /not built/);
  // This environment installs with onnxruntime-node-install=skip, so the CUDA EP libraries are absent.
  assert.equal(byName.cuda!.available, false);
  assert.match(byName.cuda!.note ?? '', /not installed/);
  assert.equal(resolveAuto(), 'cpu');
});

test('requesting cuda without its libraries falls back to cpu with a visible notice', { skip: !onLinuxX64 }, async () => {
  const s = await createSession(addOneModel(), { provider: 'cuda' });
  assert.equal(s.provider, 'cpu');
  assert.ok(s.fallback !== undefined);
  assert.equal(s.fallback.requested, 'cuda');
  assert.equal(s.fallback.attempted, 'cuda');
  assert.ok(s.fallback.reason.length > 0);
  const { y } = await s.run(feeds);
  assert.deepEqual([...(y!.data as Float32Array)], [2, 3, 4]);
  await s.release();
});

test('requesting a provider not built for this platform falls back without asking ORT', { skip: !onLinuxX64 }, async () => {
  const s = await createSession(addOneModel(), { provider: 'dml' });
  assert.equal(s.provider, 'cpu');
  assert.deepEqual(s.fallback, { requested: 'dml', attempted: 'dml', reason: 'dml is not available in onnxruntime-node on linux/x64' });
});

test('cpu and auto (cpu here) sessions carry no fallback notice', async () => {
  for (const provider of ['cpu', 'auto'] as const) {
    const s = await createSession(addOneModel(), { provider });
    if (provider === 'cpu' || resolveAuto() === 'cpu') {
      assert.equal(s.provider, 'cpu');
      assert.equal(s.fallback, undefined);
    }
    await s.release();
  }
});

test('webgpu either works or falls back to cpu; the result is right either way', { skip: !onLinuxX64 }, async () => {
  const s = await createSession(addOneModel(), { provider: 'webgpu' });
  if (s.provider === 'cpu') assert.equal(s.fallback?.attempted, 'webgpu');
  const { y } = await s.run(feeds);
  assert.deepEqual([...(y!.data as Float32Array)], [2, 3, 4]);
  await s.release();
});

test('a broken model still fails on cpu after a fallback (errors are not swallowed)', async () => {
  const g = new GraphBuilder();
  g.input('x', 'FLOAT', [2]);
  g.node('NoSuchOp', ['x'], ['y']);
  g.output('y', 'FLOAT', [2]);
  await assert.rejects(createSession(g.toModelBytes({ opset: 23 }), { provider: 'cuda' }), /NoSuchOp/);
});

test('session options: optimization level, threads, disable_prepacking and config entries reach ORT', async () => {
  const o = toOrtOptions({ optimization: 'disabled', intraOpThreads: 1, disablePrepacking: true, cpuMemArena: false, configEntries: { 'session.use_env_allocators': '0' } }, 'cpu');
  assert.deepEqual(o, {
    executionProviders: ['cpu'],
    graphOptimizationLevel: 'disabled',
    intraOpNumThreads: 1,
    enableCpuMemArena: false,
    extra: { session: { use_env_allocators: '0', disable_prepacking: '1' } },
  });
  assert.deepEqual(toOrtOptions({ provider: 'cuda', deviceId: 1 }, 'cuda').executionProviders, [{ name: 'cuda', deviceId: 1 }, 'cpu']);
  // A real low-memory session on a MatMul (the op whose weights get pre-packed).
  const g = new GraphBuilder();
  g.input('x', 'FLOAT', [1, 2]);
  g.initializer('w', 'FLOAT', [2, 2], new Float32Array([1, 2, 3, 4]));
  g.node('MatMul', ['x', 'w'], ['y']);
  g.output('y', 'FLOAT', [1, 2]);
  const s = await createSession(g.toModelBytes({ opset: 23 }), { optimization: 'disabled', intraOpThreads: 1, disablePrepacking: true, cpuMemArena: false });
  const { y } = await s.run({ x: { dims: [1, 2], data: new Float32Array([1, 1]) } });
  assert.deepEqual([...(y!.data as Float32Array)], [4, 6]);
  await s.release();
});

test('tensor conversion validates sizes and array classes; typed tags disambiguate Uint8Array/Uint16Array', () => {
  assert.throws(() => toOrtTensor({ dims: [2, 2], data: new Float32Array(3) }), /3 elements/);
  assert.throws(() => toOrtTensor({ dims: [2], data: new Float32Array(2), type: 'int32' }), /Int32Array/);
  assert.equal(toOrtTensor({ dims: [2], data: new Uint8Array(2), type: 'bool' }).type, 'bool');
  assert.equal(toOrtTensor({ dims: [2], data: new Uint16Array(2) }).type, 'float16');
  assert.equal(toOrtTensor({ dims: [2], data: new BigInt64Array(2) }).type, 'int64');
  assert.equal(toOrtTensor(zeros('float32', [0, 4])).size, 0);
});

test('selected outputs, and pre-allocated outputs that ORT fills in place', async () => {
  const g = new GraphBuilder();
  g.input('x', 'FLOAT', [3]);
  g.node('Neg', ['x'], ['neg']);
  g.node('Abs', ['x'], ['abs']);
  g.output('neg', 'FLOAT', [3]);
  g.output('abs', 'FLOAT', [3]);
  const s = await createSession(g.toModelBytes({ opset: 23 }));
  const x = { dims: [3], data: new Float32Array([1, -2, 3]) };
  assert.deepEqual(Object.keys(await s.run({ x }, ['abs'])), ['abs']);
  const dest = zeros('float32', [3]);
  const out = await s.run({ x }, { neg: dest, abs: null });
  assert.equal(out.neg, dest);
  assert.deepEqual([...(dest.data as Float32Array)], [-1, 2, -3]);
  assert.deepEqual([...(out.abs!.data as Float32Array)], [1, 2, 3]);
  await s.release();
});

test('in-place KV update: the same HostTensor as TensorScatter input and pre-allocated output', async () => {
  // A static cache (B=1, kv=1, MAX=4, D=2) updated at write index 2, as a decode step would.
  const g = new GraphBuilder();
  g.input('cache', 'FLOAT', [1, 1, 4, 2]);
  g.input('update', 'FLOAT', [1, 1, 1, 2]);
  g.input('write_indices', 'INT64', [1]);
  g.node('TensorScatter', ['cache', 'update', 'write_indices'], ['present'], { axis: -2 });
  g.output('present', 'FLOAT', [1, 1, 4, 2]);
  const s = await createSession(g.toModelBytes({ opset: 24 }));
  const cache = { dims: [1, 1, 4, 2], data: new Float32Array([1, 1, 2, 2, 0, 0, 0, 0]) };
  await s.run(
    { cache, update: { dims: [1, 1, 1, 2], data: new Float32Array([3, 3]) }, write_indices: { dims: [1], data: new BigInt64Array([2n]) } },
    { present: cache },
  );
  assert.deepEqual([...cache.data], [1, 1, 2, 2, 3, 3, 0, 0]);
  await s.release();
});

test('release frees the session: later runs reject, release is idempotent', async () => {
  const s = await createSession(addOneModel());
  await s.release();
  assert.equal(s.released, true);
  await s.release();
  await assert.rejects(s.run(feeds), /released/);
});

test('session cache: one session per (path, options), shared creation, explicit release', async () => {
  const { dir, cleanup } = tempDir();
  const cache = new SessionCache();
  try {
    const modelPath = path.join(dir, 'add.onnx');
    writeFileSync(modelPath, addOneModel());
    const [a, b] = await Promise.all([cache.get(modelPath), cache.get(path.join(dir, '.', 'add.onnx'))]);
    assert.equal(a, b, 'concurrent gets of the same model share one session');
    const lowMem = await cache.get(modelPath, { disablePrepacking: true, intraOpThreads: 1 });
    assert.notEqual(lowMem, a);
    assert.equal(await cache.get(modelPath, { intraOpThreads: 1, disablePrepacking: true }), lowMem, 'key ignores option order');
    assert.equal(cache.size, 2);

    assert.equal(await cache.release(modelPath, { intraOpThreads: 1, disablePrepacking: true }), 1);
    assert.equal(lowMem.released, true);
    assert.equal(a.released, false);
    assert.equal(await cache.release(modelPath), 1);
    assert.equal(a.released, true);
    assert.equal(cache.size, 0);
    await assert.rejects(a.run(feeds), /released/);

    const again = await cache.get(modelPath);
    assert.notEqual(again, a);
    const { y } = await again.run(feeds);
    assert.deepEqual([...(y!.data as Float32Array)], [2, 3, 4]);
    // A session released by its holder is recreated on the next get.
    await again.release();
    const fresh = await cache.get(modelPath);
    assert.notEqual(fresh, again);
    assert.equal(fresh.released, false);

    await assert.rejects(cache.get(path.join(dir, 'missing.onnx')));
    assert.equal(cache.has(path.join(dir, 'missing.onnx')), false, 'failed creations are not cached');
    assert.equal(await cache.releaseAll(), 1);
    assert.equal(fresh.released, true);
  } finally {
    await cache.releaseAll();
    cleanup();
  }
});
