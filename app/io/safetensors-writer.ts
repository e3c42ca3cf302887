/**
 * Streaming safetensors writer with sharding. The caller gives the plan (every output tensor's
 * name, dtype and shape) up front, so every header can be written first and each tensor is then
 * written at its final offset as soon as it is produced, in any order: a merge never holds more than
 * the tensors in flight. Layout follows the reference writer: header JSON space-padded to a multiple
 * of 8, tensors ordered by alignment so each starts aligned to its element size, `{"format":"pt"}`
 * metadata (required by transformers), HF shard names and `model.safetensors.index.json`.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { dtypeBytes, type DType } from '../core/dtypes.js';
import { CheckpointError } from '../core/errors.js';
import { numElements } from '../core/safetensors-header.js';
import type { OutputFolder } from './output-folder.js';

export interface TensorPlan {
  name: string;
  dtype: DType;
  shape: number[];
}

export interface WriterOptions {
  /** Largest data size of one shard in bytes (a single larger tensor gets a shard of its own). */
  maxShardBytes?: number;
  /** Extra `__metadata__` keys (strings); `format: pt` is always set. */
  metadata?: Record<string, string>;
  /** File name stem: `model` gives model.safetensors / model-00001-of-0000N.safetensors. */
  stem?: string;
  /** Always write an index, even for a single file (PEFT adapters never want one). */
  forceIndex?: boolean;
}

interface Slot {
  shard: number;
  /** Absolute file offset of the tensor's data. */
  offset: number;
  bytes: number;
  written: boolean;
}

interface Shard {
  file: string;
  tensors: TensorPlan[];
  headerBytes: Uint8Array;
  dataBytes: number;
  fh?: FileHandle;
}

export const DEFAULT_SHARD_BYTES = 5 * 1000 ** 3; // mergekit's and transformers' "5GB"

/** Parses sizes like "5GB", "500MB", "2GiB", "1000000". */
export function parseByteSize(s: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?i?b?)?\s*$/i.exec(s);
  if (!m) throw new Error(`"${s}" is not a size (examples: 5GB, 500MB, 2GiB)`);
  const unit = (m[2] ?? '').toLowerCase().replace(/b$/, '');
  const pow = { '': 0, k: 1, m: 2, g: 3, t: 4 }[unit.replace('i', '')] ?? 0;
  const base = unit.includes('i') ? 1024 : 1000;
  return Math.round(Number(m[1]) * base ** pow);
}

export class SafetensorsWriter {
  private readonly slots = new Map<string, Slot>();
  private readonly shards: Shard[];
  private remaining: number;
  private finished = false;
  bytesWritten = 0;

  private constructor(private readonly out: OutputFolder, shards: Shard[], private readonly stem: string, private readonly forceIndex: boolean) {
    this.shards = shards;
    this.remaining = 0;
    for (const [i, s] of shards.entries()) {
      let offset = 8 + s.headerBytes.byteLength;
      for (const t of s.tensors) {
        const bytes = numElements(t.shape) * dtypeBytes(t.dtype);
        this.slots.set(t.name, { shard: i, offset, bytes, written: false });
        offset += bytes;
        this.remaining++;
      }
    }
  }

  /** Plans shards and writes every header. Tensors are then written with `write`. */
  static async create(out: OutputFolder, plan: TensorPlan[], opts: WriterOptions = {}): Promise<SafetensorsWriter> {
    const names = new Set<string>();
    for (const t of plan) {
      if (names.has(t.name)) throw new CheckpointError('WRITE_FAILED', out.target, `tensor "${t.name}" is planned twice`, 'this is a bug in the recipe planner');
      names.add(t.name);
    }
    const stem = opts.stem ?? 'model';
    const groups = splitIntoShards(plan, opts.maxShardBytes ?? DEFAULT_SHARD_BYTES);
    const n = groups.length;
    const shards: Shard[] = groups.map((tensors, i) => {
      const file = n === 1 ? `${stem}.safetensors` : `${stem}-${pad5(i + 1)}-of-${pad5(n)}.safetensors`;
      // Largest elements first (stable), so every tensor starts aligned to its element size.
      const ordered = [...tensors].sort((a, b) => dtypeBytes(b.dtype) - dtypeBytes(a.dtype));
      const headerBytes = encodeHeader(ordered, { format: 'pt', ...(opts.metadata ?? {}) });
      const dataBytes = ordered.reduce((a, t) => a + numElements(t.shape) * dtypeBytes(t.dtype), 0);
      return { file, tensors: ordered, headerBytes, dataBytes };
    });
    const w = new SafetensorsWriter(out, shards, stem, !!opts.forceIndex);
    for (const s of shards) {
      const fh = await open(out.path(s.file), 'w');
      s.fh = fh;
      const prefix = new Uint8Array(8);
      new DataView(prefix.buffer).setBigUint64(0, BigInt(s.headerBytes.byteLength), true);
      await fh.write(prefix, 0, 8, 0);
      await fh.write(s.headerBytes, 0, s.headerBytes.byteLength, 8);
      // Size the file now: a crash leaves an obviously incomplete temp file, never a short valid one.
      await fh.truncate(8 + s.headerBytes.byteLength + s.dataBytes);
    }
    return w;
  }

  get files(): string[] {
    return this.shards.map((s) => s.file);
  }

  /** Writes one planned tensor's raw little-endian bytes at its place. */
  async write(name: string, bytes: Uint8Array): Promise<void> {
    const slot = this.slots.get(name);
    if (!slot) throw new CheckpointError('WRITE_FAILED', this.out.target, `tensor "${name}" is not in the output plan`, 'this is a bug in the recipe planner');
    if (slot.written) throw new CheckpointError('WRITE_FAILED', this.out.target, `tensor "${name}" was written twice`, 'this is a bug in the recipe planner');
    if (bytes.byteLength !== slot.bytes) {
      throw new CheckpointError('WRITE_FAILED', this.out.target, `tensor "${name}" has ${bytes.byteLength} bytes, the plan says ${slot.bytes}`, 'this is a bug in the method that produced it');
    }
    const fh = this.shards[slot.shard]!.fh!;
    let done = 0;
    while (done < bytes.byteLength) {
      const { bytesWritten } = await fh.write(bytes, done, bytes.byteLength - done, slot.offset + done);
      done += bytesWritten;
    }
    slot.written = true;
    this.remaining--;
    this.bytesWritten += bytes.byteLength;
  }

  /**
   * Where a planned tensor goes, for writers in other threads (each opens the file itself and writes
   * its bytes at `offset`); they report back with `markWritten`.
   */
  slot(name: string): { file: string; offset: number; bytes: number } {
    const slot = this.slots.get(name);
    if (!slot) throw new CheckpointError('WRITE_FAILED', this.out.target, `tensor "${name}" is not in the output plan`, 'this is a bug in the recipe planner');
    return { file: this.out.path(this.shards[slot.shard]!.file), offset: slot.offset, bytes: slot.bytes };
  }

  markWritten(name: string): void {
    const slot = this.slots.get(name)!;
    if (slot.written) throw new CheckpointError('WRITE_FAILED', this.out.target, `tensor "${name}" was written twice`, 'this is a bug in the recipe planner');
    slot.written = true;
    this.remaining--;
    this.bytesWritten += slot.bytes;
  }

  /** Checks every tensor was written, syncs and closes the shards, and writes the index. */
  async finish(): Promise<{ files: string[]; totalSize: number }> {
    if (this.finished) throw new Error('writer already finished');
    if (this.remaining > 0) {
      const missing = [...this.slots].filter(([, s]) => !s.written).map(([n]) => n);
      throw new CheckpointError('WRITE_FAILED', this.out.target, `${missing.length} planned tensors were never written (first: "${missing[0]}")`, 'this is a bug in the recipe executor');
    }
    this.finished = true;
    for (const s of this.shards) {
      await s.fh!.sync();
      await s.fh!.close();
      s.fh = undefined;
    }
    const totalSize = this.shards.reduce((a, s) => a + s.dataBytes, 0);
    if (this.shards.length > 1 || this.forceIndex) {
      const weightMap: Record<string, string> = {};
      for (const s of this.shards) for (const t of s.tensors) weightMap[t.name] = s.file;
      const sorted = Object.fromEntries(Object.entries(weightMap).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
      await this.out.writeFile(`${this.stem}.safetensors.index.json`, JSON.stringify({ metadata: { total_size: totalSize }, weight_map: sorted }, null, 2) + '\n');
    }
    return { files: this.files, totalSize };
  }

  /** Closes open files; the caller aborts the output folder. */
  async close(): Promise<void> {
    for (const s of this.shards) {
      await s.fh?.close().catch(() => undefined);
      s.fh = undefined;
    }
  }
}

/** Greedy split in plan order, as transformers' and huggingface_hub's sharding helpers do. */
export function splitIntoShards(plan: TensorPlan[], maxBytes: number): TensorPlan[][] {
  const groups: TensorPlan[][] = [];
  let cur: TensorPlan[] = [];
  let size = 0;
  for (const t of plan) {
    const b = numElements(t.shape) * dtypeBytes(t.dtype);
    if (cur.length > 0 && size + b > maxBytes) {
      groups.push(cur);
      cur = [];
      size = 0;
    }
    cur.push(t);
    size += b;
  }
  if (cur.length > 0 || groups.length === 0) groups.push(cur);
  return groups;
}

/** JSON header with offsets, space-padded to a multiple of 8 bytes. */
export function encodeHeader(tensors: TensorPlan[], metadata: Record<string, string>): Uint8Array {
  const obj: Record<string, unknown> = { __metadata__: metadata };
  let off = 0;
  for (const t of tensors) {
    const b = numElements(t.shape) * dtypeBytes(t.dtype);
    obj[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [off, off + b] };
    off += b;
  }
  const json = new TextEncoder().encode(JSON.stringify(obj));
  const padded = new Uint8Array(Math.ceil(json.byteLength / 8) * 8).fill(0x20);
  padded.set(json);
  return padded;
}

function pad5(n: number): string {
  return String(n).padStart(5, '0');
}

/** Writes a complete small set of tensors in one go (tests, adapters, fixtures). */
export async function writeTensors(out: OutputFolder, tensors: { name: string; dtype: DType; shape: number[]; bytes: Uint8Array }[], opts: WriterOptions = {}): Promise<string[]> {
  const w = await SafetensorsWriter.create(out, tensors.map(({ name, dtype, shape }) => ({ name, dtype, shape })), opts);
  try {
    for (const t of tensors) await w.write(t.name, t.bytes);
    return (await w.finish()).files;
  } catch (e) {
    await w.close();
    throw e;
  }
}
