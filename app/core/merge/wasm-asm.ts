/**
 * A very small WebAssembly assembler: just enough to emit one module of SIMD kernels (simd.ts)
 * without a toolchain. Instructions are plain byte arrays; `module` wraps functions that import one
 * memory. Opcodes follow the WebAssembly core spec and the fixed-width SIMD proposal (prefix 0xfd,
 * LEB128 sub-opcode).
 */

export type Code = number[];

export function uleb(n: number): Code {
  const out: Code = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n !== 0) b |= 0x80;
    out.push(b);
  } while (n !== 0);
  return out;
}

export function sleb(n: number): Code {
  const out: Code = [];
  for (;;) {
    const b = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (b & 0x40) === 0) || (n === -1 && (b & 0x40) !== 0)) {
      out.push(b);
      return out;
    }
    out.push(b | 0x80);
  }
}

const vec = (items: Code[]): Code => [...uleb(items.length), ...items.flat()];
const section = (id: number, body: Code): Code => [id, ...uleb(body.length), ...body];
const name = (s: string): Code => vec([...s].map((c) => [c.charCodeAt(0)]));

export const T = { i32: 0x7f, f32: 0x7d, f64: 0x7c, v128: 0x7b } as const;
export type ValType = (typeof T)[keyof typeof T];

// ── scalar instructions ──
export const get = (i: number): Code => [0x20, ...uleb(i)];
export const set = (i: number): Code => [0x21, ...uleb(i)];
export const tee = (i: number): Code => [0x22, ...uleb(i)];
export const i32c = (v: number): Code => [0x41, ...sleb(v | 0)];
export const f32c = (v: number): Code => [0x43, ...new Uint8Array(Float32Array.of(v).buffer)];
export const i32 = {
  load: (offset = 0): Code => [0x28, 2, ...uleb(offset)],
  store: (offset = 0): Code => [0x36, 2, ...uleb(offset)],
  eqz: [0x45] as Code, geS: [0x4e] as Code, popcnt: [0x69] as Code, add: [0x6a] as Code, sub: [0x6b] as Code,
};
/** Scalar i32 ops beyond `i32` (the DARE kernels' random generator and BF16 rounding). */
export const i32s = {
  load8u: (offset = 0): Code => [0x2d, 0, ...uleb(offset)],
  store8: (offset = 0): Code => [0x3a, 0, ...uleb(offset)],
  load16u: (offset = 0): Code => [0x2f, 1, ...uleb(offset)],
  store16: (offset = 0): Code => [0x3b, 1, ...uleb(offset)],
  eq: [0x46] as Code, ltU: [0x49] as Code,
  mul: [0x6c] as Code, and: [0x71] as Code, or: [0x72] as Code, xor: [0x73] as Code,
  shl: [0x74] as Code, shrU: [0x76] as Code, rotl: [0x77] as Code,
  reinterpretF32: [0xbc] as Code,
};
export const f32s = {
  load: (offset = 0): Code => [0x2a, 2, ...uleb(offset)],
  store: (offset = 0): Code => [0x38, 2, ...uleb(offset)],
  abs: [0x8b] as Code, add: [0x92] as Code, sub: [0x93] as Code, mul: [0x94] as Code, div: [0x95] as Code,
  reinterpretI32: [0xbe] as Code,
};
export const f64s = {
  load: (offset = 0): Code => [0x2b, 3, ...uleb(offset)],
  store: (offset = 0): Code => [0x39, 3, ...uleb(offset)],
  const0: [0x44, 0, 0, 0, 0, 0, 0, 0, 0] as Code,
  add: [0xa0] as Code, promoteF32: [0xbb] as Code,
};
/** select(a, b, c) = c ≠ 0 ? a : b (no branch). */
export const select: Code = [0x1b];
/** block … end, loop … end (no result), br / br_if to a label depth. */
export const block = (...body: Code[]): Code => [0x02, 0x40, ...body.flat(), 0x0b];
export const loop = (...body: Code[]): Code => [0x03, 0x40, ...body.flat(), 0x0b];
/** if (condition on the stack) … else … end (no result). */
export const ifElse = (then: Code, otherwise: Code = []): Code => [0x04, 0x40, ...then, ...(otherwise.length ? [0x05, ...otherwise] : []), 0x0b];
export const br = (depth: number): Code => [0x0c, ...uleb(depth)];
export const brIf = (depth: number): Code => [0x0d, ...uleb(depth)];

// ── SIMD instructions ──
const simd = (op: number, ...imm: number[]): Code => [0xfd, ...uleb(op), ...imm];
const memarg = (alignLog2: number, offset: number): number[] => [...uleb(alignLog2), ...uleb(offset)];
export const v128 = {
  load: (offset = 0): Code => simd(0x00, ...memarg(0, offset)),
  /** Replaces 16-bit lane `lane` (i16x8 numbering) of the vector with the u16 at the address. */
  load16lane: (lane: number, offset = 0): Code => simd(0x55, ...memarg(0, offset), lane),
  /** Replaces 32-bit lane `lane` of the vector with the 32 bits at the address. */
  load32lane: (lane: number, offset = 0): Code => simd(0x56, ...memarg(0, offset), lane),
  /** Four u16 zero-extended to i32 lanes. */
  load16x4u: (offset = 0): Code => simd(0x04, ...memarg(0, offset)),
  store: (offset = 0): Code => simd(0x0b, ...memarg(0, offset)),
  /** Stores the low 64 bits (lane 0 of i64x2). */
  store64lane0: (offset = 0): Code => simd(0x5b, ...memarg(0, offset), 0),
  const: (bytes: ArrayLike<number>): Code => simd(0x0c, ...Array.from(bytes)),
  not: simd(0x4d), and: simd(0x4e), andnot: simd(0x4f), or: simd(0x50), xor: simd(0x51),
  /** bitselect(a, b, mask) = (a & mask) | (b & ~mask). */
  bitselect: simd(0x52),
  anyTrue: simd(0x53),
  /** i8x16.shuffle with 16 lane indices (0–15 first operand, 16–31 second). */
  shuffle: (lanes: number[]): Code => simd(0x0d, ...lanes),
};
export const i32x4 = {
  splat: simd(0x11),
  extractLane: (lane: number): Code => simd(0x1b, lane),
  replaceLane: (lane: number): Code => simd(0x1c, lane),
  eq: simd(0x37), ne: simd(0x38), ltS: simd(0x39), ltU: simd(0x3a), gtS: simd(0x3b),
  bitmask: simd(0xa4),
  shl: simd(0xab), shrU: simd(0xad), add: simd(0xae), sub: simd(0xb1), mul: simd(0xb5),
};
export const i64x2 = { extendLowI32x4S: simd(0xc7) };
export const f64x2 = { promoteLowF32x4: simd(0x5f), add: simd(0xf0) };
export const i16x8 = { narrowI32x4U: simd(0x86) };
export const f32x4 = {
  splat: simd(0x13),
  eq: simd(0x41), ne: simd(0x42), lt: simd(0x43), gt: simd(0x44), ge: simd(0x46),
  abs: simd(0xe0), add: simd(0xe4), sub: simd(0xe5), mul: simd(0xe6), div: simd(0xe7),
};

export interface Func {
  name: string;
  params: ValType[];
  results: ValType[];
  /** Extra locals after the parameters, in order. */
  locals: ValType[];
  body: Code;
}

/** A module importing memory `env.memory` and exporting `funcs`. */
export function module(funcs: Func[]): Uint8Array<ArrayBuffer> {
  const types = vec(funcs.map((f) => [0x60, ...vec(f.params.map((t) => [t])), ...vec(f.results.map((t) => [t]))]));
  const imports = vec([[...name('env'), ...name('memory'), 0x02, 0x00, 1]]);
  const fnSec = vec(funcs.map((_, i) => uleb(i)));
  const exports = vec(funcs.map((f, i) => [...name(f.name), 0x00, ...uleb(i)]));
  const codes = vec(funcs.map((f) => {
    const locals = vec(f.locals.map((t) => [1, t]));
    const body = [...locals, ...f.body, 0x0b];
    return [...uleb(body.length), ...body];
  }));
  return new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, types), ...section(2, imports), ...section(3, fnSec), ...section(7, exports), ...section(10, codes),
  ]);
}
