/**
 * The GTA maths of task-arithmetic.ts as a block stream (`TensorStream`), for the variants whose
 * sparsifier needs only whole-tensor statistics: none (task_arithmetic) and `magnitude` (ties).
 * (DARE's Bernoulli drop streams in dare-stream.ts.)
 * Bit-identical to `gtaMerge` for any blocking: every float32 operation happens in the same order.
 *
 * TIES's top-k of |δᵢ| (k = int(dᵢ·n)) is a radix selection over the float32 bit patterns of |δ|
 * (the 31-bit keys of select.ts), without a sort and without a stored copy of δ:
 *   sample  (optional) keys of a few thousand evenly spread elements around ascending rank n − k:
 *           either at most 4 distinct keys (task vectors of bf16 weights are full of exact ties)
 *           or a range of key buckets (top 16 key bits) that very likely holds that rank;
 *   stage   'count' (a few sampled keys): per candidate key c, how many keys are < c and = c
 *           (a few counters, no histogram). If rank n − k lies in [#(< c), #(< c) + #(= c)) for a
 *           candidate, c is the threshold, with the count below it and the count equal to it;
 *   stage   'hist' (a sampled bucket range, or after a miss): histogram of the top 16 key bits
 *           and, for the sampled range (≤ 32 buckets), of the low 15 bits too. The bucket of rank
 *           n − k follows from the first; if it is in the sampled range, its low-bits histogram
 *           gives the exact key at rank n − k and the counts below it and equal to it;
 *   stage   'low' (the bucket was not sampled): that low-bits histogram from one more sweep.
 *   Either way the result is what `selectAbsRank` returns, so the same ties are kept (the lowest
 *   flat indices first). Then, only for rescale with mode 'l1', one sweep sums |m ⊙ δ| in flat
 *   order (the factor); and `apply` recomputes δ per block, masks, rescales, weights, elects and
 *   mixes. Σ|δ| for the L1 rescale is summed during the first sweep.
 * δ = θᵢ − θ₀ is recomputed from the inputs in every sweep (the caller keeps the inputs in their
 * stored dtype, half the size of a float32 δ).
 *
 * Two models with sum election and no rescale — the common TIES case — have fused loops, and on
 * BF16/F32 blocks (`scanRaw` / `applyRaw`) their 'count' stage and `apply` run as WebAssembly SIMD
 * kernels (simd.ts; a block with a non-finite input is redone here, see there). The JavaScript
 * loops are top-level functions of typed arrays and numbers (V8 optimises each once), and their
 * data-dependent choices (mask, sign agreement) select through tiny typed arrays indexed by 0/1
 * flags rather than branches, which a CPU cannot predict on coin-flip data.
 *
 * The SIMD 'count' kernel accumulates in its thread's memory until `endPass`: a thread runs one
 * counting sweep at a time (the merge worker runs one task at a time).
 */
import { dtypeBytes, encodeInto } from '../dtypes.js';
import type { ConsensusMethod } from './consensus.js';
import { bool, num, str } from './params.js';
import type { RescaleMode } from './sparsify.js';
import { isSimdDType, simd, SIMD_BLOCK, type SimdDType } from './simd.js';
import { BlockDecoder, BlockOrder } from './stream-util.js';
import type { GtaVariant } from './task-arithmetic.js';
import type { RawBlock, ResolvedSpec, TensorStream } from './types.js';

const f = Math.fround;
const RESCALE_EPS = f(1e-7);
const NO_CONSENSUS_EPS = f(1e-8);
const LOW_BITS = 15;
const LOW_MASK = (1 << LOW_BITS) - 1;
const BUCKETS = 1 << (31 - LOW_BITS);
/** Most buckets a sampled range may span (its low-bits histogram then takes 4 MiB per model). */
const MAX_SPAN = 32;
/** Spare counters at the end of a sampled low-bits histogram (see `histKeys`). */
const SPARE = 8;
const EMPTY_U32 = new Uint32Array(0);
/** Key of +Inf: candidate keys up to it compare the same in any NaN payload (see `scanRaw`). */
const EXP_KEY = 0x7f800000;

/** What a masked model still needs from the statistics sweeps. */
type Stage = 'count' | 'hist' | 'low' | 'done';
/** Most distinct sampled keys handled by the 'count' stage. */
const MAX_CANDIDATES = 4;
/** How kept entries are rescaled: not, divided by the density, or multiplied by the L1 factor. */
const enum Rescale {
  None = 0,
  Inverse = 1,
  Factor = 2,
}

interface ModelState {
  /** float32 weight. */
  readonly w: number;
  /** Weight in the disjoint-mean divisor (w, or 1 for the count mean). */
  readonly dw: number;
  readonly density: number;
  /** True when a top-k mask applies (magnitude sparsifier and density < 1). */
  readonly sparse: boolean;
  readonly k: number;
  /** Top-16-bit key histogram (pass 'hist'), low-bits histogram of the threshold bucket (pass 'low'). */
  hist: Uint32Array;
  low: Uint32Array;
  /**
   * Sampled bucket range [sampleLo, sampleLo + sampleSpan) and the low-bits histogram of every
   * bucket in it, filled by pass 'hist' (SPARE extra counters at the end).
   */
  sampleLo: number;
  sampleSpan: number;
  fine: Uint32Array;
  /** Bucket (top 16 key bits) holding the threshold, and the rank of the threshold inside it. */
  bucket: number;
  rankInBucket: number;
  lessBelowBucket: number;
  /**
   * Candidate keys of the 'count' stage (see `countKeys`: MAX_CANDIDATES keys, padded with
   * 0x7fffffff, then a −1 sentinel), how many are real, and their slot counters.
   */
  cands: Int32Array;
  candCount: number;
  /** Counts from the SIMD 'count' kernel: [#(< c) per candidate, then #(= c) per candidate]. */
  readonly simdCounts: Float64Array;
  slots: Uint32Array;
  /** The work of this model in the next statistics sweep. */
  stage: Stage;
  /** Threshold key (bits of |δ|; −1 keeps everything) and how many entries equal to it are kept. */
  thr: number;
  tiesKept: number;
  ties: number;
  /**
   * [Σ|δ|, Σ|m ⊙ δ|, L1 factor, 1 when the factor is skipped] — doubles, as the reference sums them.
   * (A non-finite input makes the factor NaN without skipping it, as in `applyMask`.)
   */
  readonly sums: Float64Array;
}

/** True for ±2^k (finite, non-zero, all mantissa bits zero). */
function isPowerOfTwo(d: number): boolean {
  if (!Number.isFinite(d) || d === 0) return false;
  return Math.abs(d) / 2 ** Math.floor(Math.log2(Math.abs(d))) === 1;
}

export function gtaStream(v: GtaVariant, r: ResolvedSpec): TensorStream | undefined {
  if (v.sparsifier !== null && v.sparsifier !== 'magnitude') return undefined;
  if (!r.base) throw new Error(`${r.tensorName}: a base model is required`);
  const n = r.numel;
  const g = r.globals;
  const rescale = bool(g, 'rescale');
  const rescaleMode = (v.sparsifier !== null ? str(g, 'rescale_mode') : 'l1') as RescaleMode;
  const normalize = bool(g, 'normalize');
  const lambda = num(g, 'lambda');
  const scale = lambda !== 1;
  const lambda32 = f(lambda);
  const consensus = v.consensus;
  const countVote = consensus && str(g, 'consensus_method') === ('count' satisfies ConsensusMethod);
  const countMean = consensus && str(g, 'disjoint_mean') === 'count';
  const count = r.models.length;

  const models: ModelState[] = r.models.map((m) => {
    const density = num(m.params, 'density');
    const sparse = v.sparsifier === 'magnitude' && density < 1;
    const k = sparse ? Math.trunc(density * n) : n;
    if (sparse && k <= 0) throw new Error(`magnitude sparsification with density ${density} keeps no entries of ${n}`);
    const w = f(num(m.params, 'weight'));
    return {
      w, dw: countMean ? 1 : w, density, sparse, k,
      hist: EMPTY_U32, low: EMPTY_U32, sampleLo: 0, sampleSpan: 0, fine: EMPTY_U32,
      bucket: 0, rankInBucket: 0, lessBelowBucket: 0, cands: new Int32Array(0), candCount: 0, simdCounts: new Float64Array(2 * MAX_CANDIDATES), slots: EMPTY_U32,
      stage: sparse ? 'hist' : 'done', thr: -1, tiesKept: 0, ties: 0, sums: Float64Array.of(0, 0, NaN, 1),
    };
  });
  const anySparse = models.some((m) => m.sparse);
  const l1 = anySparse && rescale && rescaleMode === 'l1';
  const inverse = anySparse && rescale && rescaleMode === 'inverse_density';
  let divisor = 0;
  for (const m of models) divisor = f(divisor + m.w);
  if (Math.abs(divisor) < NO_CONSENSUS_EPS) divisor = 1;
  const dws = Float64Array.from(models, (m) => m.dw);

  // Sweeps: while a model's threshold is unknown, its stage; then (L1 rescale) one 'after' sweep.
  let afterDone = !l1;
  let sweeping: 'stages' | 'after' | null = null;
  const nextSweep = (): 'stages' | 'after' | null => (models.some((m) => m.stage !== 'done') ? 'stages' : afterDone ? null : 'after');
  let sweepsStarted = 0;
  // Whether a whole statistics sweep saw every input value and found them all finite (then the
  // SIMD apply kernel can skip its per-lane test; see scanRaw).
  let allFinite = false;
  let sweepChecked = false;
  let sweepFinite = false;
  // True while the SIMD 'count' kernel holds this sweep's counts (collected at endPass).
  let simdCounting = false;

  // Per-model block scratch: δ (then the weighted Δ) as float32, and its bit patterns.
  let cap = 0;
  let deltas: Float32Array[] = [];
  let bits: Int32Array[] = [];
  const scratch = (length: number) => {
    if (length > cap) {
      cap = Math.max(length, 1024);
      deltas = models.map(() => new Float32Array(cap));
      bits = deltas.map((d) => new Int32Array(d.buffer));
    }
  };
  const pair = new Float32Array(2);
  const pairBits = new Int32Array(pair.buffer);
  const sel = new Float32Array(2);
  const ties2 = new Int32Array(2);
  const dec = new BlockDecoder();
  const orders = [0, 1, 2, 3].map(() => new BlockOrder(n));
  const applyOrder = new BlockOrder(n);
  const check = (ms: readonly Float32Array[], base: Float32Array | undefined): Float32Array => {
    if (ms.length !== count || !base) throw new Error(`${r.tensorName}: expected the base and ${count} model blocks`);
    return base;
  };

  // Fused two-model TIES tables: the disjoint divisor by agreement pattern (bit 0: model 0
  // agrees, bit 1: model 1) — none → 0 → 1; one → f(0 + dw) = dw + 0; both → f(dw₀ + dw₁); 0 → 1.
  const fused = consensus && !countVote && count === 2 && !rescale;
  const mixDiv = fused ? Float32Array.from([0, dws[0]! + 0, dws[1]! + 0, f(dws[0]! + 0 + dws[1]!)], (d) => (d === 0 ? 1 : d)) : new Float32Array(4);
  // x / d for a power of two d is x · (1/d) exactly (the same exact quotient, the same rounding);
  // a multiplication is much cheaper than a division, and the usual weights give 1 and 2.
  const mixRecip = Float64Array.from(mixDiv, (d) => 1 / d);
  const byRecip = normalize && [...mixDiv].every(isPowerOfTwo);

  const settle = (st: ModelState, thr: number, less: number, equal: number) => {
    st.thr = thr;
    st.tiesKept = st.k - (n - less - equal);
    st.ties = st.tiesKept;
    st.stage = 'done';
  };
  /** Resolves the threshold of a model from a low-bits histogram of its threshold bucket. */
  const resolve = (st: ModelState, low: Uint32Array) => {
    let cum = 0;
    let d = 0;
    for (; d < low.length; d++) {
      if (cum + low[d]! > st.rankInBucket) break;
      cum += low[d]!;
    }
    settle(st, (st.bucket << LOW_BITS) | d, st.lessBelowBucket + cum, low[d]!);
  };

  return {
    wantsPass(pass) {
      if (pass < sweepsStarted) return true;
      if (pass > sweepsStarted) return false;
      return nextSweep() !== null;
    },

    sample(length, baseBlock, ms) {
      const base = check(ms, baseBlock);
      if (length <= 0) return;
      scratch(length);
      const hist = new Uint32Array(BUCKETS);
      for (let i = 0; i < count; i++) {
        const st = models[i]!;
        if (!st.sparse) continue;
        hist.fill(0);
        histKeys(base, ms[i]!, length, deltas[i]!, bits[i]!, hist, EMPTY_U32, 0, 0);
        // Sample ranks around the target quantile, with a margin of ~4 standard deviations of a
        // sampled rank plus 1 % of the sample (for data that is not evenly mixed).
        const q = (n - st.k) / n;
        const rank = q * length;
        const margin = 4 * Math.sqrt(length * q * (1 - q)) + 0.01 * length + 2;
        const loRank = Math.max(0, Math.floor(rank - margin));
        const hiRank = Math.min(length - 1, Math.ceil(rank + margin));
        let cum = 0;
        let lo = -1;
        let hi = BUCKETS - 1;
        let mid = -1;
        for (let b = 0; b < BUCKETS; b++) {
          cum += hist[b]!;
          if (lo < 0 && cum > loRank) lo = b;
          if (mid < 0 && cum > rank) mid = b;
          if (cum > hiRank) {
            hi = b;
            break;
          }
        }
        lo = Math.max(0, lo);
        // At most MAX_CANDIDATES distinct keys in the window's buckets: count them instead.
        const u = bits[i]!;
        const keys: number[] = [];
        for (let j = 0; j < length && keys.length <= MAX_CANDIDATES; j++) {
          const key = u[j]! & 0x7fffffff;
          const b = key >>> LOW_BITS;
          if (b >= lo && b <= hi && !keys.includes(key)) keys.push(key);
        }
        if (keys.length <= MAX_CANDIDATES) {
          keys.sort((a, b) => a - b);
          st.cands = Int32Array.from({ length: MAX_CANDIDATES + 1 }, (_, c) => (c < keys.length ? keys[c]! : c < MAX_CANDIDATES ? 0x7fffffff : -1));
          st.candCount = keys.length;
          st.slots = new Uint32Array((2 * MAX_CANDIDATES + 1) * 4);
          st.stage = 'count';
          continue;
        }
        if (hi - lo + 1 > MAX_SPAN) {
          // Too wide: keep MAX_SPAN buckets around the bucket of the estimated rank.
          lo = Math.max(lo, Math.min(hi - MAX_SPAN + 1, Math.max(0, mid) - (MAX_SPAN >> 1)));
          hi = lo + MAX_SPAN - 1;
        }
        st.sampleLo = lo;
        st.sampleSpan = hi - lo + 1;
      }
    },

    scan(pass, start, length, baseBlock, ms) {
      beginScan(pass, start, length);
      sweepChecked = false;
      scanBlock(pass, check(ms, baseBlock), ms, length);
    },

    scanRaw(pass, start, length, baseRaw, raws) {
      beginScan(pass, start, length);
      const all = checkRaw(baseRaw, raws);
      const sd = simd();
      let done = 0;
      if (sd && sweeping === 'stages' && count === 2 && !(pass === 0 && l1) && all.every((x) => isSimdDType(x.dtype))) {
        const [s0, s1] = models as [ModelState, ModelState];
        const finite = (st: ModelState) => st.cands.subarray(0, st.candCount).every((c) => c <= EXP_KEY);
        if (s0.stage === 'count' && s1.stage === 'count' && finite(s0) && finite(s1)) {
          const m0 = s0.candCount;
          const m1 = s1.candCount;
          const kernel = sd.tiesCount(all.map((x) => x.dtype as SimdDType), m0, m1);
          const args = [0, 0, 0, 0, ...s0.cands.subarray(0, m0), ...s1.cands.subarray(0, m1)];
          const addrs: number[] = [];
          if (!simdCounting) {
            sd.resetCounts(); // the kernel accumulates in its memory until endPass reads it
            simdCounting = true;
          }
          done = length & ~3;
          for (let at = 0; at < done; at += SIMD_BLOCK) {
            const k = Math.min(SIMD_BLOCK, done - at);
            sd.place(all, at, k, addrs);
            args[0] = k;
            args[1] = addrs[0]!;
            args[2] = addrs[1]!;
            args[3] = addrs[2]!;
            if (kernel(...args)) sweepFinite = false;
          }
        }
      }
      if (done < length) {
        const x = dec.decode(all, done, length - done);
        if (length - done <= 64) sweepFinite &&= x.every((a) => a.subarray(0, length - done).every(Number.isFinite));
        else sweepChecked = false;
        scanBlock(pass, x[0]!, x.slice(1), length - done);
      }
    },

    endPass(pass) {
      endScan(pass);
    },

    apply(start, length, baseBlock, ms, out) {
      applyOrder.next(start, length);
      applyBlock(check(ms, baseBlock), ms, length, out);
    },

    applyRaw(start, length, baseRaw, raws, out) {
      applyOrder.next(start, length);
      const all = checkRaw(baseRaw, raws);
      const sd = simd();
      const outSize = dtypeBytes(out.dtype);
      let done = 0;
      if (sd && fused && isSimdDType(out.dtype) && all.every((x) => isSimdDType(x.dtype))) {
        const [s0, s1] = models as [ModelState, ModelState];
        const kernel = sd.tiesApply(all.map((x) => x.dtype as SimdDType), out.dtype, normalize, scale, !allFinite);
        const args = [0, 0, 0, 0, 0, s0.w, s1.w, f(0 * s0.w), f(0 * s1.w), s0.dw, s1.dw, lambda32, s0.thr, s1.thr];
        const addrs: number[] = [];
        done = length & ~3;
        for (let at = 0; at < done; at += SIMD_BLOCK) {
          const k = Math.min(SIMD_BLOCK, done - at);
          sd.place(all, at, k, addrs);
          const direct = sd.addressOf(out.bytes, out.offset + at * outSize);
          args[0] = k;
          args[1] = direct >= 0 ? direct : sd.output;
          args[2] = addrs[0]!;
          args[3] = addrs[1]!;
          args[4] = addrs[2]!;
          sd.setTies(s0.ties, s1.ties);
          if (kernel(...args)) {
            jsApplyRaw(all, out, at, k); // a non-finite input: JavaScript decides NaN payloads
          } else {
            s0.ties = sd.ties0;
            s1.ties = sd.ties1;
            if (direct < 0) out.bytes.set(sd.mem.subarray(sd.output, sd.output + k * outSize), out.offset + at * outSize);
          }
        }
      }
      if (done < length) jsApplyRaw(all, out, done, length - done);
    },
  };

  function checkRaw(base: RawBlock | undefined, raws: readonly RawBlock[]): RawBlock[] {
    if (!base || raws.length !== count) throw new Error(`${r.tensorName}: expected the base and ${count} model blocks`);
    return [base, ...raws];
  }

  function jsApplyRaw(all: RawBlock[], out: RawBlock, at: number, k: number): void {
    const x = dec.decode(all, at, k);
    const o = dec.out(k);
    applyBlock(x[0]!, x.slice(1), k, o);
    encodeInto(o, k, out.dtype, out.bytes, out.offset + at * dtypeBytes(out.dtype));
  }

  function beginScan(pass: number, start: number, length: number): void {
    if (start === 0) {
      if (pass !== sweepsStarted || !(sweeping = nextSweep())) throw new Error(`stream: no statistics pass ${pass}`);
      sweepsStarted++;
      sweepChecked = true;
      sweepFinite = true;
      for (const st of models) {
        if (st.stage === 'hist') {
          st.hist = new Uint32Array(BUCKETS);
          st.fine = new Uint32Array((st.sampleSpan << LOW_BITS) + SPARE);
        }
      }
    } else if (pass !== sweepsStarted - 1) {
      throw new Error(`stream: no statistics pass ${pass}`);
    }
    orders[pass]!.next(start, length);
  }

  function scanBlock(pass: number, base: Float32Array, ms: readonly Float32Array[], length: number): void {
    scratch(length);
    const first = pass === 0;
    if (sweeping === 'after') {
      for (let i = 0; i < count; i++) {
        const st = models[i]!;
        if (st.sparse) st.ties = keptAbsSum(base, ms[i]!, length, deltas[i]!, bits[i]!, st.thr, st.ties, st.sums);
      }
      return;
    }
    if (count === 2 && !(first && l1)) {
      const [s0, s1] = models as [ModelState, ModelState];
      if (s0.stage === 'count' && s1.stage === 'count') {
        countKeysPair(base, ms[0]!, ms[1]!, length, pair, pairBits, s0.cands, s0.slots, s1.cands, s1.slots);
        return;
      }
      if (s0.stage === 'hist' && s1.stage === 'hist') {
        histKeysPair(base, ms[0]!, ms[1]!, length, pair, pairBits, s0.hist, s0.fine, s0.sampleLo, s0.sampleSpan, s1.hist, s1.fine, s1.sampleLo, s1.sampleSpan);
        return;
      }
    }
    for (let i = 0; i < count; i++) {
      const st = models[i]!;
      if (!st.sparse) continue;
      const d = deltas[i]!;
      const u = bits[i]!;
      if (st.stage === 'count') countKeys(base, ms[i]!, length, d, u, st.cands, st.slots);
      else if (st.stage === 'hist') histKeys(base, ms[i]!, length, d, u, st.hist, st.fine, st.sampleLo, st.sampleSpan);
      else if (st.stage === 'low') lowKeys(base, ms[i]!, length, d, u, st.low, st.bucket);
      else if (first) delta(base, ms[i]!, length, d);
      if (first && l1) st.sums[0] = sumAbs(d, length, st.sums[0]!);
    }
  }

  function endScan(pass: number): void {
    if (pass !== sweepsStarted - 1 || sweeping === null) throw new Error(`stream: no statistics pass ${pass}`);
    if (sweepChecked && sweepFinite) allFinite = true;
    if (simdCounting) {
      const sd = simd()!;
      const m0 = models[0]!.candCount;
      for (const [mi, st] of models.entries()) {
        for (let q = 0; q < st.candCount; q++) {
          const [lt, eq] = sd.counts(m0, mi, q);
          st.simdCounts[q] = lt;
          st.simdCounts[MAX_CANDIDATES + q] = eq;
        }
      }
      simdCounting = false;
    }
    if (sweeping === 'after') {
      afterDone = true;
      for (const st of models) {
        if (!st.sparse) continue;
        const b = f(st.sums[0]!);
        const a = f(st.sums[1]!);
        st.sums[3] = +(b < RESCALE_EPS || a < RESCALE_EPS);
        st.sums[2] = f(b / a);
      }
    }
    for (const st of models) {
      if (st.stage === 'count') {
        // The threshold is a candidate when rank n − k falls in its "equal" slot.
        const rank = n - st.k;
        const slot = (s: number) => st.slots[4 * s]! + st.slots[4 * s + 1]! + st.slots[4 * s + 2]! + st.slots[4 * s + 3]!;
        // Blocks counted by the SIMD kernel add their per-candidate #(< c) and #(= c).
        let less = 0;
        let hit = false;
        for (let c = 0; c < st.candCount; c++) {
          less += slot(2 * c);
          const lt = less + st.simdCounts[c]!;
          const equal = slot(2 * c + 1) + st.simdCounts[MAX_CANDIDATES + c]!;
          if (lt <= rank && rank < lt + equal) {
            settle(st, st.cands[c]!, lt, equal);
            hit = true;
            break;
          }
          less += slot(2 * c + 1);
        }
        st.slots = EMPTY_U32;
        st.simdCounts.fill(0);
        if (!hit) st.stage = 'hist'; // the sample missed: full histogram next (sampleSpan is 0)
      } else if (st.stage === 'hist') {
        // Bucket of ascending rank n − k (selectAbsRank(bits, n − k)).
        const hist = st.hist;
        const rank = n - st.k;
        let cum = 0;
        let b = 0;
        for (; b < hist.length; b++) {
          if (cum + hist[b]! > rank) break;
          cum += hist[b]!;
        }
        st.bucket = b;
        st.lessBelowBucket = cum;
        st.rankInBucket = rank - cum;
        st.hist = EMPTY_U32;
        if (((b - st.sampleLo) >>> 0) < st.sampleSpan) {
          const at = (b - st.sampleLo) << LOW_BITS;
          resolve(st, st.fine.subarray(at, at + (1 << LOW_BITS)));
        } else {
          st.low = new Uint32Array(1 << LOW_BITS);
          st.stage = 'low';
        }
        st.fine = EMPTY_U32;
      } else if (st.stage === 'low') {
        resolve(st, st.low);
        st.low = EMPTY_U32;
      }
    }
    sweeping = null;
    for (const st of models) st.ties = st.tiesKept; // every sweep counts kept ties afresh
  }

  function applyBlock(base: Float32Array, ms: readonly Float32Array[], length: number, out: Float32Array): void {
    if (count === 0) {
      out.set(base.subarray(0, length));
      return;
    }
    if (fused) {
      const [s0, s1] = models as [ModelState, ModelState];
      ties2[0] = s0.ties;
      ties2[1] = s1.ties;
      tiesPair(base, ms[0]!, ms[1]!, out, length, pair, pairBits, sel, s0.w, s1.w, s0.thr, s1.thr, ties2, mixDiv, mixRecip, byRecip, normalize, scale, lambda32);
      s0.ties = ties2[0]!;
      s1.ties = ties2[1]!;
      return;
    }
    scratch(length);
    // 1-3: δᵢ, trim, rescale, weight → Δᵢ in deltas[i].
    for (let i = 0; i < count; i++) {
      const st = models[i]!;
      if (!st.sparse) {
        weightedDelta(base, ms[i]!, length, deltas[i]!, st.w);
        continue;
      }
      const mode = inverse ? Rescale.Inverse : l1 && st.sums[3] === 0 ? Rescale.Factor : Rescale.None;
      st.ties = maskedDelta(base, ms[i]!, length, deltas[i]!, bits[i]!, sel, st.w, st.thr, st.ties, mode, mode === Rescale.Inverse ? st.density : st.sums[2]!);
    }
    // 4-8: elect, mix, normalize, scale, add to the base.
    if (consensus) electAndMix(deltas, count, dws, countVote, base, out, length, normalize, scale, lambda32);
    else sumAndMix(deltas, count, divisor, base, out, length, normalize, scale, lambda32);
  }
}

// ─────────────────────────── loops ───────────────────────────

/**
 * δ = x − base into `d` (float32), the top-16-bit histogram of its keys into `hist`, and the
 * low-bits histogram of the keys in buckets [lo, lo + span) into `fine` (whose last SPARE counters
 * absorb the keys outside, in turn, so the loop needs no branch and the increments do not wait on
 * each other).
 */
function histKeys(base: Float32Array, x: Float32Array, n: number, d: Float32Array, u: Int32Array, hist: Uint32Array, fine: Uint32Array, lo: number, span: number): void {
  const off = lo << LOW_BITS;
  const spare = fine.length - SPARE;
  if (span === 0) {
    for (let j = 0; j < n; j++) {
      d[j] = x[j]! - base[j]!;
      hist[(u[j]! & 0x7fffffff) >>> LOW_BITS]!++;
    }
    return;
  }
  for (let j = 0; j < n; j++) {
    d[j] = x[j]! - base[j]!;
    const key = u[j]! & 0x7fffffff;
    const b = key >>> LOW_BITS;
    hist[b]!++;
    const inside = -+((b - lo) >>> 0 < span);
    fine[((key - off) & inside) | ((spare + (j & (SPARE - 1))) & ~inside)]!++;
  }
}

/** `histKeys` for two models at once (δ kept in registers). */
function histKeysPair(
  base: Float32Array, x0: Float32Array, x1: Float32Array, n: number, pair: Float32Array, pairBits: Int32Array,
  h0: Uint32Array, f0: Uint32Array, lo0: number, span0: number, h1: Uint32Array, f1: Uint32Array, lo1: number, span1: number,
): void {
  const off0 = lo0 << LOW_BITS;
  const off1 = lo1 << LOW_BITS;
  const spare0 = f0.length - SPARE;
  const spare1 = f1.length - SPARE;
  for (let j = 0; j < n; j++) {
    const b = base[j]!;
    pair[0] = x0[j]! - b;
    pair[1] = x1[j]! - b;
    const k0 = pairBits[0]! & 0x7fffffff;
    const k1 = pairBits[1]! & 0x7fffffff;
    const b0 = k0 >>> LOW_BITS;
    const b1 = k1 >>> LOW_BITS;
    h0[b0]!++;
    h1[b1]!++;
    const in0 = -+((b0 - lo0) >>> 0 < span0);
    const in1 = -+((b1 - lo1) >>> 0 < span1);
    const s = j & (SPARE - 1);
    f0[((k0 - off0) & in0) | ((spare0 + s) & ~in0)]!++;
    f1[((k1 - off1) & in1) | ((spare1 + s) & ~in1)]!++;
  }
}

/** δ = x − base into `d`. */
function delta(base: Float32Array, x: Float32Array, n: number, d: Float32Array): void {
  for (let j = 0; j < n; j++) d[j] = x[j]! - base[j]!;
}

/**
 * The 'count' stage: δ into `d`, and every key sorted into slots around the candidate keys
 * c₀ < c₁ < … (padded with 0x7fffffff, above every key but NaN's all-ones pattern, which then
 * counts as "above" a pad — pads only ever precede empty slots): slot 2p for c₍p−1₎ < key < c_p,
 * slot 2p + 1 for key = c_p, p = #(c < key). `cands[MAX_CANDIDATES]` is a −1 sentinel (equal to no
 * key). `slots` has four interleaved copies of each counter (index slot·4 + j mod 4), so that runs
 * of equal keys do not wait on one counter.
 */
function countKeys(base: Float32Array, x: Float32Array, n: number, d: Float32Array, u: Int32Array, cands: Int32Array, slots: Uint32Array): void {
  const c0 = cands[0]!;
  const c1 = cands[1]!;
  const c2 = cands[2]!;
  const c3 = cands[3]!;
  for (let j = 0; j < n; j++) {
    d[j] = x[j]! - base[j]!;
    const key = u[j]! & 0x7fffffff;
    const p = +(key > c0) + +(key > c1) + +(key > c2) + +(key > c3);
    slots[(((p << 1) | +(key === cands[p]!)) << 2) | (j & 3)]!++;
  }
}

/** `countKeys` for two models at once. */
function countKeysPair(
  base: Float32Array, x0: Float32Array, x1: Float32Array, n: number, pair: Float32Array, pairBits: Int32Array,
  cands0: Int32Array, slots0: Uint32Array, cands1: Int32Array, slots1: Uint32Array,
): void {
  const a0 = cands0[0]!;
  const a1 = cands0[1]!;
  const a2 = cands0[2]!;
  const a3 = cands0[3]!;
  const b0 = cands1[0]!;
  const b1 = cands1[1]!;
  const b2 = cands1[2]!;
  const b3 = cands1[3]!;
  for (let j = 0; j < n; j++) {
    const b = base[j]!;
    pair[0] = x0[j]! - b;
    pair[1] = x1[j]! - b;
    const k0 = pairBits[0]! & 0x7fffffff;
    const k1 = pairBits[1]! & 0x7fffffff;
    const p0 = +(k0 > a0) + +(k0 > a1) + +(k0 > a2) + +(k0 > a3);
    const p1 = +(k1 > b0) + +(k1 > b1) + +(k1 > b2) + +(k1 > b3);
    const r = j & 3;
    slots0[(((p0 << 1) | +(k0 === cands0[p0]!)) << 2) | r]!++;
    slots1[(((p1 << 1) | +(k1 === cands1[p1]!)) << 2) | r]!++;
  }
}

/** acc + Σ|d[j]| in order (double, as applyMask sums). */
function sumAbs(d: Float32Array, n: number, acc: number): number {
  for (let j = 0; j < n; j++) acc += Math.abs(d[j]!);
  return acc;
}

/** Low-bits histogram of the keys of δ = x − base that fall in `bucket`. */
function lowKeys(base: Float32Array, x: Float32Array, n: number, d: Float32Array, u: Int32Array, low: Uint32Array, bucket: number): void {
  for (let j = 0; j < n; j++) {
    d[j] = x[j]! - base[j]!;
    const key = u[j]! & 0x7fffffff;
    if (key >>> LOW_BITS === bucket) low[key & LOW_MASK]!++;
  }
}

/** sums[1] += Σ|δ| over the kept entries (in order); returns the ties still to keep. */
function keptAbsSum(base: Float32Array, x: Float32Array, n: number, d: Float32Array, u: Int32Array, thr: number, ties: number, sums: Float64Array): number {
  let after = sums[1]!;
  for (let j = 0; j < n; j++) {
    d[j] = x[j]! - base[j]!;
    const key = u[j]! & 0x7fffffff;
    if (key > thr || (key === thr && ties-- > 0)) after += Math.abs(d[j]!);
  }
  sums[1] = after;
  return ties;
}

/** Δ = f(f(x − base) · w) for a model without a mask. */
function weightedDelta(base: Float32Array, x: Float32Array, n: number, d: Float32Array, w: number): void {
  for (let j = 0; j < n; j++) d[j] = f(f(x[j]! - base[j]!) * w);
}

/**
 * Δ = f(m ⊙ rescale(δ) · w) with the top-k mask (key > thr, or key = thr while ties remain);
 * a trimmed entry is f(0 · w). Returns the ties still to keep.
 */
function maskedDelta(
  base: Float32Array, x: Float32Array, n: number, d: Float32Array, u: Int32Array, sel: Float32Array,
  w: number, thr: number, ties: number, mode: Rescale, c: number,
): number {
  sel[0] = f(0 * w);
  for (let j = 0; j < n; j++) {
    d[j] = x[j]! - base[j]!;
    const key = u[j]! & 0x7fffffff;
    const tie = +(key === thr) & +(ties > 0);
    ties -= tie;
    const v = d[j]!;
    sel[1] = mode === Rescale.None ? v * w : mode === Rescale.Inverse ? f(v / c) * w : f(v * c) * w;
    d[j] = sel[((thr - key) >>> 31) | tie]!;
  }
  return ties;
}

/** TIES election (sum or count of signs), weighted disjoint sum, normalize, λ, + base (also dare-stream.ts). */
export function electAndMix(
  deltas: readonly Float32Array[], count: number, dws: Float64Array, countVote: boolean, base: Float32Array, out: Float32Array, n: number,
  normalize: boolean, scale: boolean, lambda32: number,
): void {
  for (let j = 0; j < n; j++) {
    let s = 0;
    if (countVote) for (let i = 0; i < count; i++) s += Math.sign(deltas[i]![j]!);
    else for (let i = 0; i < count; i++) s = f(s + deltas[i]![j]!);
    const pos = s >= 0;
    let mixed = 0;
    let div = 0;
    for (let i = 0; i < count; i++) {
      const x = deltas[i]![j]!;
      if (pos ? x > 0 : x < 0) {
        mixed = f(mixed + x);
        div = f(div + dws[i]!);
      }
    }
    if (normalize) mixed = f(mixed / (div === 0 ? 1 : div));
    if (scale) mixed = f(mixed * lambda32);
    out[j] = base[j]! + mixed;
  }
}

/** Task arithmetic without election: Σ Δᵢ, normalize, λ, + base (also dare-stream.ts). */
export function sumAndMix(
  deltas: readonly Float32Array[], count: number, divisor: number, base: Float32Array, out: Float32Array, n: number,
  normalize: boolean, scale: boolean, lambda32: number,
): void {
  for (let j = 0; j < n; j++) {
    let mixed = 0;
    for (let i = 0; i < count; i++) mixed = f(mixed + deltas[i]![j]!);
    if (normalize) mixed = f(mixed / divisor);
    if (scale) mixed = f(mixed * lambda32);
    out[j] = base[j]! + mixed;
  }
}

/**
 * TIES for two models without rescale, fused: per element both δ, both masks, the sign election
 * (sum), the disjoint mean and the output, selected through tiny tables instead of branches.
 * A model without a mask has threshold −1 (every key is above it). `ties` holds both tie counts
 * (in and out).
 */
function tiesPair(
  base: Float32Array, x0: Float32Array, x1: Float32Array, out: Float32Array, n: number, pair: Float32Array, pairBits: Int32Array, sel: Float32Array,
  w0: number, w1: number, t0: number, t1: number, ties: Int32Array, div: Float32Array, recip: Float64Array, byRecip: boolean,
  normalize: boolean, scale: boolean, lambda32: number,
): void {
  let ties0 = ties[0]!;
  let ties1 = ties[1]!;
  const z0 = f(0 * w0); // a trimmed entry: δ := 0, then weighted
  const z1 = f(0 * w1);
  const mix = new Float32Array(4); // disjoint sum by agreement pattern; [0] = 0 (nobody agrees)
  for (let j = 0; j < n; j++) {
    const b = base[j]!;
    pair[0] = x0[j]! - b;
    pair[1] = x1[j]! - b;
    const k0 = pairBits[0]! & 0x7fffffff;
    const k1 = pairBits[1]! & 0x7fffffff;
    // kept = key > thr, or key = thr while ties remain (the lowest flat indices first)
    const e0 = +(k0 === t0) & +(ties0 > 0);
    const e1 = +(k1 === t1) & +(ties1 > 0);
    ties0 -= e0;
    ties1 -= e1;
    sel[0] = z0;
    sel[1] = pair[0]! * w0;
    const v0 = sel[((t0 - k0) >>> 31) | e0]!;
    sel[0] = z1;
    sel[1] = pair[1]! * w1;
    const v1 = sel[((t1 - k1) >>> 31) | e1]!;
    // s = sign(f(f(0 + v0) + v1)), 0 → +1. Rounding to float32 never changes the sign of a sum of
    // two float32 values (a non-zero one is at least the smallest subnormal), so it is skipped.
    const p = +(v0 + v1 >= 0);
    const q = p ^ 1;
    const a0 = (+(v0 > 0) & p) | (+(v0 < 0) & q);
    const a1 = (+(v1 > 0) & p) | (+(v1 < 0) & q);
    // One agreeing model: f(0 + v) = v (v ≠ 0 when it agrees); both: f(v0 + v1).
    mix[1] = v0;
    mix[2] = v1;
    mix[3] = v0 + v1;
    const at = a0 | (a1 << 1);
    let mixed = mix[at]!;
    if (byRecip) mixed = f(mixed * recip[at]!);
    else if (normalize) mixed = f(mixed / div[at]!);
    if (scale) mixed = f(mixed * lambda32);
    out[j] = b + mixed;
  }
  ties[0] = ties0;
  ties[1] = ties1;
}
