/**
 * I/O benchmark (`npm run bench:io`): the lazy safetensors reader against plain positioned fs reads
 * of exactly the same byte ranges, on a Llama-shaped BF16 checkpoint of ≥ 1 GiB in several shards.
 *
 * The checkpoint is generated once with OutputFolder + SafetensorsWriter and cached under
 * ~/.cache/upcycle-bench/io-<size> (reused when its marker, tensor list and sizes check out). After
 * one warm-up pass of each method (so both see a warm page cache) the two methods are timed
 * alternately, --repeats times; best and median throughput and their ratio are reported (goal:
 * reader/plain ≥ 0.9). `inspectCheckpoint` is timed too, with the bytes it read, and the peak RSS.
 *
 *   node build/test/bench/io.bench.js [--size-gb 1.1] [--dir PATH] [--repeats 3] [--check]
 * --size-gb is in GiB (2^30 bytes); --check exits 1 when the best ratio is below 0.9.
 * Prints a compact table, then one line of JSON.
 */
import fs from 'node:fs';
import { open as openFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import v8 from 'node:v8';
import vm from 'node:vm';
import { Checkpoint } from '../../app/io/checkpoint.js';
import { inspectCheckpoint } from '../../app/io/inspect.js';
import { OutputFolder } from '../../app/io/output-folder.js';
import { SafetensorsWriter, type TensorPlan } from '../../app/io/safetensors-writer.js';

const GIB = 2 ** 30;
const MARKER = 'upcycle-bench.json';
const MARKER_VERSION = 1;
const MAX_SHARD_BYTES = 300_000_000;
const GOAL_RATIO = 0.9;

// ───────────────────────────── arguments ─────────────────────────────

interface Args {
  sizeGb: number;
  dir: string;
  dirGiven: boolean;
  repeats: number;
  check: boolean;
}

function parseArgs(argv: string[]): Args {
  const values = new Map<string, string>();
  const flags = new Set<string>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith('--')) throw new Error(`unexpected argument "${a}"`);
    const eq = a.indexOf('=');
    if (eq > 0) values.set(a.slice(2, eq), a.slice(eq + 1));
    else if (a === '--check' || a === '--help') flags.add(a.slice(2));
    else {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      values.set(a.slice(2), v);
    }
  }
  if (flags.has('help')) {
    console.log('usage: node build/test/bench/io.bench.js [--size-gb 1.1] [--dir PATH] [--repeats 3] [--check]');
    process.exit(0);
  }
  for (const k of values.keys()) if (!['size-gb', 'dir', 'repeats'].includes(k)) throw new Error(`unknown flag --${k}`);
  const sizeGb = Number(values.get('size-gb') ?? '1.1');
  if (!(sizeGb > 0) || !Number.isFinite(sizeGb)) throw new Error(`--size-gb must be a positive number, got "${values.get('size-gb')}"`);
  const repeats = Number(values.get('repeats') ?? '3');
  if (!Number.isInteger(repeats) || repeats < 1) throw new Error(`--repeats must be a positive integer, got "${values.get('repeats')}"`);
  const given = values.get('dir');
  const dir = path.resolve(given ?? path.join(os.homedir(), '.cache', 'upcycle-bench', `io-${sizeGb}`));
  return { sizeGb, dir, dirGiven: given !== undefined, repeats, check: flags.has('check') };
}

// ───────────────────────────── the checkpoint ─────────────────────────────

interface LlamaShape {
  hidden: number;
  intermediate: number;
  heads: number;
  kvHeads: number;
  vocab: number;
  layers: number;
}

function llamaPlan(s: LlamaShape): TensorPlan[] {
  const headDim = s.hidden / s.heads;
  const kv = s.kvHeads * headDim;
  const t = (name: string, shape: number[]): TensorPlan => ({ name, dtype: 'BF16', shape });
  const plan: TensorPlan[] = [t('model.embed_tokens.weight', [s.vocab, s.hidden])];
  for (let l = 0; l < s.layers; l++) {
    const p = `model.layers.${l}.`;
    plan.push(
      t(`${p}input_layernorm.weight`, [s.hidden]),
      t(`${p}self_attn.q_proj.weight`, [s.hidden, s.hidden]),
      t(`${p}self_attn.k_proj.weight`, [kv, s.hidden]),
      t(`${p}self_attn.v_proj.weight`, [kv, s.hidden]),
      t(`${p}self_attn.o_proj.weight`, [s.hidden, s.hidden]),
      t(`${p}post_attention_layernorm.weight`, [s.hidden]),
      t(`${p}mlp.gate_proj.weight`, [s.intermediate, s.hidden]),
      t(`${p}mlp.up_proj.weight`, [s.intermediate, s.hidden]),
      t(`${p}mlp.down_proj.weight`, [s.hidden, s.intermediate]),
    );
  }
  plan.push(t('model.norm.weight', [s.hidden]), t('lm_head.weight', [s.vocab, s.hidden]));
  return plan;
}

const planBytes = (plan: TensorPlan[]): number => plan.reduce((a, t) => a + t.shape.reduce((x, d) => x * d, 1) * 2, 0);

/** TinyLlama-like dimensions, with as many layers as it takes to reach the target size. */
function shapeFor(targetBytes: number): LlamaShape {
  const base: LlamaShape = { hidden: 2048, intermediate: 5632, heads: 32, kvHeads: 4, vocab: 32000, layers: 0 };
  const fixed = planBytes(llamaPlan(base));
  const perLayer = planBytes(llamaPlan({ ...base, layers: 1 })) - fixed;
  return { ...base, layers: Math.max(1, Math.ceil((targetBytes - fixed) / perLayer)) };
}

function llamaConfig(s: LlamaShape): Record<string, unknown> {
  return {
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    vocab_size: s.vocab,
    hidden_size: s.hidden,
    intermediate_size: s.intermediate,
    num_hidden_layers: s.layers,
    num_attention_heads: s.heads,
    num_key_value_heads: s.kvHeads,
    hidden_act: 'silu',
    max_position_embeddings: 2048,
    rms_norm_eps: 1e-5,
    rope_theta: 10000.0,
    tie_word_embeddings: false,
    attention_bias: false,
    mlp_bias: false,
    bos_token_id: 1,
    eos_token_id: 2,
    torch_dtype: 'bfloat16',
  };
}

interface Marker {
  version: number;
  layers: number;
  tensors: number;
  total_bytes: number;
}

/** Cheap pseudo-random BF16 weights: random sign and mantissa, magnitudes in [2^-8, 2^-4). */
function fillBf16(bytes: Uint8Array, seed: number, isNorm: boolean): void {
  const words = new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
  if (isNorm) {
    words.fill(0x3f803f80); // 1.0, as RMSNorm weights start
    return;
  }
  let x = seed >>> 0 || 0x9e3779b9;
  for (let i = 0; i < words.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    const lo = (x & 0x807f) | ((0x77 + ((x >>> 7) & 3)) << 7);
    const hi = ((x >>> 16) & 0x807f) | ((0x77 + ((x >>> 23) & 3)) << 7);
    words[i] = (lo | (hi << 16)) >>> 0;
  }
}

async function cacheIsValid(dir: string, plan: TensorPlan[], layers: number): Promise<boolean> {
  let marker: Marker;
  try {
    marker = JSON.parse(fs.readFileSync(path.join(dir, MARKER), 'utf8')) as Marker;
  } catch {
    return false;
  }
  const total = planBytes(plan);
  if (marker.version !== MARKER_VERSION || marker.layers !== layers || marker.tensors !== plan.length || marker.total_bytes !== total) return false;
  let ck: Checkpoint;
  try {
    ck = await Checkpoint.open(dir);
  } catch {
    return false;
  }
  try {
    const want = new Map(plan.map((t) => [t.name, t.shape.join('x')]));
    if (ck.names.length !== plan.length) return false;
    for (const n of ck.names) {
      const info = ck.info(n);
      if (info.dtype !== 'BF16' || want.get(n) !== info.shape.join('x')) return false;
    }
    const data = ck.files.reduce((a, f) => a + (f.size - f.header.dataStart), 0);
    return data === total && !ck.problems.some((p) => p.severity === 'error');
  } finally {
    await ck.close();
  }
}

async function generate(dir: string, shape: LlamaShape, plan: TensorPlan[]): Promise<number> {
  const t0 = performance.now();
  const out = await OutputFolder.create(dir, { overwrite: true });
  try {
    const w = await SafetensorsWriter.create(out, plan, { maxShardBytes: MAX_SHARD_BYTES });
    try {
      let done = 0;
      const total = planBytes(plan);
      for (const [i, t] of plan.entries()) {
        const bytes = new Uint8Array(t.shape.reduce((a, d) => a * d, 1) * 2);
        fillBf16(bytes, 0x1234567 + i * 7919, t.name.endsWith('norm.weight'));
        await w.write(t.name, bytes);
        done += bytes.byteLength;
        if (process.stderr.isTTY) process.stderr.write(`\rgenerating ${dir}: ${((100 * done) / total).toFixed(0)}%`);
      }
      await w.finish();
    } catch (e) {
      await w.close();
      throw e;
    }
    await out.writeFile('config.json', JSON.stringify(llamaConfig(shape), null, 2) + '\n');
    const marker: Marker = { version: MARKER_VERSION, layers: shape.layers, tensors: plan.length, total_bytes: planBytes(plan) };
    await out.writeFile(MARKER, JSON.stringify(marker) + '\n');
    await out.commit();
  } catch (e) {
    await out.abort();
    throw e;
  }
  if (process.stderr.isTTY) process.stderr.write('\n');
  return (performance.now() - t0) / 1000;
}

// ───────────────────────────── measurements ─────────────────────────────

interface Range {
  file: string;
  position: number;
  length: number;
}

interface Pass {
  seconds: number;
  bytes: number;
  /** XOR of one byte per tensor, so the reads cannot be optimised away and both passes agree. */
  check: number;
}

async function readerPass(dir: string): Promise<Pass> {
  const t0 = performance.now();
  const ck = await Checkpoint.open(dir);
  let bytes = 0;
  let check = 0;
  try {
    for (const name of ck.names) {
      const b = await ck.readBytes(name);
      bytes += b.byteLength;
      if (b.byteLength > 0) check ^= b[b.byteLength >>> 1]!;
    }
  } finally {
    await ck.close();
  }
  return { seconds: (performance.now() - t0) / 1000, bytes, check };
}

async function plainPass(ranges: Range[]): Promise<Pass> {
  const t0 = performance.now();
  const handles = new Map<string, Awaited<ReturnType<typeof openFile>>>();
  let bytes = 0;
  let check = 0;
  try {
    for (const r of ranges) {
      let fh = handles.get(r.file);
      if (!fh) {
        fh = await openFile(r.file, 'r');
        handles.set(r.file, fh);
      }
      const buf = Buffer.allocUnsafeSlow(r.length);
      let done = 0;
      while (done < r.length) {
        const { bytesRead } = await fh.read(buf, done, r.length - done, r.position + done);
        if (bytesRead === 0) throw new Error(`${r.file}: unexpected end of file at ${r.position + done}`);
        done += bytesRead;
      }
      bytes += r.length;
      if (r.length > 0) check ^= buf[r.length >>> 1]!;
    }
  } finally {
    for (const fh of handles.values()) await fh.close();
  }
  return { seconds: (performance.now() - t0) / 1000, bytes, check };
}

/** The exact (file, position, length) of every tensor, in the order the reader pass reads them. */
async function tensorRanges(dir: string): Promise<Range[]> {
  const ck = await Checkpoint.open(dir);
  try {
    return ck.names.map((n) => {
      const f = ck.fileOf(n);
      const t = ck.info(n);
      return { file: f.path, position: f.header.dataStart + t.begin, length: t.end - t.begin };
    });
  } finally {
    await ck.close();
  }
}

/** A full GC between timed passes, so neither method pays for the other's garbage. */
const collectGarbage: () => void = (() => {
  v8.setFlagsFromString('--expose-gc');
  const gc: unknown = vm.runInNewContext('gc');
  return typeof gc === 'function' ? () => void (gc as () => unknown)() : () => undefined;
})();

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const gbps = (p: Pass): number => p.bytes / p.seconds / 1e9;
const fmt = (x: number, d = 2): string => x.toFixed(d);

// ───────────────────────────── main ─────────────────────────────

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const shape = shapeFor(args.sizeGb * GIB);
  const plan = llamaPlan(shape);
  const totalBytes = planBytes(plan);

  let generatedSeconds: number | null = null;
  if (!(await cacheIsValid(args.dir, plan, shape.layers))) {
    if (fs.existsSync(args.dir) && args.dirGiven && !fs.existsSync(path.join(args.dir, MARKER))) {
      throw new Error(`${args.dir} exists and is not a benchmark checkpoint made by this script; refusing to overwrite it (pass another --dir)`);
    }
    generatedSeconds = await generate(args.dir, shape, plan);
    if (!(await cacheIsValid(args.dir, plan, shape.layers))) throw new Error(`${args.dir}: the generated checkpoint does not validate`);
  }

  const ranges = await tensorRanges(args.dir);
  const files = new Set(ranges.map((r) => r.file)).size;
  const rangeBytes = ranges.reduce((a, r) => a + r.length, 0);
  if (rangeBytes !== totalBytes) throw new Error(`tensor ranges cover ${rangeBytes} bytes, expected ${totalBytes}`);

  // Warm-up: one pass of each, so both methods see the same (warm) page cache.
  const warmR = await readerPass(args.dir);
  const warmP = await plainPass(ranges);
  if (warmR.check !== warmP.check || warmR.bytes !== warmP.bytes) throw new Error('reader and plain reads disagree on the data');

  const reader: Pass[] = [];
  const plain: Pass[] = [];
  for (let i = 0; i < args.repeats; i++) {
    // Alternate which method goes first.
    const runReader = async (): Promise<void> => {
      collectGarbage();
      reader.push(await readerPass(args.dir));
    };
    const runPlain = async (): Promise<void> => {
      collectGarbage();
      plain.push(await plainPass(ranges));
    };
    if (i % 2 === 0) {
      await runReader();
      await runPlain();
    } else {
      await runPlain();
      await runReader();
    }
  }

  const inspectMs: number[] = [];
  let inspection = await inspectCheckpoint(args.dir);
  for (let i = 0; i < args.repeats; i++) {
    const t0 = performance.now();
    inspection = await inspectCheckpoint(args.dir);
    inspectMs.push(performance.now() - t0);
  }

  const rG = reader.map(gbps);
  const pG = plain.map(gbps);
  const ratioBest = Math.max(...rG) / Math.max(...pG);
  const ratioMedian = median(rG) / median(pG);
  const peakRssMb = process.resourceUsage().maxRSS / 1024;
  const pass = ratioBest >= GOAL_RATIO;

  const rows: [string, string][] = [
    ['checkpoint', `${args.dir}${generatedSeconds !== null ? ` (generated in ${fmt(generatedSeconds, 1)} s)` : ' (cached)'}`],
    ['shape', `llama hidden ${shape.hidden}, intermediate ${shape.intermediate}, ${shape.layers} layers, vocab ${shape.vocab}, BF16`],
    ['size', `${fmt(totalBytes / GIB, 3)} GiB (${totalBytes.toLocaleString('en-US')} bytes) in ${ranges.length} tensors, ${files} shards`],
    ['passes', `1 warm-up each, then ${args.repeats} timed, alternating order`],
  ];
  const w = Math.max(...rows.map(([k]) => k.length));
  console.log(rows.map(([k, v]) => `${k.padEnd(w)}  ${v}`).join('\n'));
  console.log('');
  const table: string[][] = [
    ['method', 'best GB/s', 'median GB/s', 'runs (s)'],
    ['reader: Checkpoint.readBytes', fmt(Math.max(...rG)), fmt(median(rG)), reader.map((p) => fmt(p.seconds, 3)).join(' ')],
    ['plain: FileHandle.read', fmt(Math.max(...pG)), fmt(median(pG)), plain.map((p) => fmt(p.seconds, 3)).join(' ')],
    ['ratio reader/plain', fmt(ratioBest, 3), fmt(ratioMedian, 3), `goal ≥ ${GOAL_RATIO}: ${pass ? 'PASS' : 'FAIL'}`],
  ];
  const cw = table[0]!.map((_, c) => Math.max(...table.map((r) => r[c]!.length)));
  for (const r of table) console.log(r.map((cell, c) => (c === 0 || c === 3 ? cell.padEnd(cw[c]!) : cell.padStart(cw[c]!))).join('  ').trimEnd());
  console.log('');
  console.log(`inspectCheckpoint  ${fmt(Math.min(...inspectMs), 1)} ms best, ${fmt(median(inspectMs), 1)} ms median; read ${inspection.bytes_read.toLocaleString('en-US')} of ${inspection.total_bytes.toLocaleString('en-US')} bytes (${fmt((100 * inspection.bytes_read) / inspection.total_bytes, 4)}%)`);
  console.log(`peak RSS           ${fmt(peakRssMb, 0)} MiB`);

  const summary = {
    bench: 'io',
    dir: args.dir,
    generated: generatedSeconds !== null,
    generate_s: generatedSeconds === null ? null : Number(fmt(generatedSeconds, 2)),
    total_bytes: totalBytes,
    shards: files,
    tensors: ranges.length,
    layers: shape.layers,
    repeats: args.repeats,
    reader_gbps_best: Number(fmt(Math.max(...rG), 3)),
    reader_gbps_median: Number(fmt(median(rG), 3)),
    plain_gbps_best: Number(fmt(Math.max(...pG), 3)),
    plain_gbps_median: Number(fmt(median(pG), 3)),
    ratio_best: Number(fmt(ratioBest, 3)),
    ratio_median: Number(fmt(ratioMedian, 3)),
    goal_ratio: GOAL_RATIO,
    pass,
    inspect_ms_best: Number(fmt(Math.min(...inspectMs), 2)),
    inspect_ms_median: Number(fmt(median(inspectMs), 2)),
    inspect_bytes_read: inspection.bytes_read,
    inspect_total_bytes: inspection.total_bytes,
    peak_rss_mb: Number(fmt(peakRssMb, 1)),
  };
  console.log(JSON.stringify(summary));
  if (args.check && !pass) process.exitCode = 1;
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? (e.stack ?? e.message) : String(e));
  process.exitCode = 1;
});
