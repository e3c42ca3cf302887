/**
 * One variant of the merge benchmark, run in its own process so that its peak RSS is its own
 * (merge.bench.ts spawns it). Prints one line of JSON on stdout:
 *   {"variant", "seconds", "bytes_read", "bytes_written", "tensors", "max_rss_bytes", "vm_hwm_bytes"}
 *
 *   node build/test/bench/merge-child.js --variant raw|linear|ties --out DIR --base DIR --models DIR,DIR
 *        [--shard-bytes N] [--lanes N] [--workers N]
 *
 * raw    reads every tensor of every input (Checkpoint.readBytes) and writes the base's bytes to an
 *        output of the same layout with the same writer (SafetensorsWriter, fsync on finish), no
 *        maths; `--lanes` tensors in flight (default 2, like the engine's two worker threads).
 * linear runMerge: linear, weight 1 each over base + models (normalize), bf16 out.
 * ties   runMerge: ties over base, weight 1 and density 0.5 per model (normalize), bf16 out.
 */
import fs from 'node:fs';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { Checkpoint } from '../../app/io/checkpoint.js';
import { OutputFolder } from '../../app/io/output-folder.js';
import { SafetensorsWriter } from '../../app/io/safetensors-writer.js';
import { parseMergeConfig } from '../../app/merge/config.js';
import { runMerge } from '../../app/merge/execute.js';

export type Variant = 'raw' | 'linear' | 'ties';

export interface ChildResult {
  variant: Variant;
  seconds: number;
  bytes_read: number;
  bytes_written: number;
  tensors: number;
  /** User + system CPU time of the whole process (all threads), seconds. */
  cpu_s: number;
  max_rss_bytes: number;
  vm_hwm_bytes: number | null;
}

/** The mergekit YAML of a variant (our engine parses the same document mergekit-yaml reads). */
export function mergeConfig(variant: 'linear' | 'ties', base: string, models: string[]): Record<string, unknown> {
  if (variant === 'linear') {
    return { merge_method: 'linear', models: [base, ...models].map((m) => ({ model: m, parameters: { weight: 1.0 } })), parameters: { normalize: true }, dtype: 'float32', out_dtype: 'bfloat16' };
  }
  return {
    merge_method: 'ties',
    base_model: base,
    models: models.map((m) => ({ model: m, parameters: { weight: 1.0, density: 0.5 } })),
    parameters: { normalize: true },
    dtype: 'float32',
    out_dtype: 'bfloat16',
  };
}

function args(argv: string[]): Map<string, string> {
  const m = new Map<string, string>();
  for (let i = 0; i < argv.length; i += 2) {
    const k = argv[i]!;
    const v = argv[i + 1];
    if (!k.startsWith('--') || v === undefined) throw new Error(`bad arguments near "${k}"`);
    m.set(k.slice(2), v);
  }
  return m;
}

async function raw(outDir: string, inputs: string[], shardBytes: number, lanes: number): Promise<{ read: number; written: number; tensors: number }> {
  const cks: Checkpoint[] = [];
  let out: OutputFolder | undefined;
  let writer: SafetensorsWriter | undefined;
  try {
    for (const p of inputs) cks.push(await Checkpoint.open(p));
    const ref = cks[0]!;
    const names = ref.names;
    out = await OutputFolder.create(outDir, { overwrite: true });
    writer = await SafetensorsWriter.create(out, names.map((n) => ({ name: n, dtype: ref.info(n).dtype as 'BF16', shape: ref.info(n).shape })), { maxShardBytes: shardBytes });
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
    await Promise.all(Array.from({ length: lanes }, lane));
    await w.finish();
    await out.writeFile('config.json', fs.readFileSync(`${inputs[0]}/config.json`));
    await out.commit();
    return { read, written: w.bytesWritten, tensors: names.length };
  } catch (e) {
    await writer?.close();
    await out?.abort();
    throw e;
  } finally {
    await Promise.all(cks.map((c) => c.close()));
  }
}

function vmHwm(): number | null {
  try {
    const m = /VmHWM:\s+(\d+)\s+kB/.exec(fs.readFileSync('/proc/self/status', 'utf8'));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

async function main(): Promise<void> {
  const a = args(process.argv.slice(2));
  const variant = a.get('variant') as Variant;
  const outDir = a.get('out')!;
  const base = a.get('base')!;
  const models = (a.get('models') ?? '').split(',').filter(Boolean);
  const shardBytes = Number(a.get('shard-bytes') ?? 5e9);
  const lanes = Number(a.get('lanes') ?? 2);
  const workers = a.has('workers') ? Number(a.get('workers')) : undefined;
  if (!['raw', 'linear', 'ties'].includes(variant) || !outDir || !base) throw new Error('usage: merge-child --variant raw|linear|ties --out DIR --base DIR --models DIR,DIR');
  const t0 = performance.now();
  let r: { read: number; written: number; tensors: number };
  let seconds: number;
  if (variant === 'raw') {
    r = await raw(outDir, [base, ...models], shardBytes, lanes);
    seconds = (performance.now() - t0) / 1000;
  } else {
    const recipe = parseMergeConfig(mergeConfig(variant, base, models), '/');
    const res = await runMerge(recipe, outDir, { shardBytes, overwrite: true, workers });
    seconds = (performance.now() - t0) / 1000;
    const cks = await Promise.all([base, ...models].map((p) => Checkpoint.open(p)));
    // Bytes the merge read: every input tensor once (the plan's readBytes).
    let read = 0;
    for (const ck of cks) read += ck.files.reduce((s, f) => s + (f.size - f.header.dataStart), 0);
    await Promise.all(cks.map((c) => c.close()));
    r = { read, written: res.bytesWritten, tensors: res.tensors };
  }
  const ru = process.resourceUsage();
  const result: ChildResult = {
    variant,
    seconds,
    cpu_s: (ru.userCPUTime + ru.systemCPUTime) / 1e6,
    bytes_read: r.read,
    bytes_written: r.written,
    tensors: r.tensors,
    max_rss_bytes: process.resourceUsage().maxRSS * 1024,
    vm_hwm_bytes: vmHwm(),
  };
  console.log(JSON.stringify(result));
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((e: unknown) => {
    console.error(e instanceof Error ? (e.stack ?? e.message) : String(e));
    process.exitCode = 1;
  });
}
