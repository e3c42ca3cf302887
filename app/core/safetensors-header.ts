/**
 * Parsing and validation of a safetensors header, as the reference implementation does it
 * (huggingface/safetensors `read_metadata` + `Metadata::validate`): header length limit, known
 * dtype, shape × dtype size = byte length, offsets contiguous from 0 with no gaps or overlaps, the
 * data section fully covered by the tensors, and `__metadata__` a string → string map.
 * Pure code: the caller reads bytes; this only decides what they mean.
 */
import { DTYPE_BITS, isKnownDType, isReadableDType, type DType, type KnownDType } from './dtypes.js';
import { CheckpointError } from './errors.js';

/** The reference implementation's MAX_HEADER_SIZE. */
export const MAX_HEADER_SIZE = 100_000_000;

export interface TensorInfo {
  name: string;
  dtype: KnownDType;
  shape: number[];
  /** Byte range relative to the start of the data section: [begin, end). */
  begin: number;
  end: number;
}

export interface SafetensorsHeader {
  /** Length N of the JSON header in bytes (the data section starts at 8 + N). */
  headerLength: number;
  dataStart: number;
  metadata: Record<string, string>;
  /** Tensors in file order (sorted by offset). */
  tensors: TensorInfo[];
  byName: Map<string, TensorInfo>;
}

/** Reads N from the first 8 bytes and checks it against the limit and the file size. */
export function parseHeaderLength(prefix: Uint8Array, fileSize: number, file: string): number {
  if (fileSize < 8 || prefix.byteLength < 8) {
    throw new CheckpointError('HEADER_TOO_SMALL', file, `file is ${fileSize} bytes, shorter than the 8-byte header length`,
      'the file is truncated or not a safetensors file; download or export it again');
  }
  const view = new DataView(prefix.buffer, prefix.byteOffset, 8);
  const n = view.getBigUint64(0, true);
  if (n > BigInt(MAX_HEADER_SIZE)) {
    throw new CheckpointError('HEADER_TOO_LARGE', file, `header length ${n} exceeds the ${MAX_HEADER_SIZE}-byte limit`,
      'the file is corrupt or not a safetensors file');
  }
  const len = Number(n);
  if (8 + len > fileSize) {
    throw new CheckpointError('INVALID_HEADER_LENGTH', file, `header length ${len} runs past the end of the ${fileSize}-byte file`,
      'the file is truncated; download or export it again');
  }
  return len;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Parses and validates the JSON header. `fileSize` is the whole file's size in bytes. */
export function parseHeader(json: Uint8Array, fileSize: number, file: string): SafetensorsHeader {
  const headerLength = json.byteLength;
  let text: string;
  try {
    text = utf8.decode(json);
  } catch {
    throw new CheckpointError('INVALID_HEADER', file, 'header is not valid UTF-8', 'the file is corrupt; download or export it again');
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new CheckpointError('INVALID_HEADER', file, `header is not valid JSON (${(e as Error).message})`,
      'the file is corrupt or not a safetensors file');
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new CheckpointError('INVALID_HEADER', file, 'header JSON is not an object', 'the file is corrupt or not a safetensors file');
  }
  const metadata: Record<string, string> = {};
  const tensors: TensorInfo[] = [];
  for (const [name, value] of Object.entries(raw as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (value === null) continue;
      if (typeof value !== 'object' || Array.isArray(value)) {
        throw new CheckpointError('INVALID_HEADER', file, '__metadata__ is not an object of strings', 'the writer of this file is not spec-compliant');
      }
      for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
        if (typeof v !== 'string') {
          throw new CheckpointError('INVALID_HEADER', file, `__metadata__["${k}"] is a ${typeof v}, not a string`,
            'safetensors metadata values must be strings; re-save the file with string values');
        }
        metadata[k] = v;
      }
      continue;
    }
    tensors.push(parseTensorEntry(name, value, file));
  }
  tensors.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let expected = 0;
  for (const t of tensors) {
    if (t.begin !== expected || t.end < t.begin) {
      const what = t.begin < expected ? 'overlaps the previous tensor' : t.end < t.begin ? 'ends before it begins' : 'leaves a gap before it';
      throw new CheckpointError('INVALID_OFFSET', file, `tensor "${t.name}" data_offsets [${t.begin}, ${t.end}] ${what} (expected begin ${expected})`,
        'the file is corrupt; download or export it again');
    }
    const elements = t.shape.reduce((a, d) => a * d, 1); // checked for overflow in parseTensorEntry
    const bits = elements * DTYPE_BITS[t.dtype];
    if (!Number.isSafeInteger(bits)) {
      throw new CheckpointError('INVALID_SHAPE', file, `tensor "${t.name}" shape [${t.shape.join(', ')}] overflows`, 'the file is corrupt');
    }
    if (bits % 8 !== 0 || t.end - t.begin !== bits / 8) {
      throw new CheckpointError('TENSOR_INVALID_INFO', file,
        `tensor "${t.name}" is ${t.dtype}[${t.shape.join(', ')}] = ${bits / 8} bytes but its data_offsets span ${t.end - t.begin} bytes`,
        'the file is corrupt; download or export it again');
    }
    expected = t.end;
  }
  const dataStart = 8 + headerLength;
  if (dataStart + expected !== fileSize) {
    throw new CheckpointError('INCOMPLETE_BUFFER', file,
      `tensors cover ${expected} data bytes but the file holds ${fileSize - dataStart} after the header`,
      fileSize - dataStart > expected ? 'the file has trailing bytes; it is corrupt' : 'the file is truncated; download or export it again');
  }
  const byName = new Map(tensors.map((t) => [t.name, t]));
  return { headerLength, dataStart, metadata, tensors, byName };
}

function parseTensorEntry(name: string, value: unknown, file: string): TensorInfo {
  const bad = (what: string): never => {
    throw new CheckpointError('INVALID_HEADER', file, `tensor "${name}": ${what}`, 'the file is corrupt or written by a non-compliant tool');
  };
  if (typeof value !== 'object' || value === null || Array.isArray(value)) bad('entry is not an object');
  const v = value as Record<string, unknown>;
  const dtype = v['dtype'];
  if (typeof dtype !== 'string') bad('dtype is missing');
  if (!isKnownDType(dtype as string)) {
    throw new CheckpointError('INVALID_DTYPE', file, `tensor "${name}" has unknown dtype "${String(dtype)}"`,
      'the file is corrupt or uses a dtype newer than this build understands');
  }
  const shape = v['shape'];
  if (!Array.isArray(shape)) bad('shape is not an array');
  let elements = 1;
  for (const d of shape as unknown[]) {
    if (typeof d !== 'number' || !Number.isSafeInteger(d) || d < 0) {
      throw new CheckpointError('INVALID_SHAPE', file, `tensor "${name}" has invalid dimension ${describe(d)}`, 'the file is corrupt');
    }
    elements *= d;
    if (!Number.isSafeInteger(elements)) {
      throw new CheckpointError('INVALID_SHAPE', file, `tensor "${name}" shape [${(shape as number[]).join(', ')}] overflows`, 'the file is corrupt');
    }
  }
  const offs = v['data_offsets'];
  if (!Array.isArray(offs) || offs.length !== 2) bad('data_offsets is not a [begin, end] pair');
  const [begin, end] = offs as unknown[];
  for (const o of [begin, end]) {
    if (typeof o !== 'number' || !Number.isSafeInteger(o) || o < 0) {
      throw new CheckpointError('INVALID_OFFSET', file, `tensor "${name}" has invalid data_offsets entry ${describe(o)}`, 'the file is corrupt');
    }
  }
  return { name, dtype: dtype as KnownDType, shape: [...(shape as number[])], begin: begin as number, end: end as number };
}

/** The dtype as a readable one, or a clear error for formats we can list but not convert. */
export function readableDType(t: TensorInfo, file: string): DType {
  if (!isReadableDType(t.dtype)) {
    throw new CheckpointError('UNSUPPORTED', file, `tensor "${t.name}" is ${t.dtype}, which this build can list but not convert`,
      'convert the checkpoint to bf16, f16 or f32 first');
  }
  return t.dtype;
}

export function numElements(shape: readonly number[]): number {
  return shape.reduce((a, d) => a * d, 1);
}

/** A short description of a JSON value for messages (never serialises nested input: it may be hostile). */
function describe(v: unknown): string {
  if (typeof v === 'number' || typeof v === 'boolean' || v === null) return String(v);
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v);
  return Array.isArray(v) ? 'a list' : 'an object';
}
