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

export const T = { i32: 0x7f, f32: 0x7d, v128: 0x7b } as const;
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
  eq: simd(0x37), ne: simd(0x38), ltS: simd(0x39), gtS: simd(0x3b),
  bitmask: simd(0xa4),
  shl: simd(0xab), shrU: simd(0xad), add: simd(0xae), sub: simd(0xb1),
};
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
