/** Test-side helpers for runtime tests: a tiny protobuf decoder, temp dirs, numeric comparison. */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

export interface PbField {
  field: number;
  wire: number;
  /** Varints as unsigned bigint; length-delimited and fixed fields as bytes. */
  value: bigint | Uint8Array;
}

/** Decodes one protobuf message level into its fields, in order. */
export function decodeMessage(bytes: Uint8Array): PbField[] {
  const out: PbField[] = [];
  let at = 0;
  const varint = (): bigint => {
    let v = 0n;
    let shift = 0n;
    for (;;) {
      const b = bytes[at++];
      if (b === undefined) throw new Error('truncated varint');
      v |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return v;
      shift += 7n;
    }
  };
  while (at < bytes.length) {
    const tag = varint();
    const field = Number(tag >> 3n);
    const wire = Number(tag & 7n);
    if (wire === 0) out.push({ field, wire, value: varint() });
    else if (wire === 2) {
      const len = Number(varint());
      out.push({ field, wire, value: bytes.subarray(at, at + len) });
      at += len;
    } else if (wire === 5 || wire === 1) {
      const len = wire === 5 ? 4 : 8;
      out.push({ field, wire, value: bytes.subarray(at, at + len) });
      at += len;
    } else throw new Error(`unsupported wire type ${wire}`);
  }
  return out;
}

export function fields(bytes: Uint8Array, field: number): PbField[] {
  return decodeMessage(bytes).filter((f) => f.field === field);
}

/** The bytes of the only (or first) length-delimited field `field`. */
export function sub(bytes: Uint8Array, field: number, index = 0): Uint8Array {
  const f = fields(bytes, field)[index];
  assert.ok(f !== undefined && f.value instanceof Uint8Array, `field ${field}[${index}] missing`);
  return f.value;
}

export function str(bytes: Uint8Array, field: number): string {
  return new TextDecoder().decode(sub(bytes, field));
}

/** A varint field read as a signed int64. */
export function int64(bytes: Uint8Array, field: number, index = 0): bigint {
  const f = fields(bytes, field)[index];
  assert.ok(f !== undefined && typeof f.value === 'bigint', `varint field ${field}[${index}] missing`);
  return BigInt.asIntN(64, f.value);
}

/** A fresh temp dir and a cleanup function. */
export function tempDir(): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(path.join(tmpdir(), 'upcycle-rt-'));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number, what = 'values'): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  let worst = 0;
  for (let i = 0; i < expected.length; i++) worst = Math.max(worst, Math.abs(actual[i]! - expected[i]!));
  assert.ok(worst <= tol, `${what}: max abs diff ${worst} > ${tol}`);
}

/** Deterministic pseudo-random floats in [-1, 1) (mulberry32), so failures reproduce. */
export function randomFloats(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = (((t ^ (t >>> 14)) >>> 0) / 4294967296) * 2 - 1;
  }
  return out;
}
