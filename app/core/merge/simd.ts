/**
 * WebAssembly SIMD kernels for the hot streamed merges — linear, TIES with two models, and DARE
 * (dare_linear) with two models — on blocks in their stored dtype (BF16 or F32 in, BF16 or F32
 * out): 4 elements per instruction, with no float32 tensor, no decode loop and no encode loop in
 * JavaScript.
 *
 * They compute exactly what the JavaScript stream kernels compute (linear.ts, gta-stream.ts,
 * dare-stream.ts):
 * WebAssembly's f32x4 add, sub, mul and div are IEEE single-precision operations with
 * round-to-nearest-even, i.e. `Math.fround` of the exact result, applied in the same order; BF16
 * output uses the same integer rounding as `fromFloat32`. The one thing WebAssembly leaves open is
 * the payload of a NaN produced from a NaN operand, so the kernels report whether a block had a
 * non-finite input, and the caller then recomputes that block with the JavaScript kernel (the TIES
 * apply kernel skips the test when a statistics sweep already found every input finite; the DARE
 * apply kernel tests its outputs instead: a finite output never saw a NaN). Tests hold the two
 * paths bit for bit equal.
 *
 * Memory: one `WebAssembly.Memory` per thread: five input slots and one output slot of
 * SIMD_BLOCK elements (4 bytes each), a small area for counters, then an arena where a caller may
 * keep its stored-dtype buffers (the merge worker reads tensors straight into it; blocks elsewhere
 * are copied into the slots). Kernels are generated per signature (dtypes, input count, flags) on
 * first use. `simd()` is null where WebAssembly SIMD is unavailable (everything stays in JS).
 */
import type { DType } from '../dtypes.js';
import {
  block, br, brIf, f32c, f64x2, ifElse, f32x4, get, i16x8, i32, i32c, i32s, i32x4, i64x2, loop, module, set, T, tee, v128,
  type Code, type Func, type ValType,
} from './wasm-asm.js';

/** Elements per kernel call (a multiple of 4). */
export const SIMD_BLOCK = 8192;
const SLOT = SIMD_BLOCK * 4;
export const SIMD_INPUTS = 5;
const OUT = SIMD_INPUTS * SLOT;
const MISC = OUT + SLOT;
/** Accumulated 'count' results: up to 2 models × 4 candidates × [lt, eq] i32x4 vectors. */
const COUNTS = MISC + 16;
/**
 * DARE kernels' state: two xoshiro128** states (4 × i32 each), then Σ|δ| of models 0, 1 and Σ|m ⊙ δ|
 * of models 0, 1 (f64), then (split calls) the two states jumped ahead by half the call.
 */
const DARE = MISC + 512;
/** Start of the arena (page-aligned, above the fixed area). */
const ARENA = Math.ceil((MISC + 1024) / 65536) * 65536;
const PAGES = ARENA / 65536;

export type SimdDType = 'BF16' | 'F32';
export const isSimdDType = (d: DType): d is SimdDType => d === 'BF16' || d === 'F32';

interface WasmApi {
  validate(bytes: Uint8Array): boolean;
  Memory: new (d: { initial: number; maximum?: number }) => GrowableMemory;
  Module: new (bytes: Uint8Array) => object;
  Instance: new (m: object, imports: Record<string, Record<string, unknown>>) => { exports: Record<string, unknown> };
}

type Kernel = (...args: number[]) => number;

// ─────────────────────────── code generation ───────────────────────────

const ABS_MASK = 0x7fffffff;
const EXP_MASK = 0x7f800000;
const splatI32 = (v: number): Code => [...i32c(v), ...i32x4.splat];
const splatF32 = (v: Code): Code => [...v, ...f32x4.splat];
/** Shifts i32 lanes up by `k` (lane i gets lane i − k, zeros below): shuffle(zero, x). */
const shiftUp = (k: number): number[] => Array.from({ length: 16 }, (_, b) => (b < 4 * k ? b : 16 + b - 4 * k));

/** Locals are allocated in order after the parameters; this hands out indices. */
class Locals {
  readonly types: ValType[] = [];
  constructor(private readonly params: number) {}
  add(t: ValType): number {
    this.types.push(t);
    return this.params + this.types.length - 1;
  }
}

interface Cursor {
  /** i32 locals holding j·2 and j·4 (byte offsets of element j in BF16 / F32 blocks). */
  j2: number;
  j4: number;
}

/** Pushes the f32x4 at the cursor of the input block whose address is in local `ptr`. */
function load(ptr: number, d: SimdDType, c: Cursor): Code {
  return d === 'BF16'
    ? [...get(ptr), ...get(c.j2), ...i32.add, ...v128.load16x4u(), ...i32c(16), ...i32x4.shl]
    : [...get(ptr), ...get(c.j4), ...i32.add, ...v128.load()];
}

/**
 * Stores f32x4 local `x` at the cursor of the output block whose address is in local `ptr`, as
 * `d` (BF16: round to nearest even, NaN → quiet).
 */
function store(ptr: number, x: number, d: SimdDType, c: Cursor): Code {
  if (d === 'F32') return [...get(ptr), ...get(c.j4), ...i32.add, ...get(x), ...v128.store()];
  const hi = [...get(x), ...i32c(16), ...i32x4.shrU];
  return [
    ...get(ptr), ...get(c.j2), ...i32.add,
    ...hi, ...splatI32(0x40), ...v128.or, // NaN: (u >>> 16) | 0x40
    ...get(x), ...splatI32(0x7fff), ...i32x4.add, ...hi, ...splatI32(1), ...v128.and, ...i32x4.add, ...i32c(16), ...i32x4.shrU,
    ...get(x), ...get(x), ...f32x4.ne, // NaN mask
    ...v128.bitselect,
    ...get(x), ...i16x8.narrowI32x4U, // low 4 lanes = the 4 results (all ≤ 0xffff)
    ...v128.store64lane0(),
  ];
}

/** bad |= lanes of x that are ±Inf or NaN. */
function flagNonFinite(x: number, bad: number): Code {
  return [...get(bad), ...get(x), ...splatI32(EXP_MASK), ...v128.and, ...splatI32(EXP_MASK), ...i32x4.eq, ...v128.or, ...set(bad)];
}

/** The counted loop: j from 0 to n (a multiple of 4) in steps of 4, with the byte cursors. */
function forEach4(n: number, j: number, c: Cursor, body: Code): Code {
  return [
    ...i32c(0), ...set(j), ...i32c(0), ...set(c.j2), ...i32c(0), ...set(c.j4),
    ...block(loop(
      get(j), get(n), i32.geS, brIf(1),
      body,
      get(j), i32c(4), i32.add, set(j),
      get(c.j2), i32c(8), i32.add, set(c.j2),
      get(c.j4), i32c(16), i32.add, set(c.j4),
      br(0), // continue
    )),
  ];
}

/**
 * linear over k inputs: out = f(…f(f(0 + f(w₀x₀)) + f(w₁x₁))…) [/ total].
 * (n, out, in₀ … in₍k−1₎, w₀ … w₍k−1₎, total) → 1 when an input was not finite (addresses in bytes).
 */
function linearFunc(dtypes: SimdDType[], out: SimdDType, normalize: boolean): Func {
  const k = dtypes.length;
  const params: ValType[] = [T.i32, T.i32, ...dtypes.map(() => T.i32), ...dtypes.map(() => T.f32), T.f32];
  const outPtr = 1;
  const inPtr = (i: number) => 2 + i;
  const wParam = (i: number) => 2 + k + i;
  const L = new Locals(params.length);
  const j = L.add(T.i32);
  const c: Cursor = { j2: L.add(T.i32), j4: L.add(T.i32) };
  const x = L.add(T.v128);
  const acc = L.add(T.v128);
  const bad = L.add(T.v128);
  const zero = L.add(T.v128);
  const tot = L.add(T.v128);
  const w = dtypes.map(() => L.add(T.v128));
  const body: Code = [];
  for (let i = 0; i < k; i++) {
    body.push(...load(inPtr(i), dtypes[i]!, c), ...set(x), ...flagNonFinite(x, bad));
    if (i === 0) body.push(...get(zero), ...get(x), ...get(w[0]!), ...f32x4.mul, ...f32x4.add, ...set(acc));
    else body.push(...get(acc), ...get(x), ...get(w[i]!), ...f32x4.mul, ...f32x4.add, ...set(acc));
  }
  if (normalize) body.push(...get(acc), ...get(tot), ...f32x4.div, ...set(acc));
  body.push(...store(outPtr, acc, out, c));
  return {
    name: 'run', params, results: [T.i32], locals: L.types,
    body: [
      ...splatI32(0), ...set(zero), ...splatI32(0), ...set(bad),
      ...get(2 + 2 * k), ...f32x4.splat, ...set(tot),
      ...dtypes.flatMap((_, i) => [...get(wParam(i)), ...f32x4.splat, ...set(w[i]!)]),
      ...forEach4(0, j, c, body),
      ...get(bad), ...v128.anyTrue,
    ],
  };
}

/**
 * TIES 'count' stage for two models: per model and candidate key c, the number of keys < c and = c
 * (keys: bits of |f32(xᵢ − base)|). (n, base, x0, x1, c0₀…c0₍m0−1₎, c1₀…c1₍m1−1₎) → 1 when an input was
 * not finite. The counts accumulate across calls in memory at COUNTS (i32x4 vectors whose lanes
 * sum to the count): for model 0 then 1, per candidate [lt, eq]; `resetCounts` zeroes them.
 */
function tiesCountFunc(dtypes: SimdDType[], m0: number, m1: number): Func {
  const params: ValType[] = [T.i32, T.i32, T.i32, T.i32, ...Array<ValType>(m0 + m1).fill(T.i32)];
  const L = new Locals(params.length);
  const j = L.add(T.i32);
  const c: Cursor = { j2: L.add(T.i32), j4: L.add(T.i32) };
  const b = L.add(T.v128);
  const key = L.add(T.v128);
  const abs = L.add(T.v128);
  const xv = L.add(T.v128);
  const bad = L.add(T.v128);
  const ms = [m0, m1];
  const cand = ms.map((m) => Array.from({ length: m }, () => L.add(T.v128)));
  const lt = ms.map((m) => Array.from({ length: m }, () => L.add(T.v128)));
  const eq = ms.map((m) => Array.from({ length: m }, () => L.add(T.v128)));
  const body: Code = [...load(1, dtypes[0]!, c), ...set(b), ...flagNonFinite(b, bad)];
  for (let mi = 0; mi < 2; mi++) {
    body.push(...load(2 + mi, dtypes[1 + mi]!, c), ...tee(xv), ...get(b), ...f32x4.sub, ...get(abs), ...v128.and, ...set(key), ...flagNonFinite(xv, bad));
    for (let q = 0; q < ms[mi]!; q++) {
      body.push(...get(lt[mi]![q]!), ...get(key), ...get(cand[mi]![q]!), ...i32x4.ltS, ...i32x4.sub, ...set(lt[mi]![q]!));
      body.push(...get(eq[mi]![q]!), ...get(key), ...get(cand[mi]![q]!), ...i32x4.eq, ...i32x4.sub, ...set(eq[mi]![q]!));
    }
  }
  const init: Code = [...splatI32(ABS_MASK), ...set(abs), ...splatI32(0), ...set(bad)];
  let p = 4;
  let from = COUNTS;
  for (let mi = 0; mi < 2; mi++) {
    for (let q = 0; q < ms[mi]!; q++) {
      init.push(...get(p++), ...i32x4.splat, ...set(cand[mi]![q]!), ...i32c(0), ...v128.load(from), ...set(lt[mi]![q]!), ...i32c(0), ...v128.load(from + 16), ...set(eq[mi]![q]!));
      from += 32;
    }
  }
  const fin: Code = [];
  let at = COUNTS;
  for (let mi = 0; mi < 2; mi++) {
    for (let q = 0; q < ms[mi]!; q++) {
      fin.push(...i32c(0), ...get(lt[mi]![q]!), ...v128.store(at), ...i32c(0), ...get(eq[mi]![q]!), ...v128.store(at + 16));
      at += 32;
    }
  }
  return { name: 'run', params, results: [T.i32], locals: L.types, body: [...init, ...forEach4(0, j, c, body), ...fin, ...get(bad), ...v128.anyTrue] };
}

/**
 * TIES apply for two models without rescale (sum election): see `tiesPair` in gta-stream.ts.
 * Without `checks` it never reports a non-finite input (for inputs already known to be finite).
 * (n, out, base, x0, x1, w0, w1, z0, z1, dw0, dw1, λ, t0, t1) → 1 when an input was not finite;
 * the two tie counts are read from and written back to MISC (i32, i32).
 */
function tiesApplyFunc(dtypes: SimdDType[], out: SimdDType, normalize: boolean, scale: boolean, checks: boolean): Func {
  const params: ValType[] = [T.i32, T.i32, T.i32, T.i32, T.i32, T.f32, T.f32, T.f32, T.f32, T.f32, T.f32, T.f32, T.i32, T.i32];
  const L = new Locals(params.length);
  const j = L.add(T.i32);
  const c: Cursor = { j2: L.add(T.i32), j4: L.add(T.i32) };
  const v = () => L.add(T.v128);
  const [b, x, d, key, eqm, keep, v0, v1, s, pos, a0, a1, m, dv, o, bad] = Array.from({ length: 16 }, v) as number[];
  const [zero, one, abs, w0, w1, z0, z1, dw0, dw1, lam, t0, t1] = Array.from({ length: 12 }, v) as number[];
  const ties = [L.add(T.i32), L.add(T.i32)];
  const cnt = L.add(T.i32);
  const ws = [w0!, w1!];
  const zs = [z0!, z1!];
  const ts = [t0!, t1!];
  const vs = [v0!, v1!];
  const flag = (v: number) => (checks ? flagNonFinite(v, bad!) : []);
  const body: Code = [...load(2, dtypes[0]!, c), ...tee(b!), ...set(o!), ...flag(o!)];
  for (let mi = 0; mi < 2; mi++) {
    body.push(
      ...load(3 + mi, dtypes[1 + mi]!, c), ...set(x!), ...flag(x!),
      ...get(x!), ...get(b!), ...f32x4.sub, ...tee(d!), ...get(abs!), ...v128.and, ...set(key!),
      // Ties: lanes with key = thr are kept while ties are left, lowest index first. Usually all
      // of a vector's tie lanes fit (keep them) or none are left (drop them); only the vector
      // where the count runs out needs the per-lane prefix count.
      ...get(key!), ...get(ts[mi]!), ...i32x4.eq, ...tee(eqm!), ...v128.anyTrue,
      ...ifElse([
        ...get(eqm!), ...i32x4.bitmask, ...i32.popcnt, ...set(cnt),
        ...get(ties[mi]!), ...get(cnt), ...i32.geS,
        ...ifElse(
          [...get(ties[mi]!), ...get(cnt), ...i32.sub, ...set(ties[mi]!)],
          [
            ...get(ties[mi]!), ...i32.eqz,
            ...ifElse(
              [...splatI32(0), ...set(eqm!)],
              [
                ...get(zero!), ...get(eqm!), ...v128.shuffle(shiftUp(1)),
                ...get(zero!), ...get(eqm!), ...v128.shuffle(shiftUp(2)), ...i32x4.add,
                ...get(zero!), ...get(eqm!), ...v128.shuffle(shiftUp(3)), ...i32x4.add, // −(ties before each lane)
                ...i32c(0), ...get(ties[mi]!), ...i32.sub, ...i32x4.splat, ...i32x4.gtS,
                ...get(eqm!), ...v128.and, ...tee(eqm!),
                ...i32x4.bitmask, ...i32.popcnt, ...set(cnt),
                ...get(ties[mi]!), ...get(cnt), ...i32.sub, ...set(ties[mi]!),
              ],
            ),
          ],
        ),
      ]),
      ...get(key!), ...get(ts[mi]!), ...i32x4.gtS, ...get(eqm!), ...v128.or, ...set(keep!),
      ...get(d!), ...get(ws[mi]!), ...f32x4.mul, ...get(zs[mi]!), ...get(keep!), ...v128.bitselect, ...set(vs[mi]!),
    );
  }
  body.push(
    // s = f(f(0 + v0) + v1) ≥ 0
    ...get(zero!), ...get(v0!), ...f32x4.add, ...get(v1!), ...f32x4.add, ...set(s!),
    ...get(s!), ...get(zero!), ...f32x4.ge, ...set(pos!),
    ...get(v0!), ...get(zero!), ...f32x4.gt, ...get(v0!), ...get(zero!), ...f32x4.lt, ...get(pos!), ...v128.bitselect, ...set(a0!),
    ...get(v1!), ...get(zero!), ...f32x4.gt, ...get(v1!), ...get(zero!), ...f32x4.lt, ...get(pos!), ...v128.bitselect, ...set(a1!),
    // mixed = 0; if a0: f(0 + v0); if a1: f(mixed + v1)
    ...get(zero!), ...get(v0!), ...get(a0!), ...v128.and, ...f32x4.add, ...set(m!),
    ...get(m!), ...get(v1!), ...f32x4.add, ...get(m!), ...get(a1!), ...v128.bitselect, ...set(m!),
  );
  if (normalize) {
    body.push(
      ...get(zero!), ...get(dw0!), ...get(a0!), ...v128.and, ...f32x4.add, ...set(dv!),
      ...get(dv!), ...get(dw1!), ...f32x4.add, ...get(dv!), ...get(a1!), ...v128.bitselect, ...set(dv!),
      ...get(one!), ...get(dv!), ...get(dv!), ...get(zero!), ...f32x4.eq, ...v128.bitselect, ...set(dv!),
      ...get(m!), ...get(dv!), ...f32x4.div, ...set(m!),
    );
  }
  if (scale) body.push(...get(m!), ...get(lam!), ...f32x4.mul, ...set(m!));
  body.push(...get(b!), ...get(m!), ...f32x4.add, ...set(o!), ...store(1, o!, out, c));
  const init: Code = [
    ...splatI32(0), ...set(zero!), ...splatI32(0), ...set(bad!), ...splatF32(f32c(1)), ...set(one!), ...splatI32(ABS_MASK), ...set(abs!),
    ...get(5), ...f32x4.splat, ...set(w0!), ...get(6), ...f32x4.splat, ...set(w1!),
    ...get(7), ...f32x4.splat, ...set(z0!), ...get(8), ...f32x4.splat, ...set(z1!),
    ...get(9), ...f32x4.splat, ...set(dw0!), ...get(10), ...f32x4.splat, ...set(dw1!),
    ...get(11), ...f32x4.splat, ...set(lam!),
    ...get(12), ...i32x4.splat, ...set(t0!), ...get(13), ...i32x4.splat, ...set(t1!),
    ...i32c(0), ...i32.load(MISC), ...set(ties[0]!), ...i32c(0), ...i32.load(MISC + 4), ...set(ties[1]!),
  ];
  const fin: Code = [...i32c(0), ...get(ties[0]!), ...i32.store(MISC), ...i32c(0), ...get(ties[1]!), ...i32.store(MISC + 4)];
  return { name: 'run', params, results: [T.i32], locals: L.types, body: [...init, ...forEach4(0, j, c, body), ...fin, ...get(bad!), ...v128.anyTrue] };
}

// ─────────────────────────── DARE (scalar) ───────────────────────────
//
// DARE's drop masks come from one xoshiro128** stream per model, in flat order (rng.ts, sparsify.ts),
// and mergekit's L1 rescale sums |δ| in flat order in doubles: both are serial chains along the
// tensor, so the statistics kernel runs the two models' chains side by side in lanes (one element
// per step) and stores the keep flags; the apply kernel then takes four elements per step, reading
// the flags. The generator states and the sums live at DARE between calls.

/** Adds `bytes` to the i32 local `ptr`. */
const advance = (ptr: number, bytes: number): Code => [...get(ptr), ...i32c(bytes), ...i32.add, ...set(ptr)];
const size = (d: SimdDType) => (d === 'BF16' ? 2 : 4);

/**
 * Loads the two generator states at DARE into v128 locals `S[q]` = (model 0 word q, model 1 word q,
 * then lanes 2, 3: the all-zero state, unused — or with `split` the states DARE + 64 holds, the same
 * generators jumped ahead by half the call's elements).
 */
const loadStateLanes = (S: number[], split: boolean): Code => S.flatMap((l, q) => [
  ...i32c(0), ...i32.load(DARE + 4 * q), ...i32x4.splat, ...i32c(0), ...i32.load(DARE + 16 + 4 * q), ...i32x4.replaceLane(1),
  ...(split ? [...i32c(0), ...i32.load(DARE + 64 + 4 * q)] : i32c(0)), ...i32x4.replaceLane(2),
  ...(split ? [...i32c(0), ...i32.load(DARE + 80 + 4 * q)] : i32c(0)), ...i32x4.replaceLane(3), ...set(l),
]);
/** Stores lanes `from`, `from + 1` of the state locals as the two models' states at DARE. */
const storeStateLanes = (S: number[], from: number): Code => S.flatMap((l, q) => [
  ...i32c(0), ...get(l), ...i32x4.extractLane(from), ...i32.store(DARE + 4 * q),
  ...i32c(0), ...get(l), ...i32x4.extractLane(from + 1), ...i32.store(DARE + 16 + 4 * q),
]);
/** v128 rotl of i32 lanes by k. */
const rotlLanes = (v: Code, k: number): Code => [...v, ...i32c(k), ...i32x4.shl, ...v, ...i32c(32 - k), ...i32x4.shrU, ...v128.or];

/**
 * DARE statistics for mergekit's L1 rescale, two masked models, both generators side by side in
 * i32 lanes 0 and 1 (one xoshiro128** step per lane and element, the same draws as rng.ts) and both
 * models' [Σ|δ|, Σ|m ⊙ δ|] in f64x2 lanes (each lane its own flat-order chain, as sparsify.ts
 * `applyMask` sums; adding +0 for a dropped entry changes no sum). It also stores the keep flags,
 * one byte per 4 elements e: bit 2(e mod 4) + i for model i, which the apply kernel reads instead of
 * drawing again. (n, base, x0, x1, bits, limit0, limit1), n a multiple of 4. NaN or ±Inf inputs
 * need no care: the sums are only compared and divided afterwards. Without `dtypes` (`dareDraw`)
 * it only draws and stores the keep flags (base, x0, x1 unused), for the modes without statistics.
 * `split` (n a multiple of 8): lanes 2 and 3 run the same two generators from element n/2 on (their
 * states jumped ahead by n/2 draws, rng.ts `jumpState`, at DARE + 64), so one step draws four flags;
 * the sums of the second half follow in a second loop from the stored flags, in order, and the
 * generators end where lanes 2 and 3 end.
 */
function dareScanFunc(dtypes: SimdDType[] | null, split: boolean): Func {
  // null: only draw the keep flags (no inputs are read, no sums: `dareDraw`).
  const sums = dtypes !== null;
  const params: ValType[] = [T.i32, T.i32, T.i32, T.i32, T.i32, T.i32, T.i32];
  const L = new Locals(params.length);
  const j = L.add(T.i32);
  const byte = L.add(T.i32);
  const byteB = L.add(T.i32);
  const half = L.add(T.i32);
  const bm = L.add(T.i32);
  const S = [0, 1, 2, 3].map(() => L.add(T.v128));
  const [t, keep, lim, u, a, before, after, bv, a0, a1] = Array.from({ length: 10 }, () => L.add(T.v128)) as number[];
  const [S0, S1, S2, S3] = S as [number, number, number, number];
  const xor = (dst: number, src: number): Code => [...get(dst), ...get(src), ...v128.xor, ...set(dst)];
  const [db, d0, d1] = (dtypes ?? ['F32', 'F32', 'F32']) as [SimdDType, SimdDType, SimdDType];
  /** The f32x4 of 4 elements at the address in local `ptr`. */
  const load4 = (ptr: number, d: SimdDType): Code => d === 'BF16' ? [...get(ptr), ...v128.load16x4u(), ...i32c(16), ...i32x4.shl] : [...get(ptr), ...v128.load()];
  // |δ₀|, |δ₁| of the 4 elements (f32x4 each); element e's pair goes to f64 lanes 0, 1 below.
  const absDeltas: Code = [
    ...load4(1, db), ...set(bv!),
    ...load4(2, d0), ...get(bv!), ...f32x4.sub, ...f32x4.abs, ...set(a0!),
    ...load4(3, d1), ...get(bv!), ...f32x4.sub, ...f32x4.abs, ...set(a1!),
  ];
  const pairOf = (e: number): Code => {
    const pick = [0, 1, 2, 3].map((k) => 4 * e + k);
    return [...get(a0!), ...get(a1!), ...v128.shuffle([...pick, ...pick.map((k) => 16 + k), 0, 1, 2, 3, 4, 5, 6, 7]), ...f64x2.promoteLowF32x4, ...set(a!)];
  };
  const addSums = (mask64: Code): Code => [
    ...get(before!), ...get(a!), ...f64x2.add, ...set(before!),
    ...get(after!), ...get(a!), ...mask64, ...v128.and, ...f64x2.add, ...set(after!),
  ];
  const advanceInputs: Code = sums ? [...advance(1, 4 * size(db)), ...advance(2, 4 * size(d0)), ...advance(3, 4 * size(d1))] : [];
  const bitsAt = (extra: Code): Code => [...get(4), ...get(j), ...i32c(2), ...i32s.shrU, ...i32.add, ...extra];

  // Loop 1: the draws (elements j of lanes 0, 1; with `split` also elements half + j in lanes 2, 3)
  // and the sums of element j.
  const body: Code = [...i32c(0), ...set(byte), ...i32c(0), ...set(byteB), ...(sums ? absDeltas : [])];
  for (let e = 0; e < 4; e++) {
    body.push(
      ...(sums ? pairOf(e) : []),
      // keep = (rotl(S1·5, 7)·9 >>> 8) < limit (unsigned; ·5 and ·9 as shift-and-add), then the
      // xoshiro128** state update
      ...get(S1), ...i32c(2), ...i32x4.shl, ...get(S1), ...i32x4.add, ...set(u!),
      ...rotlLanes(get(u!), 7), ...set(u!),
      ...get(u!), ...i32c(3), ...i32x4.shl, ...get(u!), ...i32x4.add, ...i32c(8), ...i32x4.shrU, ...get(lim!), ...i32x4.ltU, ...set(keep!),
      ...get(S1), ...i32c(9), ...i32x4.shl, ...set(t!),
      ...xor(S2, S0), ...xor(S3, S1), ...xor(S1, S2), ...xor(S0, S3), ...xor(S2, t!),
      ...rotlLanes(get(S3), 11), ...set(S3),
      ...(sums ? addSums([...get(keep!), ...i64x2.extendLowI32x4S]) : []),
      ...get(keep!), ...i32x4.bitmask, ...set(bm),
      ...get(byte), ...get(bm), ...i32c(3), ...i32s.and, ...i32c(2 * e), ...i32s.shl, ...i32s.or, ...set(byte),
      ...(split ? [...get(byteB), ...get(bm), ...i32c(2), ...i32s.shrU, ...i32c(2 * e), ...i32s.shl, ...i32s.or, ...set(byteB)] : []),
    );
  }
  body.push(...bitsAt([]), ...get(byte), ...i32s.store8());
  if (split) body.push(...bitsAt([...get(half), ...i32c(2), ...i32s.shrU, ...i32.add]), ...get(byteB), ...i32s.store8());
  body.push(...advanceInputs);

  // Loop 2 (`split` with sums): the sums of elements half … n − 1, from the flags loop 1 stored.
  const body2: Code = [...absDeltas, ...bitsAt([]), ...i32s.load8u(), ...i32x4.splat, ...set(u!)];
  for (let e = 0; e < 4; e++) {
    const bits = new Uint8Array(Int32Array.of(1 << (2 * e), 2 << (2 * e), 0, 0).buffer);
    body2.push(...pairOf(e), ...addSums([...get(u!), ...v128.const(bits), ...v128.and, ...splatI32(0), ...i32x4.ne, ...i64x2.extendLowI32x4S]));
  }
  body2.push(...advanceInputs);

  const limits: Code[] = split ? [get(5), get(6), get(5), get(6)] : [get(5), get(6), i32c(0), i32c(0)]; // 0 keeps nothing
  return {
    name: 'run', params, results: [T.i32], locals: L.types,
    body: [
      ...loadStateLanes(S, split),
      ...limits[0]!, ...i32x4.splat, ...limits[1]!, ...i32x4.replaceLane(1), ...limits[2]!, ...i32x4.replaceLane(2), ...limits[3]!, ...i32x4.replaceLane(3), ...set(lim!),
      ...i32c(0), ...v128.load(DARE + 32), ...set(before!), ...i32c(0), ...v128.load(DARE + 48), ...set(after!),
      ...get(0), ...(split ? [...i32c(1), ...i32s.shrU] : []), ...set(half),
      ...i32c(0), ...set(j),
      ...block(loop(get(j), get(half), i32.geS, brIf(1), body, get(j), i32c(4), i32.add, set(j), br(0))),
      ...(split && sums ? block(loop(get(j), get(0), i32.geS, brIf(1), body2, get(j), i32c(4), i32.add, set(j), br(0))) : []),
      ...storeStateLanes(S, split ? 2 : 0),
      ...i32c(0), ...get(before!), ...v128.store(DARE + 32), ...i32c(0), ...get(after!), ...v128.store(DARE + 48),
      ...i32c(0),
    ],
  };
}

/**
 * DARE apply from stored keep flags (see `dareScanFunc`), two models without sign election, four
 * elements per step: Δᵢ = kept ? f(f(δᵢ · cᵢ | δᵢ / cᵢ) · wᵢ) : zᵢ, out = base + λ·(f(f(0 + Δ₀) + Δ₁) [/ D])
 * as `dropPair` in dare-stream.ts. (n, out, base, x0, x1, bits, w0, w1, z0, z1, c0, c1, D, λ), n a
 * multiple of 4 → 1 when an output was not finite (the caller redoes the block in JavaScript).
 */
function dareApplyBitsFunc(dtypes: SimdDType[], out: SimdDType, div: readonly boolean[], normalize: boolean, scale: boolean): Func {
  const params: ValType[] = [T.i32, T.i32, T.i32, T.i32, T.i32, T.i32, T.f32, T.f32, T.f32, T.f32, T.f32, T.f32, T.f32, T.f32];
  const [W0, Z0, C0, DIV, LAM] = [6, 8, 10, 12, 13];
  const L = new Locals(params.length);
  const j = L.add(T.i32);
  const c: Cursor = { j2: L.add(T.i32), j4: L.add(T.i32) };
  const [b, mb, m, o, bad, zero] = Array.from({ length: 6 }, () => L.add(T.v128)) as number[];
  const d = [L.add(T.v128), L.add(T.v128)];
  const consts = [0, 1, 2, 3, 4].map(() => L.add(T.v128)); // w0 w1 z0 z1 … as splats
  const [w0, w1, z0, z1, cs0] = consts as [number, number, number, number, number];
  const cs1 = L.add(T.v128);
  const dv = L.add(T.v128);
  const lam = L.add(T.v128);
  const sel = [Int32Array.of(1, 4, 16, 64), Int32Array.of(2, 8, 32, 128)].map((x) => new Uint8Array(x.buffer));
  const body: Code = [
    ...load(2, dtypes[0]!, c), ...set(b!),
    ...get(5), ...get(j), ...i32c(2), ...i32s.shrU, ...i32.add, ...i32s.load8u(), ...i32x4.splat, ...set(mb!),
  ];
  for (let mi = 0; mi < 2; mi++) {
    body.push(
      ...load(3 + mi, dtypes[1 + mi]!, c), ...get(b!), ...f32x4.sub, ...get(mi === 0 ? cs0 : cs1), ...(div[mi] ? f32x4.div : f32x4.mul), ...get(mi === 0 ? w0 : w1), ...f32x4.mul,
      ...get(mi === 0 ? z0 : z1),
      ...get(mb!), ...v128.const(sel[mi]!), ...v128.and, ...get(zero!), ...i32x4.ne,
      ...v128.bitselect, ...set(d[mi]!),
    );
  }
  body.push(...get(zero!), ...get(d[0]!), ...f32x4.add, ...get(d[1]!), ...f32x4.add, ...set(m!));
  if (normalize) body.push(...get(m!), ...get(dv), ...f32x4.div, ...set(m!));
  if (scale) body.push(...get(m!), ...get(lam), ...f32x4.mul, ...set(m!));
  body.push(...get(b!), ...get(m!), ...f32x4.add, ...set(o!), ...flagNonFinite(o!, bad!), ...store(1, o!, out, c));
  const init: Code = [
    ...splatI32(0), ...set(zero!), ...splatI32(0), ...set(bad!),
    ...get(W0), ...f32x4.splat, ...set(w0), ...get(W0 + 1), ...f32x4.splat, ...set(w1),
    ...get(Z0), ...f32x4.splat, ...set(z0), ...get(Z0 + 1), ...f32x4.splat, ...set(z1),
    ...get(C0), ...f32x4.splat, ...set(cs0), ...get(C0 + 1), ...f32x4.splat, ...set(cs1),
    ...get(DIV), ...f32x4.splat, ...set(dv), ...get(LAM), ...f32x4.splat, ...set(lam),
  ];
  return { name: 'run', params, results: [T.i32], locals: L.types, body: [...init, ...forEach4(0, j, c, body), ...get(bad!), ...v128.anyTrue] };
}

// ─────────────────────────── runtime ───────────────────────────

interface GrowableMemory {
  readonly buffer: ArrayBuffer;
  grow(pages: number): number;
}

/**
 * The kernels of one thread and their memory: the fixed area (input slots, output slot, counters)
 * and, above it, an arena a caller may keep its stored-dtype buffers in (`arena`), so that kernels
 * read them in place instead of through the slots.
 */
export class Simd {
  mem!: Uint8Array;
  private i32!: Int32Array;
  private f64!: Float64Array;
  private readonly kernels = new Map<string, Kernel>();

  constructor(private readonly api: WasmApi, private readonly memory: GrowableMemory) {
    this.refresh();
  }

  private refresh(): void {
    this.mem = new Uint8Array(this.memory.buffer);
    this.i32 = new Int32Array(this.memory.buffer);
    this.f64 = new Float64Array(this.memory.buffer);
  }

  private kernel(key: string, make: () => Func): Kernel {
    let k = this.kernels.get(key);
    if (!k) {
      const bytes = module([make()]);
      const inst = new this.api.Instance(new this.api.Module(bytes), { env: { memory: this.memory } });
      k = inst.exports['run'] as Kernel;
      this.kernels.set(key, k);
    }
    return k;
  }

  /** Byte address of input slot `i` / of the output slot. */
  input(i: number): number {
    return i * SLOT;
  }
  get output(): number {
    return OUT;
  }

  /**
   * A zeroed-or-stale `bytes`-byte view of the arena (memory above the fixed area), growing the
   * memory when needed. Growing detaches every earlier view of this memory, including earlier
   * arena views: call only when no earlier arena view is in use (e.g. once per task).
   */
  arena(bytes: number): Uint8Array {
    const need = ARENA + bytes;
    if (need > this.memory.buffer.byteLength) {
      this.memory.grow(Math.ceil((need - this.memory.buffer.byteLength) / 65536));
      this.refresh();
    }
    return new Uint8Array(this.memory.buffer, ARENA, bytes);
  }

  /** The address of byte `offset` of `view` when `view` lies in this memory, else −1. */
  addressOf(view: Uint8Array, offset: number): number {
    return view.buffer === this.memory.buffer ? view.byteOffset + offset : -1;
  }

  /**
   * Puts `k` elements of each block at its address for a kernel: in place when the block is in
   * this memory, else copied into input slot i. Returns the addresses.
   */
  place(blocks: readonly { bytes: Uint8Array; offset: number; dtype: DType }[], at: number, k: number, into: number[]): number[] {
    for (let i = 0; i < blocks.length; i++) {
      const b = blocks[i]!;
      const size = b.dtype === 'F32' ? 4 : 2;
      const from = b.offset + at * size;
      const addr = this.addressOf(b.bytes, from);
      if (addr >= 0) into[i] = addr;
      else {
        this.mem.set(b.bytes.subarray(from, from + k * size), i * SLOT);
        into[i] = i * SLOT;
      }
    }
    return into;
  }

  linear(dtypes: SimdDType[], out: SimdDType, normalize: boolean): Kernel {
    return this.kernel(`lin:${dtypes.join(',')}>${out}:${normalize}`, () => linearFunc(dtypes, out, normalize));
  }

  tiesCount(dtypes: SimdDType[], m0: number, m1: number): Kernel {
    return this.kernel(`cnt:${dtypes.join(',')}:${m0}:${m1}`, () => tiesCountFunc(dtypes, m0, m1));
  }

  /** Zeroes the count kernel's accumulators (before a sweep). */
  resetCounts(): void {
    this.i32.fill(0, COUNTS >> 2, (COUNTS + 256) >> 2);
  }

  /** Reads the count kernel's accumulated result: [lt, eq] of candidate q of model mi (given m0). */
  counts(m0: number, mi: number, q: number): [number, number] {
    const at = (COUNTS + 32 * (mi === 0 ? q : m0 + q)) >> 2;
    const sum = (p: number) => this.i32[p]! + this.i32[p + 1]! + this.i32[p + 2]! + this.i32[p + 3]!;
    return [sum(at), sum(at + 4)];
  }

  /** `checks` false: the caller knows every input is finite (skips the per-lane test). */
  tiesApply(dtypes: SimdDType[], out: SimdDType, normalize: boolean, scale: boolean, checks = true): Kernel {
    return this.kernel(`ties:${dtypes.join(',')}>${out}:${normalize}:${scale}:${checks}`, () => tiesApplyFunc(dtypes, out, normalize, scale, checks));
  }

  /** DARE L1 statistics kernel (two masked models; stores their keep flags; see `dareScanFunc`). */
  dareScan(dtypes: SimdDType[], split = false): Kernel {
    return this.kernel(`dscan:${dtypes.join(',')}:${split}`, () => dareScanFunc(dtypes, split));
  }

  /** Draws the keep flags of two models only (see `dareScanFunc`): (n, _, _, _, bits, limit0, limit1). */
  dareDraw(split = false): Kernel {
    return this.kernel(`ddraw:${split}`, () => dareScanFunc(null, split));
  }

  /** The two generators' states jumped ahead by half a split call's elements (see `loadStateLanes`). */
  setDareJumped(states: readonly Int32Array[]): void {
    for (let mi = 0; mi < 2; mi++) this.i32.set(states[mi]!, ((DARE + 64) >> 2) + 4 * mi);
  }

  /** DARE apply kernel reading the keep flags the scan stored (see `dareApplyBitsFunc`). */
  dareApplyBits(dtypes: SimdDType[], out: SimdDType, div: readonly boolean[], normalize: boolean, scale: boolean): Kernel {
    return this.kernel(`dareb:${dtypes.join(',')}>${out}:${div.join(',')}:${normalize}:${scale}`, () => dareApplyBitsFunc(dtypes, out, div, normalize, scale));
  }

  /** Scratch for the DARE keep flags of one kernel call (input slot 3: SIMD_BLOCK / 4 bytes used). */
  get dareBits(): number {
    return 3 * SLOT;
  }

  /** Puts the two generator states (and, for the scan kernel, the sums [Σ|δ|, Σ|m ⊙ δ|] per model) where the DARE kernels read them. */
  setDare(states: readonly Int32Array[], sums?: readonly Float64Array[]): void {
    for (let mi = 0; mi < 2; mi++) this.i32.set(states[mi]!, (DARE >> 2) + 4 * mi);
    if (sums) {
      const at = (DARE + 32) >> 3;
      for (let mi = 0; mi < 2; mi++) {
        this.f64[at + mi] = sums[mi]![0]!;
        this.f64[at + 2 + mi] = sums[mi]![1]!;
      }
    }
  }

  /** Reads back what `setDare` put (after a kernel advanced it). */
  getDare(states: readonly Int32Array[], sums?: readonly Float64Array[]): void {
    for (let mi = 0; mi < 2; mi++) states[mi]!.set(this.i32.subarray((DARE >> 2) + 4 * mi, (DARE >> 2) + 4 * mi + 4));
    if (sums) {
      const at = (DARE + 32) >> 3;
      for (let mi = 0; mi < 2; mi++) {
        sums[mi]![0] = this.f64[at + mi]!;
        sums[mi]![1] = this.f64[at + 2 + mi]!;
      }
    }
  }

  get ties0(): number {
    return this.i32[MISC >> 2]!;
  }
  get ties1(): number {
    return this.i32[(MISC >> 2) + 1]!;
  }
  setTies(t0: number, t1: number): void {
    this.i32[MISC >> 2] = t0;
    this.i32[(MISC >> 2) + 1] = t1;
  }
}

let instance: Simd | null | undefined;
let enabled = true;

/** The thread's SIMD runtime, or null when WebAssembly SIMD is unavailable or disabled. */
export function simd(): Simd | null {
  if (!enabled) return null;
  if (instance === undefined) {
    instance = null;
    const api = (globalThis as unknown as { WebAssembly?: WasmApi }).WebAssembly;
    try {
      if (api) {
        const probe = module([linearFunc(['BF16'], 'BF16', true)]);
        if (api.validate(probe)) instance = new Simd(api, new api.Memory({ initial: PAGES, maximum: 65536 }));
      }
    } catch {
      instance = null;
    }
  }
  return instance;
}

/** Turns the SIMD kernels off (true: back on) — for tests that compare both paths. */
export function setSimdEnabled(on: boolean): void {
  enabled = on;
}
