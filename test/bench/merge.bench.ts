/**
 * Merge benchmark (`npm run bench:merge`): the merge engine against a raw I/O baseline, side by side in
 * one run, on three Llama-shaped BF16 checkpoints of ≥ 1 GiB each in several shards: a base and two
 * "fine-tunes" (the base moved by a few BF16 steps per value), so task vectors are meaningful.
 *
 * The checkpoints are generated once (gen-checkpoint.ts) and cached under
 * ~/.cache/upcycle-bench/merge-<size>-{base,ft1,ft2}. Their pages are read once (warm page cache),
 * then each variant runs in its own child process (merge-child.ts) so its peak RSS is its own:
 *   raw     read every tensor of the three inputs, write an output of the same size (same writer)
 *   linear  runMerge, linear over base + ft1 + ft2 (weights 1, normalize), bf16 out
 *   ties    runMerge, ties over base with ft1, ft2 (weight 1, density 0.5, normalize), bf16 out
 *   mergekit-linear / mergekit-ties  the same YAML with mergekit-yaml (CPU), when a Python venv with
 *           mergekit is found via scripts/python-oracle.sh (its last stdout line is the venv python)
 * Goals: linear/raw ≥ 0.7 and ties/raw ≥ 0.4 in GB/s ((bytes read + written) / wall time), peak RSS
 * of each engine variant < 1.5 GiB. After each merge a few tensors of the output are checked against
 * the method applied to the whole input tensors: bit for bit for our engine; for mergekit the share
 * of equal values is reported (its top-k breaks ties among equal magnitudes differently).
 * Wall time depends on what else the machine runs; the CPU column (user + system, all threads) is
 * steadier.
 *
 * Outputs go to a tmpfs (/dev/shm) by default, so the fsync at the end of a merge costs nothing and
 * the numbers measure the engine, not the disk; --out-dir puts them elsewhere (e.g. on disk).
 *
 *   node build/test/bench/merge.bench.js [--size-gb 1.1] [--dir PATH] [--out-dir PATH] [--repeats 1]
 *        [--shard-mb 300] [--variants raw,linear,ties] [--no-mergekit] [--check]
 * --check exits 1 when a goal is missed. Prints a compact table, then one line of JSON.
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify as toYaml } from 'yaml';
import { fromFloat32, toFloat32 } from '../../app/core/dtypes.js';
import { getMergeMethod, tensorRng } from '../../app/core/merge/index.js';
import { Checkpoint } from '../../app/io/checkpoint.js';
import { benchArgs } from './bench-args.js';
import { ensureCheckpoint, fillBf16, GIB, llamaPlan, perturbBf16, planBytes, shapeFor } from './gen-checkpoint.js';
import { mergeConfig, type ChildResult, type Variant } from './merge-child.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(here, '..', '..', '..');
const GOALS = { linear: 0.7, ties: 0.4, rssBytes: 1.5 * GIB };
const ROLES = ['base', 'ft1', 'ft2'] as const;
const GEN_VERSION = 1;

// ───────────────────────────── arguments ─────────────────────────────

interface Args {
  sizeGb: number;
  dir: string;
  outDir: string;
  outOnTmpfs: boolean;
  repeats: number;
  shardBytes: number;
  variants: Variant[];
  mergekit: boolean;
  check: boolean;
}

function parseArgs(argv: string[]): Args {
  const a = benchArgs(argv, 'usage: node build/test/bench/merge.bench.js [--size-gb 1.1] [--dir PATH] [--out-dir PATH] [--repeats 1] [--shard-mb 300] [--variants raw,linear,ties] [--no-mergekit] [--check]', ['size-gb', 'dir', 'out-dir', 'repeats', 'shard-mb', 'variants'], ['check', 'no-mergekit']);
  const sizeGb = a.num('size-gb', 1.1);
  const variants = (a.values['variants'] ?? 'raw,linear,ties').split(',').map((v) => v.trim()) as Variant[];
  for (const v of variants) if (!['raw', 'linear', 'ties'].includes(v)) throw new Error(`unknown variant "${v}" (raw, linear, ties)`);
  const dir = path.resolve(a.values['dir'] ?? path.join(os.homedir(), '.cache', 'upcycle-bench'));
  const shm = '/dev/shm';
  const outOnTmpfs = a.values['out-dir'] === undefined && fs.existsSync(shm) && fs.statfsSync(shm).bavail * fs.statfsSync(shm).bsize > 4 * sizeGb * GIB;
  const outDir = path.resolve(a.values['out-dir'] ?? (outOnTmpfs ? shm : dir));
  return { sizeGb, dir, outDir, outOnTmpfs, repeats: a.num('repeats', 1, { integer: true }), shardBytes: Math.round(a.num('shard-mb', 300) * 1e6), variants, mergekit: !a.flags.has('no-mergekit'), check: a.flags.has('check') };
}

// ───────────────────────────── helpers ─────────────────────────────

const fmt = (x: number, d = 2): string => x.toFixed(d);
const mib = (b: number): string => `${fmt(b / 2 ** 20, 0)} MiB`;

/** Reads every byte of the inputs once, so every variant starts with a warm page cache. */
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

function runChild(variant: Variant, out: string, inputs: string[], shardBytes: number): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(here, 'merge-child.js'), '--variant', variant, '--out', out, '--base', inputs[0]!, '--models', inputs.slice(1).join(','), '--shard-bytes', String(shardBytes)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      const last = stdout.trim().split('\n').at(-1) ?? '';
      if (code !== 0 || !last.startsWith('{')) reject(new Error(`${variant} child failed (exit ${code}): ${stderr.trim().split('\n').slice(-5).join('\n')}`));
      else resolve(JSON.parse(last) as ChildResult);
    });
  });
}

const SPOT_TENSORS = ['model.layers.0.input_layernorm.weight', 'model.layers.0.self_attn.k_proj.weight', 'model.layers.1.self_attn.v_proj.weight'];

interface Agreement {
  /** Tensors whose bytes equal the method applied to the whole input tensors. */
  identical: number;
  tensors: number;
  /** Over the spot-checked elements: fraction with equal BF16 bits, and the largest |difference|. */
  equalFraction: number;
  maxAbsDiff: number;
}

/**
 * A merged model's spot tensors against `method.merge` applied to the whole input tensors (and
 * rounded to BF16): for our engine every byte must agree; for mergekit this measures parity
 * (its top-k breaks ties differently, see select.ts).
 */
async function agreement(variant: 'linear' | 'ties', out: string, inputs: string[]): Promise<Agreement> {
  const cks = await Promise.all(inputs.map((p) => Checkpoint.open(p)));
  const res = await Checkpoint.open(out);
  const method = getMergeMethod(variant);
  const a: Agreement = { identical: 0, tensors: SPOT_TENSORS.length, equalFraction: 0, maxAbsDiff: 0 };
  let equal = 0;
  let total = 0;
  try {
    for (const name of SPOT_TENSORS) {
      const [b, ...ms] = await Promise.all(cks.map((c) => c.readF32(name)));
      const shape = res.info(name).shape;
      const merged = variant === 'linear'
        ? method.merge({ tensorName: name, shape, models: [b!, ...ms].map((t, i) => ({ id: inputs[i]!, tensor: t, params: { weight: 1 } })), globals: { normalize: true } })
        : method.merge({ tensorName: name, shape, base: { id: inputs[0]!, tensor: b! }, models: ms.map((t, i) => ({ id: inputs[i + 1]!, tensor: t, params: { weight: 1, density: 0.5 } })), globals: { normalize: true }, rng: tensorRng(0, name) });
      const want = fromFloat32(merged, 'BF16');
      const gotBytes = await res.readBytes(name);
      if (res.info(name).dtype === 'BF16' && Buffer.from(gotBytes).equals(Buffer.from(want))) a.identical++;
      const got = toFloat32(gotBytes, res.info(name).dtype as 'BF16');
      const w = toFloat32(want, 'BF16');
      for (let i = 0; i < w.length; i++) {
        if (Object.is(got[i], w[i])) equal++;
        a.maxAbsDiff = Math.max(a.maxAbsDiff, Math.abs(got[i]! - w[i]!));
      }
      total += w.length;
    }
  } finally {
    await res.close();
    await Promise.all(cks.map((c) => c.close()));
  }
  a.equalFraction = total > 0 ? equal / total : 0;
  return a;
}

// ───────────────────────────── mergekit ─────────────────────────────

interface MergekitResult {
  variant: string;
  seconds: number;
  cpu_s: number | null;
  max_rss_bytes: number | null;
  bytes_written: number;
  agreement: Agreement;
}

function findMergekit(): { bin: string; version: string } | { skipped: string } {
  const script = path.join(repoRoot, 'scripts', 'python-oracle.sh');
  if (!fs.existsSync(script)) return { skipped: 'scripts/python-oracle.sh does not exist' };
  const r = spawnSync('bash', [script], { encoding: 'utf8', timeout: 600_000 });
  if (r.status !== 0) return { skipped: `scripts/python-oracle.sh failed (exit ${r.status}): ${(r.stderr || r.stdout || '').trim().split('\n').at(-1)}` };
  const python = r.stdout.trim().split('\n').at(-1)?.trim() ?? '';
  if (!python || !fs.existsSync(python)) return { skipped: `scripts/python-oracle.sh printed no python path ("${python}")` };
  const bin = path.join(path.dirname(python), 'mergekit-yaml');
  if (!fs.existsSync(bin)) return { skipped: `no mergekit-yaml beside ${python}` };
  const v = spawnSync(python, ['-c', 'import importlib.metadata as m; print(m.version("mergekit"))'], { encoding: 'utf8' });
  return { bin, version: v.status === 0 ? v.stdout.trim() : '?' };
}

async function runMergekit(bin: string, variant: 'linear' | 'ties', inputs: string[], outRoot: string, shardBytes: number): Promise<MergekitResult> {
  const work = fs.mkdtempSync(path.join(outRoot, 'mergekit-'));
  try {
    const yamlPath = path.join(work, 'config.yml');
    fs.writeFileSync(yamlPath, toYaml(mergeConfig(variant, inputs[0]!, inputs.slice(1))));
    const out = path.join(work, 'out');
    const timeBin = fs.existsSync('/usr/bin/time') ? '/usr/bin/time' : null;
    const cmd = [bin, yamlPath, out, '--out-shard-size', `${Math.round(shardBytes / 1e6)}M`, '--no-copy-tokenizer', '--allow-crimes'];
    const t0 = performance.now();
    const r = timeBin
      ? spawnSync(timeBin, ['-v', ...cmd], { encoding: 'utf8', env: { ...process.env, HF_HUB_OFFLINE: '1', TRANSFORMERS_OFFLINE: '1' }, maxBuffer: 64 * 2 ** 20 })
      : spawnSync(cmd[0]!, cmd.slice(1), { encoding: 'utf8', env: { ...process.env, HF_HUB_OFFLINE: '1', TRANSFORMERS_OFFLINE: '1' }, maxBuffer: 64 * 2 ** 20 });
    const seconds = (performance.now() - t0) / 1000;
    if (r.status !== 0) throw new Error(`mergekit-yaml ${variant} failed (exit ${r.status}): ${(r.stderr ?? '').trim().split('\n').filter((l) => !/^\s+(Command being timed|User time|System time|Percent|Elapsed|Average|Maximum|Major|Minor|Voluntary|Involuntary|Swaps|File system|Socket|Signals|Page size|Exit status)/.test(l)).slice(-3).join(' | ')}`);
    const m = /Maximum resident set size \(kbytes\): (\d+)/.exec(r.stderr ?? '');
    const user = /User time \(seconds\): ([\d.]+)/.exec(r.stderr ?? '');
    const sys = /System time \(seconds\): ([\d.]+)/.exec(r.stderr ?? '');
    let written = 0;
    for (const f of fs.readdirSync(out)) if (f.endsWith('.safetensors')) written += fs.statSync(path.join(out, f)).size;
    return {
      variant: `mergekit-${variant}`, seconds, cpu_s: user && sys ? Number(user[1]) + Number(sys[1]) : null,
      max_rss_bytes: m ? Number(m[1]) * 1024 : null, bytes_written: written, agreement: await agreement(variant, out, inputs),
    };
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

// ───────────────────────────── main ─────────────────────────────

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const shape = shapeFor(args.sizeGb * GIB);
  const plan = llamaPlan(shape);
  const totalBytes = planBytes(plan);
  const inputs = ROLES.map((r) => path.join(args.dir, `merge-${args.sizeGb}-${r}`));

  const generated: Record<string, number | null> = {};
  for (const [k, role] of ROLES.entries()) {
    generated[role] = await ensureCheckpoint(inputs[k]!, shape, plan, {
      maxShardBytes: 300_000_000,
      label: inputs[k],
      extra: { bench: 'merge', role, gen: GEN_VERSION },
      fill: (t, i, bytes) => {
        fillBf16(bytes, 0x1234567 + i * 7919, t.name.endsWith('norm.weight'));
        if (k > 0) perturbBf16(bytes, 0x51ed270b * k + i * 104729);
      },
    });
  }
  const shards = fs.readdirSync(inputs[0]!).filter((f) => f.endsWith('.safetensors')).length;
  const warmed = warm(inputs);

  fs.mkdirSync(args.outDir, { recursive: true });
  const runs = new Map<Variant, ChildResult[]>();
  const checks: Record<string, string> = {};
  for (let rep = 0; rep < args.repeats; rep++) {
    for (const v of args.variants) {
      const out = path.join(args.outDir, `upcycle-bench-merge-${process.pid}-${v}`);
      try {
        const r = await runChild(v, out, inputs, args.shardBytes);
        runs.set(v, [...(runs.get(v) ?? []), r]);
        if (v !== 'raw' && rep === 0) {
          const a = await agreement(v, out, inputs);
          checks[v] = a.identical === a.tensors ? 'identical' : `DIFFERS (${a.identical}/${a.tensors} tensors identical)`;
        }
      } finally {
        fs.rmSync(out, { recursive: true, force: true });
      }
    }
  }

  const mk: MergekitResult[] = [];
  let mkNote: string;
  if (!args.mergekit) mkNote = 'skipped (--no-mergekit)';
  else {
    const found = findMergekit();
    if ('skipped' in found) mkNote = `skipped (${found.skipped})`;
    else {
      mkNote = `mergekit ${found.version} (${found.bin}), CPU, --out-shard-size ${Math.round(args.shardBytes / 1e6)}M`;
      for (const v of ['linear', 'ties'] as const) {
        try {
          mk.push(await runMergekit(found.bin, v, inputs, args.outDir, args.shardBytes));
        } catch (e) {
          mkNote += `; ${v}: failed (${(e as Error).message.slice(0, 300)})`;
        }
      }
    }
  }

  // ── report ──
  const best = (v: Variant): ChildResult | undefined => runs.get(v)?.reduce((a, b) => (b.seconds < a.seconds ? b : a));
  const peak = (v: Variant): number => Math.max(...(runs.get(v) ?? []).map((r) => r.max_rss_bytes));
  const gbpsOf = (r: { seconds: number; bytes_read: number; bytes_written: number }): number => (r.bytes_read + r.bytes_written) / r.seconds / 1e9;
  const raw = best('raw');
  const rawG = raw ? gbpsOf(raw) : null;
  const ratio = (v: Variant): number | null => {
    const r = best(v);
    return r && rawG ? gbpsOf(r) / rawG : null;
  };

  const rows: [string, string][] = [
    ['inputs', `${inputs.join(', ')}${ROLES.some((r) => generated[r] !== null) ? ` (generated: ${ROLES.map((r) => (generated[r] === null ? `${r} cached` : `${r} ${fmt(generated[r]!, 1)} s`)).join(', ')})` : ' (cached)'}`],
    ['shape', `llama hidden ${shape.hidden}, intermediate ${shape.intermediate}, ${shape.layers} layers, vocab ${shape.vocab}, BF16; ${fmt(totalBytes / GIB, 3)} GiB each in ${plan.length} tensors, ${shards} shards`],
    ['output', `${args.outDir}${args.outOnTmpfs ? ' (tmpfs: the final fsync is free; --out-dir to measure a disk)' : ''}, ${Math.round(args.shardBytes / 1e6)} MB shards, bf16`],
    ['machine', `${os.cpus().length} cores, ${fmt(os.totalmem() / GIB, 0)} GiB, node ${process.versions.node}; page cache warmed (${fmt(warmed / GIB, 2)} GiB read)`],
    ['runs', `${args.repeats} per variant, each in its own process (best time, highest peak RSS)`],
  ];
  const kw = Math.max(...rows.map(([k]) => k.length));
  console.log(rows.map(([k, v]) => `${k.padEnd(kw)}  ${v}`).join('\n'));
  console.log('');
  const cpuRatio = (cpu: number | null): string => (raw && cpu ? fmt(raw.cpu_s / cpu, 2) : '');
  const table: string[][] = [['variant', 'time s', 'CPU s', 'GB/s', 'vs raw', 'goal', 'CPU vs raw', 'peak RSS', 'RSS < 1.5 GiB', 'output check']];
  for (const v of args.variants) {
    const r = best(v)!;
    const q = ratio(v);
    const goal = v === 'raw' ? '' : `≥ ${GOALS[v]}: ${q !== null && q >= GOALS[v] ? 'PASS' : 'FAIL'}`;
    const rss = peak(v);
    table.push([v, fmt(r.seconds, 2), fmt(r.cpu_s, 1), fmt(gbpsOf(r)), q === null ? '' : fmt(q, 3), goal, cpuRatio(r.cpu_s), mib(rss), v === 'raw' ? '' : rss < GOALS.rssBytes ? 'PASS' : 'FAIL', checks[v] ?? '']);
  }
  for (const m of mk) {
    const g = (totalBytes * 3 + m.bytes_written) / m.seconds / 1e9;
    const ag = `${fmt(100 * m.agreement.equalFraction, 2)} % of spot values equal, max |Δ| ${m.agreement.maxAbsDiff.toPrecision(2)}`;
    table.push([m.variant, fmt(m.seconds, 2), m.cpu_s === null ? '?' : fmt(m.cpu_s, 1), fmt(g), rawG ? fmt(g / rawG, 3) : '', '', cpuRatio(m.cpu_s), m.max_rss_bytes === null ? '?' : mib(m.max_rss_bytes), '', ag]);
  }
  const cw = table[0]!.map((_, c) => Math.max(...table.map((r) => r[c]!.length)));
  for (const r of table) console.log(r.map((cell, c) => ([0, 5, 8, 9].includes(c) ? cell.padEnd(cw[c]!) : cell.padStart(cw[c]!))).join('  ').trimEnd());
  console.log('(CPU vs raw: raw CPU seconds / variant CPU seconds — less sensitive than wall time to other load on the machine)');
  console.log('');
  console.log(`mergekit: ${mkNote}`);
  const engine = best('linear') && best('ties') ? { linear: best('linear')!, ties: best('ties')! } : null;
  if (engine && mk.length > 0) {
    for (const m of mk) {
      const ours = m.variant === 'mergekit-linear' ? engine.linear : engine.ties;
      console.log(`  ${m.variant}: ours is ${fmt(m.seconds / ours.seconds, 2)}× faster`);
    }
  }

  const goalsMet = {
    linear: ratio('linear') === null ? null : ratio('linear')! >= GOALS.linear,
    ties: ratio('ties') === null ? null : ratio('ties')! >= GOALS.ties,
    rss: args.variants.filter((v) => v !== 'raw').every((v) => peak(v) < GOALS.rssBytes),
    identical: Object.values(checks).every((c) => c === 'identical'),
  };
  const summary = {
    bench: 'merge',
    size_gib_each: Number(fmt(totalBytes / GIB, 3)),
    layers: shape.layers,
    shards,
    out_tmpfs: args.outOnTmpfs,
    repeats: args.repeats,
    ...Object.fromEntries(args.variants.flatMap((v) => {
      const r = best(v)!;
      return [[`${v}_s`, Number(fmt(r.seconds, 3))], [`${v}_cpu_s`, Number(fmt(r.cpu_s, 2))], [`${v}_gbps`, Number(fmt(gbpsOf(r), 3))], [`${v}_rss_mib`, Number(fmt(peak(v) / 2 ** 20, 0))]];
    })),
    linear_vs_raw: ratio('linear') === null ? null : Number(fmt(ratio('linear')!, 3)),
    ties_vs_raw: ratio('ties') === null ? null : Number(fmt(ratio('ties')!, 3)),
    linear_vs_raw_cpu: raw && best('linear') ? Number(fmt(raw.cpu_s / best('linear')!.cpu_s, 3)) : null,
    ties_vs_raw_cpu: raw && best('ties') ? Number(fmt(raw.cpu_s / best('ties')!.cpu_s, 3)) : null,
    mergekit: mk.length > 0 ? Object.fromEntries(mk.map((m) => [m.variant, { s: Number(fmt(m.seconds, 2)), cpu_s: m.cpu_s, rss_mib: m.max_rss_bytes === null ? null : Number(fmt(m.max_rss_bytes / 2 ** 20, 0)), spot_equal: Number(fmt(m.agreement.equalFraction, 4)) }])) : mkNote,
    goals: goalsMet,
    pass: Object.values(goalsMet).every((g) => g !== false),
  };
  console.log(JSON.stringify(summary));
  if (args.check && !summary.pass) process.exitCode = 1;
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? (e.stack ?? e.message) : String(e));
  process.exitCode = 1;
});
