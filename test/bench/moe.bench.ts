/**
 * `npm run bench:moe`: assembling an 8-expert Mixtral from generated ≥ 1 GiB bf16 experts (FFN-only
 * fine-tunes of one base), side by side with a raw I/O baseline that reads the same input bytes and
 * writes an output of the same size with the same writer, no maths. Each variant runs in its own
 * process so its peak RSS is its own. Also: router calibration time per 1k seed tokens on the
 * bundled fixtures. Prints a table and one JSON line.
 *   node build/test/bench/moe.bench.js [--size-gb 1.05] [--experts 8] [--dir DIR]
 */
import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Checkpoint } from '../../app/io/checkpoint.js';
import { OutputFolder } from '../../app/io/output-folder.js';
import { SafetensorsWriter } from '../../app/io/safetensors-writer.js';
import { buildMoe } from '../../app/moe/assemble.js';
import { parseMoeConfig } from '../../app/moe/config.js';
import { expertTensorName, FFN, isDenseFfnTensor, routerTensorName } from '../../app/moe/layout.js';
import { ensureCheckpoint, fillBf16, GIB, llamaPlan, perturbBf16, planBytes, shapeFor } from './gen-checkpoint.js';

const here = fileURLToPath(import.meta.url);

interface Child {
  variant: string;
  seconds: number;
  bytes_read: number;
  bytes_written: number;
  max_rss_bytes: number;
}

async function child(variant: string, base: string, experts: string[], out: string): Promise<void> {
  const t0 = performance.now();
  let read = 0;
  let written = 0;
  if (variant === 'raw') {
    // Read what the assembly reads (the base's non-FFN tensors, every expert's FFN), write as much.
    const b = await Checkpoint.open(base);
    const xs = await Promise.all(experts.map((e) => Checkpoint.open(e)));
    const L = b.config!.numLayers;
    const plan = b.names.filter((n) => !isDenseFfnTensor(n)).map((n) => ({ name: n, dtype: 'BF16' as const, shape: b.info(n).shape, src: () => b.readBytes(n) }));
    for (let l = 0; l < L; l++) {
      plan.push({ name: routerTensorName('mixtral', l), dtype: 'BF16', shape: [experts.length, b.config!.hiddenSize], src: async () => new Uint8Array(experts.length * b.config!.hiddenSize * 2) });
      xs.forEach((x, e) => {
        for (const part of FFN) {
          const src = `model.layers.${l}.mlp.${part}.weight`;
          plan.push({ name: expertTensorName('mixtral', l, e, part), dtype: 'BF16', shape: x.info(src).shape, src: () => x.readBytes(src) });
        }
      });
    }
    const folder = await OutputFolder.create(out, { overwrite: true });
    const w = await SafetensorsWriter.create(folder, plan, { maxShardBytes: 5e9 });
    const queue = [...plan];
    const lane = async () => {
      for (let t = queue.shift(); t; t = queue.shift()) {
        const bytes = await t.src();
        read += bytes.byteLength;
        await w.write(t.name, bytes);
        written += bytes.byteLength;
      }
    };
    await Promise.all([lane(), lane(), lane()]);
    await w.finish();
    await folder.commit();
    await b.close();
    await Promise.all(xs.map((x) => x.close()));
  } else {
    const recipe = parseMoeConfig({ base_model: base, gate_mode: 'random', experts_per_token: 2, experts: experts.map((e) => ({ source_model: e })) }, '/');
    const r = await buildMoe(recipe, out, { overwrite: true });
    const ck = await Checkpoint.open(r.out);
    written = ck.files.reduce((a, f) => a + f.size, 0);
    await ck.close();
    read = written; // the assembly reads what it writes (plus a small drift sample)
  }
  const seconds = (performance.now() - t0) / 1000;
  console.log(JSON.stringify({ variant, seconds, bytes_read: read, bytes_written: written, max_rss_bytes: process.resourceUsage().maxRSS * 1024 } satisfies Child));
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { 'size-gb': { type: 'string' }, experts: { type: 'string' }, dir: { type: 'string' }, child: { type: 'string' }, base: { type: 'string' }, list: { type: 'string' }, out: { type: 'string' } } });
  if (values.child) return child(values.child, values.base!, values.list!.split(','), values.out!);
  const size = Number(values['size-gb'] ?? 1.05) * GIB;
  const E = Number(values.experts ?? 8);
  const dir = values.dir ?? join(homedir(), '.cache', 'upcycle-bench', `moe-${(size / GIB).toFixed(2)}`);
  const shape = shapeFor(size);
  const plan = llamaPlan(shape);
  console.log(`inputs: base + ${E} FFN-only experts, ${(planBytes(plan) / GIB).toFixed(2)} GiB each (${shape.layers} layers, bf16) under ${dir}`);
  const baseDir = join(dir, 'base');
  await ensureCheckpoint(baseDir, shape, plan, { maxShardBytes: 400e6, fill: (t, i, b) => fillBf16(b, i + 1, /norm/.test(t.name)), label: 'base' });
  const experts: string[] = [];
  for (let e = 0; e < E; e++) {
    const d = join(dir, `expert-${e}`);
    await ensureCheckpoint(d, shape, plan, {
      maxShardBytes: 400e6,
      extra: { expert: e },
      label: `expert ${e}`,
      fill: (t, i, b) => {
        fillBf16(b, i + 1, /norm/.test(t.name));
        if (isDenseFfnTensor(t.name)) perturbBf16(b, 1000 * (e + 1) + i);
      },
    });
    experts.push(d);
  }
  const results: Child[] = [];
  for (const variant of ['raw', 'moe', 'raw', 'moe']) {
    const out = join(dir, `out-${variant}`);
    const r = spawnSync(process.execPath, [here, '--child', variant, '--base', baseDir, '--list', experts.join(','), '--out', out], { encoding: 'utf8', maxBuffer: 1 << 24 });
    if (r.status !== 0) throw new Error(`${variant} failed: ${r.stderr}`);
    results.push(JSON.parse(r.stdout.trim().split('\n').pop()!) as Child);
    rmSync(out, { recursive: true, force: true });
  }
  const best = (v: string) => results.filter((r) => r.variant === v).sort((a, b) => a.seconds - b.seconds)[0]!;
  const raw = best('raw');
  const moe = best('moe');
  const gbps = (r: Child) => (r.bytes_read + r.bytes_written) / r.seconds / 1e9;
  // Router calibration on the fixtures: seconds per 1k seed tokens.
  const demo = join(fileURLToPath(new URL('../../../', import.meta.url)), 'resources', 'demo');
  const skills = ['add', 'upper', 'rev', 'sort'];
  const cal = parseMoeConfig({ base_model: 'models/base', gate_mode: 'calibrated', experts: skills.map((s) => ({ source_model: `models/ffn-${s}`, seed_data: `eval/${s}.seed.jsonl` })) }, demo);
  const rnd = parseMoeConfig({ base_model: 'models/base', gate_mode: 'random', experts: skills.map((s) => ({ source_model: `models/ffn-${s}` })) }, demo);
  const tmp = join(dir, 'calibration');
  let t0 = performance.now();
  await buildMoe(rnd, tmp, { overwrite: true });
  const tRandom = (performance.now() - t0) / 1000;
  t0 = performance.now();
  await buildMoe(cal, tmp, { overwrite: true });
  const tCal = (performance.now() - t0) / 1000;
  rmSync(tmp, { recursive: true, force: true });
  const { TextTokenizer } = await import('../../app/runtime/tokenizer.js');
  const tok = TextTokenizer.load(join(demo, 'models', 'base'));
  const { loadTask } = await import('../../app/eval/tasks.js');
  let tokens = 0;
  for (const s of skills) for (const it of (await loadTask(join(demo, 'eval', `${s}.seed.jsonl`))).items) tokens += (await tok.encode((it as { text: string }).text, true)).length;
  const perK = ((tCal - tRandom) / tokens) * 1000;
  console.log('\nvariant              seconds    GB/s  peak RSS');
  for (const r of [raw, moe]) console.log(`${r.variant.padEnd(18)} ${r.seconds.toFixed(2).padStart(9)} ${gbps(r).toFixed(2).padStart(7)} ${(r.max_rss_bytes / GIB).toFixed(2).padStart(6)} GiB`);
  console.log(`ratio MoE/raw: ${(gbps(moe) / gbps(raw)).toFixed(3)} (goal ≥ 0.7); MoE peak RSS ${(moe.max_rss_bytes / GIB).toFixed(2)} GiB (goal < 1.5)`);
  console.log(`router calibration (fixtures, ${tokens} seed tokens, 4 layers, H=96): ${(tCal - tRandom).toFixed(2)} s over a random-router build = ${perK.toFixed(2)} s per 1k seed tokens`);
  console.log(JSON.stringify({ bench: 'moe', experts: E, expert_bytes: planBytes(plan), raw_gbps: gbps(raw), moe_gbps: gbps(moe), ratio: gbps(moe) / gbps(raw), moe_peak_rss_gib: moe.max_rss_bytes / GIB, raw_peak_rss_gib: raw.max_rss_bytes / GIB, calibration_s_per_1k_tokens: perK, }));
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.stack ?? e.message : e);
  process.exit(1);
});
