/**
 * Linear merge ("model soup", Wortsman et al., arXiv 2203.05482), as mergekit's `linear`:
 *
 *   θ = Σᵢ wᵢθᵢ / Σᵢ wᵢ      (normalize = true, the default)
 *   θ = Σᵢ wᵢθᵢ              (normalize = false)
 *
 * The base model, if given, is just one more entry with its own `weight` (mergekit treats it
 * the same way). As in mergekit there is no guard for Σ wᵢ = 0 (the result is ±Inf/NaN).
 * Float32 as in torch: wᵢ and every product and partial sum are rounded to float32, summed
 * in entry order. (Embedding size mismatches, `rectify_embed_sizes`, are the caller's job.)
 */
import { defineMethod, WEIGHT_PARAM } from './define.js';
import { bool, entriesOf, num } from './params.js';
import { dtypeBytes, encodeInto } from '../dtypes.js';
import { isSimdDType, simd, SIMD_BLOCK, SIMD_INPUTS, type SimdDType } from './simd.js';
import { BlockDecoder, BlockOrder, noScan } from './stream-util.js';
import type { RawBlock, ResolvedSpec, TensorStream } from './types.js';

const f = Math.fround;

/**
 * The streamed form (element-wise, no statistics passes): the same float32 operations in the same
 * order as the whole-tensor loop below, so it is bit-identical for any blocking. The first partial
 * sum `f(0 + x)` of a float32 x is `x + 0` (exact; it only turns −0 into +0), so it needs no
 * rounding; entry counts up to 4 get unrolled loops.
 */
function linearStream(r: ResolvedSpec): TensorStream {
  const entries = r.base ? [r.base, ...r.models] : [...r.models];
  const weights = entries.map((e) => f(num(e.params, 'weight')));
  const normalize = bool(r.globals, 'normalize');
  let total = 0;
  for (const w of weights) total = f(total + w);
  const count = entries.length;
  const order = new BlockOrder(r.numel);
  const dec = new BlockDecoder();
  /** JS path for elements [at, at + n) of raw blocks. */
  const jsRaw = (xs: readonly RawBlock[], out: RawBlock, at: number, n: number) => {
    const o = dec.out(n);
    linearBlock(dec.decode(xs, at, n), weights, normalize, total, n, o);
    encodeInto(o, n, out.dtype, out.bytes, out.offset + at * dtypeBytes(out.dtype));
  };
  return {
    ...noScan,
    apply(start, length, base, models, out) {
      order.next(start, length);
      const xs = base ? [base, ...models] : models;
      if (xs.length !== count) throw new Error(`linear: expected ${count} input blocks, got ${xs.length}`);
      linearBlock(xs, weights, normalize, total, length, out);
    },
    applyRaw(start, length, base, models, out) {
      order.next(start, length);
      const xs = base ? [base, ...models] : models;
      if (xs.length !== count) throw new Error(`linear: expected ${count} input blocks, got ${xs.length}`);
      const sd = simd();
      const main = length & ~3;
      if (!sd || count > SIMD_INPUTS || !isSimdDType(out.dtype) || !xs.every((x) => isSimdDType(x.dtype))) {
        jsRaw(xs, out, 0, length);
        return;
      }
      const kernel = sd.linear(xs.map((x) => x.dtype as SimdDType), out.dtype, normalize);
      const args = [0, 0, ...xs.map(() => 0), ...weights, total];
      const addrs: number[] = [];
      const outSize = dtypeBytes(out.dtype);
      for (let at = 0; at < main; at += SIMD_BLOCK) {
        const n = Math.min(SIMD_BLOCK, main - at);
        sd.place(xs, at, n, addrs);
        const direct = sd.addressOf(out.bytes, out.offset + at * outSize);
        args[0] = n;
        args[1] = direct >= 0 ? direct : sd.output;
        for (let i = 0; i < count; i++) args[2 + i] = addrs[i]!;
        if (kernel(...args)) jsRaw(xs, out, at, n); // a non-finite input: JavaScript decides NaN payloads
        else if (direct < 0) out.bytes.set(sd.mem.subarray(sd.output, sd.output + n * outSize), out.offset + at * outSize);
      }
      if (main < length) jsRaw(xs, out, main, length - main);
    },
  };
}

function linearBlock(xs: readonly Float32Array[], w: readonly number[], normalize: boolean, total: number, n: number, out: Float32Array): void {
  const t = normalize ? total : 1;
  switch (xs.length) {
    case 1: {
      const a = xs[0]!;
      const wa = w[0]!;
      if (normalize) for (let j = 0; j < n; j++) out[j] = (f(wa * a[j]!) + 0) / t;
      else for (let j = 0; j < n; j++) out[j] = f(wa * a[j]!) + 0;
      return;
    }
    case 2: {
      const [a, b] = xs as [Float32Array, Float32Array];
      const [wa, wb] = w as [number, number];
      if (normalize) for (let j = 0; j < n; j++) out[j] = f(f(wa * a[j]!) + 0 + f(wb * b[j]!)) / t;
      else for (let j = 0; j < n; j++) out[j] = f(f(wa * a[j]!) + 0 + f(wb * b[j]!));
      return;
    }
    case 3: {
      const [a, b, c] = xs as [Float32Array, Float32Array, Float32Array];
      const [wa, wb, wc] = w as [number, number, number];
      if (normalize) for (let j = 0; j < n; j++) out[j] = f(f(f(wa * a[j]!) + 0 + f(wb * b[j]!)) + f(wc * c[j]!)) / t;
      else for (let j = 0; j < n; j++) out[j] = f(f(f(wa * a[j]!) + 0 + f(wb * b[j]!)) + f(wc * c[j]!));
      return;
    }
    case 4: {
      const [a, b, c, d] = xs as [Float32Array, Float32Array, Float32Array, Float32Array];
      const [wa, wb, wc, wd] = w as [number, number, number, number];
      for (let j = 0; j < n; j++) {
        const s = f(f(f(f(wa * a[j]!) + 0 + f(wb * b[j]!)) + f(wc * c[j]!)) + f(wd * d[j]!));
        out[j] = normalize ? s / t : s;
      }
      return;
    }
    default:
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let i = 0; i < xs.length; i++) s = f(s + f(w[i]! * xs[i]![j]!));
        out[j] = normalize ? s / t : s;
      }
  }
}

export const linear = defineMethod(
  {
    id: 'linear',
    label: 'Linear',
    paper: 'https://arxiv.org/abs/2203.05482',
    description: 'Weighted average θ = Σ wᵢθᵢ / Σ wᵢ (or the plain weighted sum without normalize).',
    requiresBase: false,
    baseUsage: 'entry',
    minModels: 1,
    maxModels: null,
    random: false,
    perModelParams: [WEIGHT_PARAM],
    globalParams: [
      { name: 'normalize', type: 'boolean', default: true, description: 'Divide by the sum of the weights.' },
    ],
  },
  (r) => {
    const entries = entriesOf(r);
    const weights = entries.map((e) => f(num(e.params, 'weight')));
    const out = new Float32Array(r.numel);
    for (let j = 0; j < r.numel; j++) {
      let s = 0;
      for (let i = 0; i < entries.length; i++) s = f(s + f(weights[i] * entries[i].tensor[j]));
      out[j] = s;
    }
    if (bool(r.globals, 'normalize')) {
      let total = 0;
      for (const w of weights) total = f(total + w);
      for (let j = 0; j < r.numel; j++) out[j] = out[j] / total;
    }
    return out;
  },
  linearStream,
);
