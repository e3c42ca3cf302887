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
import { open as openFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import v8 from 'node:v8';
import vm from 'node:vm';
import { Checkpoint } from '../../app/io/checkpoint.js';
import { inspectCheckpoint } from '../../app/io/inspect.js';
import { benchArgs } from './bench-args.js';
import { ensureCheckpoint, fillBf16, GIB, llamaPlan, planBytes, shapeFor } from './gen-checkpoint.js';

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
  const a = benchArgs(argv, 'usage: node build/test/bench/io.bench.js [--size-gb 1.1] [--dir PATH] [--repeats 3] [--check]', ['size-gb', 'dir', 'repeats'], ['check']);
  const sizeGb = a.num('size-gb', 1.1);
  const given = a.values['dir'];
  const dir = path.resolve(given ?? path.join(os.homedir(), '.cache', 'upcycle-bench', `io-${sizeGb}`));
  return { sizeGb, dir, dirGiven: given !== undefined, repeats: a.num('repeats', 3, { integer: true }), check: a.flags.has('check') };
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

  const generatedSeconds = await ensureCheckpoint(args.dir, shape, plan, {
    maxShardBytes: MAX_SHARD_BYTES,
    dirGiven: args.dirGiven,
    fill: (t, i, bytes) => fillBf16(bytes, 0x1234567 + i * 7919, t.name.endsWith('norm.weight')),
  });

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
