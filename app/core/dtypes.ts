/**
 * Element types of safetensors files and exact conversions to and from float32.
 *
 * Pure code (no node:, no electron). Conversions follow IEEE 754 round-to-nearest-even, as
 * torch's `.to(dtype)` does; NaN stays NaN. Float8 casts follow the OCP FP8 spec
 * (arXiv 2209.05433): E4M3 is the "FN" variant (no infinities, NaN = S.1111.111, max 448),
 * E5M2 is IEEE-like (max 57344, has ±Inf). Out-of-range values become NaN for E4M3 and ±Inf for
 * E5M2, as torch's non-saturating casts do.
 */

/** Every dtype name the safetensors format defines (safetensors tensor.rs `Dtype`). */
export const KNOWN_DTYPES = [
  'BOOL', 'F4', 'F6_E2M3', 'F6_E3M2', 'U8', 'I8', 'F8_E5M2', 'F8_E4M3', 'F8_E8M0', 'F8_E4M3FNUZ',
  'F8_E5M2FNUZ', 'I16', 'U16', 'F16', 'BF16', 'I32', 'U32', 'F32', 'C64', 'F64', 'I64', 'U64',
] as const;
export type KnownDType = (typeof KNOWN_DTYPES)[number];

/** The dtypes whose values this project can read (convert to float32) and write. */
export const READABLE_DTYPES = [
  'F64', 'F32', 'F16', 'BF16', 'I64', 'I32', 'I16', 'I8', 'U8', 'U16', 'U32', 'U64', 'BOOL', 'F8_E4M3', 'F8_E5M2',
] as const;
export type DType = (typeof READABLE_DTYPES)[number];

/** Storage width in bits of each known dtype (safetensors `Dtype::bitsize`; C64 is 64 there). */
export const DTYPE_BITS: Readonly<Record<KnownDType, number>> = {
  BOOL: 8, F4: 4, F6_E2M3: 6, F6_E3M2: 6, U8: 8, I8: 8, F8_E5M2: 8, F8_E4M3: 8, F8_E8M0: 8,
  F8_E4M3FNUZ: 8, F8_E5M2FNUZ: 8, I16: 16, U16: 16, F16: 16, BF16: 16, I32: 32, U32: 32, F32: 32,
  C64: 64, F64: 64, I64: 64, U64: 64,
};

export function isKnownDType(s: string): s is KnownDType {
  return (KNOWN_DTYPES as readonly string[]).includes(s);
}

export function isReadableDType(s: string): s is DType {
  return (READABLE_DTYPES as readonly string[]).includes(s);
}

export function dtypeBytes(d: DType): number {
  return DTYPE_BITS[d] / 8;
}

/** Names users write for output dtypes (mergekit YAML, torch) mapped to safetensors names. */
export function parseDTypeName(name: string): DType | undefined {
  const n = name.trim().toLowerCase().replace(/^torch\./, '');
  const table: Record<string, DType> = {
    float32: 'F32', fp32: 'F32', f32: 'F32', float: 'F32',
    float16: 'F16', fp16: 'F16', f16: 'F16', half: 'F16',
    bfloat16: 'BF16', bf16: 'BF16',
    float64: 'F64', f64: 'F64', double: 'F64',
    float8_e4m3fn: 'F8_E4M3', f8_e4m3: 'F8_E4M3', float8_e5m2: 'F8_E5M2', f8_e5m2: 'F8_E5M2',
  };
  return table[n];
}

export function torchDTypeName(d: DType): string {
  const table: Record<DType, string> = {
    F64: 'float64', F32: 'float32', F16: 'float16', BF16: 'bfloat16', I64: 'int64', I32: 'int32',
    I16: 'int16', I8: 'int8', U8: 'uint8', U16: 'uint16', U32: 'uint32', U64: 'uint64', BOOL: 'bool',
    F8_E4M3: 'float8_e4m3fn', F8_E5M2: 'float8_e5m2',
  };
  return table[d];
}

// Shared scratch for bit casts; single-threaded per isolate, so reuse is safe.
const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

/** bfloat16 bits → float32 value: the 16 bits are the top half of a float32. */
export function bf16BitsToF32(bits: number): number {
  u32Scratch[0] = (bits & 0xffff) << 16;
  return f32Scratch[0]!;
}

/** float32 value → bfloat16 bits, round to nearest even; NaN keeps a quiet NaN. */
export function f32ToBf16Bits(x: number): number {
  f32Scratch[0] = x;
  const u = u32Scratch[0]!;
  if ((u & 0x7fffffff) > 0x7f800000) return ((u >>> 16) | 0x0040) & 0xffff; // NaN → quiet NaN
  const rounded = u + 0x7fff + ((u >>> 16) & 1);
  return (rounded >>> 16) & 0xffff;
}

/** IEEE half bits → float32 value (subnormals, Inf and NaN included). */
export function f16BitsToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/** float32 value → IEEE half bits, round to nearest even; overflow gives ±Inf. */
export function f32ToF16Bits(x: number): number {
  f32Scratch[0] = x;
  const u = u32Scratch[0]!;
  const sign = (u >>> 16) & 0x8000;
  const exp = (u >>> 23) & 0xff;
  let mant = u & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign; // underflows to ±0 even after rounding
    mant |= 0x800000; // implicit leading one
    const shift = 14 - e; // 14..24
    const half = 1 << (shift - 1);
    const rest = mant & ((1 << shift) - 1);
    let m = mant >>> shift;
    if (rest > half || (rest === half && (m & 1))) m += 1;
    return sign | m; // a carry into the exponent field is still the right bit pattern
  }
  const rest = mant & 0x1fff;
  let m = mant >>> 13;
  if (rest > 0x1000 || (rest === 0x1000 && (m & 1))) {
    m += 1;
    if (m === 0x400) {
      m = 0;
      e += 1;
      if (e >= 0x1f) return sign | 0x7c00;
    }
  }
  return sign | (e << 10) | m;
}

/** A small float format: exponent bits, mantissa bits, bias, and how it treats the top exponent. */
interface MiniFloat {
  expBits: number;
  mantBits: number;
  bias: number;
  /** 'ieee': top exponent is Inf/NaN (E5M2). 'fn': only S.1111.111 is NaN, no Inf (E4M3FN). */
  kind: 'ieee' | 'fn';
  max: number;
}
const E4M3: MiniFloat = { expBits: 4, mantBits: 3, bias: 7, kind: 'fn', max: 448 };
const E5M2: MiniFloat = { expBits: 5, mantBits: 2, bias: 15, kind: 'ieee', max: 57344 };

function miniToF32(bits: number, f: MiniFloat): number {
  const sign = bits & 0x80 ? -1 : 1;
  const exp = (bits >>> f.mantBits) & ((1 << f.expBits) - 1);
  const mant = bits & ((1 << f.mantBits) - 1);
  const topExp = (1 << f.expBits) - 1;
  if (f.kind === 'ieee' && exp === topExp) return mant ? NaN : sign * Infinity;
  if (f.kind === 'fn' && exp === topExp && mant === (1 << f.mantBits) - 1) return NaN;
  if (exp === 0) return sign * mant * 2 ** (1 - f.bias - f.mantBits);
  return sign * (1 + mant / (1 << f.mantBits)) * 2 ** (exp - f.bias);
}

function f32ToMini(x: number, f: MiniFloat): number {
  const nanBits = 0x7f; // E4M3FN's only NaN (S.1111.111); for E5M2 a quiet NaN (exp 11111, mantissa 11)
  if (Number.isNaN(x)) return nanBits;
  const sign = x < 0 || Object.is(x, -0) ? 0x80 : 0;
  if (!Number.isFinite(x)) return f.kind === 'fn' ? sign | 0x7f : sign | 0x7c; // E4M3FN has no Inf: NaN
  const a = Math.abs(Math.fround(x));
  const minNormalExp = 1 - f.bias;
  const step = 2 ** (minNormalExp - f.mantBits); // spacing of subnormals
  let bits: number;
  if (a < 2 ** minNormalExp) {
    const q = roundHalfEven(a / step); // 0..2^mantBits (the top value is the smallest normal)
    bits = q; // q == 2^mantBits carries into exponent 1 with mantissa 0: same bit pattern
  } else {
    let e = Math.floor(Math.log2(a));
    if (2 ** e > a) e -= 1; // guard log2 rounding
    if (2 ** (e + 1) <= a) e += 1;
    let q = roundHalfEven((a / 2 ** e - 1) * (1 << f.mantBits));
    if (q === 1 << f.mantBits) {
      q = 0;
      e += 1;
    }
    const biased = e + f.bias;
    bits = (biased << f.mantBits) | q;
  }
  const value = miniToF32(bits, f);
  if (!(Math.abs(value) <= f.max) || bits >= (f.kind === 'fn' ? 0x7f : 0x7c)) {
    // Out of range: torch's casts do not saturate.
    return f.kind === 'fn' ? sign | 0x7f : sign | 0x7c;
  }
  return sign | bits;
}

function roundHalfEven(v: number): number {
  const fl = Math.floor(v);
  const diff = v - fl;
  if (diff > 0.5) return fl + 1;
  if (diff < 0.5) return fl;
  return fl % 2 === 0 ? fl : fl + 1;
}

export const f8e4m3BitsToF32 = (b: number): number => miniToF32(b, E4M3);
export const f8e5m2BitsToF32 = (b: number): number => miniToF32(b, E5M2);
export const f32ToF8e4m3Bits = (x: number): number => f32ToMini(x, E4M3);
export const f32ToF8e5m2Bits = (x: number): number => f32ToMini(x, E5M2);

// Lookup tables for the 8- and 16-bit float formats: conversion is then a table read per element.
let bf16Table: Float32Array | undefined;
let f16Table: Float32Array | undefined;
let e4m3Table: Float32Array | undefined;
let e5m2Table: Float32Array | undefined;
function table16(kind: 'BF16' | 'F16'): Float32Array {
  if (kind === 'BF16') {
    if (!bf16Table) {
      bf16Table = new Float32Array(65536);
      for (let i = 0; i < 65536; i++) bf16Table[i] = bf16BitsToF32(i);
    }
    return bf16Table;
  }
  if (!f16Table) {
    f16Table = new Float32Array(65536);
    for (let i = 0; i < 65536; i++) f16Table[i] = f16BitsToF32(i);
  }
  return f16Table;
}
function table8(kind: 'F8_E4M3' | 'F8_E5M2'): Float32Array {
  if (kind === 'F8_E4M3') {
    if (!e4m3Table) {
      e4m3Table = new Float32Array(256);
      for (let i = 0; i < 256; i++) e4m3Table[i] = f8e4m3BitsToF32(i);
    }
    return e4m3Table;
  }
  if (!e5m2Table) {
    e5m2Table = new Float32Array(256);
    for (let i = 0; i < 256; i++) e5m2Table[i] = f8e5m2BitsToF32(i);
  }
  return e5m2Table;
}

/** A view of `bytes` as `T`, copying only when the offset is not aligned for `T`. */
function aligned(bytes: Uint8Array, elem: number): ArrayBuffer | SharedArrayBuffer {
  if (bytes.byteOffset % elem === 0) return bytes.buffer;
  return bytes.slice().buffer;
}
function offsetOf(bytes: Uint8Array, elem: number): number {
  return bytes.byteOffset % elem === 0 ? bytes.byteOffset : 0;
}

/**
 * Little-endian raw bytes of `dtype` → float32 values. The result never aliases `bytes`, except
 * for F32 input when `copy` is false (then it is a view when the bytes are 4-aligned).
 * Integers convert exactly up to 2^24; I64/U64 beyond that lose precision (documented).
 */
export function toFloat32(bytes: Uint8Array, dtype: DType, copy = true): Float32Array {
  const n = bytes.byteLength / dtypeBytes(dtype);
  if (!Number.isInteger(n)) throw new RangeError(`${bytes.byteLength} bytes is not a whole number of ${dtype} elements`);
  switch (dtype) {
    case 'F32': {
      const view = new Float32Array(aligned(bytes, 4), offsetOf(bytes, 4), n);
      return copy ? view.slice() : view;
    }
    case 'BF16':
    case 'F16': {
      const src = new Uint16Array(aligned(bytes, 2), offsetOf(bytes, 2), n);
      const t = table16(dtype);
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = t[src[i]!]!;
      return out;
    }
    case 'F8_E4M3':
    case 'F8_E5M2': {
      const t = table8(dtype);
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = t[bytes[i]!]!;
      return out;
    }
    case 'F64':
      return Float32Array.from(new Float64Array(aligned(bytes, 8), offsetOf(bytes, 8), n));
    case 'I64':
      return Float32Array.from(new BigInt64Array(aligned(bytes, 8), offsetOf(bytes, 8), n), (v) => Number(v));
    case 'U64':
      return Float32Array.from(new BigUint64Array(aligned(bytes, 8), offsetOf(bytes, 8), n), (v) => Number(v));
    case 'I32':
      return Float32Array.from(new Int32Array(aligned(bytes, 4), offsetOf(bytes, 4), n));
    case 'U32':
      return Float32Array.from(new Uint32Array(aligned(bytes, 4), offsetOf(bytes, 4), n));
    case 'I16':
      return Float32Array.from(new Int16Array(aligned(bytes, 2), offsetOf(bytes, 2), n));
    case 'U16':
      return Float32Array.from(new Uint16Array(aligned(bytes, 2), offsetOf(bytes, 2), n));
    case 'I8':
      return Float32Array.from(new Int8Array(bytes.buffer, bytes.byteOffset, n));
    case 'U8':
      return Float32Array.from(bytes);
    case 'BOOL':
      return Float32Array.from(bytes, (b) => (b ? 1 : 0));
  }
}

/**
 * float32 values → little-endian raw bytes of `dtype`. Float targets round to nearest even;
 * integer targets round half away from zero and saturate at the type's range (a documented choice:
 * integer tensors in checkpoints are indices and masks, never merge results).
 */
export function fromFloat32(values: Float32Array, dtype: DType): Uint8Array {
  const n = values.length;
  const out = new Uint8Array(n * dtypeBytes(dtype));
  switch (dtype) {
    case 'F32':
      out.set(new Uint8Array(values.buffer, values.byteOffset, values.byteLength));
      return out;
    case 'BF16': {
      const dst = new Uint16Array(out.buffer);
      const u = new Uint32Array(values.buffer, values.byteOffset, n);
      for (let i = 0; i < n; i++) {
        const b = u[i]!;
        // Inline f32ToBf16Bits for speed (this is the hot path of every bf16 merge output).
        dst[i] = (b & 0x7fffffff) > 0x7f800000 ? ((b >>> 16) | 0x40) : (b + 0x7fff + ((b >>> 16) & 1)) >>> 16;
      }
      return out;
    }
    case 'F16': {
      const dst = new Uint16Array(out.buffer);
      for (let i = 0; i < n; i++) dst[i] = f32ToF16Bits(values[i]!);
      return out;
    }
    case 'F8_E4M3':
      for (let i = 0; i < n; i++) out[i] = f32ToF8e4m3Bits(values[i]!);
      return out;
    case 'F8_E5M2':
      for (let i = 0; i < n; i++) out[i] = f32ToF8e5m2Bits(values[i]!);
      return out;
    case 'F64':
      new Float64Array(out.buffer).set(values);
      return out;
    case 'I64': {
      const dst = new BigInt64Array(out.buffer);
      for (let i = 0; i < n; i++) dst[i] = BigInt(clampRound(values[i]!, -(2 ** 63), 2 ** 63 - 1));
      return out;
    }
    case 'U64': {
      const dst = new BigUint64Array(out.buffer);
      for (let i = 0; i < n; i++) dst[i] = BigInt(clampRound(values[i]!, 0, 2 ** 64 - 1));
      return out;
    }
    case 'I32':
      fillInt(new Int32Array(out.buffer), values, -(2 ** 31), 2 ** 31 - 1);
      return out;
    case 'U32':
      fillInt(new Uint32Array(out.buffer), values, 0, 2 ** 32 - 1);
      return out;
    case 'I16':
      fillInt(new Int16Array(out.buffer), values, -32768, 32767);
      return out;
    case 'U16':
      fillInt(new Uint16Array(out.buffer), values, 0, 65535);
      return out;
    case 'I8':
      fillInt(new Int8Array(out.buffer), values, -128, 127);
      return out;
    case 'U8':
      fillInt(out, values, 0, 255);
      return out;
    case 'BOOL':
      for (let i = 0; i < n; i++) out[i] = values[i] ? 1 : 0;
      return out;
  }
}

function clampRound(v: number, lo: number, hi: number): number {
  if (Number.isNaN(v)) return 0;
  const r = v < 0 ? -Math.round(-v) : Math.round(v);
  return Math.min(hi, Math.max(lo, r));
}

function fillInt(dst: { [i: number]: number; length: number }, src: Float32Array, lo: number, hi: number): void {
  for (let i = 0; i < src.length; i++) dst[i] = clampRound(src[i]!, lo, hi);
}

/**
 * Block conversions for streaming kernels: like `toFloat32` / `fromFloat32` on a slice of a tensor,
 * but into caller-owned storage, so a merge can convert small cache-resident blocks with no
 * allocation. Results are the same as the whole-array functions element for element (BF16 input is
 * widened by a shift, which keeps a NaN's payload as stored; any arithmetic on the value then sees
 * the same quiet NaN the lookup table gives).
 */

/** Decodes `count` elements of `dtype` from `src` (little-endian, starting at byte `byteOffset`) into `dst[0..count)`. */
export function decodeInto(src: Uint8Array, byteOffset: number, dtype: DType, count: number, dst: Float32Array): void {
  const at = src.byteOffset + byteOffset;
  switch (dtype) {
    case 'BF16':
      if (at % 4 === 0) {
        // Two values per 32-bit load (little-endian: the low half is the first value).
        const pairs = count >>> 1;
        const w = new Int32Array(src.buffer, at, pairs);
        const d = new Int32Array(dst.buffer, dst.byteOffset, count);
        for (let i = 0, j = 0; i < pairs; i++, j += 2) {
          const v = w[i]!;
          d[j] = v << 16;
          d[j + 1] = v & -65536;
        }
        if (count & 1) d[count - 1] = new Uint16Array(src.buffer, at + 2 * (count - 1), 1)[0]! << 16;
        return;
      }
      if (at % 2 === 0) {
        const h = new Uint16Array(src.buffer, at, count);
        const d = new Uint32Array(dst.buffer, dst.byteOffset, count);
        for (let i = 0; i < count; i++) d[i] = h[i]! << 16;
        return;
      }
      break;
    case 'F16':
      if (at % 2 === 0) {
        const h = new Uint16Array(src.buffer, at, count);
        const t = table16('F16');
        for (let i = 0; i < count; i++) dst[i] = t[h[i]!]!;
        return;
      }
      break;
    case 'F32':
      if (at % 4 === 0) {
        dst.set(new Float32Array(src.buffer, at, count));
        return;
      }
      break;
    default:
      break;
  }
  dst.set(toFloat32(src.subarray(byteOffset, byteOffset + count * dtypeBytes(dtype)), dtype, false).subarray(0, count));
}

/** Encodes `values[0..count)` as `dtype` into `dst` at byte `byteOffset` (same rounding as `fromFloat32`). */
export function encodeInto(values: Float32Array, count: number, dtype: DType, dst: Uint8Array, byteOffset: number): void {
  const at = dst.byteOffset + byteOffset;
  switch (dtype) {
    case 'BF16':
      if (at % 2 === 0) {
        const o = new Uint16Array(dst.buffer, at, count);
        const u = new Uint32Array(values.buffer, values.byteOffset, count);
        for (let i = 0; i < count; i++) {
          const b = u[i]!;
          o[i] = (b & 0x7fffffff) > 0x7f800000 ? ((b >>> 16) | 0x40) : (b + 0x7fff + ((b >>> 16) & 1)) >>> 16;
        }
        return;
      }
      break;
    case 'F32':
      dst.set(new Uint8Array(values.buffer, values.byteOffset, count * 4), byteOffset);
      return;
    default:
      break;
  }
  dst.set(fromFloat32(values.subarray(0, count), dtype), byteOffset);
}
