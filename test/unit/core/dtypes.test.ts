import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  bf16BitsToF32, f16BitsToF32, f32ToBf16Bits, f32ToF16Bits, f32ToF8e4m3Bits, f32ToF8e5m2Bits, f8e4m3BitsToF32,
  f8e5m2BitsToF32, fromFloat32, parseDTypeName, READABLE_DTYPES, toFloat32,
} from '../../../app/core/dtypes.js';

test('bf16: every bit pattern survives bf16 → f32 → bf16 (NaNs stay NaN)', () => {
  for (let b = 0; b < 65536; b++) {
    const f = bf16BitsToF32(b);
    const back = f32ToBf16Bits(f);
    if (Number.isNaN(f)) assert.ok(Number.isNaN(bf16BitsToF32(back)), `NaN pattern ${b}`);
    else assert.equal(back, b, `pattern ${b.toString(16)}`);
  }
});

test('bf16: f32 → bf16 rounds to nearest, ties to even', () => {
  // 1 + 2^-8 is exactly halfway between bf16 1.0 (0x3f80) and 1 + 2^-7 (0x3f81): ties go to the even 0x3f80.
  assert.equal(f32ToBf16Bits(1 + 2 ** -8), 0x3f80);
  // 1 + 3·2^-8 is halfway between 0x3f81 and 0x3f82: ties go to even 0x3f82.
  assert.equal(f32ToBf16Bits(1 + 3 * 2 ** -8), 0x3f82);
  // Just above halfway rounds up.
  assert.equal(f32ToBf16Bits(1 + 2 ** -8 + 2 ** -20), 0x3f81);
  assert.equal(f32ToBf16Bits(-2), 0xc000);
  assert.equal(f32ToBf16Bits(Infinity), 0x7f80);
  // The largest finite f32 rounds up to bf16 infinity (as torch does).
  assert.equal(f32ToBf16Bits(3.4028234663852886e38), 0x7f80);
});

test('f16: every bit pattern survives f16 → f32 → f16; known values', () => {
  for (let h = 0; h < 65536; h++) {
    const f = f16BitsToF32(h);
    if (Number.isNaN(f)) continue;
    assert.equal(f32ToF16Bits(f), h, `pattern ${h.toString(16)}`);
  }
  assert.equal(f16BitsToF32(0x3c00), 1);
  assert.equal(f16BitsToF32(0x7bff), 65504);
  assert.equal(f16BitsToF32(0x0001), 2 ** -24);
  assert.equal(f32ToF16Bits(65520), 0x7c00); // halfway to 2^16 rounds to even → Inf
  assert.equal(f32ToF16Bits(65519), 0x7bff);
  assert.equal(f32ToF16Bits(2 ** -25), 0x0000); // tie with 0 → even (0)
  assert.equal(f32ToF16Bits(3 * 2 ** -25), 0x0002); // tie between 1 and 2 subnormal units → even (2)
  assert.equal(f32ToF16Bits(1 + 2 ** -11), 0x3c00); // tie → even
  assert.equal(f32ToF16Bits(1 + 3 * 2 ** -11), 0x3c02);
  assert.ok(Number.isNaN(f16BitsToF32(f32ToF16Bits(NaN))));
});

test('f8 E4M3FN: known values, no infinities, overflow becomes NaN', () => {
  assert.equal(f8e4m3BitsToF32(0x7e), 448); // max
  assert.equal(f8e4m3BitsToF32(0x01), 2 ** -9); // smallest subnormal
  assert.equal(f8e4m3BitsToF32(0x08), 2 ** -6); // smallest normal
  assert.equal(f8e4m3BitsToF32(0x38), 1);
  assert.ok(Number.isNaN(f8e4m3BitsToF32(0x7f)));
  assert.ok(Number.isNaN(f8e4m3BitsToF32(0xff)));
  assert.equal(f8e4m3BitsToF32(0x78), 256); // exponent 1111 is a normal number in FN
  for (let b = 0; b < 256; b++) {
    const v = f8e4m3BitsToF32(b);
    if (!Number.isNaN(v)) assert.equal(f32ToF8e4m3Bits(v), b, `pattern ${b}`);
  }
  assert.equal(f32ToF8e4m3Bits(460), 0x7e); // rounds down to 448
  assert.equal(f32ToF8e4m3Bits(1000), 0x7f); // overflow → NaN, as torch
  assert.equal(f32ToF8e4m3Bits(-1000), 0xff);
  assert.equal(f32ToF8e4m3Bits(1.0625), 0x38); // tie between 1 and 1.125 → even (1)
});

test('f8 E5M2: known values, infinities, overflow becomes Inf', () => {
  assert.equal(f8e5m2BitsToF32(0x7b), 57344);
  assert.equal(f8e5m2BitsToF32(0x7c), Infinity);
  assert.equal(f8e5m2BitsToF32(0xfc), -Infinity);
  assert.equal(f8e5m2BitsToF32(0x01), 2 ** -16);
  assert.equal(f8e5m2BitsToF32(0x3c), 1);
  assert.ok(Number.isNaN(f8e5m2BitsToF32(0x7e)));
  for (let b = 0; b < 256; b++) {
    const v = f8e5m2BitsToF32(b);
    if (!Number.isNaN(v)) assert.equal(f32ToF8e5m2Bits(v), b, `pattern ${b}`);
  }
  assert.equal(f32ToF8e5m2Bits(1e6), 0x7c);
  assert.equal(f32ToF8e5m2Bits(-1e6), 0xfc);
  assert.equal(f32ToF8e5m2Bits(Infinity), 0x7c);
  assert.equal(f32ToF8e4m3Bits(-Infinity), 0xff);
});

test('toFloat32/fromFloat32 round-trip every readable dtype', () => {
  const values = Float32Array.from([0, 1, -2, 3, 96, -7, 0.5]) // exact in every float format, f8 included;
  for (const d of READABLE_DTYPES) {
    const src = d === 'BOOL' ? Float32Array.from([0, 1, 1, 0]) : d.startsWith('U') ? values.map(Math.abs) : values;
    const bytes = fromFloat32(src, d);
    const back = toFloat32(bytes, d);
    assert.deepEqual([...back], [...src].map((v) => (d === 'I8' || d === 'U8' || d.startsWith('I') || d.startsWith('U') ? Math.round(v) : v)), d);
  }
});

test('toFloat32 reads unaligned bytes and rejects partial elements', () => {
  const bytes = fromFloat32(Float32Array.from([1.5, -2.25]), 'F32');
  const shifted = new Uint8Array(bytes.length + 1);
  shifted.set(bytes, 1);
  assert.deepEqual([...toFloat32(shifted.subarray(1), 'F32')], [1.5, -2.25]);
  assert.throws(() => toFloat32(new Uint8Array(3), 'F16'), RangeError);
});

test('integer outputs saturate and round half away from zero', () => {
  assert.deepEqual([...new Int8Array(fromFloat32(Float32Array.from([300, -300, 2.5, -2.5]), 'I8').buffer)], [127, -128, 3, -3]);
});

test('dtype names as users write them', () => {
  assert.equal(parseDTypeName('bfloat16'), 'BF16');
  assert.equal(parseDTypeName('torch.float16'), 'F16');
  assert.equal(parseDTypeName('float32'), 'F32');
  assert.equal(parseDTypeName('int4'), undefined);
});
