/**
 * Streaming dot products of task vectors (θₑ − θ_base) over a sample plan (similarity.ts), read
 * straight from the safetensors files: for each tensor, the sampled element ranges are coalesced
 * into reads (ranges less than 16 KiB apart share one read; no read spans more than 64 Ki
 * elements, so a read of every expert stays in the CPU's cache), each read is done for the base and every expert, and only the sampled elements enter
 * the sums. Memory stays bounded by one read per expert, whatever the model size; nothing is cached
 * between calls, so each call reads the base and the experts it is given once.
 *
 * Reads are synchronous positioned reads (`fs.readSync`): sampling makes many small reads, and a
 * synchronous read from the page cache costs a few microseconds where a promise-based one costs tens.
 * The loop yields to the event loop between tensors (and checks the AbortSignal there).
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { dtypeBytes, toFloat32, type DType } from '../core/dtypes.js';
import { CheckpointError } from '../core/errors.js';
import { readableDType } from '../core/safetensors-header.js';
import { Checkpoint } from '../io/checkpoint.js';
import type { SimilarityScope } from './config.js';
import { addDots, type Pair, type SamplePlan, type SampleTensor } from './similarity.js';

const GAP_BYTES = 16 * 1024;
const MAX_READ_ELEMENTS = 64 * 1024;
const FLOAT_DTYPES = new Set(['F32', 'F16', 'BF16', 'F64']);

/** The tensors whose task vectors are compared: float tensors of the base (sorted by name), optionally FFN only. */
export function similarityTensors(base: Checkpoint, scope: SimilarityScope): SampleTensor[] {
  return base.names
    .filter((n) => FLOAT_DTYPES.has(base.info(n).dtype) && (scope === 'all' || /\.mlp\./.test(n)))
    .sort()
    .map((name) => ({ name, numel: base.info(name).shape.reduce((a, d) => a * d, 1) }));
}

export interface DotsProgress {
  /** Sampled elements processed so far (of plan.sampledParameters). */
  done: number;
  total: number;
}

export interface DotsResult {
  /** Σ over the sample of τ_a·τ_b for each requested pair, in the order given. */
  sums: Float64Array;
  bytesRead: number;
  seconds: number;
}

interface Source {
  ck: Checkpoint;
  fds: Map<string, number>;
}

/** One coalesced read: [start, end) elements of a tensor and the sampled ranges inside it. */
interface Read {
  start: number;
  end: number;
  ranges: [number, number][];
  count: number;
}

function readsOf(ranges: readonly [number, number][], elemBytes: number): Read[] {
  const gap = Math.max(0, Math.floor(GAP_BYTES / elemBytes));
  const out: Read[] = [];
  let cur: Read | undefined;
  for (const [s0, e0] of ranges) {
    for (let s = s0; s < e0; s += MAX_READ_ELEMENTS) {
      const e = Math.min(e0, s + MAX_READ_ELEMENTS);
      if (cur && s - cur.end <= gap && e - cur.start <= MAX_READ_ELEMENTS) {
        cur.end = e;
        cur.ranges.push([s, e]);
        cur.count += e - s;
      } else {
        cur = { start: s, end: e, ranges: [[s, e]], count: e - s };
        out.push(cur);
      }
    }
  }
  return out;
}

function readInto(fd: number, buf: Buffer, length: number, position: number, file: string): void {
  let done = 0;
  while (done < length) {
    const n = readSync(fd, buf, done, length - done, position + done);
    if (n === 0) throw new CheckpointError('INCOMPLETE_BUFFER', file, `unexpected end of file at byte ${position + done}`, 'do not modify checkpoints while a job reads them; run it again');
    done += n;
  }
}

/**
 * The sampled elements of one read (raw little-endian bytes of [r.start, r.end)) as float32 into
 * out[0 … r.count): only the sampled ranges are converted (BF16 by a shift of the bits, F32 copied).
 */
function decodeSampled(raw: Buffer, dtype: DType, r: Read, out: Float32Array): void {
  let k = 0;
  if (dtype === 'BF16') {
    const h = new Uint16Array(raw.buffer, raw.byteOffset, r.end - r.start);
    const o = new Uint32Array(out.buffer, out.byteOffset, out.length);
    for (const [s, e] of r.ranges) for (let i = s - r.start, end = e - r.start; i < end; i++) o[k++] = h[i]! << 16;
    return;
  }
  if (dtype === 'F32') {
    const x = new Float32Array(raw.buffer, raw.byteOffset, r.end - r.start);
    for (const [s, e] of r.ranges) {
      out.set(x.subarray(s - r.start, e - r.start), k);
      k += e - s;
    }
    return;
  }
  const b = dtypeBytes(dtype);
  for (const [s, e] of r.ranges) {
    out.set(toFloat32(new Uint8Array(raw.buffer, raw.byteOffset + (s - r.start) * b, (e - s) * b), dtype, false), k);
    k += e - s;
  }
}

const tick = () => new Promise<void>((r) => setImmediate(r));

/**
 * Σ τ_a·τ_b over the plan's sample for every pair (indices into `models`), with τ = model − base.
 * Every model must have every planned tensor with the base's shape.
 */
export async function taskVectorDots(
  basePath: string,
  models: readonly string[],
  plan: SamplePlan,
  pairs: readonly Pair[],
  opts: { signal?: AbortSignal; onProgress?: (p: DotsProgress) => void } = {},
): Promise<DotsResult> {
  const t0 = performance.now();
  const sources: Source[] = [];
  const sums = new Float64Array(pairs.length);
  let bytesRead = 0;
  try {
    for (const p of [basePath, ...models]) sources.push({ ck: await Checkpoint.open(p), fds: new Map() });
    const base = sources[0]!.ck;
    const fdOf = (s: Source, file: string): number => {
      let fd = s.fds.get(file);
      if (fd === undefined) {
        fd = openSync(file, 'r');
        s.fds.set(file, fd);
      }
      return fd;
    };
    const maxRead = Math.min(MAX_READ_ELEMENTS, Math.max(1, ...plan.tensors.map((t) => t.numel)));
    const raw = Buffer.allocUnsafeSlow(maxRead * 8);
    const baseSel = new Float32Array(maxRead);
    const values = new Float32Array(maxRead);
    const deltas = models.map(() => new Float32Array(maxRead));
    let done = 0;
    let lastYield = performance.now();
    for (const t of plan.tensors) {
      if (t.count === 0) continue;
      opts.signal?.throwIfAborted();
      const shape = base.info(t.name).shape;
      const where = sources.map((s, i) => {
        if (!s.ck.has(t.name)) throw new CheckpointError('MISSING_TENSOR', s.ck.path, `has no tensor "${t.name}", which the base has`, 'experts must be fine-tunes of the base (same architecture)');
        const info = s.ck.info(t.name);
        if (i > 0 && (info.shape.length !== shape.length || info.shape.some((d, k) => d !== shape[k]))) {
          throw new CheckpointError('INCOMPATIBLE', s.ck.path, `tensor ${t.name} is [${info.shape.join(', ')}], the base's is [${shape.join(', ')}]`, 'experts must be fine-tunes of the base (same shapes)');
        }
        const file = s.ck.fileOf(t.name);
        const dtype: DType = readableDType(info, file.path);
        return { fd: fdOf(s, file.path), file: file.path, at: file.header.dataStart + info.begin, dtype, bytes: dtypeBytes(dtype) };
      });
      for (const r of readsOf(t.ranges, where[0]!.bytes)) {
        for (let m = 0; m <= models.length; m++) {
          const w = where[m]!;
          const len = (r.end - r.start) * w.bytes;
          readInto(w.fd, raw, len, w.at + r.start * w.bytes, w.file);
          bytesRead += len;
          if (m === 0) {
            decodeSampled(raw, w.dtype, r, baseSel);
          } else {
            decodeSampled(raw, w.dtype, r, values);
            const d = deltas[m - 1]!;
            for (let k = 0; k < r.count; k++) d[k] = values[k]! - baseSel[k]!;
          }
        }
        addDots(deltas, r.count, pairs, sums);
        done += r.count;
      }
      opts.onProgress?.({ done, total: plan.sampledParameters });
      if (performance.now() - lastYield > 50) {
        await tick();
        lastYield = performance.now();
      }
    }
    return { sums, bytesRead, seconds: (performance.now() - t0) / 1000 };
  } finally {
    for (const s of sources) for (const fd of s.fds.values()) closeSync(fd);
    await Promise.all(sources.map((s) => s.ck.close()));
  }
}
