/**
 * Streamed execution of one tensor task (for methods with a `TensorStream`, see
 * core/merge/types.ts): the inputs stay in their stored dtype and are read in chunks by positioned
 * reads into reused buffers (in the thread's WebAssembly SIMD arena when they fit, so the kernels
 * read them in place); blocks of each chunk go to the stream in stored dtype (`scanRaw` /
 * `applyRaw`: SIMD kernels, or a conversion to float32 of small cache-resident blocks right before
 * the JavaScript loop), and the merged chunk, already in the output dtype, is written at its offset
 * in the shard. The next chunk is read while the current one is computed, and the previous chunk's
 * write runs meanwhile.
 *
 * Methods with statistics passes (TIES's top-k threshold, DARE's L1 rescale norms) sweep the tensor several times; their
 * inputs are then either kept whole in stored dtype for the task (`cacheRaw`: read once, chunk by
 * chunk during the first sweep, which computes on each chunk while it is still in the CPU cache)
 * or read again for every sweep. Before the first sweep, a small even sample (16 runs of 1024
 * elements) lets the stream guess its statistics. Memory per task: two chunks per input and
 * output, plus the raw inputs when cached — never a whole float32 tensor.
 */
import type { FileHandle } from 'node:fs/promises';
import { decodeInto, dtypeBytes, type DType } from '../core/dtypes.js';
import { CheckpointError } from '../core/errors.js';
import { tensorRng, type MergeMethodDef } from '../core/merge/index.js';
import { simd } from '../core/merge/simd.js';
import { applyRaw, BlockDecoder, evenSampleRuns, scanRaw } from '../core/merge/stream-util.js';
import type { RawBlock, StreamSpec, TensorStream } from '../core/merge/types.js';
import type { ModelRef } from './config.js';
import type { InputRef, TensorTask } from './plan.js';

/** Elements per I/O chunk (256 Ki: 1.5 MiB of three BF16 inputs, which stays in a core's L2). */
export const DEFAULT_CHUNK_ELEMENTS = 1 << 18;
/** Elements per block handed to the stream (its float32 conversions stay in the CPU's caches). */
export const BLOCK_ELEMENTS = 1 << 16;

/** The method's stream spec for a task (the same ids, parameters and random stream the whole-tensor path uses). */
export function streamSpec(task: TensorTask, models: ModelRef[], seed: number): StreamSpec {
  const ref = (r: InputRef) => ({ id: models[r.model]!.label, params: r.params });
  return {
    tensorName: task.name,
    shape: task.shape,
    base: task.base ? ref(task.base) : undefined,
    models: task.models.map(ref),
    globals: task.globals,
    rng: tensorRng(seed, task.name),
  };
}

/**
 * The stream for a task, or undefined when the task must run whole: the method has no stream form
 * for these parameters, an input has a LoRA adapter merged in on the fly, or the spec is invalid
 * (the whole-tensor path then reports the error exactly as before).
 */
export function taskStream(method: MergeMethodDef, task: TensorTask, models: ModelRef[], seed: number): TensorStream | undefined {
  if (!method.stream) return undefined;
  const refs = task.base ? [task.base, ...task.models] : task.models;
  if (refs.some((r) => models[r.model]!.lora)) return undefined;
  try {
    return method.stream(streamSpec(task, models, seed));
  } catch {
    return undefined;
  }
}

/** Bytes a streamed task holds: chunk and block buffers, plus the raw inputs when cached. */
export function streamTaskBytes(task: TensorTask, cacheRaw: boolean, chunkElements = DEFAULT_CHUNK_ELEMENTS): number {
  const inputs = task.models.length + (task.base ? 1 : 0);
  const numel = task.shape.reduce((a, d) => a * d, 1);
  const chunk = Math.min(chunkElements, numel);
  const perElem = task.readBytes / Math.max(1, numel); // stored bytes per element, all inputs
  const outPerElem = task.writeBytes / Math.max(1, numel);
  const buffers = 2 * chunk * (cacheRaw ? 0 : perElem) + 2 * chunk * outPerElem + (inputs + 1) * BLOCK_ELEMENTS * 4 * 2;
  // (A worker's SIMD arena keeps its largest task's buffers, up to ARENA_CAP, until the merge ends.)
  return buffers + (cacheRaw ? task.readBytes : 0);
}

export interface StreamInput {
  fh: FileHandle;
  file: string;
  /** Absolute file offset of the tensor's first element. */
  position: number;
  dtype: DType;
}

export interface StreamOutput {
  fh: FileHandle;
  file: string;
  offset: number;
  dtype: DType;
}

async function readFully(s: StreamInput, into: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < into.byteLength) {
    const { bytesRead } = await s.fh.read(into, done, into.byteLength - done, position + done);
    if (bytesRead === 0) throw new CheckpointError('INCOMPLETE_BUFFER', s.file, `unexpected end of file at byte ${position + done}: the file changed or was truncated while open`, 'do not modify checkpoints while a job reads them; run it again');
    done += bytesRead;
  }
}

async function writeFully(o: StreamOutput, bytes: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < bytes.byteLength) done += (await o.fh.write(bytes, done, bytes.byteLength - done, position + done)).bytesWritten;
}

const ignore = () => undefined;

/** Task buffers above this size are not kept in the SIMD arena / the reused pool (RSS). */
const ARENA_CAP = 512 * 2 ** 20;
const POOL_CAP = 64 * 2 ** 20;
let pool: Uint8Array | undefined;
const align = (n: number) => Math.ceil(n / 16) * 16;

/**
 * Memory for one task's buffers: in the thread's SIMD arena when it fits (the kernels then read
 * the inputs and write the output in place), else a reused pool, else a fresh unzeroed buffer.
 * Valid until the next call (one task at a time per worker).
 */
function taskMemory(bytes: number): Uint8Array {
  const sd = simd();
  if (sd && bytes <= ARENA_CAP) return sd.arena(bytes);
  if (bytes <= POOL_CAP) {
    if (!pool || pool.byteLength < bytes) pool = new Uint8Array(bytes);
    return pool.subarray(0, bytes);
  }
  return new Uint8Array(Buffer.allocUnsafeSlow(bytes).buffer, 0, bytes);
}

/** Consecutive 16-byte-aligned views of `mem` of the given sizes. */
function carve(mem: Uint8Array, sizes: number[]): Uint8Array[] {
  let at = 0;
  return sizes.map((n) => {
    const v = mem.subarray(at, at + n);
    at += align(n);
    return v;
  });
}

/**
 * Runs `stream` over the task's inputs (`inputs[0]` is the base when `hasBase`) and writes the
 * result. Returns the bytes written.
 */
export async function runStreamTask(
  stream: TensorStream,
  numel: number,
  hasBase: boolean,
  inputs: StreamInput[],
  out: StreamOutput,
  opts: { cacheRaw: boolean; chunkElements?: number },
): Promise<number> {
  const chunk = Math.max(1, Math.floor(opts.chunkElements ?? DEFAULT_CHUNK_ELEMENTS));
  const block = Math.min(BLOCK_ELEMENTS, chunk);
  const nChunks = Math.ceil(numel / chunk);
  const bpe = inputs.map((s) => dtypeBytes(s.dtype));
  const outBpe = dtypeBytes(out.dtype);
  const chunkLen = Math.min(chunk, numel);

  // Stored-dtype input buffers: the whole tensors when cached (for multi-pass streams), else two
  // chunk buffers per input (one being computed, one being read); and two output chunk buffers.
  const multiPass = stream.wantsPass(0);
  const cacheIt = opts.cacheRaw && multiPass;
  const inSizes = cacheIt ? inputs.map((_, i) => numel * bpe[i]!) : [0, 1].flatMap(() => inputs.map((_, i) => chunkLen * bpe[i]!));
  const outSizes = [chunkLen * outBpe, chunkLen * outBpe];
  const parts = carve(taskMemory([...inSizes, ...outSizes].reduce((a, b) => a + align(b), 0)), [...inSizes, ...outSizes]);
  const cache = cacheIt ? parts.slice(0, inputs.length) : null;
  const pool = cacheIt ? null : [parts.slice(0, inputs.length), parts.slice(inputs.length, 2 * inputs.length)];
  const outBufs = parts.slice(inSizes.length);
  let cached = false;
  const fetch = (c: number): Promise<Uint8Array[]> => {
    const start = c * chunk;
    const len = Math.min(chunk, numel - start);
    return Promise.all(inputs.map(async (s, i) => {
      const from = start * bpe[i]!;
      const view = cache ? cache[i]!.subarray(from, from + len * bpe[i]!) : pool![c & 1]![i]!.subarray(0, len * bpe[i]!);
      if (!cached) await readFully(s, view, s.position + from);
      return view;
    }));
  };

  // Blocks go to the stream in stored dtype (it converts them itself, with SIMD where it can).
  const dec = new BlockDecoder();
  const raw = (bufs: Uint8Array[], at: number): [RawBlock | undefined, RawBlock[]] => {
    const r = inputs.map((s, i) => ({ bytes: bufs[i]!, offset: at * bpe[i]!, dtype: s.dtype }));
    return hasBase ? [r[0], r.slice(1)] : [undefined, r];
  };

  const sweep = async (visit: (c: number, start: number, len: number, bufs: Uint8Array[]) => Promise<void> | void) => {
    let next = fetch(0);
    next.catch(ignore);
    for (let c = 0; c < nChunks; c++) {
      const bufs = await next;
      if (c + 1 < nChunks) {
        next = fetch(c + 1);
        next.catch(ignore);
      }
      const start = c * chunk;
      await visit(c, start, Math.min(chunk, numel - start), bufs);
    }
    if (cache) cached = true;
  };

  if (multiPass && stream.sample) {
    // A few contiguous runs spread over the tensor let the stream guess its statistics (TIES: the
    // key range of its top-k threshold) and often skip a pass.
    // (16 runs of 1024: few reads, all issued at once.)
    const runs = evenSampleRuns(numel, 16, 1024);
    const total = runs.reduce((a, [, len]) => a + len, 0);
    const sample = inputs.map(() => new Float32Array(total));
    const bytes = await Promise.all(runs.map(([start, len]) => Promise.all(inputs.map(async (s, i) => {
      const buf = new Uint8Array(len * bpe[i]!);
      await readFully(s, buf, s.position + start * bpe[i]!);
      return buf;
    }))));
    let at = 0;
    for (const [r, [, len]] of runs.entries()) {
      for (let i = 0; i < inputs.length; i++) decodeInto(bytes[r]![i]!, 0, inputs[i]!.dtype, len, sample[i]!.subarray(at));
      at += len;
    }
    stream.sample(total, hasBase ? sample[0] : undefined, hasBase ? sample.slice(1) : sample);
  }
  for (let p = 0; stream.wantsPass(p); p++) {
    await sweep((_, start, len, bufs) => {
      for (let b = 0; b < len; b += block) {
        const [base, models] = raw(bufs, b);
        scanRaw(stream, dec, p, start + b, Math.min(block, len - b), base, models);
      }
    });
    stream.endPass(p);
  }

  const writes: (Promise<void> | undefined)[] = [undefined, undefined];
  try {
    await sweep(async (c, start, len, bufs) => {
      const slot = c & 1;
      await writes[slot]; // the write of chunk c − 2 used this buffer
      const o = outBufs[slot]!;
      for (let b = 0; b < len; b += block) {
        const [base, models] = raw(bufs, b);
        applyRaw(stream, dec, start + b, Math.min(block, len - b), base, models, { bytes: o, offset: b * outBpe, dtype: out.dtype });
      }
      const w = writeFully(out, o.subarray(0, len * outBpe), out.offset + start * outBpe);
      w.catch(ignore);
      writes[slot] = w;
    });
  } finally {
    await Promise.allSettled(writes.map((w) => w ?? Promise.resolve()));
  }
  await Promise.all(writes);
  return numel * outBpe;
}
