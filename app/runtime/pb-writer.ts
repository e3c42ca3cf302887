/**
 * Minimal protobuf wire-format writer (encode only), enough for onnx.proto.
 *
 * Length-delimited fields need their length before their bytes, so nested messages are built in
 * their own writer first. To avoid copying large payloads (raw tensor data) once per nesting
 * level, a writer keeps a list of chunks and appends a sub-writer's chunks by reference; the one
 * and only copy happens in `finish()`.
 */

/** Protobuf wire types used here. */
const WIRE_VARINT = 0;
const WIRE_LEN = 2;
const WIRE_FIXED32 = 5;

const TWO_POW_63 = 1n << 63n;
const TWO_POW_64 = 1n << 64n;

/**
 * Appends the base-128 varint of an int64/uint64 value. Numbers must be safe integers; anything
 * beyond 2^53 must come as a bigint. Negative values are written as their 64-bit two's complement
 * (10 bytes), as protobuf does for int32/int64 fields.
 */
export function pushVarint(out: number[], value: number | bigint): void {
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value)) {
      throw new RangeError(`varint value ${value} is not a safe integer; pass a bigint`);
    }
    if (value >= 0) {
      // Arithmetic instead of bit operators: JS bit ops truncate to 32 bits.
      let v = value;
      while (v >= 0x80) {
        out.push((v % 0x80) | 0x80);
        v = Math.floor(v / 0x80);
      }
      out.push(v);
      return;
    }
    value = BigInt(value);
  }
  let v = value;
  if (v < 0n) {
    if (v < -TWO_POW_63) throw new RangeError(`varint value ${value} is below int64 range`);
    v += TWO_POW_64;
  } else if (v >= TWO_POW_64) {
    throw new RangeError(`varint value ${value} exceeds uint64 range`);
  }
  while (v >= 0x80n) {
    out.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  out.push(Number(v));
}

const textEncoder = new TextEncoder();

export class PbWriter {
  private readonly chunks: Uint8Array[] = [];
  /** Small pending bytes (tags, varints, lengths), flushed into `chunks` before any big chunk. */
  private pending: number[] = [];
  private flushedLength = 0;

  /** Total encoded length so far, in bytes. */
  get length(): number {
    return this.flushedLength + this.pending.length;
  }

  private tag(field: number, wire: number): void {
    pushVarint(this.pending, field * 8 + wire);
  }

  private flush(): void {
    if (this.pending.length === 0) return;
    this.chunks.push(Uint8Array.from(this.pending));
    this.flushedLength += this.pending.length;
    this.pending = [];
  }

  private pushChunk(bytes: Uint8Array): void {
    if (bytes.length === 0) return;
    this.flush();
    this.chunks.push(bytes);
    this.flushedLength += bytes.length;
  }

  /** int32 / int64 / uint64 / enum / bool field (wire type 0). */
  varint(field: number, value: number | bigint): this {
    this.tag(field, WIRE_VARINT);
    pushVarint(this.pending, value);
    return this;
  }

  /** float field (wire type 5, little-endian IEEE 754 single). */
  float(field: number, value: number): this {
    this.tag(field, WIRE_FIXED32);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, value, true);
    for (const x of b) this.pending.push(x);
    return this;
  }

  /** bytes field; the array is kept by reference until `finish()`, so do not mutate it before. */
  bytes(field: number, data: Uint8Array): this {
    this.tag(field, WIRE_LEN);
    pushVarint(this.pending, data.length);
    this.pushChunk(data);
    return this;
  }

  /** string field, UTF-8 encoded. */
  string(field: number, value: string): this {
    return this.bytes(field, textEncoder.encode(value));
  }

  /** Embedded message field; takes over the sub-writer's chunks (the sub-writer must not be reused). */
  message(field: number, sub: PbWriter): this {
    sub.flush();
    this.tag(field, WIRE_LEN);
    pushVarint(this.pending, sub.flushedLength);
    for (const c of sub.chunks) this.pushChunk(c);
    return this;
  }

  /** The encoded message as one contiguous array. */
  finish(): Uint8Array {
    this.flush();
    const out = new Uint8Array(this.flushedLength);
    let at = 0;
    for (const c of this.chunks) {
      out.set(c, at);
      at += c.length;
    }
    return out;
  }
}
