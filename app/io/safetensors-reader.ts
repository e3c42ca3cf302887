/**
 * Lazy safetensors reader: opening a file reads only its 8-byte prefix and JSON header; each tensor
 * is then fetched by a positioned read of exactly its bytes, so a 70B checkpoint can be listed, or
 * one tensor of it read, without touching the rest of the file.
 */
import { open, stat, type FileHandle } from 'node:fs/promises';
import { toFloat32 } from '../core/dtypes.js';
import { CheckpointError } from '../core/errors.js';
import {
  parseHeader, parseHeaderLength, readableDType, type SafetensorsHeader, type TensorInfo,
} from '../core/safetensors-header.js';

/** Counters for tests and benchmarks: what a reader actually read and allocated. */
export interface ReadStats {
  bytesRead: number;
  /** Largest single buffer allocated by this reader (never more than the file's size). */
  maxAllocation: number;
}

export class SafetensorsFile {
  readonly stats: ReadStats = { bytesRead: 0, maxAllocation: 0 };
  private closed = false;

  private constructor(
    readonly path: string,
    readonly size: number,
    readonly header: SafetensorsHeader,
    private readonly fh: FileHandle,
  ) {}

  /** Opens `path` and validates its header. Throws CheckpointError naming the file on any problem. */
  static async open(path: string): Promise<SafetensorsFile> {
    let fh: FileHandle;
    try {
      // stat first: opening a FIFO or device for reading can block forever.
      if (!(await stat(path)).isFile()) throw new CheckpointError('NOT_FOUND', path, 'is not a regular file', 'pass a .safetensors file or a model folder');
      fh = await open(path, 'r');
    } catch (e) {
      throw ioError(path, e);
    }
    try {
      const st = await fh.stat();
      if (!st.isFile()) throw new CheckpointError('NOT_FOUND', path, 'is not a regular file', 'pass a .safetensors file or a model folder');
      const stats: ReadStats = { bytesRead: 0, maxAllocation: 0 };
      const prefix = await readAt(fh, 0, Math.min(8, st.size), stats, st.size).catch((e: unknown) => {
        throw e instanceof RangeError ? new CheckpointError('INCOMPLETE_BUFFER', path, `${e.message}: the file changed while being opened`, 'run it again') : e;
      });
      const n = parseHeaderLength(prefix, st.size, path);
      const json = await readAt(fh, 8, n, stats, st.size).catch((e: unknown) => {
        throw e instanceof RangeError ? new CheckpointError('INCOMPLETE_BUFFER', path, `${e.message}: the file changed while being opened`, 'run it again') : e;
      });
      const header = parseHeader(json, st.size, path);
      const f = new SafetensorsFile(path, st.size, header, fh);
      Object.assign(f.stats, stats);
      return f;
    } catch (e) {
      await fh.close().catch(() => undefined);
      throw e;
    }
  }

  get names(): string[] {
    return this.header.tensors.map((t) => t.name);
  }

  get metadata(): Record<string, string> {
    return this.header.metadata;
  }

  info(name: string): TensorInfo {
    const t = this.header.byName.get(name);
    if (!t) {
      throw new CheckpointError('MISSING_TENSOR', this.path, `has no tensor "${name}"`, 'check the tensor name, or that this is the right checkpoint');
    }
    return t;
  }

  has(name: string): boolean {
    return this.header.byName.has(name);
  }

  /** The tensor's raw little-endian bytes (an own, 8-aligned buffer). */
  async readBytes(name: string): Promise<Uint8Array> {
    const t = this.info(name);
    return this.readRange(this.header.dataStart + t.begin, t.end - t.begin);
  }

  /** Reads an absolute byte range of the file into a fresh buffer (used for coalesced reads). */
  async readRange(position: number, length: number): Promise<Uint8Array> {
    if (this.closed) throw new CheckpointError('NOT_FOUND', this.path, 'was already closed', 'this is a bug in the caller');
    try {
      return await readAt(this.fh, position, length, this.stats, this.size);
    } catch (e) {
      if (e instanceof RangeError) throw new CheckpointError('INCOMPLETE_BUFFER', this.path, `${e.message}: the file changed or was truncated while open`, 'do not modify checkpoints while a job reads them; run it again');
      throw ioError(this.path, e);
    }
  }

  /** The tensor converted to float32 (a copy the caller owns). */
  async readF32(name: string): Promise<Float32Array> {
    const t = this.info(name);
    const dtype = readableDType(t, this.path);
    const bytes = await this.readBytes(name);
    return toFloat32(bytes, dtype, false);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.fh.close();
  }
}

async function readAt(fh: FileHandle, position: number, length: number, stats: ReadStats, fileSize: number): Promise<Uint8Array> {
  if (length > fileSize) throw new RangeError(`refusing to allocate ${length} bytes for a ${fileSize}-byte file`);
  // allocUnsafeSlow: an own ArrayBuffer at offset 0, so typed-array views of the result are aligned.
  const buf = Buffer.allocUnsafeSlow(length);
  stats.maxAllocation = Math.max(stats.maxAllocation, length);
  let done = 0;
  while (done < length) {
    const { bytesRead } = await fh.read(buf, done, length - done, position + done);
    if (bytesRead === 0) throw new RangeError(`unexpected end of file at byte ${position + done}`);
    done += bytesRead;
  }
  stats.bytesRead += length;
  return new Uint8Array(buf.buffer, 0, length);
}

export function ioError(path: string, e: unknown): CheckpointError {
  const err = e as NodeJS.ErrnoException;
  if (err?.code === 'ENOENT') return new CheckpointError('NOT_FOUND', path, 'does not exist', 'check the path');
  if (err?.code === 'EACCES' || err?.code === 'EPERM') return new CheckpointError('NOT_FOUND', path, 'cannot be read (permission denied)', 'check the file permissions');
  if (err?.code === 'EISDIR') return new CheckpointError('NOT_FOUND', path, 'is a folder, not a file', 'pass the folder to a command that takes a checkpoint folder');
  if (err instanceof CheckpointError) return err;
  return new CheckpointError('NOT_FOUND', path, `cannot be read: ${err?.message ?? String(e)}`);
}
