/**
 * DARE (Yu et al. 2023, arXiv 2311.03099, "Drop And REscale") as a block stream: the GTA maths of
 * task-arithmetic.ts with mergekit's `random` sparsifier — `dare_linear` and `dare_ties` —
 * bit-identical to `gtaMerge` for any blocking.
 *
 * The drop mask of model i is mᵢ ~ Bernoulli(dᵢ), one draw per element in flat order from
 * `rng.fork(modelId)` (sparsify.ts `bernoulli`). The stream makes the same draws: each model's
 * generator continues from block to block in the order the whole-tensor path consumes it, and a
 * sweep that needs the masks starts from a fresh fork (a fork derives from the seed material and the
 * key, never from the parent's position, so a fresh fork replays the same draws). A model with
 * density ≥ 1 draws nothing, as there.
 *
 * Rescale of the kept entries (global `rescale`, `rescale_mode`):
 * - off, or `'inverse_density'` (the paper's δ̃ = m ⊙ δ / p): one sweep, `apply`;
 * - `'l1'` (mergekit's default, `rescaled_masked_tensor`: × ‖δ‖₁ / ‖m ⊙ δ‖₁ per tensor, skipped when
 *   either norm is below 1e-7): a statistics sweep draws the masks and sums |δ| and |m ⊙ δ| in flat
 *   order in doubles (as `applyMask` sums them), `endPass` forms the float32 factor, and `apply`
 *   multiplies the kept entries by it, with the same masks: for two masked models the statistics
 *   sweep keeps their keep flags (2 bits per element, n/4 bytes), otherwise `apply` draws again.
 * Then weight, (dare_ties) TIES sign election, mix, normalize and λ per element, as in
 * gta-stream.ts. δ = θᵢ − θ₀ is recomputed from the inputs in every sweep (the caller keeps the
 * inputs in their stored dtype, half the size of a float32 δ).
 *
 * Two masked models without sign election — UpIT's candidate children (app/expand) — run on
 * BF16/F32 blocks as WebAssembly kernels (simd.ts: the two generators side by side in SIMD lanes for
 * the draws and the L1 sums — each also jumped ahead to the middle of the block, so four lanes draw
 * at once — then four elements per step for the merge; a block with a non-finite output is redone
 * here), and in JavaScript as a fused loop. Per-element choices (the coin flips)
 * select through tiny typed arrays indexed by the 0/1 mask, not branches, which a CPU cannot
 * predict on random data. Other cases (dare_ties, 1 or 3+ models, F16 inputs) run the JavaScript
 * loops on decoded blocks: streamed, but slower.
 */
import { dtypeBytes, encodeInto } from '../dtypes.js';
import { electAndMix, sumAndMix } from './gta-stream.js';
import { bool, num, str } from './params.js';
import { bernoulliLimit, jumpState, liveState, type Rng } from './rng.js';
import { isSimdDType, simd, SIMD_BLOCK, type Simd, type SimdDType } from './simd.js';
import type { RescaleMode } from './sparsify.js';
import { BlockDecoder, BlockOrder } from './stream-util.js';
import type { GtaVariant } from './task-arithmetic.js';
import type { RawBlock, ResolvedSpec, TensorStream } from './types.js';

const f = Math.fround;
const RESCALE_EPS = f(1e-7);
const NO_CONSENSUS_EPS = f(1e-8);

/** How kept entries are rescaled: not, divided by the keep probability, or multiplied by the L1 factor. */
const enum Rescale {
  None = 0,
  Inverse = 1,
  Factor = 2,
}

interface DareModel {
  readonly id: string;
  /** float32 weight, and its weight in the disjoint-mean divisor (w, or 1 for the count mean). */
  readonly w: number;
  readonly dw: number;
  /** Keep probability f(density) (sparsify.ts rounds it to float32 too). */
  readonly p: number;
  /** True when the model is masked (density < 1); false: no draws, δ kept whole. */
  readonly sparse: boolean;
  /** The model's generator in the current sweep. */
  rng: Rng | undefined;
  /** [Σ|δ|, Σ|m ⊙ δ|] in flat order (doubles); the L1 factor, and whether it is skipped. */
  readonly sums: Float64Array;
  factor: number;
  skip: boolean;
}

export function dareStream(v: GtaVariant, r: ResolvedSpec): TensorStream {
  if (v.sparsifier !== 'random') throw new Error(`dareStream: ${v.id} has no Bernoulli sparsifier`);
  if (!r.base) throw new Error(`${r.tensorName}: a base model is required`);
  const n = r.numel;
  const g = r.globals;
  const rescale = bool(g, 'rescale');
  const rescaleMode = str(g, 'rescale_mode') as RescaleMode;
  const normalize = bool(g, 'normalize');
  const lambda = num(g, 'lambda');
  const scale = lambda !== 1;
  const lambda32 = f(lambda);
  const consensus = v.consensus;
  const countVote = consensus && str(g, 'consensus_method') === 'count';
  const countMean = consensus && str(g, 'disjoint_mean') === 'count';
  const count = r.models.length;

  const models: DareModel[] = r.models.map((m) => {
    const density = num(m.params, 'density');
    const sparse = density < 1;
    // As sparsify.ts `bernoulli` (which the whole-tensor path reaches for every model in turn).
    if (sparse && density < 0) throw new RangeError(`random sparsification needs density in [0, 1], got ${density}`);
    const w = f(num(m.params, 'weight'));
    return { id: m.id, w, dw: countMean ? 1 : w, p: f(density), sparse, rng: undefined, sums: new Float64Array(2), factor: NaN, skip: true };
  });
  const l1 = rescale && rescaleMode === 'l1' && models.some((m) => m.sparse);
  const mode = !rescale ? Rescale.None : rescaleMode === 'inverse_density' ? Rescale.Inverse : Rescale.Factor;
  let divisor = 0;
  for (const m of models) divisor = f(divisor + m.w);
  if (Math.abs(divisor) < NO_CONSENSUS_EPS) divisor = 1;
  const dws = Float64Array.from(models, (m) => m.dw);

  let scanned = !l1;
  const scanOrder = new BlockOrder(n);
  const applyOrder = new BlockOrder(n);
  /** Fresh generators at the start of a sweep: the draws start over from element 0. */
  const restart = () => {
    for (const [i, m] of models.entries()) {
      m.rng = m.sparse ? r.rng.fork(m.id) : undefined;
      if (m.rng) states[i] = liveState(m.rng);
    }
  };

  // Per-model block scratch: Δ (float32) and the keep mask; the kept/dropped selection table.
  let cap = 0;
  let deltas: Float32Array[] = [];
  let keeps: Uint8Array[] = [];
  const scratch = (length: number) => {
    if (length > cap) {
      cap = Math.max(length, 1024);
      deltas = models.map(() => new Float32Array(cap));
      keeps = models.map(() => new Uint8Array(cap));
    }
  };
  const sel = new Float32Array(2);
  const sel2 = new Float32Array(4);
  const check = (ms: readonly Float32Array[], base: Float32Array | undefined): Float32Array => {
    if (ms.length !== count || !base) throw new Error(`${r.tensorName}: expected the base and ${count} model blocks`);
    return base;
  };

  /** The kept entries' rescale per model for `apply`: mode and constant (c = 1 for none). */
  const rescaleOf = (m: DareModel): [Rescale, number] => {
    if (!m.sparse || mode === Rescale.None) return [Rescale.None, 1];
    if (mode === Rescale.Inverse) return [Rescale.Inverse, m.p];
    return m.skip ? [Rescale.None, 1] : [Rescale.Factor, m.factor];
  };
  // The WebAssembly kernels (simd.ts) take two masked models whose generators they can continue.
  const states = models.map((m) => (m.sparse ? liveState(r.rng.fork(m.id)) : undefined));
  const kernelPair = count === 2 && states.every((st) => st !== undefined);
  const limits = models.map((m) => bernoulliLimit(m.p));
  const addrs: number[] = [];
  const dec = new BlockDecoder();
  // Two masked models with the L1 rescale (UpIT's candidates): the statistics sweep keeps the keep
  // flags, one byte per 4 elements e (bit 2(e mod 4) + i for model i: n/4 bytes, an eighth of a BF16
  // input), and `apply` reads them instead of drawing again.
  const useBits = l1 && count === 2 && models.every((m) => m.sparse);
  let pairBits = new Uint8Array(0);

  function beginScan(pass: number, start: number, length: number): void {
    if (pass !== 0 || scanned) throw new Error(`stream: no statistics pass ${pass}`);
    scanOrder.next(start, length);
    if (start === 0) {
      restart();
      if (useBits) pairBits = new Uint8Array(Math.ceil(n / 4));
    }
  }

  /** The statistics of elements [start, start + length) (and their keep flags when `useBits`). */
  function scanBlock(base: Float32Array, ms: readonly Float32Array[], length: number, start: number): void {
    scratch(length);
    for (let i = 0; i < count; i++) {
      const m = models[i]!;
      if (!m.sparse) continue;
      const keep = keeps[i]!;
      m.rng!.fillBernoulli(m.p, keep, length);
      keptAbsSums(base, ms[i]!, length, keep, m.sums);
    }
    if (useBits) packPair(pairBits, start, length, keeps[0]!, keeps[1]!);
  }

  function beginApply(start: number, length: number): void {
    if (!scanned) throw new Error('stream: apply before the statistics pass');
    applyOrder.next(start, length);
    if (start === 0) restart();
  }

  /** The merged elements [start, start + length). */
  function applyBlock(base: Float32Array, ms: readonly Float32Array[], length: number, out: Float32Array, start: number): void {
    if (count === 0) {
      out.set(base.subarray(0, length));
      return;
    }
    scratch(length);
    // 1-3: δᵢ, drop, rescale, weight → Δᵢ.
    const rs = models.map(rescaleOf);
    if (useBits) unpackPair(pairBits, start, length, keeps[0]!, keeps[1]!);
    else {
      for (let i = 0; i < count; i++) {
        const m = models[i]!;
        if (m.sparse) m.rng!.fillBernoulli(m.p, keeps[i]!, length);
        else keeps[i]!.fill(1, 0, length);
      }
    }
    if (!consensus && count === 2) {
      const [m0, m1] = models as [DareModel, DareModel];
      const [[md0, c0], [md1, c1]] = rs as [[Rescale, number], [Rescale, number]];
      dropPair(base, ms[0]!, ms[1]!, out, length, keeps[0]!, keeps[1]!, sel2, m0.w, m1.w, md0, md1, c0, c1, divisor, normalize, scale, lambda32);
      return;
    }
    for (let i = 0; i < count; i++) dropDelta(base, ms[i]!, length, deltas[i]!, keeps[i]!, sel, models[i]!.w, rs[i]![0], rs[i]![1]);
    // 4-8: (elect), mix, normalize, scale, add to the base.
    if (consensus) electAndMix(deltas, count, dws, countVote, base, out, length, normalize, scale, lambda32);
    else sumAndMix(deltas, count, divisor, base, out, length, normalize, scale, lambda32);
  }

  /** The SIMD runtime and the blocks as kernel dtypes, when a DARE kernel can run on them. */
  function kernelDtypes(all: readonly RawBlock[]): [Simd, SimdDType[]] | undefined {
    const sd = kernelPair ? simd() : null;
    if (!sd || !all.every((x) => isSimdDType(x.dtype))) return undefined;
    return [sd, all.map((x) => x.dtype as SimdDType)];
  }

  /**
   * Before a kernel call of n elements: a full SIMD_BLOCK runs split (simd.ts `dareScanFunc`: each
   * generator's second half side by side with its first), which needs the states half a block ahead.
   */
  function kernel4(sd: Simd, n: number): void {
    if (n !== SIMD_BLOCK) return;
    for (let i = 0; i < 2; i++) jumpState(states[i]!, SIMD_BLOCK / 2, jumped[i]!);
    sd.setDareJumped(jumped);
  }
  const jumped = [new Int32Array(4), new Int32Array(4)];
  const sumsOf = models.map((m) => m.sums);

  /** Elements [at, at + k) of raw blocks that start at element `start`, in JavaScript. */
  function jsScanRaw(all: readonly RawBlock[], at: number, k: number, start: number): void {
    const x = dec.decode(all, at, k);
    scanBlock(x[0]!, x.slice(1), k, start + at);
  }

  function jsApplyRaw(all: readonly RawBlock[], out: RawBlock, at: number, k: number, start: number): void {
    const x = dec.decode(all, at, k);
    const o = dec.out(k);
    applyBlock(x[0]!, x.slice(1), k, o, start + at);
    encodeInto(o, k, out.dtype, out.bytes, out.offset + at * dtypeBytes(out.dtype));
  }

  return {
    wantsPass(pass) {
      return pass === 0 && !scanned;
    },

    heldBytes() {
      return useBits ? Math.ceil(n / 4) : 0;
    },

    scan(pass, start, length, baseBlock, ms) {
      const base = check(ms, baseBlock);
      beginScan(pass, start, length);
      scanBlock(base, ms, length, start);
    },

    scanRaw(pass, start, length, baseRaw, raws) {
      const all = checkRaw(baseRaw, raws);
      beginScan(pass, start, length);
      const k = useBits ? kernelDtypes(all) : undefined;
      if (!k) {
        jsScanRaw(all, 0, length, start);
        return;
      }
      const [sd, dtypes] = k;
      const live = states as Int32Array[];
      const sums = sumsOf;
      const whole = sd.dareScan(dtypes, true);
      const part = sd.dareScan(dtypes, false);
      for (let at = 0; at < length; at += SIMD_BLOCK) {
        const len = Math.min(SIMD_BLOCK, length - at);
        // The kernel takes groups of 4 elements (one byte of keep flags); the rest runs here.
        const n4 = (start + at) % 4 === 0 ? len & ~3 : 0;
        if (n4 > 0) {
          sd.place(all, at, n4, addrs);
          sd.setDare(live, sums);
          kernel4(sd, n4);
          (n4 === SIMD_BLOCK ? whole : part)(n4, addrs[0]!, addrs[1]!, addrs[2]!, sd.dareBits, limits[0]!, limits[1]!);
          sd.getDare(live, sums);
          pairBits.set(sd.mem.subarray(sd.dareBits, sd.dareBits + n4 / 4), (start + at) / 4);
        }
        if (n4 < len) jsScanRaw(all, at + n4, len - n4, start);
      }
    },

    endPass(pass) {
      if (pass !== 0 || scanned) throw new Error(`stream: no statistics pass ${pass}`);
      scanned = true;
      for (const m of models) {
        // applyMask: the factor f(f(Σ|δ|) / f(Σ|m ⊙ δ|)), skipped when either norm is below 1e-7
        // (a NaN norm is not below it: the factor is then NaN, as there).
        const b = f(m.sums[0]!);
        const a = f(m.sums[1]!);
        m.skip = b < RESCALE_EPS || a < RESCALE_EPS;
        m.factor = f(b / a);
      }
    },

    apply(start, length, baseBlock, ms, out) {
      const base = check(ms, baseBlock);
      beginApply(start, length);
      applyBlock(base, ms, length, out, start);
    },

    applyRaw(start, length, baseRaw, raws, out) {
      const all = checkRaw(baseRaw, raws);
      beginApply(start, length);
      const k = consensus || !isSimdDType(out.dtype) ? undefined : kernelDtypes(all);
      if (!k) {
        jsApplyRaw(all, out, 0, length, start);
        return;
      }
      const [sd, dtypes] = k;
      const [[md0, c0], [md1, c1]] = models.map(rescaleOf) as [[Rescale, number], [Rescale, number]];
      const [m0, m1] = models as [DareModel, DareModel];
      const div = [md0 === Rescale.Inverse, md1 === Rescale.Inverse];
      const outDtype = out.dtype as SimdDType;
      const kernel = sd.dareApplyBits(dtypes, outDtype, div, normalize, scale);
      const [drawWhole, drawPart] = useBits ? [undefined, undefined] : [sd.dareDraw(true), sd.dareDraw(false)];
      const live = states as Int32Array[];
      const outSize = dtypeBytes(out.dtype);
      for (let at = 0; at < length; at += SIMD_BLOCK) {
        const len = Math.min(SIMD_BLOCK, length - at);
        // The kernels take groups of 4 elements (a byte of keep flags); the rest runs here.
        const nk = (start + at) % 4 === 0 ? len & ~3 : 0;
        if (nk > 0) {
          sd.place(all, at, nk, addrs);
          const direct = sd.addressOf(out.bytes, out.offset + at * outSize);
          if (useBits) sd.mem.set(pairBits.subarray((start + at) / 4, (start + at + nk) / 4), sd.dareBits);
          else {
            // No statistics sweep kept the flags: draw this block's now.
            sd.setDare(live);
            kernel4(sd, nk);
            (nk === SIMD_BLOCK ? drawWhole : drawPart)!(nk, 0, 0, 0, sd.dareBits, limits[0]!, limits[1]!);
          }
          const bad = kernel(nk, direct >= 0 ? direct : sd.output, addrs[0]!, addrs[1]!, addrs[2]!, sd.dareBits, m0.w, m1.w, f(0 * m0.w), f(0 * m1.w), c0, c1, divisor, lambda32);
          if (bad) {
            // A non-finite output: redo these elements in JavaScript (NaN payloads). Its generators
            // have not moved (the kernel's state was not read back), so it draws the same masks.
            jsApplyRaw(all, out, at, nk, start);
          } else {
            if (!useBits) sd.getDare(live);
            if (direct < 0) out.bytes.set(sd.mem.subarray(sd.output, sd.output + nk * outSize), out.offset + at * outSize);
          }
        }
        if (nk < len) jsApplyRaw(all, out, at + nk, len - nk, start);
      }
    },
  };

  function checkRaw(base: RawBlock | undefined, raws: readonly RawBlock[]): RawBlock[] {
    if (!base || raws.length !== count) throw new Error(`${r.tensorName}: expected the base and ${count} model blocks`);
    return [base, ...raws];
  }
}

// ─────────────────────────── loops ───────────────────────────

/** Stores the keep flags of elements [start, start + n) of two models: byte e >> 2, bit 2(e mod 4) + i. */
function packPair(bits: Uint8Array, start: number, n: number, keep0: Uint8Array, keep1: Uint8Array): void {
  for (let j = 0; j < n; j++) {
    const e = start + j;
    const at = 2 * (e & 3);
    bits[e >> 2]! |= (keep0[j]! << at) | (keep1[j]! << (at + 1));
  }
}

/** The keep flags `packPair` stored, back into one byte per element. */
function unpackPair(bits: Uint8Array, start: number, n: number, keep0: Uint8Array, keep1: Uint8Array): void {
  for (let j = 0; j < n; j++) {
    const e = start + j;
    const v = bits[e >> 2]! >> (2 * (e & 3));
    keep0[j] = v & 1;
    keep1[j] = (v >> 1) & 1;
  }
}

/** sums[0] += Σ|δ|, sums[1] += Σ|m ⊙ δ| over the block, in flat order (doubles, as applyMask). */
function keptAbsSums(base: Float32Array, x: Float32Array, n: number, keep: Uint8Array, sums: Float64Array): void {
  let before = sums[0]!;
  let after = sums[1]!;
  for (let j = 0; j < n; j++) {
    const a = Math.abs(f(x[j]! - base[j]!));
    before += a;
    // Not `a · keep`: a dropped ±Inf or NaN must not reach the sum.
    if (keep[j] !== 0) after += a;
  }
  sums[0] = before;
  sums[1] = after;
}

/**
 * Δ = f(rescale(m ⊙ δ) · w): kept entries f(f(δ [/ p | · c]) · w), dropped ones f(0 · w) (the
 * whole-tensor path zeroes them, then weights).
 */
function dropDelta(base: Float32Array, x: Float32Array, n: number, d: Float32Array, keep: Uint8Array, sel: Float32Array, w: number, mode: Rescale, c: number): void {
  sel[0] = f(0 * w);
  for (let j = 0; j < n; j++) {
    const v = f(x[j]! - base[j]!);
    sel[1] = mode === Rescale.None ? v * w : mode === Rescale.Inverse ? f(v / c) * w : f(v * c) * w;
    d[j] = sel[keep[j]!]!;
  }
}

/**
 * `dropDelta` for two models and `sumAndMix`, fused: out = base + λ·f(f(0 + Δ₀) + Δ₁) [/ D].
 * `sel` holds [dropped₀, kept₀, dropped₁, kept₁].
 */
function dropPair(
  base: Float32Array, x0: Float32Array, x1: Float32Array, out: Float32Array, n: number, keep0: Uint8Array, keep1: Uint8Array, sel: Float32Array,
  w0: number, w1: number, mode0: Rescale, mode1: Rescale, c0: number, c1: number, divisor: number, normalize: boolean, scale: boolean, lambda32: number,
): void {
  sel[0] = f(0 * w0);
  sel[2] = f(0 * w1);
  for (let j = 0; j < n; j++) {
    const b = base[j]!;
    const v0 = f(x0[j]! - b);
    const v1 = f(x1[j]! - b);
    sel[1] = mode0 === Rescale.None ? v0 * w0 : mode0 === Rescale.Inverse ? f(v0 / c0) * w0 : f(v0 * c0) * w0;
    sel[3] = mode1 === Rescale.None ? v1 * w1 : mode1 === Rescale.Inverse ? f(v1 / c1) * w1 : f(v1 * c1) * w1;
    let mixed = f(f(0 + sel[keep0[j]!]!) + sel[2 + keep1[j]!]!);
    if (normalize) mixed = f(mixed / divisor);
    if (scale) mixed = f(mixed * lambda32);
    out[j] = b + mixed;
  }
}
