import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeInto, encodeInto, fromFloat32, toFloat32, type DType } from '../../../app/core/dtypes.js';
import { linear } from '../../../app/core/merge/linear.js';
import { createRng, tensorRng } from '../../../app/core/merge/rng.js';
import { setSimdEnabled, simd } from '../../../app/core/merge/simd.js';
import { applyRaw, BlockDecoder, evenSample, mergeStreamed, scanRaw } from '../../../app/core/merge/stream-util.js';
import { breadcrumbs, breadcrumbsTies, dareLinear, dareTies, della, dellaLinear, taskArithmetic, ties } from '../../../app/core/merge/task-arithmetic.js';
import type { MergeMethodDef, ModelInput, ParamValues, RawBlock } from '../../../app/core/merge/types.js';
import { randomTensor, tiedTensor } from './helpers.js';

/** Bit patterns, so that −0 ≠ +0 and NaN payloads count. */
const bitsOf = (x: Float32Array) => new Uint32Array(x.buffer.slice(x.byteOffset, x.byteOffset + x.byteLength));

/**
 * stream == merge() bit for bit, for several blockings and samples: an even sample (TIES usually
 * resolves its threshold in one pass), none (always the extra pass), and a misleading one (one
 * element, 2000 times: the sampled key range usually misses, then the extra pass runs).
 */
function same(def: MergeMethodDef, inputs: Parameters<typeof mergeStreamed>[1], label: string): void {
  const want = def.merge(inputs);
  const rng = createRng(label.length * 7919);
  const n = inputs.shape.reduce((a, d) => a * d, 1);
  const cases: [Parameters<typeof mergeStreamed>[2], Parameters<typeof mergeStreamed>[3]][] = [
    [1 << 20, 'even'], [1, 'even'], [7, 'none'], [64, new Array<number>(2000).fill(n >> 1)], [() => 1 + Math.floor(rng.nextFloat() * 50), 'even'],
  ];
  for (const [blocks, sample] of cases) {
    const got = mergeStreamed(def, inputs, blocks, sample);
    assert.ok(got, `${label}: ${def.id} should stream`);
    assert.deepEqual(bitsOf(got), bitsOf(want), `${label} (blocks ${typeof blocks === 'number' ? blocks : 'random'}, sample ${Array.isArray(sample) ? 'one element' : sample})`);
  }
}

/** Models = base + small deltas, some heavily tied (bf16-like steps), some with exact zeros. */
function family(seed: number, n: number, count: number, tied: boolean): { base: Float32Array; models: Float32Array[] } {
  const base = randomTensor(seed, n);
  const models = Array.from({ length: count }, (_, i) => {
    const d = tied ? tiedTensor(seed * 31 + i, n, 3, 1 / 64) : randomTensor(seed * 31 + i, n, 0.05);
    return Float32Array.from(base, (b, j) => (j % 17 === i ? b : b + d[j]!));
  });
  return { base, models };
}

test('streamed linear is bit-identical to merge() for any blocking (1-4 entries, normalize on/off, negative and zero-sum weights)', () => {
  for (let s = 0; s < 16; s++) {
    const n = 1 + s * 37;
    const count = 1 + (s % 4);
    const { base, models } = family(s, n, count, s % 2 === 1);
    const w = [1, 0.3, -0.7, 2.5].slice(0, count);
    if (s === 5) w[1] = -w[0]!; // Σw = 0: ±Inf/NaN, as mergekit
    const withBase = s % 3 !== 0;
    const inputs = {
      tensorName: `model.layers.${s}.mlp.up_proj.weight`,
      shape: [n],
      base: withBase ? { id: 'base', tensor: base, params: { weight: 0.5 } } : undefined,
      models: models.map((t, i): ModelInput => ({ id: `m${i}`, tensor: t, params: { weight: w[i]! } })),
      globals: { normalize: s % 4 !== 1 },
    };
    same(linear, inputs, `linear seed ${s}`);
  }
});

test('streamed task_arithmetic and ties are bit-identical to merge() across their options', () => {
  const globalsList: ParamValues[] = [
    {},
    { normalize: false },
    { lambda: 0.8 },
    { rescale: true },
    { rescale: true, rescale_mode: 'inverse_density' },
    { consensus_method: 'count' },
    { disjoint_mean: 'count', normalize: true, lambda: 1.3 },
  ];
  for (let s = 0; s < 14; s++) {
    const n = 8 + s * 53;
    const count = [2, 1, 3, 4][s % 4]!;
    const { base, models } = family(100 + s, n, count, s % 2 === 0);
    const params: ParamValues[] = models.map((_, i) => ({ weight: [1, 0.7, -0.3, 1.2][i]!, density: [0.5, 0.25, 1, 0.9][(i + s) % 4]! }));
    for (const [gi, globals] of globalsList.entries()) {
      for (const def of [ties, taskArithmetic]) {
        if (def === taskArithmetic && ('consensus_method' in globals || 'disjoint_mean' in globals || 'rescale_mode' in globals)) continue;
        const inputs = {
          tensorName: `model.layers.${s}.self_attn.q_proj.weight`,
          shape: [n],
          base: { id: 'base', tensor: base },
          models: models.map((t, i): ModelInput => ({ id: `m${i}`, tensor: t, params: params[i] })),
          globals,
        };
        same(def, inputs, `${def.id} seed ${s} globals ${gi}`);
      }
    }
  }
});

test('streamed ties: all-equal magnitudes (ties everywhere), zero task vectors, no models, and a 2-D shape', () => {
  const n = 300;
  const base = randomTensor(1, n);
  const plusMinus = Float32Array.from(base, (b, j) => b + (j % 3 === 0 ? -0.25 : 0.25));
  const unchanged = base.slice();
  for (const models of [[plusMinus, unchanged], [unchanged, unchanged], [plusMinus, plusMinus, unchanged]]) {
    same(ties, { tensorName: 't', shape: [10, 30], base: { tensor: base }, models: models.map((t) => ({ tensor: t, params: { weight: 1, density: 0.4 } })), globals: { rescale: true } }, `ties tied ${models.length}`);
  }
  same(ties, { tensorName: 't', shape: [10, 30], base: { tensor: base }, models: [] }, 'ties no models');
});

test('streamed ties reproduces merge() on NaN, ±Inf and ±0 entries', () => {
  const n = 64;
  const base = randomTensor(3, n);
  const a = Float32Array.from(base, (b, j) => (j === 5 ? NaN : j === 9 ? Infinity : j === 11 ? -0 : b + 0.01 * ((j % 7) - 3)));
  const b = Float32Array.from(base, (x, j) => (j === 9 ? -Infinity : j === 20 ? NaN : x - 0.02 * ((j % 5) - 2)));
  same(ties, { tensorName: 't', shape: [n], base: { tensor: base }, models: [{ tensor: a, params: { weight: 1, density: 0.5 } }, { tensor: b, params: { weight: 1, density: 0.5 } }] }, 'ties specials');
  // With the L1 rescale a non-finite entry makes the factor NaN (not skipped), as in applyMask.
  same(ties, { tensorName: 't', shape: [n], base: { tensor: base }, models: [{ tensor: a, params: { weight: 1, density: 0.5 } }, { tensor: b, params: { weight: 1, density: 0.5 } }], globals: { rescale: true } }, 'ties specials rescaled');
  same(linear, { tensorName: 't', shape: [n], models: [{ tensor: a, params: { weight: 1 } }, { tensor: b, params: { weight: 2 } }] }, 'linear specials');
});

test('streamed ties throws like merge() when density keeps nothing; rank-based sparsifiers do not stream', () => {
  const x = randomTensor(9, 10);
  const inputs = { tensorName: 't', shape: [10], base: { tensor: x }, models: [{ tensor: x, params: { weight: 1, density: 0.05 } }] };
  assert.throws(() => ties.merge(inputs), /keeps no entries/);
  assert.throws(() => mergeStreamed(ties, inputs), /keeps no entries/);
  assert.throws(() => mergeStreamed(ties, { ...inputs, models: [{ tensor: x, params: { density: 0.5 } }] }), /missing required parameter "weight"/);
  // Breadcrumbs' rank window and DELLA's per-row ranks need a sort of the whole tensor (row).
  for (const def of [breadcrumbs, breadcrumbsTies, della, dellaLinear]) {
    assert.equal(mergeStreamed(def, { ...inputs, models: [{ tensor: x, params: { weight: 1, density: 0.5 } }], rng: tensorRng(0, 't') }), undefined, def.id);
  }
});

test('streamed dare_linear and dare_ties are bit-identical to merge() for the same seed (densities, rescale modes, 1-4 models, odd sizes)', () => {
  const globalsList: ParamValues[] = [
    {}, // mergekit: rescale on, L1 (a statistics pass)
    { rescale: false },
    { rescale: true, rescale_mode: 'inverse_density' },
    { normalize: true, lambda: 0.8 },
    { lambda: 1.3, rescale_mode: 'inverse_density', normalize: true },
  ];
  const tiesOnly: ParamValues[] = [{ consensus_method: 'count' }, { disjoint_mean: 'count', normalize: true }];
  for (let s = 0; s < 10; s++) {
    const n = 5 + s * 211; // never a multiple of the blockings below
    const count = [2, 1, 3, 4, 2][s % 5]!;
    const { base, models } = family(900 + s, n, count, s % 2 === 1);
    // density 1 draws nothing, 0 drops everything (then the L1 factor is skipped: ‖m ⊙ δ‖₁ = 0)
    const params: ParamValues[] = models.map((_, i) => ({ weight: [0.6, 0.4, -0.3, 1.2][i]!, density: [0.9, 0.5, 0.1, 1, 0, 0.75][(i + s) % 6]! }));
    const rng = tensorRng(s * 17 + 1, `model.layers.${s}.mlp.down_proj.weight`);
    for (const def of [dareLinear, dareTies]) {
      for (const [gi, globals] of [...globalsList, ...(def === dareTies ? tiesOnly : [])].entries()) {
        const inputs = {
          tensorName: `model.layers.${s}.mlp.down_proj.weight`,
          shape: s % 3 === 0 ? [n] : [1, n],
          base: { id: 'base', tensor: base },
          models: models.map((t, i): ModelInput => ({ id: `expert-0${i + 1}`, tensor: t, params: params[i] })),
          globals,
          rng,
        };
        same(def, inputs, `${def.id} seed ${s} globals ${gi}`);
      }
    }
  }
});

test('streamed DARE: a different seed or model id gives other masks; NaN and ±Inf entries as merge()', () => {
  const n = 4000;
  const { base, models } = family(31, n, 2, false);
  const inputs = (seed: number, id0 = 'a') => ({
    tensorName: 't', shape: [n], base: { tensor: base }, rng: tensorRng(seed, 't'),
    models: models.map((t, i) => ({ id: i === 0 ? id0 : 'b', tensor: t, params: { weight: 0.5, density: 0.5 } })),
  });
  const a = mergeStreamed(dareLinear, inputs(1))!;
  assert.notDeepEqual(bitsOf(a), bitsOf(mergeStreamed(dareLinear, inputs(2))!));
  assert.notDeepEqual(bitsOf(a), bitsOf(mergeStreamed(dareLinear, inputs(1, 'c'))!));
  const withSpecials = (globals: ParamValues) => {
    const x = inputs(5);
    x.models[0]!.tensor[7] = NaN;
    x.models[1]!.tensor[99] = Infinity;
    x.models[1]!.tensor[100] = -Infinity;
    return { ...x, globals };
  };
  for (const globals of [{}, { rescale: false }, { rescale_mode: 'inverse_density' }]) {
    same(dareLinear, withSpecials(globals), `dare_linear specials ${JSON.stringify(globals)}`);
    same(dareTies, withSpecials(globals), `dare_ties specials ${JSON.stringify(globals)}`);
  }
});

test('DARE streams: L1 rescale takes one statistics pass, the other modes none; bad densities throw like merge()', () => {
  const spec = (globals: ParamValues, density = 0.5) => ({ tensorName: 't', shape: [8], base: {}, models: [{ params: { weight: 1, density } }], globals });
  assert.equal(dareLinear.stream!(spec({}))!.wantsPass(0), true);
  assert.equal(dareLinear.stream!(spec({ rescale: false }))!.wantsPass(0), false);
  assert.equal(dareTies.stream!(spec({ rescale_mode: 'inverse_density' }))!.wantsPass(0), false);
  assert.equal(dareLinear.stream!(spec({}, 1))!.wantsPass(0), false); // density 1: nothing masked
  // Two masked models with L1: the keep flags (n/4 bytes) are held for the whole tensor and counted in the budget.
  const pair = (globals: ParamValues, n: number) => ({ tensorName: 't', shape: [n], base: {}, models: [0, 1].map(() => ({ params: { weight: 0.5, density: 0.9 } })), globals });
  assert.equal(dareLinear.stream!(pair({}, 1001))!.heldBytes!(), 251);
  assert.equal(dareLinear.stream!(pair({ rescale: false }, 1001))!.heldBytes!(), 0);
  assert.equal(dareLinear.stream!(spec({}))!.heldBytes!(), 0);
  const x = randomTensor(2, 8);
  const bad = { tensorName: 't', shape: [8], base: { tensor: x }, models: [{ tensor: x, params: { weight: 1, density: -0.5 } }] };
  assert.throws(() => dareLinear.merge(bad), /density in \[0, 1\]/);
  assert.throws(() => mergeStreamed(dareLinear, bad), /density in \[0, 1\]/);
  const s = dareLinear.stream!(spec({}))!;
  assert.throws(() => s.apply(0, 8, x, [x], new Float32Array(8)), /before the statistics pass/);
  assert.throws(() => s.scan(1, 0, 8, x, [x]), /no statistics pass 1/);
});

test('a sampled TIES threshold saves the second statistics pass on evenly mixed data, and not otherwise', () => {
  const n = 200_000;
  const { base, models } = family(77, n, 2, false);
  const spec = { tensorName: 't', shape: [n], base: {}, models: models.map(() => ({ params: { weight: 1, density: 0.5 } })) };
  const passes = (sample: boolean) => {
    const s = ties.stream!(spec)!;
    if (sample) {
      const idx = Array.from({ length: 4096 }, (_, i) => Math.floor((i * n) / 4096));
      s.sample!(idx.length, Float32Array.from(idx, (i) => base[i]!), models.map((m) => Float32Array.from(idx, (i) => m[i]!)));
    }
    let p = 0;
    for (; s.wantsPass(p); p++) {
      s.scan(p, 0, n, base, models);
      s.endPass(p);
    }
    return p;
  };
  assert.equal(passes(true), 1);
  assert.equal(passes(false), 2);
});

test('streams reject blocks out of order', () => {
  const s = ties.stream!({ tensorName: 't', shape: [8], base: {}, models: [{ params: { weight: 1, density: 0.5 } }] })!;
  const z = new Float32Array(8);
  assert.throws(() => s.scan(1, 0, 4, z, [z]), /no statistics pass 1/);
  s.scan(0, 0, 4, z, [z]);
  assert.throws(() => s.scan(0, 6, 2, z, [z]), /out of order/);
  const l = linear.stream!({ tensorName: 't', shape: [8], models: [{ params: { weight: 1 } }] })!;
  l.apply(0, 4, undefined, [z], z);
  assert.throws(() => l.apply(0, 4, undefined, [z], z), /out of order/);
});

test('decodeInto / encodeInto agree with toFloat32 / fromFloat32 (every bf16 and f16 pattern, unaligned offsets)', () => {
  const all = new Uint16Array(65536).map((_, i) => i);
  const bytes = new Uint8Array(all.buffer);
  for (const dtype of ['BF16', 'F16'] as DType[]) {
    const want = toFloat32(bytes, dtype);
    const got = new Float32Array(65536);
    decodeInto(bytes, 0, dtype, 65536, got);
    for (let i = 0; i < 65536; i++) {
      const ok = Number.isNaN(want[i]!) ? Number.isNaN(got[i]!) : Object.is(want[i], got[i]);
      if (!ok) assert.fail(`${dtype} ${i}: ${got[i]} vs ${want[i]}`);
    }
    // Unaligned source: falls back to the copying path.
    const odd = new Uint8Array(bytes.byteLength + 1);
    odd.set(bytes, 1);
    const got2 = new Float32Array(100);
    decodeInto(odd, 1 + 2 * 1000, dtype, 100, got2);
    assert.deepEqual(bitsOf(got2), bitsOf(toFloat32(bytes.subarray(2000, 2200), dtype)));
  }
  const values = randomTensor(4, 5000, 1e3);
  values[7] = NaN;
  values[8] = -Infinity;
  values[9] = 3.4e38;
  values[10] = -0;
  for (const dtype of ['BF16', 'F16', 'F32', 'F8_E4M3', 'F64'] as DType[]) {
    const want = fromFloat32(values, dtype);
    const out = new Uint8Array(want.byteLength + 8);
    encodeInto(values, values.length, dtype, out, 8);
    assert.deepEqual(out.subarray(8), want, dtype);
    const back = new Float32Array(values.length);
    decodeInto(out, 8, dtype, values.length, back);
    assert.deepEqual(bitsOf(back), bitsOf(toFloat32(want, dtype)), `${dtype} round trip`);
  }
});

// ── the raw-block path (stored dtype in and out; WebAssembly SIMD where available) ──

/** Rounds to bfloat16 values (so the tensor is exactly representable as BF16 bytes). */
const toBf16Values = (x: Float32Array) => toFloat32(fromFloat32(x, 'BF16'), 'BF16');

/** Runs a stream over raw blocks of `dtype` (as the merge worker does) and returns the output bytes. */
function mergeRaw(def: MergeMethodDef, inputs: Parameters<typeof mergeStreamed>[1], dtype: DType, outDtype: DType, blockSize: number): Uint8Array {
  const spec = {
    tensorName: inputs.tensorName, shape: inputs.shape, globals: inputs.globals, rng: inputs.rng,
    base: inputs.base ? { id: inputs.base.id, params: inputs.base.params } : undefined,
    models: inputs.models.map((m) => ({ id: m.id, params: m.params })),
  };
  const s = def.stream!(spec)!;
  const n = inputs.shape.reduce((a, d) => a * d, 1);
  const bytes = [...(inputs.base ? [inputs.base.tensor] : []), ...inputs.models.map((m) => m.tensor)].map((t) => fromFloat32(t, dtype));
  const size = dtype === 'F32' ? 4 : 2;
  const outSize = outDtype === 'F32' ? 4 : 2;
  const dec = new BlockDecoder();
  const blocks = (at: number): [RawBlock | undefined, RawBlock[]] => {
    const r = bytes.map((b) => ({ bytes: b, offset: at * size, dtype }));
    return inputs.base ? [r[0], r.slice(1)] : [undefined, r];
  };
  if (s.sample) {
    const idx = evenSample(n);
    const pick = (t: Float32Array) => Float32Array.from(idx, (i) => t[i]!);
    s.sample(idx.length, inputs.base ? pick(inputs.base.tensor) : undefined, inputs.models.map((m) => pick(m.tensor)));
  }
  for (let p = 0; s.wantsPass(p); p++) {
    for (let at = 0; at < n; at += blockSize) scanRaw(s, dec, p, at, Math.min(blockSize, n - at), blocks(at)[0], blocks(at)[1]);
    s.endPass(p);
  }
  const out = new Uint8Array(n * outSize);
  for (let at = 0; at < n; at += blockSize) applyRaw(s, dec, at, Math.min(blockSize, n - at), blocks(at)[0], blocks(at)[1], { bytes: out, offset: at * outSize, dtype: outDtype });
  return out;
}

test('raw blocks (BF16/F32 in and out), with and without SIMD, give merge() bit for bit — also with tails, NaN and Inf', () => {
  for (const simdOn of [true, false]) {
    setSimdEnabled(simdOn);
    try {
      for (let s = 0; s < 8; s++) {
        const n = 3001 + s * 517; // not a multiple of 4: a tail for the scalar path
        const { base, models } = family(500 + s, n, 2, s % 2 === 0);
        const special = s === 3 || s === 6;
        if (special) {
          models[0]![17] = NaN;
          models[1]![40] = Infinity;
          base[2900] = -Infinity;
          models[1]![2900] = -Infinity;
        }
        for (const dtype of ['BF16', 'F32'] as DType[]) {
          const ins = dtype === 'BF16' ? { base: toBf16Values(base), models: models.map(toBf16Values) } : { base, models };
          for (const outDtype of ['BF16', 'F32'] as DType[]) {
            const w = [1, 0.5, -0.25][s % 3]!;
            const cases: [MergeMethodDef, Parameters<typeof mergeStreamed>[1]][] = [
              [ties, { tensorName: 't', shape: [n], base: { tensor: ins.base }, models: ins.models.map((t, i) => ({ tensor: t, params: { weight: i === 0 ? 1 : w, density: [0.5, 0.3, 1][(s + i) % 3]! } })), globals: { normalize: s % 4 !== 1, lambda: s === 5 ? 0.7 : 1 } }],
              [linear, { tensorName: 't', shape: [n], models: [ins.base, ...ins.models].map((t, i) => ({ tensor: t, params: { weight: [1, w, 2][i]! } })), globals: { normalize: s !== 2 } }],
              [taskArithmetic, { tensorName: 't', shape: [n], base: { tensor: ins.base }, models: ins.models.map((t) => ({ tensor: t, params: { weight: w } })) }],
            ];
            // DARE (the WebAssembly kernels take two masked models without election; the rest runs in JavaScript).
            const dareModels = ins.models.map((t, i) => ({ id: `m${i}`, tensor: t, params: { weight: i === 0 ? 0.6 : w, density: s === 7 && i === 1 ? 1 : [0.9, 0.5, 0.3][(s + i) % 3]! } }));
            const rng = tensorRng(s, 't');
            for (const globals of [{}, { rescale: false }, { rescale_mode: 'inverse_density', normalize: s % 2 === 0 }, { lambda: 0.7 }]) {
              cases.push([dareLinear, { tensorName: 't', shape: [n], base: { tensor: ins.base }, models: dareModels, globals, rng }]);
            }
            cases.push([dareTies, { tensorName: 't', shape: [n], base: { tensor: ins.base }, models: dareModels, rng }]);
            for (const [def, inputs] of cases) {
              const want = fromFloat32(def.merge(inputs), outDtype);
              for (const blockSize of [8192, 1000, 37, 65536]) {
                const got = mergeRaw(def, inputs, dtype, outDtype, blockSize);
                assert.deepEqual(got, want, `${def.id} seed ${s} ${dtype}→${outDtype} blocks ${blockSize} simd ${simdOn}`);
              }
            }
          }
        }
      }
    } finally {
      setSimdEnabled(true);
    }
  }
});

test('the SIMD kernels are available here (WebAssembly SIMD validates)', () => {
  assert.ok(simd(), 'WebAssembly SIMD should be available in Node ≥ 16.4');
});
