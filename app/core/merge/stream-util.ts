/**
 * Helpers for `TensorStream` implementations and callers: block-order checking, and running a
 * stream over whole in-memory tensors (tests, and callers that already hold float32 tensors).
 */
import { decodeInto, dtypeBytes, encodeInto } from '../dtypes.js';
import type { MergeMethodDef, ModelInput, RawBlock, StreamSpec, TensorStream } from './types.js';

/** Checks that blocks arrive in order and tile [0, numel) (each pass and the apply sweep). */
export class BlockOrder {
  private pos = 0;

  constructor(private readonly numel: number) {}

  next(start: number, length: number): void {
    if (start !== this.pos || length < 0 || start + length > this.numel) {
      throw new Error(`stream: block [${start}, ${start + length}) out of order (expected start ${this.pos} of ${this.numel})`);
    }
    this.pos = start + length === this.numel ? 0 : start + length;
  }
}

/** Float32 scratch blocks for decoding raw blocks (grown as needed, reused). */
export class BlockDecoder {
  private bufs: Float32Array[] = [];
  private outBuf = new Float32Array(0);

  /** Decodes elements [at, at + length) of each block into scratch arrays (valid until the next call). */
  decode(blocks: readonly RawBlock[], at: number, length: number): Float32Array[] {
    while (this.bufs.length < blocks.length) this.bufs.push(new Float32Array(0));
    return blocks.map((b, i) => {
      if (this.bufs[i]!.length < length) this.bufs[i] = new Float32Array(Math.max(length, 1024));
      const dst = this.bufs[i]!;
      decodeInto(b.bytes, b.offset + at * dtypeBytes(b.dtype), b.dtype, length, dst);
      return dst;
    });
  }

  /** A float32 scratch block for results. */
  out(length: number): Float32Array {
    if (this.outBuf.length < length) this.outBuf = new Float32Array(Math.max(length, 1024));
    return this.outBuf;
  }
}

/** `stream.scanRaw`, or decode + `stream.scan`. */
export function scanRaw(s: TensorStream, dec: BlockDecoder, pass: number, start: number, length: number, base: RawBlock | undefined, models: readonly RawBlock[]): void {
  if (s.scanRaw) return s.scanRaw(pass, start, length, base, models);
  const f = dec.decode(base ? [base, ...models] : models, 0, length);
  s.scan(pass, start, length, base ? f[0] : undefined, base ? f.slice(1) : f);
}

/** `stream.applyRaw`, or decode + `stream.apply` + encode. */
export function applyRaw(s: TensorStream, dec: BlockDecoder, start: number, length: number, base: RawBlock | undefined, models: readonly RawBlock[], out: RawBlock): void {
  if (s.applyRaw) return s.applyRaw(start, length, base, models, out);
  const f = dec.decode(base ? [base, ...models] : models, 0, length);
  const o = dec.out(length);
  s.apply(start, length, base ? f[0] : undefined, base ? f.slice(1) : f, o);
  encodeInto(o, length, out.dtype, out.bytes, out.offset);
}

/** `wantsPass` / `scan` / `endPass` of a stream without statistics passes. */
export const noScan: Pick<TensorStream, 'wantsPass' | 'scan' | 'endPass'> = {
  wantsPass: () => false,
  scan: () => {
    throw new Error('stream: this method has no statistics passes');
  },
  endPass: () => {
    throw new Error('stream: this method has no statistics passes');
  },
};

/**
 * Runs `def.stream` over whole float32 tensors in blocks of `blockSize` elements (or the sizes
 * `blockSize` yields in turn, for tests), after handing it the `evenSample` (or the given element
 * indices, or none); returns undefined when the method does not stream these inputs. The result
 * equals `def.merge` on the same inputs.
 */
export function mergeStreamed(
  def: MergeMethodDef,
  inputs: { tensorName: string; shape: readonly number[]; base?: ModelInput; models: readonly ModelInput[]; globals?: StreamSpec['globals']; rng?: StreamSpec['rng'] },
  blockSize: number | (() => number) = 65536,
  sample: 'even' | 'none' | readonly number[] = 'even',
): Float32Array | undefined {
  const spec: StreamSpec = {
    tensorName: inputs.tensorName,
    shape: inputs.shape,
    base: inputs.base ? { id: inputs.base.id, params: inputs.base.params } : undefined,
    models: inputs.models.map((m) => ({ id: m.id, params: m.params })),
    globals: inputs.globals,
    rng: inputs.rng,
  };
  const s = def.stream?.(spec);
  if (!s) return undefined;
  const n = inputs.shape.reduce((a, d) => a * d, 1);
  const size = typeof blockSize === 'number' ? () => blockSize : blockSize;
  const sweep = (fn: (start: number, length: number, base: Float32Array | undefined, models: Float32Array[]) => void) => {
    for (let start = 0; start < n; ) {
      const len = Math.max(1, Math.min(n - start, size()));
      fn(start, len, inputs.base?.tensor.subarray(start, start + len), inputs.models.map((m) => m.tensor.subarray(start, start + len)));
      start += len;
    }
  };
  if (sample !== 'none' && s.sample) {
    const idx = sample === 'even' ? evenSample(n) : sample;
    const pick = (t: Float32Array) => Float32Array.from(idx, (i) => t[i]!);
    s.sample(idx.length, inputs.base ? pick(inputs.base.tensor) : undefined, inputs.models.map((m) => pick(m.tensor)));
  }
  for (let p = 0; s.wantsPass(p); p++) {
    sweep((start, len, b, ms) => s.scan(p, start, len, b, ms));
    s.endPass(p);
  }
  const out = new Float32Array(n);
  sweep((start, len, b, ms) => s.apply(start, len, b, ms, out.subarray(start, start + len)));
  return out;
}

/**
 * An even sample of a tensor of `numel` elements as runs [start, length): `runs` runs of
 * `runLength` consecutive elements at evenly spaced places (the whole tensor when it is that
 * small). Runs keep the reads of a streamed caller few and contiguous.
 */
export function evenSampleRuns(numel: number, runs = 64, runLength = 1024): [number, number][] {
  if (numel <= runs * runLength) return numel > 0 ? [[0, numel]] : [];
  return Array.from({ length: runs }, (_, r) => [Math.floor((r * (numel - runLength)) / (runs - 1)), runLength]);
}

/** The flat indices of `evenSampleRuns`. */
export function evenSample(numel: number): number[] {
  return evenSampleRuns(numel).flatMap(([start, len]) => Array.from({ length: len }, (_, j) => start + j));
}
