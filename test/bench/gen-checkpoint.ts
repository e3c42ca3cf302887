/**
 * Generated Llama-shaped BF16 checkpoints for the benchmarks (io.bench, merge.bench): TinyLlama-like
 * dimensions with as many layers as it takes to reach a target size, written with OutputFolder +
 * SafetensorsWriter as a sharded HF folder (config.json, no tokenizer) and cached: a marker file
 * (upcycle-bench.json) records what was generated, and `ensureCheckpoint` reuses the folder when the
 * marker, the tensor list, dtypes, shapes and data sizes all check out.
 */
import fs from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { Checkpoint } from '../../app/io/checkpoint.js';
import { OutputFolder } from '../../app/io/output-folder.js';
import { SafetensorsWriter, type TensorPlan } from '../../app/io/safetensors-writer.js';

export const GIB = 2 ** 30;
export const MARKER = 'upcycle-bench.json';
const MARKER_VERSION = 1;

export interface LlamaShape {
  hidden: number;
  intermediate: number;
  heads: number;
  kvHeads: number;
  vocab: number;
  layers: number;
}

export function llamaPlan(s: LlamaShape): TensorPlan[] {
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

export const planBytes = (plan: TensorPlan[]): number => plan.reduce((a, t) => a + t.shape.reduce((x, d) => x * d, 1) * 2, 0);

/** TinyLlama-like dimensions, with as many layers as it takes to reach the target size. */
export function shapeFor(targetBytes: number): LlamaShape {
  const base: LlamaShape = { hidden: 2048, intermediate: 5632, heads: 32, kvHeads: 4, vocab: 32000, layers: 0 };
  const fixed = planBytes(llamaPlan(base));
  const perLayer = planBytes(llamaPlan({ ...base, layers: 1 })) - fixed;
  return { ...base, layers: Math.max(1, Math.ceil((targetBytes - fixed) / perLayer)) };
}

export function llamaConfig(s: LlamaShape): Record<string, unknown> {
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

/** Cheap pseudo-random BF16 weights: random sign and mantissa, magnitudes in [2^-8, 2^-4). */
export function fillBf16(bytes: Uint8Array, seed: number, isNorm: boolean): void {
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

/**
 * A "fine-tune" of `fillBf16` data: every value moved by a small random number of BF16 steps
 * (−4…+4 units in the last place, about ±1.5 %, sign kept), so task vectors are dense, small and
 * different per seed, as TIES and task arithmetic expect.
 */
export function perturbBf16(bytes: Uint8Array, seed: number): void {
  const h = new Uint16Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 2);
  let x = seed >>> 0 || 0x85ebca6b;
  for (let i = 0; i < h.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    const b = h[i]!;
    const step = ((x >>> 8) % 9) - 4;
    h[i] = (b & 0x8000) | (((b & 0x7fff) + step) & 0x7fff);
  }
}

interface Marker {
  version: number;
  layers: number;
  tensors: number;
  total_bytes: number;
  [extra: string]: unknown;
}

/**
 * True when `dir` holds the checkpoint `plan` describes: marker (with the same `extra` fields),
 * tensor names, BF16 dtypes, shapes and data sizes; no errors when opened.
 */
export async function cacheIsValid(dir: string, plan: TensorPlan[], layers: number, extra: Record<string, unknown> = {}): Promise<boolean> {
  let marker: Marker;
  try {
    marker = JSON.parse(fs.readFileSync(path.join(dir, MARKER), 'utf8')) as Marker;
  } catch {
    return false;
  }
  const total = planBytes(plan);
  if (marker.version !== MARKER_VERSION || marker.layers !== layers || marker.tensors !== plan.length || marker.total_bytes !== total) return false;
  for (const [k, v] of Object.entries(extra)) if (JSON.stringify(marker[k]) !== JSON.stringify(v)) return false;
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

export interface GenerateOptions {
  maxShardBytes: number;
  /** Fills tensor `index` of the plan (its bytes are zeroed BF16 storage of the right size). */
  fill: (t: TensorPlan, index: number, bytes: Uint8Array) => void;
  /** Extra marker fields (checked by `cacheIsValid`). */
  extra?: Record<string, unknown>;
  label?: string;
}

/** Writes the checkpoint atomically (replacing `dir`); returns the seconds it took. */
export async function generate(dir: string, shape: LlamaShape, plan: TensorPlan[], opts: GenerateOptions): Promise<number> {
  const t0 = performance.now();
  const out = await OutputFolder.create(dir, { overwrite: true });
  try {
    const w = await SafetensorsWriter.create(out, plan, { maxShardBytes: opts.maxShardBytes });
    try {
      let done = 0;
      const total = planBytes(plan);
      for (const [i, t] of plan.entries()) {
        const bytes = new Uint8Array(t.shape.reduce((a, d) => a * d, 1) * 2);
        opts.fill(t, i, bytes);
        await w.write(t.name, bytes);
        done += bytes.byteLength;
        if (process.stderr.isTTY) process.stderr.write(`\rgenerating ${opts.label ?? dir}: ${((100 * done) / total).toFixed(0)}%`);
      }
      await w.finish();
    } catch (e) {
      await w.close();
      throw e;
    }
    await out.writeFile('config.json', JSON.stringify(llamaConfig(shape), null, 2) + '\n');
    const marker: Marker = { version: MARKER_VERSION, layers: shape.layers, tensors: plan.length, total_bytes: planBytes(plan), ...(opts.extra ?? {}) };
    await out.writeFile(MARKER, JSON.stringify(marker) + '\n');
    await out.commit();
  } catch (e) {
    await out.abort();
    throw e;
  }
  if (process.stderr.isTTY) process.stderr.write('\n');
  return (performance.now() - t0) / 1000;
}

/**
 * Reuses `dir` when it validates, else generates it. Refuses to overwrite a folder that exists
 * without a marker when the caller chose the folder (`dirGiven`). Returns the generation time, or
 * null when the cache was used.
 */
export async function ensureCheckpoint(dir: string, shape: LlamaShape, plan: TensorPlan[], opts: GenerateOptions & { dirGiven?: boolean }): Promise<number | null> {
  if (await cacheIsValid(dir, plan, shape.layers, opts.extra)) return null;
  if (fs.existsSync(dir) && opts.dirGiven && !fs.existsSync(path.join(dir, MARKER))) {
    throw new Error(`${dir} exists and is not a benchmark checkpoint made by these scripts; refusing to overwrite it (pass another --dir)`);
  }
  const seconds = await generate(dir, shape, plan, opts);
  if (!(await cacheIsValid(dir, plan, shape.layers, opts.extra))) throw new Error(`${dir}: the generated checkpoint does not validate`);
  return seconds;
}
