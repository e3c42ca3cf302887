/** Graphs built with the encoder, run in real onnxruntime-node sessions, checked against JS references. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { GraphBuilder } from '../../../app/runtime/graph-builder.js';
import { attr } from '../../../app/runtime/onnx-proto.js';
import { createSession } from '../../../app/runtime/ort.js';
import { assertClose, randomFloats, tempDir } from './helpers.js';

/** float32 → bfloat16 bits by truncation: exact for values with ≤ 8 significant bits, as used here. */
function bf16Bits(values: readonly number[]): Uint16Array {
  const f = new Float32Array(values);
  const u = new Uint32Array(f.buffer);
  return Uint16Array.from(u, (x) => x >>> 16);
}

const BF16_VALUES = [1.5, -2.25, 3, 0.10009765625, 100.5, -0.0078125];

function matmul(a: Float32Array, b: Float32Array, m: number, k: number, n: number): Float32Array {
  const out = new Float32Array(m * n);
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) {
    let s = 0;
    for (let t = 0; t < k; t++) s += a[i * k + t]! * b[t * n + j]!;
    out[i * n + j] = s;
  }
  return out;
}

test('MatMul + Add with inline raw initializers and a symbolic batch dim', async () => {
  const w = randomFloats(3 * 4, 1);
  const b = randomFloats(4, 2);
  const g = new GraphBuilder();
  g.input('x', 'FLOAT', ['batch', 3]);
  g.initializer('w', 'FLOAT', [3, 4], w);
  g.initializer('b', 'FLOAT', [4], b);
  g.node('MatMul', ['x', 'w'], ['xw']);
  g.node('Add', ['xw', 'b'], ['y']);
  g.output('y', 'FLOAT', ['batch', 4]);
  const session = await createSession(g.toModelBytes({ opset: 23 }));
  assert.deepEqual(session.inputs, [{ name: 'x', type: 'float32', shape: ['batch', 3] }]);
  assert.deepEqual(session.outputs, [{ name: 'y', type: 'float32', shape: ['batch', 4] }]);
  const x = randomFloats(2 * 3, 3);
  const { y } = await session.run({ x: { dims: [2, 3], data: x } });
  const expected = matmul(x, w, 2, 3, 4).map((v, i) => v + b[i % 4]!);
  assert.deepEqual(y!.dims, [2, 4]);
  assert.equal(y!.type, 'float32');
  assertClose(y!.data as Float32Array, expected, 1e-6);
  await session.release();
});

/**
 * Writes a safetensors-like file: 8-byte LE header length, JSON header padded to 8 bytes (as the
 * reference writer does), then the tensors. Returns each tensor's absolute byte offset.
 */
function writeSafetensors(file: string, tensors: { name: string; dtype: string; shape: number[]; bytes: Uint8Array }[]): Record<string, number> {
  const header: Record<string, unknown> = {};
  let at = 0;
  for (const t of tensors) {
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [at, at + t.bytes.length] };
    at += t.bytes.length;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  writeFileSync(file, Buffer.concat([len, Buffer.from(json), ...tensors.map((t) => Buffer.from(t.bytes))]));
  const offsets: Record<string, number> = {};
  for (const t of tensors) offsets[t.name] = 8 + json.length + (header[t.name] as { data_offsets: number[] }).data_offsets[0]!;
  return offsets;
}

test('initializers as external data pointing into a safetensors file at unaligned offsets (f32 and bf16)', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const w = randomFloats(2 * 3, 4);
    const wb = bf16Bits(BF16_VALUES);
    const offsets = writeSafetensors(path.join(dir, 'model.safetensors'), [
      { name: 'pad', dtype: 'U8', shape: [3], bytes: new Uint8Array([7, 7, 7]) },
      { name: 'w', dtype: 'F32', shape: [2, 3], bytes: new Uint8Array(w.buffer) },
      { name: 'wb', dtype: 'BF16', shape: [6], bytes: new Uint8Array(wb.buffer) },
    ]);
    assert.equal(offsets.w! % 4, 3, 'the f32 tensor must start at an unaligned offset');
    const g = new GraphBuilder();
    g.input('x', 'FLOAT', [1, 2]);
    g.initializer('w', 'FLOAT', [2, 3], { external: { location: 'model.safetensors', offset: offsets.w!, length: 24 } });
    g.initializer('wb', 'BFLOAT16', [6], { external: { location: 'model.safetensors', offset: offsets.wb! } });
    g.node('MatMul', ['x', 'w'], ['y']);
    g.node('Cast', ['wb'], ['wb_f32'], { to: 1 });
    g.output('y', 'FLOAT', [1, 3]);
    g.output('wb_f32', 'FLOAT', [6]);
    const modelPath = path.join(dir, 'model.onnx');
    const bytes = g.toModelBytes({ opset: 23 });
    writeFileSync(modelPath, bytes);

    const x = new Float32Array([0.5, -2]);
    const expectedY = matmul(x, w, 1, 2, 3);
    for (const optimization of ['disabled', 'all'] as const) {
      const s = await createSession(modelPath, { optimization });
      const out = await s.run({ x: { dims: [1, 2], data: x } });
      assertClose(out.y!.data as Float32Array, expectedY, 1e-6, `y (${optimization})`);
      assert.deepEqual([...(out.wb_f32!.data as Float32Array)], BF16_VALUES);
      await s.release();
    }

    // From bytes, the external file has to be handed over as a buffer (ORT has no directory then).
    await assert.rejects(createSession(bytes));
    const fromBytes = await createSession(bytes, {
      externalData: [{ path: 'model.safetensors', data: readFileSync(path.join(dir, 'model.safetensors')) }],
    });
    const out = await fromBytes.run({ x: { dims: [1, 2], data: x } });
    assertClose(out.y!.data as Float32Array, expectedY, 1e-6, 'y (bytes)');
    await fromBytes.release();
  } finally {
    cleanup();
  }
});

test('bf16 inline initializer followed by Cast to float', async () => {
  const g = new GraphBuilder();
  g.initializer('wb', 'BFLOAT16', [2, 3], bf16Bits(BF16_VALUES));
  g.node('Cast', ['wb'], ['w'], { to: 1 });
  g.output('w', 'FLOAT', [2, 3]);
  const s = await createSession(g.toModelBytes({ opset: 23 }));
  const { w } = await s.run({});
  assert.deepEqual(w!.dims, [2, 3]);
  assert.deepEqual([...(w!.data as Float32Array)], BF16_VALUES);
  await s.release();
});

test('float16 graph output comes back as Uint16Array bits', async () => {
  const g = new GraphBuilder();
  g.input('x', 'FLOAT', [4]);
  g.node('Cast', ['x'], ['h'], { to: 10 });
  g.output('h', 'FLOAT16', [4]);
  const s = await createSession(g.toModelBytes({ opset: 23 }));
  const { h } = await s.run({ x: { dims: [4], data: new Float32Array([1, -2, 0.5, 65504]) } });
  assert.equal(h!.type, 'float16');
  assert.ok(h!.data instanceof Uint16Array);
  assert.deepEqual([...h!.data], [0x3c00, 0xc000, 0x3800, 0x7bff]);
  await s.release();
});

test('int64 Constant attributes beyond 2^31 survive the trip through ORT', async () => {
  const g = new GraphBuilder();
  g.node('Constant', [], ['one'], { value_int: 2n ** 33n + 7n });
  g.node('Constant', [], ['many'], { value_ints: attr.ints([-(2n ** 40n), 2n ** 62n + 1n, 5_000_000_000]) });
  g.output('one', 'INT64', []);
  g.output('many', 'INT64', [3]);
  const s = await createSession(g.toModelBytes({ opset: 23 }));
  const out = await s.run({});
  assert.deepEqual([...(out.one!.data as BigInt64Array)], [2n ** 33n + 7n]);
  assert.deepEqual([...(out.many!.data as BigInt64Array)], [-(2n ** 40n), 2n ** 62n + 1n, 5_000_000_000n]);
  await s.release();
});

function rmsNormRef(x: Float32Array, scale: Float32Array, h: number, eps: number): Float32Array {
  const out = new Float32Array(x.length);
  for (let r = 0; r < x.length / h; r++) {
    let ss = 0;
    for (let i = 0; i < h; i++) ss += x[r * h + i]! ** 2;
    const inv = 1 / Math.sqrt(ss / h + eps);
    for (let i = 0; i < h; i++) out[r * h + i] = x[r * h + i]! * inv * scale[i]!;
  }
  return out;
}

test('RMSNormalization (opset 23) matches a JS reference', async () => {
  const H = 8;
  const scale = randomFloats(H, 5);
  const g = new GraphBuilder();
  g.input('x', 'FLOAT', ['batch', 'seq', H]);
  g.initializer('scale', 'FLOAT', [H], scale);
  g.node('RMSNormalization', ['x', 'scale'], ['y'], { axis: -1, epsilon: attr.float(1e-6) });
  g.output('y', 'FLOAT', ['batch', 'seq', H]);
  const s = await createSession(g.toModelBytes({ opset: 23 }));
  const x = randomFloats(2 * 3 * H, 6);
  const { y } = await s.run({ x: { dims: [2, 3, H], data: x } });
  assertClose(y!.data as Float32Array, rmsNormRef(x, scale, H, 1e-6), 1e-5);
  await s.release();
});

test('SkipSimplifiedLayerNormalization (com.microsoft domain) returns the norm and the residual sum', async () => {
  const H = 8;
  const gamma = randomFloats(H, 7);
  const g = new GraphBuilder();
  g.input('x', 'FLOAT', [1, 2, H]);
  g.input('skip', 'FLOAT', [1, 2, H]);
  g.initializer('gamma', 'FLOAT', [H], gamma);
  g.node('SkipSimplifiedLayerNormalization', ['x', 'skip', 'gamma'], ['y', '', '', 'sum'], { epsilon: attr.float(1e-6) }, 'com.microsoft');
  g.output('y', 'FLOAT', [1, 2, H]);
  g.output('sum', 'FLOAT', [1, 2, H]);
  const s = await createSession(g.toModelBytes({ opset: 23 }));
  const x = randomFloats(2 * H, 8);
  const skip = randomFloats(2 * H, 9);
  const out = await s.run({ x: { dims: [1, 2, H], data: x }, skip: { dims: [1, 2, H], data: skip } });
  const sum = x.map((v, i) => v + skip[i]!);
  assertClose(out.sum!.data as Float32Array, sum, 1e-6, 'sum');
  assertClose(out.y!.data as Float32Array, rmsNormRef(sum, gamma, H, 1e-6), 1e-5, 'y');
  await s.release();
});

/** cos/sin caches (max_pos, D/2) for theta 10000, as HF computes them. */
function ropeCaches(maxPos: number, d: number): { cos: Float32Array; sin: Float32Array } {
  const half = d / 2;
  const cos = new Float32Array(maxPos * half);
  const sin = new Float32Array(maxPos * half);
  for (let p = 0; p < maxPos; p++) for (let i = 0; i < half; i++) {
    const a = p / 10000 ** ((2 * i) / d);
    cos[p * half + i] = Math.cos(a);
    sin[p * half + i] = Math.sin(a);
  }
  return { cos, sin };
}

/** Rotates every head vector; `at(b,h,s)` gives the flat offset of element 0 of that vector. */
function ropeRef(
  x: Float32Array, dims: { B: number; NH: number; S: number; D: number }, pos: readonly number[][],
  caches: { cos: Float32Array; sin: Float32Array }, interleaved: boolean, at: (b: number, h: number, s: number) => number,
): Float32Array {
  const out = new Float32Array(x.length);
  const half = dims.D / 2;
  for (let b = 0; b < dims.B; b++) for (let h = 0; h < dims.NH; h++) for (let s = 0; s < dims.S; s++) {
    const o = at(b, h, s);
    const p = pos[b]![s]!;
    for (let i = 0; i < half; i++) {
      const c = caches.cos[p * half + i]!;
      const sn = caches.sin[p * half + i]!;
      const [i1, i2] = interleaved ? [o + 2 * i, o + 2 * i + 1] : [o + i, o + i + half];
      out[i1] = x[i1]! * c - x[i2]! * sn;
      out[i2] = x[i2]! * c + x[i1]! * sn;
    }
  }
  return out;
}

async function runRope(layout: '4d' | '3d', interleaved: boolean): Promise<void> {
  const dims = { B: 2, NH: 2, S: 3, D: 8 };
  const { B, NH, S, D } = dims;
  const caches = ropeCaches(16, D);
  const pos = [[0, 1, 2], [5, 6, 7]];
  const shape = layout === '4d' ? [B, NH, S, D] : [B, S, NH * D];
  const g = new GraphBuilder();
  g.input('x', 'FLOAT', shape);
  g.input('position_ids', 'INT64', [B, S]);
  g.initializer('cos', 'FLOAT', [16, D / 2], caches.cos);
  g.initializer('sin', 'FLOAT', [16, D / 2], caches.sin);
  g.node('RotaryEmbedding', ['x', 'cos', 'sin', 'position_ids'], ['y'], {
    interleaved: interleaved ? 1 : 0,
    ...(layout === '3d' ? { num_heads: NH } : {}),
  });
  g.output('y', 'FLOAT', shape);
  const s = await createSession(g.toModelBytes({ opset: 23 }));
  const x = randomFloats(B * NH * S * D, 10);
  const { y } = await s.run({
    x: { dims: shape, data: x },
    position_ids: { dims: [B, S], data: BigInt64Array.from(pos.flat(), BigInt) },
  });
  const at = layout === '4d'
    ? (b: number, h: number, t: number) => ((b * NH + h) * S + t) * D
    : (b: number, h: number, t: number) => ((b * S + t) * NH + h) * D;
  assertClose(y!.data as Float32Array, ropeRef(x, dims, pos, caches, interleaved, at), 1e-5, `${layout} interleaved=${interleaved}`);
  await s.release();
}

test('RotaryEmbedding (opset 23), 4D (B,NH,S,D), rotate_half layout, matches a JS reference', () => runRope('4d', false));
test('RotaryEmbedding (opset 23), 3D (B,S,NH*D) with num_heads, interleaved, matches a JS reference', () => runRope('3d', true));
