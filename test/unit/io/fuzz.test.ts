/**
 * Seeded fuzzing of the safetensors reader and the checkpoint folder loader.
 *
 * Valid files (the demo fixtures plus a hand-built file holding every dtype) are mutated hundreds
 * of times. Every case must either open and then read every tensor (readBytes, and readF32 where the
 * dtype is readable), or fail with a CheckpointError whose message names the file — never another
 * exception type, never a hang (each case runs under a 5 s timeout), and the reader never allocates
 * more than the file's size (checked through `stats.maxAllocation` on success, and by watching
 * `Buffer.allocUnsafeSlow` on failure too).
 *
 * Deterministic: the seed is FUZZ_SEED (default below) and every case derives its own seed from
 * (seed, kind, index), printed with any failure. Failing inputs are kept under
 * <tmpdir>/upcycle-fuzz-failures-<seed>/ for reproduction.
 *   FUZZ_SEED=123 node --test build/test/unit/io/fuzz.test.js
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test, type TestContext } from 'node:test';
import { isReadableDType, KNOWN_DTYPES } from '../../../app/core/dtypes.js';
import { CheckpointError, type CheckpointErrorCode } from '../../../app/core/errors.js';
import { numElements } from '../../../app/core/safetensors-header.js';
import { Checkpoint } from '../../../app/io/checkpoint.js';
import { SafetensorsFile } from '../../../app/io/safetensors-reader.js';
import { adapter, model } from '../../helpers/paths.js';

const DEFAULT_SEED = 0x5eed_2024;
const SEED = (() => {
  const env = process.env['FUZZ_SEED'];
  if (env === undefined || env === '') return DEFAULT_SEED;
  const n = Number(env);
  if (!Number.isInteger(n)) throw new Error(`FUZZ_SEED must be an integer, got "${env}"`);
  return n >>> 0;
})();
const CASE_TIMEOUT_MS = 5000;
/** Header-length checks must fail before any big read or allocation: well under this. */
const QUICK_MS = 500;

// ───────────────────────────── deterministic PRNG ─────────────────────────────

class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0;
  }
  /** mulberry32: uniform in [0, 1). */
  next(): number {
    this.s = (this.s + 0x6d2b79f5) >>> 0;
    let t = this.s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** Integer in [lo, hi], inclusive. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }
  pick<T>(xs: readonly T[]): T {
    if (xs.length === 0) throw new Error('pick from an empty list');
    return xs[this.int(0, xs.length - 1)]!;
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = this.int(0, 255);
    return out;
  }
}

/** FNV-1a over (seed, kind, index): one independent, reproducible stream per case. */
function caseSeed(kind: string, i: number): number {
  let h = (2166136261 ^ SEED) >>> 0;
  for (const ch of kind) h = Math.imul(h ^ ch.charCodeAt(0), 16777619);
  h = Math.imul(h ^ i, 16777619);
  h = Math.imul(h ^ (i >>> 16), 16777619);
  return h >>> 0;
}

// ───────────────────────────── file building blocks ─────────────────────────────

const enc = new TextEncoder();
type Json = Record<string, unknown>;

function u64le(v: bigint): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, v, true);
  return b;
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((a, p) => a + p.byteLength, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}

/** 8-byte length + header + data; the length is the header's unless overridden. */
function assemble(header: Uint8Array, data: Uint8Array, length?: bigint): Uint8Array {
  return concat(u64le(length ?? BigInt(header.byteLength)), header, data);
}

function padTo8(b: Uint8Array): Uint8Array {
  const p = new Uint8Array(Math.ceil(b.byteLength / 8) * 8).fill(0x20);
  p.set(b);
  return p;
}

/** A valid safetensors file, split into its parts. */
interface Sample {
  name: string;
  bytes: Uint8Array;
  headerBytes: Uint8Array;
  header: Json;
  data: Uint8Array;
}

function splitSample(name: string, bytes: Uint8Array): Sample {
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true));
  const headerBytes = bytes.slice(8, 8 + n);
  const header = JSON.parse(new TextDecoder().decode(headerBytes)) as Json;
  return { name, bytes, headerBytes, header, data: bytes.slice(8 + n) };
}

/** A small file with every dtype (readable and not), a zero-size and a scalar tensor, unaligned offsets. */
function mixedSample(): Sample {
  const specs: [string, string, number[]][] = [
    ['f64', 'F64', [3]], ['f32', 'F32', [2, 3]], ['f16', 'F16', [5]], ['bf16', 'BF16', [2, 2]],
    ['i64', 'I64', [2]], ['i32', 'I32', [3]], ['i16', 'I16', [3]], ['i8', 'I8', [5]], ['u8', 'U8', [4]],
    ['u16', 'U16', [3]], ['u32', 'U32', [2]], ['u64', 'U64', [2]], ['bool', 'BOOL', [3]],
    ['e4m3', 'F8_E4M3', [7]], ['e5m2', 'F8_E5M2', [3]], ['c64', 'C64', [2]], ['e8m0', 'F8_E8M0', [3]],
    ['f4', 'F4', [2, 3]], ['f6', 'F6_E2M3', [4]], ['empty', 'F32', [0, 4]], ['scalar', 'F32', []],
    ['naïve.名前.weight', 'BF16', [3, 1]],
  ];
  const bits: Record<string, number> = { F64: 64, F32: 32, F16: 16, BF16: 16, I64: 64, I32: 32, I16: 16, I8: 8, U8: 8, U16: 16, U32: 32, U64: 64, BOOL: 8, F8_E4M3: 8, F8_E5M2: 8, C64: 64, F8_E8M0: 8, F4: 4, F6_E2M3: 6 };
  const header: Json = { __metadata__: { format: 'pt', note: 'mixed dtypes ✓' } };
  let off = 0;
  for (const [name, dtype, shape] of specs) {
    const len = (numElements(shape) * bits[dtype]!) / 8;
    header[name] = { dtype, shape, data_offsets: [off, off + len] };
    off += len;
  }
  const data = new Rng(7).bytes(off);
  const bytes = assemble(padTo8(enc.encode(JSON.stringify(header))), data);
  return splitSample('mixed', bytes);
}

/** Sets an own property, even "__proto__" (as JSON.parse creates it), so JSON.stringify emits it. */
function setOwn(o: Json, key: string, value: unknown): void {
  Object.defineProperty(o, key, { value, enumerable: true, writable: true, configurable: true });
}

function tensorNames(h: Json): string[] {
  return Object.keys(h).filter((k) => k !== '__metadata__');
}

/** A header being mutated: `raw(text)` puts literal JSON text (1e400, -0, deep nesting) into it. */
class HeaderEdit {
  readonly h: Json;
  private readonly raws: string[] = [];
  constructor(sample: Sample) {
    this.h = structuredClone(sample.header);
  }
  raw(text: string): string {
    this.raws.push(text);
    return `@@RAW${this.raws.length - 1}@@`;
  }
  entry(name: string): Json {
    return this.h[name] as Json;
  }
  encode(pad = true): Uint8Array {
    let text = JSON.stringify(this.h);
    this.raws.forEach((r, i) => {
      text = text.split(`"@@RAW${i}@@"`).join(r);
    });
    const b = enc.encode(text);
    return pad ? padTo8(b) : b;
  }
}

// ───────────────────────────── case running ─────────────────────────────

type Expect = 'ok' | 'error' | 'any';
interface Mutant {
  note: string;
  bytes: Uint8Array;
  expect?: Expect;
  codes?: readonly CheckpointErrorCode[];
  /** Must finish within QUICK_MS (header checks that must not read or allocate much). */
  quick?: boolean;
}

type Result = { status: 'ok' } | { status: 'error'; code: CheckpointErrorCode } | { status: 'violation'; detail: string };

function describeError(e: unknown): string {
  if (e instanceof Error) return `${e.constructor.name}${'code' in e ? `[${String((e as { code: unknown }).code)}]` : ''}: ${e.message}\n${(e.stack ?? '').split('\n').slice(1, 9).join('\n')}`;
  return `non-Error thrown: ${String(e)}`;
}

// Allocation watch: the reader allocates with Buffer.allocUnsafeSlow; any request bigger than the
// file being opened, made from app/io code, is a violation even when the open then fails.
let allocLimit = Infinity;
let allocViolation: string | undefined;
const origAllocSlow = Buffer.allocUnsafeSlow;
Buffer.allocUnsafeSlow = (size: number): Buffer<ArrayBuffer> => {
  if (size > allocLimit && allocViolation === undefined) {
    const stack = new Error().stack ?? '';
    if (/[\\/]app[\\/]io[\\/]/.test(stack)) allocViolation = `allocUnsafeSlow(${size}) for a ${allocLimit}-byte file\n${stack.split('\n').slice(2, 7).join('\n')}`;
  }
  return origAllocSlow.call(Buffer, size);
};

/** Opens a file and reads every tensor, checking the invariants. */
async function probeFile(file: string, size: number, allowReadErrors = false): Promise<Result> {
  let f: SafetensorsFile;
  try {
    f = await SafetensorsFile.open(file);
  } catch (e) {
    if (e instanceof CheckpointError && e.message.includes(file)) return { status: 'error', code: e.code };
    return { status: 'violation', detail: `open threw ${describeError(e)}` };
  }
  try {
    if (f.stats.maxAllocation > size) return { status: 'violation', detail: `open allocated ${f.stats.maxAllocation} bytes for a ${size}-byte file` };
    let covered = 0;
    let firstReadError: CheckpointErrorCode | undefined;
    for (const name of f.names) {
      const info = f.info(name);
      covered += info.end - info.begin;
      try {
        const bytes = await f.readBytes(name);
        if (bytes.byteLength !== info.end - info.begin) return { status: 'violation', detail: `readBytes("${name}") gave ${bytes.byteLength} bytes, expected ${info.end - info.begin}` };
        if (isReadableDType(info.dtype)) {
          const v = await f.readF32(name);
          if (v.length !== numElements(info.shape)) return { status: 'violation', detail: `readF32("${name}") gave ${v.length} values for shape [${info.shape.join(', ')}]` };
        } else {
          try {
            await f.readF32(name);
            return { status: 'violation', detail: `readF32("${name}") of unreadable dtype ${info.dtype} succeeded` };
          } catch (e) {
            if (!(e instanceof CheckpointError && e.code === 'UNSUPPORTED' && e.message.includes(file))) {
              return { status: 'violation', detail: `readF32("${name}") of ${info.dtype} threw ${describeError(e)}` };
            }
          }
        }
      } catch (e) {
        if (allowReadErrors && e instanceof CheckpointError && e.message.includes(file)) {
          firstReadError ??= e.code;
          continue;
        }
        return { status: 'violation', detail: `after a successful open, reading "${name}" threw ${describeError(e)}` };
      }
    }
    if (f.stats.maxAllocation > size) return { status: 'violation', detail: `reads allocated ${f.stats.maxAllocation} bytes for a ${size}-byte file` };
    if (f.header.dataStart + covered !== size) return { status: 'violation', detail: `opened, but tensors cover ${covered} bytes of ${size - f.header.dataStart}` };
    return firstReadError ? { status: 'error', code: firstReadError } : { status: 'ok' };
  } finally {
    await f.close();
  }
}

/** Opens a checkpoint folder and reads every tensor; errors must name a file inside the folder. */
async function probeFolder(dir: string): Promise<Result> {
  const roots = [dir + path.sep, fs.realpathSync(dir) + path.sep];
  let ck: Checkpoint;
  try {
    ck = await Checkpoint.open(dir);
  } catch (e) {
    if (e instanceof CheckpointError && roots.some((r) => e.file.startsWith(r)) && e.message.includes(e.file)) return { status: 'error', code: e.code };
    if (e instanceof CheckpointError) return { status: 'violation', detail: `CheckpointError does not name a file inside ${dir}: file=${e.file} ${describeError(e)}` };
    return { status: 'violation', detail: `Checkpoint.open threw ${describeError(e)}` };
  }
  try {
    for (const name of ck.names) {
      const info = ck.info(name);
      try {
        const bytes = await ck.readBytes(name);
        if (bytes.byteLength !== info.end - info.begin) return { status: 'violation', detail: `readBytes("${name}") gave ${bytes.byteLength} bytes` };
        if (isReadableDType(info.dtype)) {
          const v = await ck.readF32(name);
          if (v.length !== numElements(info.shape)) return { status: 'violation', detail: `readF32("${name}") gave ${v.length} values` };
        }
      } catch (e) {
        return { status: 'violation', detail: `after a successful open, reading "${name}" threw ${describeError(e)}` };
      }
    }
    for (const f of ck.files) {
      if (f.stats.maxAllocation > f.size) return { status: 'violation', detail: `${f.path}: allocated ${f.stats.maxAllocation} bytes for a ${f.size}-byte file` };
    }
    return { status: 'ok' };
  } finally {
    await ck.close();
  }
}

/** Runs `body` under a timeout; on timeout, `unblock` may release it (then it gets 2 s to settle). */
async function timed(body: () => Promise<Result>, unblock?: () => void): Promise<{ result: Result; ms: number }> {
  const t0 = performance.now();
  let timer: NodeJS.Timeout | undefined;
  const running = body().catch((e: unknown): Result => ({ status: 'violation', detail: `harness: ${describeError(e)}` }));
  const timeout = new Promise<'timeout'>((res) => {
    timer = setTimeout(() => res('timeout'), CASE_TIMEOUT_MS);
  });
  const first = await Promise.race([running, timeout]);
  clearTimeout(timer);
  if (first !== 'timeout') return { result: first, ms: performance.now() - t0 };
  unblock?.();
  const late = await Promise.race([running, new Promise<undefined>((res) => setTimeout(() => res(undefined), 2000))]);
  const what = late ? `it finished only after being unblocked, with ${late.status === 'violation' ? late.detail : late.status === 'error' ? `CheckpointError ${late.code}` : 'success'}` : 'it never finished';
  return { result: { status: 'violation', detail: `HANG: no result within ${CASE_TIMEOUT_MS} ms; ${what}` }, ms: performance.now() - t0 };
}

// ───────────────────────────── bookkeeping ─────────────────────────────

const ROOT_TMP = fs.mkdtempSync(path.join(os.tmpdir(), 'upcycle-fuzz-'));
const FAIL_DIR = path.join(os.tmpdir(), `upcycle-fuzz-failures-${SEED}`);
after(() => fs.rmSync(ROOT_TMP, { recursive: true, force: true }));

interface KindStats {
  cases: number;
  ok: number;
  codes: Map<string, number>;
}
const summary = new Map<string, KindStats>();
after(() => {
  const rows = [...summary].map(([k, s]) => `  ${k.padEnd(30)} ${String(s.cases).padStart(4)} cases  ok ${String(s.ok).padStart(4)}  ${[...s.codes].map(([c, n]) => `${c}×${n}`).join(' ')}`);
  const total = [...summary.values()].reduce((a, s) => a + s.cases, 0);
  console.log(`fuzz seed ${SEED}: ${total} cases\n${rows.join('\n')}`);
});

function record(kind: string, r: Result): void {
  const s = summary.get(kind) ?? { cases: 0, ok: 0, codes: new Map<string, number>() };
  s.cases++;
  if (r.status === 'ok') s.ok++;
  else if (r.status === 'error') s.codes.set(r.code, (s.codes.get(r.code) ?? 0) + 1);
  else s.codes.set('VIOLATION', (s.codes.get('VIOLATION') ?? 0) + 1);
  summary.set(kind, s);
}

/** Checks a result against the case's expectation; returns a failure description or undefined. */
function judge(m: { expect?: Expect; codes?: readonly CheckpointErrorCode[]; quick?: boolean }, r: Result, ms: number): string | undefined {
  if (r.status === 'violation') return r.detail;
  if (m.quick && ms > QUICK_MS) return `took ${ms.toFixed(0)} ms, expected a fail-fast under ${QUICK_MS} ms`;
  const expect = m.expect ?? (m.codes ? 'error' : 'any');
  if (expect === 'ok' && r.status !== 'ok') return `expected success, got CheckpointError ${r.status === 'error' ? r.code : ''}`;
  if (expect === 'error' && r.status === 'ok') return 'expected a CheckpointError, but the file opened and read fine';
  if (r.status === 'error' && m.codes && !m.codes.includes(r.code)) return `expected one of ${m.codes.join('/')}, got ${r.code}`;
  return undefined;
}

function keepFailure(name: string, src: string): string {
  fs.mkdirSync(FAIL_DIR, { recursive: true });
  const dst = path.join(FAIL_DIR, name);
  try {
    fs.cpSync(src, dst, { recursive: true, verbatimSymlinks: true });
  } catch {
    // a FIFO or dangling link may not copy; the description still reproduces the case
  }
  return dst;
}

function reportFailures(t: TestContext, kind: string, failures: string[]): void {
  if (failures.length === 0) return;
  const head = `${failures.length} failing case(s) of kind "${kind}" — seed ${SEED} (rerun: FUZZ_SEED=${SEED} node --test --test-name-pattern="${kind}" build/test/unit/io/fuzz.test.js)`;
  t.diagnostic(head);
  assert.fail(`${head}\n\n${failures.slice(0, 5).join('\n\n')}${failures.length > 5 ? `\n\n… and ${failures.length - 5} more` : ''}`);
}

// ───────────────────────────── samples ─────────────────────────────

const SAMPLES: Sample[] = [
  mixedSample(),
  splitSample('lora-add', new Uint8Array(fs.readFileSync(path.join(adapter('lora-add'), 'adapter_model.safetensors')))),
  splitSample('base-bf16', new Uint8Array(fs.readFileSync(path.join(model('base-bf16'), 'model.safetensors')))),
  splitSample('base', new Uint8Array(fs.readFileSync(path.join(model('base'), 'model.safetensors')))),
];
/** Mostly the small files, so hundreds of cases stay fast. */
function pickSample(rng: Rng): Sample {
  const x = rng.next();
  return x < 0.45 ? SAMPLES[0]! : x < 0.75 ? SAMPLES[1]! : x < 0.88 ? SAMPLES[2]! : SAMPLES[3]!;
}

test('fuzz baseline: every unmutated sample and the sharded fixture open and read cleanly', async () => {
  for (const s of SAMPLES) {
    const file = path.join(ROOT_TMP, `baseline-${s.name}.safetensors`);
    fs.writeFileSync(file, s.bytes);
    const { result } = await timed(() => probeFile(file, s.bytes.byteLength));
    assert.deepEqual(result, { status: 'ok' }, `sample ${s.name}`);
    fs.rmSync(file);
  }
  const dir = path.join(ROOT_TMP, 'baseline-sharded');
  fs.cpSync(model('base-sharded'), dir, { recursive: true });
  const { result } = await timed(() => probeFolder(dir));
  assert.deepEqual(result, { status: 'ok' }, 'base-sharded copy');
  fs.rmSync(dir, { recursive: true });
});

// ───────────────────────────── single-file mutations ─────────────────────────────

interface FileKind {
  kind: string;
  count: number;
  gen: (rng: Rng, i: number) => Mutant;
  /** Reads after a successful open may fail (with a CheckpointError naming the file). */
  allowReadErrors?: boolean;
  /** Mutates the file after it was opened (instead of before). */
  afterOpen?: (file: string, rng: Rng) => void;
}

const JSON_CHARS = enc.encode('{}[]:,"\\ 0123456789-.eE+atrufnlsxF_');
function randomByte(rng: Rng): number {
  return rng.chance(0.5) ? rng.pick([...JSON_CHARS]) : rng.int(0, 255);
}

const INVALID_UTF8: readonly (readonly number[])[] = [
  [0xff], [0xfe], [0x80], [0xbf], [0xc3], [0xc0, 0xaf], [0xe0, 0x80, 0xaf], [0xed, 0xa0, 0x80], [0xed, 0xbf, 0xbf],
  [0xf4, 0x90, 0x80, 0x80], [0xf8, 0x88, 0x80, 0x80, 0x80], [0xe2, 0x82], [0xf0, 0x9f, 0x98], [0xc3, 0x28],
];

const FILE_KINDS: FileKind[] = [
  {
    kind: 'truncate',
    count: 60,
    gen: (rng) => {
      const s = pickSample(rng);
      const n = s.headerBytes.byteLength;
      const where = rng.int(0, 3);
      const cut = where === 0 ? rng.int(0, 8) : where === 1 ? rng.int(8, 8 + n) : where === 2 ? 8 + n + rng.int(0, Math.max(0, s.data.byteLength - 1)) : s.bytes.byteLength - rng.int(1, 16);
      const at = Math.max(0, Math.min(cut, s.bytes.byteLength - 1));
      return { note: `${s.name} truncated to ${at} of ${s.bytes.byteLength} bytes`, bytes: s.bytes.slice(0, at), codes: ['HEADER_TOO_SMALL', 'INVALID_HEADER_LENGTH', 'INCOMPLETE_BUFFER'] };
    },
  },
  {
    kind: 'header-length-past-eof',
    count: 25,
    gen: (rng, i) => {
      const s = pickSample(rng);
      const room = s.bytes.byteLength - 8;
      const fixed = [99_999_999, 100_000_000, room + 1];
      const n = i < fixed.length ? fixed[i]! : rng.chance(0.5) ? room + rng.int(1, 64) : rng.int(room + 1, 100_000_000);
      return { note: `${s.name} header length ${n} (file ${s.bytes.byteLength} bytes)`, bytes: assemble(s.headerBytes, s.data, BigInt(n)), codes: ['INVALID_HEADER_LENGTH'], quick: true };
    },
  },
  {
    kind: 'header-length-huge',
    count: 25,
    gen: (rng, i) => {
      const s = pickSample(rng);
      const fixed = [2n ** 40n, 100_000_001n, 2n ** 64n - 1n, 2n ** 63n, 2n ** 53n + 1n, 2n ** 32n];
      const n = i < fixed.length ? fixed[i]! : 100_000_001n + BigInt(Math.floor(rng.next() * 2 ** 52)) * BigInt(rng.int(1, 4096));
      return { note: `${s.name} header length ${n}`, bytes: assemble(s.headerBytes, s.data, n), codes: ['HEADER_TOO_LARGE'], quick: true };
    },
  },
  {
    kind: 'header-length-wrong',
    count: 25,
    gen: (rng, i) => {
      const s = pickSample(rng);
      const real = s.headerBytes.byteLength;
      const n = i < 3 ? 0 : rng.chance(0.5) ? rng.int(0, real - 1) : rng.int(real + 1, Math.min(real + 4096, s.bytes.byteLength - 8));
      return { note: `${s.name} header length ${n} instead of ${real}`, bytes: assemble(s.headerBytes, s.data, BigInt(n)), codes: ['INVALID_HEADER', 'INCOMPLETE_BUFFER', 'INVALID_OFFSET', 'TENSOR_INVALID_INFO', 'INVALID_HEADER_LENGTH'], quick: true };
    },
  },
  {
    kind: 'header-byte-flip',
    count: 80,
    gen: (rng) => {
      const s = pickSample(rng);
      const h = s.headerBytes.slice();
      const k = rng.int(1, 4);
      const notes: string[] = [];
      for (let j = 0; j < k; j++) {
        const at = rng.int(0, h.byteLength - 1);
        const old = h[at]!;
        h[at] = rng.chance(0.5) ? old ^ (1 << rng.int(0, 7)) : randomByte(rng);
        notes.push(`@${at}:${old}->${h[at]}`);
      }
      return { note: `${s.name} header bytes ${notes.join(' ')}`, bytes: assemble(h, s.data) };
    },
  },
  {
    kind: 'header-insert',
    count: 40,
    gen: (rng) => {
      const s = pickSample(rng);
      const at = rng.int(0, s.headerBytes.byteLength);
      const ins = new Uint8Array(rng.int(1, 8)).map(() => randomByte(rng));
      const h = concat(s.headerBytes.subarray(0, at), ins, s.headerBytes.subarray(at));
      const adjust = rng.chance(0.7);
      return {
        note: `${s.name} inserted [${[...ins].join(',')}] at header byte ${at}${adjust ? '' : ', length field not adjusted'}`,
        bytes: assemble(h, s.data, adjust ? undefined : BigInt(s.headerBytes.byteLength)),
      };
    },
  },
  {
    kind: 'header-delete',
    count: 20,
    gen: (rng) => {
      const s = pickSample(rng);
      const at = rng.int(0, s.headerBytes.byteLength - 1);
      const len = rng.int(1, Math.min(32, s.headerBytes.byteLength - at));
      const h = concat(s.headerBytes.subarray(0, at), s.headerBytes.subarray(at + len));
      return { note: `${s.name} deleted ${len} header bytes at ${at}`, bytes: assemble(h, s.data) };
    },
  },
  {
    kind: 'dtype',
    count: 40,
    gen: (rng) => {
      const s = pickSample(rng);
      const e = new HeaderEdit(s);
      const name = rng.pick(tensorNames(e.h));
      const entry = e.entry(name);
      const old = String(entry['dtype']);
      const v = rng.int(0, 3);
      if (v === 0) {
        const bad = rng.pick(['F128', 'f32', 'bf16', '', 'FLOAT32', 'BF 16', 'F32 ', ' F32', 'Q4_0', 'F8_E4M3FN', 'F32\u0000', 'I128', 'C128', 'STRING', '__proto__', 'toString']);
        entry['dtype'] = bad;
        return { note: `${s.name} "${name}" dtype ${old} -> ${JSON.stringify(bad)}`, bytes: assemble(e.encode(), s.data), codes: ['INVALID_DTYPE'] };
      }
      if (v === 1) {
        const bad = rng.pick<unknown>([123, null, true, ['F32'], { dtype: 'F32' }, 0, 1.5]);
        entry['dtype'] = bad;
        return { note: `${s.name} "${name}" dtype -> ${JSON.stringify(bad)}`, bytes: assemble(e.encode(), s.data), codes: ['INVALID_HEADER', 'INVALID_DTYPE'] };
      }
      if (v === 2) {
        delete entry['dtype'];
        return { note: `${s.name} "${name}" dtype removed`, bytes: assemble(e.encode(), s.data), codes: ['INVALID_HEADER'] };
      }
      const other = rng.pick(KNOWN_DTYPES);
      entry['dtype'] = other;
      // Same-width swaps stay valid (and exercise other conversions); others break the byte count.
      return { note: `${s.name} "${name}" dtype ${old} -> ${other}`, bytes: assemble(e.encode(), s.data), codes: ['TENSOR_INVALID_INFO', 'INCOMPLETE_BUFFER', 'INVALID_OFFSET'] as const, expect: 'any' };
    },
  },
  {
    kind: 'offsets',
    count: 60,
    gen: (rng) => {
      const s = pickSample(rng);
      const e = new HeaderEdit(s);
      const names = tensorNames(e.h);
      const name = rng.pick(names);
      const entry = e.entry(name);
      const [b, en] = entry['data_offsets'] as [number, number];
      const dataLen = s.data.byteLength;
      const codes = ['INVALID_OFFSET', 'INVALID_HEADER', 'TENSOR_INVALID_INFO', 'INCOMPLETE_BUFFER'] as const;
      const v = rng.int(0, 11);
      let set: unknown;
      let note: string;
      let expect: Expect = 'error';
      switch (v) {
        case 0: set = [-rng.int(1, 1000), en]; note = 'negative begin'; break;
        case 1: set = [b, -rng.int(1, 1000)]; note = 'negative end'; break;
        // A zero-size tensor may validly sit at another tensor boundary, so shifts of one are 'any'.
        case 2: { const k = rng.int(1, 64); set = [b - k, en - k]; note = `shifted back ${k} (overlap)`; expect = b === en ? 'any' : 'error'; break; }
        case 3: { const k = rng.int(1, 64); set = [b + k, en + k]; note = `shifted forward ${k}`; expect = b === en ? 'any' : 'error'; break; }
        case 4: set = [b, dataLen + rng.int(1, 1 << 20)]; note = 'end past the data section'; break;
        case 5: set = [dataLen + rng.int(0, 100), dataLen + rng.int(101, 200)]; note = 'range past the data section'; break;
        case 6: set = [b + 0.5, en + 0.5]; note = 'non-integer'; break;
        case 7: set = [en, b]; note = 'swapped'; expect = b === en ? 'ok' : 'error'; break;
        case 8: set = rng.pick<unknown>([[b], [b, en, en], [], null, 'x', { begin: b, end: en }, [String(b), en], [b, null], [true, en]]); note = `malformed ${JSON.stringify(set)}`; break;
        case 9: set = [rng.pick([2 ** 53, 2 ** 53 + 2, 2 ** 60, Number.MAX_SAFE_INTEGER]), en]; note = `huge begin ${JSON.stringify(set)}`; break;
        case 10: {
          const t = rng.pick(['1e400', '-1e400', '1e-400', '-0', '9007199254740993', '0.0000001']);
          set = [e.raw(t), en];
          note = `raw begin ${t}`;
          expect = 'any';
          break;
        }
        default: {
          // Integral values in other spellings parse to the same numbers: still valid.
          set = [e.raw(`${b}.0`), e.raw(en === 0 ? '0e0' : `${en / 10}e1`)];
          note = 'integral values spelled as floats';
          expect = 'any';
        }
      }
      entry['data_offsets'] = set;
      return { note: `${s.name} "${name}" data_offsets [${b}, ${en}] -> ${note}`, bytes: assemble(e.encode(), s.data), expect, codes: expect === 'ok' ? undefined : codes };
    },
  },
  {
    kind: 'shape',
    count: 40,
    gen: (rng) => {
      const s = pickSample(rng);
      const e = new HeaderEdit(s);
      const name = rng.pick(tensorNames(e.h));
      const entry = e.entry(name);
      const shape = entry['shape'] as number[];
      const codes = ['INVALID_SHAPE', 'INVALID_HEADER', 'TENSOR_INVALID_INFO'] as const;
      const v = rng.int(0, 7);
      let set: unknown;
      let expect: Expect = 'error';
      switch (v) {
        case 0: set = rng.pick([[2 ** 40, 2 ** 40], [2 ** 26, 2 ** 26, 2 ** 26], [2 ** 53], [2 ** 53 + 2], [Number.MAX_SAFE_INTEGER, 2], [2 ** 31, 2 ** 31, 2 ** 31, 0]]); expect = 'any'; break; // the last one is 0 elements
        case 1: set = [...shape.slice(0, -1), -rng.int(1, 8)]; break;
        case 2: set = [...shape, 1.5]; break;
        case 3: set = rng.pick<unknown>([null, '4', 4, {}, [[4]], ['4'], [true], [null]]); break;
        case 4: set = [...shape].reverse(); expect = 'any'; break; // same element count: valid
        case 5: set = [...shape, 1]; expect = 'ok'; break;
        case 6: set = [...shape, 0]; expect = 'any'; break; // valid only for an empty tensor
        default: set = [e.raw('1e400')]; break;
      }
      entry['shape'] = set;
      return { note: `${s.name} "${name}" shape [${shape.join(', ')}] -> ${JSON.stringify(set)}`, bytes: assemble(e.encode(), s.data), expect, codes };
    },
  },
  {
    kind: 'tensor-names',
    count: 40,
    gen: (rng, i) => {
      const s = pickSample(rng);
      if (i % 4 === 3) {
        // Valid but unusual names must still open.
        const e = new HeaderEdit(s);
        const name = rng.pick(tensorNames(e.h));
        const fresh = rng.pick(['', 'é', '😀.weight', 'a\u0000b', '\ud800', 'x'.repeat(10_000), '__proto__', 'constructor', 'toString', '\\"', ' ']);
        const h: Json = {};
        for (const [k, v] of Object.entries(e.h)) setOwn(h, k === name ? fresh : k, v);
        const unique = !Object.hasOwn(e.h, fresh) || fresh === name;
        const bytes = assemble(padTo8(enc.encode(JSON.stringify(h))), s.data);
        return { note: `${s.name} renamed "${name}" -> ${JSON.stringify(fresh).slice(0, 40)}`, bytes, expect: unique ? 'ok' : 'any' };
      }
      // Invalid UTF-8 inside a tensor name, as raw bytes.
      const text = new TextDecoder().decode(s.headerBytes);
      const name = rng.pick(tensorNames(s.header).filter((n) => n.length > 0));
      const keyAt = enc.encode(text.slice(0, text.indexOf(`${JSON.stringify(name)}:`))).byteLength + 1;
      const nameLen = enc.encode(name).byteLength;
      const at = keyAt + rng.int(0, nameLen - 1);
      const bad = Uint8Array.from(rng.pick(INVALID_UTF8));
      const replace = rng.chance(0.5) ? 1 : 0;
      const h = concat(s.headerBytes.subarray(0, at), bad, s.headerBytes.subarray(at + replace));
      return { note: `${s.name} "${name}": bytes [${[...bad].map((x) => x.toString(16)).join(' ')}] ${replace ? 'replace' : 'inserted at'} byte ${at}`, bytes: assemble(h, s.data), codes: ['INVALID_HEADER'] };
    },
  },
  {
    kind: 'metadata',
    count: 30,
    gen: (rng) => {
      const s = pickSample(rng);
      const e = new HeaderEdit(s);
      const v = rng.int(0, 3);
      if (v === 0) {
        const bad = rng.pick<unknown>([1, 0, -1.5, true, false, null, {}, { a: 'b' }, [], ['x'], e.raw('1e400')]);
        const md = (typeof e.h['__metadata__'] === 'object' && e.h['__metadata__'] !== null ? e.h['__metadata__'] : {}) as Json;
        setOwn(md, rng.pick(['format', 'k', '', '__proto__', 'total_size']), bad);
        e.h['__metadata__'] = md;
        return { note: `${s.name} __metadata__ value -> ${JSON.stringify(bad)}`, bytes: assemble(e.encode(), s.data), codes: ['INVALID_HEADER'] };
      }
      if (v === 1) {
        const bad = rng.pick<unknown>(['pt', 5, [], ['format', 'pt'], true, 0]);
        e.h['__metadata__'] = bad;
        return { note: `${s.name} __metadata__ -> ${JSON.stringify(bad)}`, bytes: assemble(e.encode(), s.data), codes: ['INVALID_HEADER'] };
      }
      if (v === 2) {
        const ok = rng.pick<unknown>([null, {}, { a: '' }, { long: 'y'.repeat(50_000) }, { 'ü': '✓', '': '' }]);
        e.h['__metadata__'] = ok;
        return { note: `${s.name} __metadata__ -> valid ${JSON.stringify(ok).slice(0, 40)}`, bytes: assemble(e.encode(), s.data), expect: 'ok' };
      }
      // __metadata__ given twice: JSON.parse keeps the last; the result must still be judged cleanly.
      const text = JSON.stringify(e.h);
      const dup = `{"__metadata__":${rng.pick(['5', '{"a":1}', '{"a":"b"}'])},${text.slice(1)}`;
      return { note: `${s.name} duplicate __metadata__ key`, bytes: assemble(padTo8(enc.encode(dup)), s.data) };
    },
  },
  {
    kind: 'trailing-garbage',
    count: 25,
    gen: (rng, i) => {
      const s = pickSample(rng);
      const extra = i === 0 ? s.bytes : rng.bytes(rng.chance(0.5) ? rng.int(1, 8) : rng.int(9, 4096));
      return { note: `${s.name} + ${extra.byteLength} trailing bytes`, bytes: concat(s.bytes, extra), codes: ['INCOMPLETE_BUFFER'] };
    },
  },
  {
    kind: 'havoc',
    count: 50,
    gen: (rng) => {
      const s = pickSample(rng);
      let b: Uint8Array = s.bytes.slice();
      const notes: string[] = [];
      const k = rng.int(2, 5);
      for (let j = 0; j < k; j++) {
        const op = rng.int(0, 5);
        const at = rng.int(0, Math.max(0, b.byteLength - 1));
        if (op === 0 && b.byteLength > 0) {
          b[at] = randomByte(rng);
          notes.push(`set@${at}`);
        } else if (op === 1) {
          b = concat(b.subarray(0, at), rng.bytes(rng.int(1, 16)), b.subarray(at));
          notes.push(`insert@${at}`);
        } else if (op === 2) {
          b = concat(b.subarray(0, at), b.subarray(Math.min(b.byteLength, at + rng.int(1, 64))));
          notes.push(`delete@${at}`);
        } else if (op === 3) {
          b = b.slice(0, rng.int(0, b.byteLength));
          notes.push(`truncate@${b.byteLength}`);
        } else if (op === 4 && b.byteLength >= 8) {
          b.set(u64le(BigInt(rng.int(0, b.byteLength + 64))), 0);
          notes.push('length');
        } else {
          b = concat(b, rng.bytes(rng.int(1, 32)));
          notes.push('append');
        }
      }
      return { note: `${s.name} havoc ${notes.join(' ')}`, bytes: b };
    },
  },
  {
    // Deep JSON nesting inside the entries (the header limit allows megabytes of brackets).
    kind: 'deep-nesting',
    count: 6,
    gen: (rng, i) => {
      const s = SAMPLES[0]!;
      const e = new HeaderEdit(s);
      const name = rng.pick(tensorNames(e.h));
      const depth = [10_000, 100_000][i % 2]!;
      const deep = '['.repeat(depth) + ']'.repeat(depth);
      const field = (['shape', 'data_offsets', 'dtype'] as const)[Math.floor(i / 2)]!;
      const entry = e.entry(name);
      if (field === 'data_offsets') entry[field] = [e.raw(deep), 0];
      else if (field === 'shape') entry[field] = [e.raw(deep)];
      else entry[field] = e.raw(deep);
      return { note: `${s.name} "${name}" ${field} holds ${depth}-deep nested arrays`, bytes: assemble(e.encode(), s.data), codes: ['INVALID_SHAPE', 'INVALID_OFFSET', 'INVALID_HEADER'] };
    },
  },
  {
    // The file changes between open and read (a re-download, an overwritten output).
    kind: 'truncate-after-open',
    count: 10,
    allowReadErrors: true,
    gen: (rng) => {
      const s = rng.chance(0.5) ? SAMPLES[0]! : SAMPLES[2]!;
      return { note: `${s.name} opened, then truncated`, bytes: s.bytes, expect: 'any' };
    },
    afterOpen: (file, rng) => {
      const size = fs.statSync(file).size;
      fs.truncateSync(file, rng.int(0, size - 1));
    },
  },
];

for (const k of FILE_KINDS) {
  test(`fuzz file: ${k.kind} (${k.count} cases)`, { timeout: 120_000 }, async (t) => {
    const failures: string[] = [];
    for (let i = 0; i < k.count; i++) {
      const seed = caseSeed(k.kind, i);
      const rng = new Rng(seed);
      const m = k.gen(rng, i);
      const file = path.join(ROOT_TMP, `${k.kind}-${i}.safetensors`);
      fs.writeFileSync(file, m.bytes);
      const size = m.bytes.byteLength;
      allocLimit = size;
      allocViolation = undefined;
      let result: Result;
      let ms: number;
      if (k.afterOpen) {
        const mutate = k.afterOpen;
        ({ result, ms } = await timed(async () => {
          const f = await SafetensorsFile.open(file); // the unmutated file must open
          try {
            mutate(file, rng);
            allocLimit = fs.statSync(file).size;
            for (const name of f.names) {
              try {
                await f.readBytes(name);
                if (isReadableDType(f.info(name).dtype)) await f.readF32(name);
              } catch (e) {
                if (e instanceof CheckpointError && e.message.includes(file)) return { status: 'error', code: e.code };
                return { status: 'violation', detail: `reading "${name}" of a file truncated after open threw ${describeError(e)}` };
              }
            }
            return { status: 'ok' };
          } finally {
            await f.close();
          }
        }));
      } else {
        ({ result, ms } = await timed(() => probeFile(file, size, k.allowReadErrors)));
      }
      allocLimit = Infinity;
      if (allocViolation !== undefined && result.status !== 'violation') result = { status: 'violation', detail: `allocation beyond the file size: ${allocViolation}` };
      record(k.kind, result);
      const why = judge(m, result, ms);
      if (why !== undefined) {
        const kept = keepFailure(`${k.kind}-${i}.safetensors`, file);
        failures.push(`[seed ${SEED} kind ${k.kind} case ${i} (case seed ${seed})] ${m.note}\n  file: ${file} (kept as ${kept})\n  ${why}`);
      }
      fs.rmSync(file, { force: true });
    }
    const s = summary.get(k.kind)!;
    t.diagnostic(`${k.kind}: ${s.cases} cases, ${s.ok} opened+read, errors ${JSON.stringify(Object.fromEntries(s.codes))}`);
    reportFailures(t, k.kind, failures);
  });
}

test('header length fields are checked before reading or allocating (2^40, 99,999,999 on a small file)', async () => {
  const s = SAMPLES[0]!;
  const cases: [bigint, CheckpointErrorCode][] = [[2n ** 40n, 'HEADER_TOO_LARGE'], [99_999_999n, 'INVALID_HEADER_LENGTH'], [2n ** 64n - 1n, 'HEADER_TOO_LARGE']];
  for (const [n, code] of cases) {
    const file = path.join(ROOT_TMP, `len-${n}.safetensors`);
    const bytes = assemble(s.headerBytes, s.data, n);
    fs.writeFileSync(file, bytes);
    allocLimit = 8; // nothing but the 8-byte prefix may be read before the length is checked
    allocViolation = undefined;
    const t0 = performance.now();
    await assert.rejects(SafetensorsFile.open(file), (e: unknown) => {
      assert.ok(e instanceof CheckpointError, `seed ${SEED}: expected CheckpointError, got ${describeError(e)}`);
      assert.equal(e.code, code, e.message);
      assert.ok(e.message.includes(file), 'the error names the file');
      return true;
    });
    const ms = performance.now() - t0;
    allocLimit = Infinity;
    assert.equal(allocViolation, undefined, `header length ${n}: ${allocViolation}`);
    assert.ok(ms < QUICK_MS, `header length ${n} took ${ms.toFixed(0)} ms to reject`);
  }
});

// ───────────────────────────── folder-level mutations ─────────────────────────────

const SHARDED = model('base-sharded');
const SHARD1 = 'model-00001-of-00002.safetensors';
const SHARD2 = 'model-00002-of-00002.safetensors';
const INDEX = 'model.safetensors.index.json';
const INDEX_TEXT = fs.readFileSync(path.join(SHARDED, INDEX), 'utf8');
const OUTSIDE = path.join(ROOT_TMP, 'outside');
fs.mkdirSync(OUTSIDE);
fs.copyFileSync(path.join(SHARDED, SHARD2), path.join(OUTSIDE, SHARD2));

interface Index {
  metadata?: unknown;
  weight_map: Record<string, unknown>;
}
const readIndex = (dir: string): Index => JSON.parse(fs.readFileSync(path.join(dir, INDEX), 'utf8')) as Index;
const writeIndex = (dir: string, idx: unknown): void => fs.writeFileSync(path.join(dir, INDEX), typeof idx === 'string' ? idx : JSON.stringify(idx, null, 2));

interface FolderMutant {
  note: string;
  expect?: Expect;
  codes?: readonly CheckpointErrorCode[];
  /** Called on timeout to release a blocked open (e.g. a FIFO). */
  unblock?: () => void;
}
interface FolderKind {
  kind: string;
  count: number;
  mutate: (dir: string, rng: Rng, i: number) => FolderMutant;
}

const hasMkfifo = (() => {
  try {
    execFileSync('mkfifo', ['--version'], { stdio: 'ignore' });
    return process.platform !== 'win32';
  } catch {
    return false;
  }
})();

const FOLDER_KINDS: FolderKind[] = [
  {
    kind: 'folder:missing-shard',
    count: 4,
    mutate: (dir, _rng, i) => {
      const gone = [[SHARD1], [SHARD2], [SHARD1, SHARD2], [SHARD2]][i]!;
      for (const f of gone) fs.rmSync(path.join(dir, f));
      if (i === 3) fs.renameSync(path.join(dir, SHARD1), path.join(dir, 'model-00001-of-00002.safetensors.bak'));
      return { note: `removed ${gone.join(', ')}${i === 3 ? ` and renamed ${SHARD1}` : ''}`, codes: ['MISSING_SHARD'] };
    },
  },
  {
    kind: 'folder:index-absent-tensor',
    count: 12,
    mutate: (dir, rng, i) => {
      const idx = readIndex(dir);
      const names = Object.keys(idx.weight_map);
      if (i % 3 === 0) {
        const fake = `model.layers.${rng.int(0, 99)}.fake_${rng.int(0, 1e6)}.weight`;
        idx.weight_map[fake] = rng.pick([SHARD1, SHARD2]);
        writeIndex(dir, idx);
        return { note: `index lists absent tensor ${fake}`, codes: ['MISSING_TENSOR'] };
      }
      if (i % 3 === 1) {
        const name = rng.pick(names);
        idx.weight_map[name] = idx.weight_map[name] === SHARD1 ? SHARD2 : SHARD1;
        writeIndex(dir, idx);
        return { note: `index puts ${name} in the wrong shard`, codes: ['MISSING_TENSOR'] };
      }
      const name = rng.pick(names);
      idx.weight_map[name] = rng.pick(['model-00003-of-00002.safetensors', 'missing.safetensors', 'sub/dir/x.safetensors']);
      writeIndex(dir, idx);
      return { note: `index puts ${name} in absent file ${String(idx.weight_map[name])}`, codes: ['MISSING_SHARD'] };
    },
  },
  {
    kind: 'folder:index-invalid-json',
    count: 30,
    mutate: (dir, rng, i) => {
      const fixed = ['', '{', '{"weight_map": {', '{"weight_map": {}} trailing', '\u0000', '{"weight_map": {"a": "b",}}', '\ufeff{"weight_map": {}}x'];
      if (i < fixed.length) {
        writeIndex(dir, fixed[i]!);
        return { note: `index text ${JSON.stringify(fixed[i])}`, codes: ['INVALID_CONFIG'] };
      }
      const b = Buffer.from(INDEX_TEXT, 'utf8');
      const v = rng.int(0, 2);
      let out: Buffer;
      let note: string;
      if (v === 0) {
        out = Buffer.from(b);
        const k = rng.int(1, 3);
        const at: number[] = [];
        for (let j = 0; j < k; j++) {
          const p = rng.int(0, out.length - 1);
          out[p] = randomByte(rng);
          at.push(p);
        }
        note = `index bytes changed at ${at.join(',')}`;
      } else if (v === 1) {
        const p = rng.int(0, b.length - 1);
        out = b.subarray(0, p);
        note = `index truncated to ${p} bytes`;
      } else {
        const p = rng.int(0, b.length);
        out = Buffer.concat([b.subarray(0, p), Buffer.from(rng.bytes(rng.int(1, 6))), b.subarray(p)]);
        note = `random bytes inserted into the index at ${p}`;
      }
      fs.writeFileSync(path.join(dir, INDEX), out);
      return { note, expect: 'any' };
    },
  },
  {
    kind: 'folder:index-wrong-shape',
    count: 8,
    mutate: (dir, _rng, i) => {
      const bad = ['[]', '5', '"model.safetensors"', 'true', '{}', '{"weight_map": []}', '{"weight_map": null}', '{"weight_map": {"lm_head.weight": 5}}'][i]!;
      writeIndex(dir, bad);
      return { note: `index is ${bad}`, codes: ['INVALID_INDEX'] };
    },
  },
  {
    kind: 'folder:index-json-null',
    count: 1,
    mutate: (dir) => {
      writeIndex(dir, 'null');
      return { note: 'index is the JSON literal null', codes: ['INVALID_INDEX', 'INVALID_CONFIG'] };
    },
  },
  {
    kind: 'folder:weight-map-unsafe-path',
    count: 16,
    mutate: (dir, rng, i) => {
      const abs = path.join(dir, SHARD2);
      const bad = [
        `../${SHARD2}`, `../outside/${SHARD2}`, '../../../../../../etc/passwd', '/etc/passwd', abs, path.join(OUTSIDE, SHARD2),
        `sub/../../${SHARD2}`, `./../${SHARD2}`, '..', `..\\${SHARD2}`, `${SHARD2}\u0000.txt`, '', `a/b/../../../${SHARD2}`, '/dev/zero', '/proc/self/environ', `//${SHARD2}`,
      ][i]!;
      const idx = readIndex(dir);
      const names = Object.keys(idx.weight_map).filter((n) => idx.weight_map[n] === SHARD2);
      const targets = rng.chance(0.5) ? names : [rng.pick(names)];
      for (const n of targets) idx.weight_map[n] = bad;
      writeIndex(dir, idx);
      return { note: `weight_map sends ${targets.length} tensor(s) to ${JSON.stringify(bad)}`, codes: ['UNSAFE_PATH'] };
    },
  },
  {
    kind: 'folder:symlink',
    count: 9,
    mutate: (dir, _rng, i) => {
      const shard = path.join(dir, SHARD2);
      fs.rmSync(shard);
      switch (i) {
        case 0: fs.symlinkSync(path.join(OUTSIDE, SHARD2), shard); return { note: 'shard is an absolute link to a copy outside the folder', codes: ['UNSAFE_PATH'] };
        case 1: fs.symlinkSync(path.relative(dir, path.join(OUTSIDE, SHARD2)), shard); return { note: 'shard is a relative ../ link outside the folder', codes: ['UNSAFE_PATH'] };
        case 2: fs.symlinkSync('/etc/passwd', shard); return { note: 'shard links to /etc/passwd', codes: ['UNSAFE_PATH'] };
        case 3: fs.symlinkSync('/dev/zero', shard); return { note: 'shard links to /dev/zero', codes: ['UNSAFE_PATH'] };
        case 4: fs.symlinkSync(OUTSIDE, shard); return { note: 'shard links to a folder outside', codes: ['UNSAFE_PATH'] };
        case 5: {
          fs.symlinkSync(OUTSIDE, path.join(dir, 'sub'));
          const idx = readIndex(dir);
          for (const n of Object.keys(idx.weight_map)) if (idx.weight_map[n] === SHARD2) idx.weight_map[n] = `sub/${SHARD2}`;
          writeIndex(dir, idx);
          return { note: 'weight_map goes through sub/, a link to a folder outside', codes: ['UNSAFE_PATH'] };
        }
        case 6: fs.symlinkSync(path.join(dir, 'nowhere.safetensors'), shard); return { note: 'shard is a dangling link', codes: ['MISSING_SHARD'] };
        case 7: fs.symlinkSync(SHARD2, shard); return { note: 'shard is a link to itself (loop)', codes: ['NOT_FOUND', 'MISSING_SHARD', 'UNSAFE_PATH'] };
        default: {
          fs.mkdirSync(path.join(dir, 'blobs'));
          fs.copyFileSync(path.join(SHARDED, SHARD2), path.join(dir, 'blobs', 'abc123'));
          fs.symlinkSync(path.join('blobs', 'abc123'), shard);
          return { note: 'shard is a link to a file inside the folder (allowed)', expect: 'ok' };
        }
      }
    },
  },
  {
    kind: 'folder:shard-not-regular-file',
    count: 2,
    mutate: (dir, _rng, i) => {
      const shard = path.join(dir, SHARD2);
      fs.rmSync(shard);
      if (i === 0) {
        fs.mkdirSync(shard);
        return { note: 'shard is a directory', codes: ['NOT_FOUND'] };
      }
      if (!hasMkfifo) {
        fs.mkdirSync(shard);
        return { note: 'shard is a directory (mkfifo unavailable)', codes: ['NOT_FOUND'] };
      }
      execFileSync('mkfifo', [shard]);
      return {
        note: 'shard is a named pipe (FIFO) with no writer',
        codes: ['NOT_FOUND', 'INVALID_HEADER', 'HEADER_TOO_SMALL'],
        unblock: () => {
          try {
            fs.closeSync(fs.openSync(shard, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK));
          } catch {
            // no reader waiting: nothing to release
          }
        },
      };
    },
  },
  {
    kind: 'folder:shard-corrupt',
    count: 12,
    mutate: (dir, rng) => {
      const which = rng.pick([SHARD1, SHARD2]);
      const p = path.join(dir, which);
      const b = new Uint8Array(fs.readFileSync(p));
      const n = Number(new DataView(b.buffer, b.byteOffset, 8).getBigUint64(0, true));
      const v = rng.int(0, 2);
      if (v === 0) {
        const at = rng.int(8, 8 + n - 1);
        b[at] = randomByte(rng);
        fs.writeFileSync(p, b);
        return { note: `${which} header byte ${at} changed`, expect: 'any' };
      }
      if (v === 1) {
        const cut = rng.int(0, b.byteLength - 1);
        fs.writeFileSync(p, b.subarray(0, cut));
        return { note: `${which} truncated to ${cut}`, codes: ['HEADER_TOO_SMALL', 'INVALID_HEADER_LENGTH', 'INCOMPLETE_BUFFER', 'INVALID_HEADER'] };
      }
      fs.copyFileSync(path.join(dir, which === SHARD1 ? SHARD2 : SHARD1), p);
      return { note: `${which} replaced by the other shard (duplicate tensors)`, codes: ['INVALID_INDEX', 'MISSING_TENSOR'] };
    },
  },
  {
    kind: 'folder:config',
    count: 6,
    mutate: (dir, _rng, i) => {
      const bad = ['{', 'null', '[]', '{"model_type": "llama", "hidden_size": "big"}', '\u0000\u0001', '{"model_type": "llama", "hidden_size": 96, "num_attention_heads": 0}'][i]!;
      fs.writeFileSync(path.join(dir, 'config.json'), bad);
      return { note: `config.json is ${JSON.stringify(bad)}`, codes: ['INVALID_CONFIG'] };
    },
  },
];

for (const k of FOLDER_KINDS) {
  test(`fuzz ${k.kind} (${k.count} cases)`, { timeout: 120_000 }, async (t) => {
    const failures: string[] = [];
    for (let i = 0; i < k.count; i++) {
      const seed = caseSeed(k.kind, i);
      const rng = new Rng(seed);
      const dir = path.join(ROOT_TMP, `${k.kind.replace(/[^a-z-]/g, '_')}-${i}`);
      fs.cpSync(SHARDED, dir, { recursive: true });
      const m = k.mutate(dir, rng, i);
      const { result, ms } = await timed(() => probeFolder(dir), m.unblock);
      record(k.kind, result);
      const why = judge(m, result, ms);
      if (why !== undefined) {
        const kept = keepFailure(path.basename(dir), dir);
        failures.push(`[seed ${SEED} kind ${k.kind} case ${i} (case seed ${seed})] ${m.note}\n  folder: ${dir} (kept as ${kept})\n  ${why}`);
      }
      fs.rmSync(dir, { recursive: true, force: true });
    }
    const s = summary.get(k.kind)!;
    t.diagnostic(`${k.kind}: ${s.cases} cases, ${s.ok} opened+read, errors ${JSON.stringify(Object.fromEntries(s.codes))}`);
    reportFailures(t, k.kind, failures);
  });
}

test('fuzz totals: at least 400 cases, and every case of each kind that ran was judged', () => {
  const declared = [...FILE_KINDS, ...FOLDER_KINDS].reduce((a, k) => a + k.count, 0);
  assert.ok(declared >= 400, `only ${declared} cases are declared (seed ${SEED})`);
  for (const k of [...FILE_KINDS, ...FOLDER_KINDS]) {
    const ran = summary.get(k.kind)?.cases;
    if (ran !== undefined) assert.equal(ran, k.count, `kind ${k.kind} ran ${ran} of ${k.count} cases (seed ${SEED})`);
  }
});
