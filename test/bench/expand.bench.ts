/**
 * Expansion benchmark (`npm run bench:expand`): one generation of UpIT's genetic expansion on
 * generated Llama-shaped BF16 experts of ≥ 1 GiB each, against a raw I/O baseline, plus how the
 * task-vector similarity scales with the number of parameters sampled.
 *
 * Inputs (generated once with gen-checkpoint.ts, cached under ~/.cache/upcycle-bench/expand-<size>-*):
 * a base and three "checkpoints of one fine-tuning run": ft1 = base moved by a few BF16 steps per
 * value, ft2 = ft1 moved again, ft3 = ft2 moved again, so their task vectors are correlated like
 * intermediate checkpoints (cos(ft1, ft3) < cos(ft2, ft3)).
 *
 * Each variant runs in its own process (this file with --child) so its peak RSS is its own:
 *   raw         read base + two experts, write an output of the same size (same reader and writer,
 *               two lanes): exactly the bytes one candidate merge moves, with no maths
 *   generation  runExpansion from K = 3 to M = 4 experts with N candidates (default 2): similarity
 *               of the pool, N dare_linear merges (default density 0.9) of the most dissimilar pair, similarity
 *               of the candidates, keep one (originals: reference, so nothing is copied)
 *   similarity  taskVectorDots of the three experts (all 6 pairs) at each sample size
 * Goals, as for merging: candidate merges ≥ 0.7× raw GB/s ((bytes read + written) / time), peak RSS
 * of the generation < 1.5 GiB. Outputs go to /dev/shm when it has room (the final fsync is free).
 *
 *   node build/test/bench/expand.bench.js [--size-gb 1.1] [--dir PATH] [--out-dir PATH] [--candidates 2]
 *        [--samples 10000,100000,1000000,10000000,0] [--repeats 1] [--check]
 * --repeats N alternates raw and generation N times and reports the best of each (and the median ratio).
 * Prints a compact report, then one line of JSON.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseExpandConfig } from '../../app/expand/config.js';
import { runExpansion } from '../../app/expand/run.js';
import { cosineOf, planSample, type Pair } from '../../app/expand/similarity.js';
import { similarityTensors, taskVectorDots } from '../../app/expand/task-vectors.js';
import { Checkpoint } from '../../app/io/checkpoint.js';
import { OutputFolder } from '../../app/io/output-folder.js';
import { SafetensorsWriter } from '../../app/io/safetensors-writer.js';
import { ensureCheckpoint, fillBf16, GIB, llamaPlan, perturbBf16, planBytes, shapeFor } from './gen-checkpoint.js';

const GOALS = { mergeVsRaw: 0.7, rssBytes: 1.5 * GIB };
const ROLES = ['base', 'ft1', 'ft2', 'ft3'] as const;
const GEN_VERSION = 1;
const SHARD_BYTES = 300_000_000;

// ───────────────────────────── arguments ─────────────────────────────

interface Args {
  sizeGb: number;
  dir: string;
  outDir: string;
  outOnTmpfs: boolean;
  candidates: number;
  samples: number[];
  repeats: number;
  check: boolean;
}

function parseCli(argv: string[]): Args {
  const values = new Map<string, string>();
  const flags = new Set<string>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith('--')) throw new Error(`unexpected argument "${a}"`);
    const eq = a.indexOf('=');
    if (eq > 0) values.set(a.slice(2, eq), a.slice(eq + 1));
    else if (['--check', '--help'].includes(a)) flags.add(a.slice(2));
    else {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      values.set(a.slice(2), v);
    }
  }
  if (flags.has('help')) {
    console.log('usage: node build/test/bench/expand.bench.js [--size-gb 1.1] [--dir PATH] [--out-dir PATH] [--candidates 2] [--samples 10000,100000,1000000,10000000,0] [--repeats 1] [--check]');
    process.exit(0);
  }
  for (const k of values.keys()) if (!['size-gb', 'dir', 'out-dir', 'candidates', 'samples', 'repeats'].includes(k)) throw new Error(`unknown flag --${k}`);
  const repeats = Number(values.get('repeats') ?? '1');
  if (!Number.isInteger(repeats) || repeats < 1) throw new Error('--repeats must be a positive integer');
  const sizeGb = Number(values.get('size-gb') ?? '1.1');
  if (!(sizeGb > 0) || !Number.isFinite(sizeGb)) throw new Error(`--size-gb must be a positive number, got "${values.get('size-gb')}"`);
  const candidates = Number(values.get('candidates') ?? '2');
  if (!Number.isInteger(candidates) || candidates < 1) throw new Error('--candidates must be a positive integer');
  const samples = (values.get('samples') ?? '10000,100000,1000000,10000000,0').split(',').map((s) => Number(s.trim()));
  if (!samples.every((s) => Number.isSafeInteger(s) && s >= 0)) throw new Error('--samples must be non-negative integers (0 = all)');
  const dir = path.resolve(values.get('dir') ?? path.join(os.homedir(), '.cache', 'upcycle-bench'));
  const shm = '/dev/shm';
  const outOnTmpfs = !values.has('out-dir') && fs.existsSync(shm) && fs.statfsSync(shm).bavail * fs.statfsSync(shm).bsize > (candidates + 2) * sizeGb * GIB;
  const outDir = path.resolve(values.get('out-dir') ?? (outOnTmpfs ? shm : dir));
  return { sizeGb, dir, outDir, outOnTmpfs, candidates, samples, repeats, check: flags.has('check') };
}

// ───────────────────────────── child variants ─────────────────────────────

interface RawResult {
  variant: 'raw';
  seconds: number;
  bytes_read: number;
  bytes_written: number;
  max_rss_bytes: number;
}

interface GenerationResult {
  variant: 'generation';
  seconds: number;
  /** Per similarity pass: seconds and bytes read (pass 0 = the pool, 1 = the candidates). */
  similarity: { seconds: number; bytes_read: number }[];
  merges: { seconds: number; bytes: number }[];
  sampled: number;
  parents: string[];
  kept: string;
  max_rss_bytes: number;
}

interface SimilarityResult {
  variant: 'similarity';
  runs: { sample_size: number; sampled: number; seconds: number; bytes_read: number; cos: number[] }[];
  max_rss_bytes: number;
}

type ChildResult = RawResult | GenerationResult | SimilarityResult;

const rss = () => process.resourceUsage().maxRSS * 1024;

/** Reads every tensor of `inputs` and writes the first input's bytes to an output of the same layout. */
async function rawCopy(outDir: string, inputs: string[]): Promise<RawResult> {
  const t0 = performance.now();
  const cks: Checkpoint[] = [];
  let out: OutputFolder | undefined;
  let writer: SafetensorsWriter | undefined;
  try {
    for (const p of inputs) cks.push(await Checkpoint.open(p));
    const ref = cks[0]!;
    const names = ref.names;
    out = await OutputFolder.create(outDir, { overwrite: true });
    writer = await SafetensorsWriter.create(out, names.map((n) => ({ name: n, dtype: 'BF16', shape: ref.info(n).shape })), { maxShardBytes: SHARD_BYTES });
    const w = writer;
    let next = 0;
    let read = 0;
    const lane = async () => {
      while (next < names.length) {
        const name = names[next++]!;
        let first: Uint8Array | undefined;
        for (const ck of cks) {
          const b = await ck.readBytes(name);
          read += b.byteLength;
          first ??= b;
        }
        await w.write(name, first!);
      }
    };
    await Promise.all([lane(), lane()]);
    await w.finish();
    await out.writeFile('config.json', fs.readFileSync(path.join(inputs[0]!, 'config.json')));
    await out.commit();
    return { variant: 'raw', seconds: (performance.now() - t0) / 1000, bytes_read: read, bytes_written: w.bytesWritten, max_rss_bytes: rss() };
  } catch (e) {
    await writer?.close();
    await out?.abort();
    throw e;
  } finally {
    await Promise.all(cks.map((c) => c.close()));
  }
}

async function generation(outDir: string, inputs: string[], candidates: number): Promise<GenerationResult> {
  const recipe = parseExpandConfig({ base_model: inputs[0], models: inputs.slice(1), num_experts: inputs.length, candidates, seed: 1, originals: 'reference' }, '/');
  const r = await runExpansion(recipe, outDir, { overwrite: true, shardBytes: SHARD_BYTES });
  const g = r.log.generations[0]!;
  return {
    variant: 'generation',
    seconds: r.seconds,
    similarity: r.log.timings.similarity.map((s) => ({ seconds: s.seconds, bytes_read: s.bytes_read })),
    merges: r.log.timings.merges.map((m) => ({ seconds: m.seconds, bytes: m.bytes })),
    sampled: r.log.sampling.sampled_parameters,
    parents: g.parents.names,
    kept: g.kept.name,
    max_rss_bytes: rss(),
  };
}

async function similarity(inputs: string[], samples: number[]): Promise<SimilarityResult> {
  const base = await Checkpoint.open(inputs[0]!);
  const tensors = similarityTensors(base, 'all');
  await base.close();
  const pairs: Pair[] = [[0, 0], [1, 1], [2, 2], [0, 1], [0, 2], [1, 2]];
  const runs: SimilarityResult['runs'] = [];
  for (const s of samples) {
    const plan = planSample(tensors, s, 1);
    const r = await taskVectorDots(inputs[0]!, inputs.slice(1), plan, pairs);
    const cos = [cosineOf(r.sums[3]!, r.sums[0]!, r.sums[1]!), cosineOf(r.sums[4]!, r.sums[0]!, r.sums[2]!), cosineOf(r.sums[5]!, r.sums[1]!, r.sums[2]!)];
    runs.push({ sample_size: s, sampled: plan.sampledParameters, seconds: r.seconds, bytes_read: r.bytesRead, cos });
  }
  return { variant: 'similarity', runs, max_rss_bytes: rss() };
}

async function child(argv: string[]): Promise<void> {
  const a = new Map<string, string>();
  for (let i = 0; i < argv.length; i += 2) a.set(argv[i]!.replace(/^--/, ''), argv[i + 1]!);
  const inputs = a.get('inputs')!.split(',');
  const v = a.get('child');
  let r: ChildResult;
  if (v === 'raw') r = await rawCopy(a.get('out')!, inputs.slice(0, 3));
  else if (v === 'generation') r = await generation(a.get('out')!, inputs, Number(a.get('candidates')));
  else if (v === 'similarity') r = await similarity(inputs, a.get('samples')!.split(',').map(Number));
  else throw new Error(`unknown child variant ${v}`);
  console.log(JSON.stringify(r));
}

function runChild(args: string[]): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    const c = spawn(process.execPath, [fileURLToPath(import.meta.url), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    c.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    c.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    c.on('error', reject);
    c.on('close', (code) => {
      const last = stdout.trim().split('\n').at(-1) ?? '';
      if (code !== 0 || !last.startsWith('{')) reject(new Error(`${args[1]} child failed (exit ${code}): ${stderr.trim().split('\n').slice(-5).join('\n')}`));
      else resolve(JSON.parse(last) as ChildResult);
    });
  });
}

// ───────────────────────────── main ─────────────────────────────

function warm(dirs: string[]): number {
  const buf = Buffer.allocUnsafe(64 * 2 ** 20);
  let n = 0;
  for (const d of dirs) {
    for (const f of fs.readdirSync(d)) {
      if (!f.endsWith('.safetensors')) continue;
      const fd = fs.openSync(path.join(d, f), 'r');
      try {
        let r: number;
        while ((r = fs.readSync(fd, buf, 0, buf.length, null)) > 0) n += r;
      } finally {
        fs.closeSync(fd);
      }
    }
  }
  return n;
}

const fmt = (x: number, d = 2): string => x.toFixed(d);
const mib = (b: number): string => `${fmt(b / 2 ** 20, 0)} MiB`;

async function main(): Promise<void> {
  const args = parseCli(process.argv.slice(2));
  const shape = shapeFor(args.sizeGb * GIB);
  const plan = llamaPlan(shape);
  const totalBytes = planBytes(plan);
  const inputs = ROLES.map((r) => path.join(args.dir, `expand-${args.sizeGb}-${r}`));
  const generated: string[] = [];
  for (const [k, role] of ROLES.entries()) {
    const s = await ensureCheckpoint(inputs[k]!, shape, plan, {
      maxShardBytes: SHARD_BYTES,
      label: inputs[k],
      extra: { bench: 'expand', role, gen: GEN_VERSION },
      fill: (t, i, bytes) => {
        fillBf16(bytes, 0x1234567 + i * 7919, t.name.endsWith('norm.weight'));
        for (let step = 1; step <= k; step++) perturbBf16(bytes, 0x51ed270b * step + i * 104729); // ft_k = ft_{k−1} moved again
      },
    });
    if (s !== null) generated.push(`${role} ${fmt(s, 1)} s`);
  }
  const warmed = warm(inputs);
  fs.mkdirSync(args.outDir, { recursive: true });
  const out = (v: string) => path.join(args.outDir, `upcycle-bench-expand-${process.pid}-${v}`);

  // raw and generation alternate (--repeats times: the machine's load changes under both alike); the
  // best of each is reported (the steadier figure on a shared machine), then the similarity runs.
  const run = async (v: 'raw' | 'generation' | 'similarity') => {
    try {
      return await runChild(['--child', v, '--out', out(v), '--inputs', inputs.join(','), '--candidates', String(args.candidates), '--samples', args.samples.join(',')]);
    } finally {
      fs.rmSync(out(v), { recursive: true, force: true });
    }
  };
  const raws: RawResult[] = [];
  const gens: GenerationResult[] = [];
  const loads: number[] = [os.loadavg()[0]!];
  for (let r = 0; r < args.repeats; r++) {
    raws.push((await run('raw')) as RawResult);
    gens.push((await run('generation')) as GenerationResult);
    loads.push(os.loadavg()[0]!);
  }
  const sim = (await run('similarity')) as SimilarityResult;
  const raw = raws.reduce((a, b) => (b.seconds < a.seconds ? b : a));
  const mergeSeconds = (g: GenerationResult) => g.merges.reduce((a, m) => a + m.seconds, 0);
  const gen = gens.reduce((a, b) => (mergeSeconds(b) < mergeSeconds(a) ? b : a));
  const rawMedian = [...raws].sort((a, b) => a.seconds - b.seconds)[raws.length >> 1]!;
  const genMedian = [...gens].sort((a, b) => mergeSeconds(a) - mergeSeconds(b))[gens.length >> 1]!;
  const rawG = (raw.bytes_read + raw.bytes_written) / raw.seconds / 1e9;
  const mergeG = gen.merges.map((m) => m.bytes / m.seconds / 1e9);
  const bestMerge = Math.max(...mergeG);
  const meanMerge = gen.merges.reduce((a, m) => a + m.bytes, 0) / gen.merges.reduce((a, m) => a + m.seconds, 0) / 1e9;
  const genBytes = gen.merges.reduce((a, m) => a + m.bytes, 0) + gen.similarity.reduce((a, s) => a + s.bytes_read, 0);
  const genG = genBytes / gen.seconds / 1e9;

  const rows: [string, string][] = [
    ['inputs', `${inputs.join(', ')} (${generated.length ? `generated: ${generated.join(', ')}` : 'cached'})`],
    ['shape', `llama hidden ${shape.hidden}, intermediate ${shape.intermediate}, ${shape.layers} layers, vocab ${shape.vocab}, BF16; ${fmt(totalBytes / GIB, 3)} GiB and ${(totalBytes / 2 / 1e6).toFixed(0)} M parameters each`],
    ['output', `${args.outDir}${args.outOnTmpfs ? ' (tmpfs)' : ''}`],
    ['machine', `${os.cpus().length} cores, ${fmt(os.totalmem() / GIB, 0)} GiB, node ${process.versions.node}; page cache warmed (${fmt(warmed / GIB, 2)} GiB read)`],
  ];
  const kw = Math.max(...rows.map(([k]) => k.length));
  console.log(rows.map(([k, v]) => `${k.padEnd(kw)}  ${v}`).join('\n'));
  console.log('');
  const medianRatio = (genMedian.merges.reduce((a, m) => a + m.bytes, 0) / mergeSeconds(genMedian)) / ((rawMedian.bytes_read + rawMedian.bytes_written) / rawMedian.seconds);
  if (args.repeats > 1) {
    console.log(`${args.repeats} alternating runs, best of each below; raw ${raws.map((x) => fmt(x.seconds)).join(' / ')} s, candidate merges ${gens.map((g) => fmt(mergeSeconds(g))).join(' / ')} s; median merges/raw ${fmt(medianRatio, 3)}×; 1-min load average ${loads.map((l) => fmt(l, 1)).join(' → ')}`);
  }
  console.log(`raw I/O (read 3 inputs, write 1): ${fmt(raw.seconds)} s, ${fmt(rawG)} GB/s, peak RSS ${mib(raw.max_rss_bytes)}`);
  console.log(`one generation (K=3 → 4, ${args.candidates} candidates, similarity on ${gen.sampled.toLocaleString('en-US')} parameters): ${fmt(gen.seconds)} s, ${fmt(genG)} GB/s overall (${fmt(genG / rawG, 3)}× raw), peak RSS ${mib(gen.max_rss_bytes)}`);
  gen.merges.forEach((m, i) => console.log(`  candidate ${i + 1} merge: ${fmt(m.seconds)} s, ${fmt(mergeG[i]!)} GB/s = ${fmt(mergeG[i]! / rawG, 3)}× raw`));
  gen.similarity.forEach((s, i) => console.log(`  similarity ${i === 0 ? 'of the pool' : 'of the candidates'}: ${fmt(s.seconds, 3)} s, ${mib(s.bytes_read)} read`));
  console.log(`  parents ${gen.parents.join(' × ')}, kept ${gen.kept}`);
  console.log('');
  console.log('similarity of 3 experts (6 dot products) vs parameters sampled:');
  const full = sim.runs.find((r) => r.sample_size === 0);
  const table = [['sample_size', 'sampled', 'seconds', 'read', 'ns/param', 'cos(ft1,ft2) cos(ft1,ft3) cos(ft2,ft3)', 'max |Δcos| vs all']];
  for (const r of sim.runs) {
    const err = full ? Math.max(...r.cos.map((c, i) => Math.abs(c - full.cos[i]!))) : NaN;
    table.push([r.sample_size === 0 ? 'all' : String(r.sample_size), String(r.sampled), fmt(r.seconds, 3), mib(r.bytes_read), fmt((r.seconds * 1e9) / r.sampled, 1), r.cos.map((c) => fmt(c, 4)).join(' '), full ? err.toExponential(1) : '']);
  }
  const cw = table[0]!.map((_, c) => Math.max(...table.map((r) => r[c]!.length)));
  for (const r of table) console.log(r.map((cell, c) => (c === 5 ? cell.padEnd(cw[c]!) : cell.padStart(cw[c]!))).join('  '));
  console.log(`  peak RSS of the similarity runs: ${mib(sim.max_rss_bytes)}`);

  const goals = { merge_vs_raw: meanMerge / rawG >= GOALS.mergeVsRaw, rss: Math.max(...gens.map((g) => g.max_rss_bytes)) < GOALS.rssBytes };
  console.log('');
  console.log(`goals: candidate merges ≥ ${GOALS.mergeVsRaw}× raw: ${goals.merge_vs_raw ? 'PASS' : 'FAIL'} (${fmt(meanMerge / rawG, 3)}×, best ${fmt(bestMerge / rawG, 3)}×); peak RSS < 1.5 GiB: ${goals.rss ? 'PASS' : 'FAIL'} (${mib(Math.max(...gens.map((g) => g.max_rss_bytes)))}, the highest of the runs)`);
  const summary = {
    bench: 'expand',
    size_gib_each: Number(fmt(totalBytes / GIB, 3)),
    parameters_each: totalBytes / 2,
    candidates: args.candidates,
    repeats: args.repeats,
    load_average: loads.map((l) => Number(fmt(l, 2))),
    out_tmpfs: args.outOnTmpfs,
    raw_s: Number(fmt(raw.seconds, 3)),
    raw_gbps: Number(fmt(rawG, 3)),
    generation_s: Number(fmt(gen.seconds, 3)),
    generation_gbps: Number(fmt(genG, 3)),
    generation_vs_raw: Number(fmt(genG / rawG, 3)),
    merge_gbps: Number(fmt(meanMerge, 3)),
    merge_vs_raw: Number(fmt(meanMerge / rawG, 3)),
    merge_vs_raw_median: Number(fmt(medianRatio, 3)),
    generation_rss_max_mib: Number(fmt(Math.max(...gens.map((g) => g.max_rss_bytes)) / 2 ** 20, 0)),
    generation_rss_mib: Number(fmt(gen.max_rss_bytes / 2 ** 20, 0)),
    similarity: sim.runs.map((r) => ({ sample_size: r.sample_size, sampled: r.sampled, s: Number(fmt(r.seconds, 3)), read_mib: Number(fmt(r.bytes_read / 2 ** 20, 1)) })),
    goals,
    pass: Object.values(goals).every(Boolean),
  };
  console.log(JSON.stringify(summary));
  if (args.check && !summary.pass) process.exitCode = 1;
}

const entry = process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href;
if (entry) {
  const run = process.argv.includes('--child') ? child(process.argv.slice(2)) : main();
  run.catch((e: unknown) => {
    console.error(e instanceof Error ? (e.stack ?? e.message) : String(e));
    process.exitCode = 1;
  });
}
