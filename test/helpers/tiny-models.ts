/**
 * Tiny random Hugging Face checkpoints (config.json + model.safetensors, F32) of every decoder
 * family and RoPE variant the runtime builds, for comparing our logits with transformers'
 * (test/interop/runtime-families.test.ts). Weights are seeded and scaled so activations stay O(1):
 * linear weights with std 1/√fan_in, embeddings std 1, norm weights 1 ± 0.25, biases ± 0.3.
 *
 * The tensor list comes from our own `expectedTensors`; the oracle side checks it against what
 * transformers expects (missing / unexpected keys fail the comparison), so a wrong name there is
 * caught rather than assumed.
 */
import { writeFileSync } from 'node:fs';
import { expectedTensors } from '../../app/core/architectures.js';
import { parseModelConfig } from '../../app/core/hf-config.js';
import { OutputFolder } from '../../app/io/output-folder.js';
import { writeTensors } from '../../app/io/safetensors-writer.js';

export interface TinyVariant {
  /** Short unique name (also the folder name). */
  name: string;
  /** What the variant exercises. */
  what: string;
  config: Record<string, unknown>;
  /** Tokens per sequence (default 16); batch is 2. */
  seqLen?: number;
  /** Graph option maxPositions, when the default (max_position_embeddings) would be too short. */
  maxPositions?: number;
}

const BASE = {
  vocab_size: 64,
  hidden_size: 32,
  intermediate_size: 48,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  hidden_act: 'silu',
  rms_norm_eps: 1e-6,
  max_position_embeddings: 64,
  initializer_range: 0.02,
  use_cache: true,
  bos_token_id: 1,
  eos_token_id: 2,
  tie_word_embeddings: false,
};

const llama = (extra: Record<string, unknown>) => ({ ...BASE, architectures: ['LlamaForCausalLM'], model_type: 'llama', rope_theta: 10000, attention_bias: false, mlp_bias: false, ...extra });

/** Every family × variant the runtime claims to support. */
export const TINY_VARIANTS: TinyVariant[] = [
  { name: 'llama-default', what: 'llama, default RoPE, GQA 4/2', config: llama({}) },
  { name: 'llama-bias', what: 'llama with attention_bias (q/k/v/o) and mlp_bias', config: llama({ attention_bias: true, mlp_bias: true }) },
  { name: 'llama-rope-linear', what: 'llama, rope_scaling linear ×2', config: llama({ rope_scaling: { rope_type: 'linear', factor: 2.0 } }) },
  {
    name: 'llama-rope-llama3',
    what: 'llama, llama3 RoPE (head_dim 16: low / medium / high frequency bands all present)',
    config: llama({ num_attention_heads: 2, num_key_value_heads: 1, max_position_embeddings: 512, rope_scaling: { rope_type: 'llama3', factor: 8.0, low_freq_factor: 1.0, high_freq_factor: 4.0, original_max_position_embeddings: 64 } }),
  },
  {
    name: 'llama-rope-yarn',
    what: 'llama, YaRN ×4 from 32 positions (ramp over several dims, attention factor 0.1·ln 4 + 1)',
    config: llama({ num_attention_heads: 2, num_key_value_heads: 2, rope_theta: 500, max_position_embeddings: 128, rope_scaling: { rope_type: 'yarn', factor: 4.0, original_max_position_embeddings: 32 } }),
  },
  {
    name: 'llama-rope-yarn-mscale',
    what: 'llama, YaRN with mscale / mscale_all_dim and beta_fast / beta_slow given',
    config: llama({ num_attention_heads: 2, num_key_value_heads: 2, rope_theta: 500, max_position_embeddings: 128, rope_scaling: { rope_type: 'yarn', factor: 4.0, original_max_position_embeddings: 32, mscale: 1.0, mscale_all_dim: 0.5, beta_fast: 16, beta_slow: 2 } }),
  },
  {
    name: 'llama-rope-dynamic',
    what: 'llama, dynamic NTK RoPE ×2 with a sequence (40) longer than max_position_embeddings (16)',
    config: llama({ max_position_embeddings: 16, rope_scaling: { rope_type: 'dynamic', factor: 2.0 } }),
    seqLen: 40,
  },
  {
    name: 'mistral',
    what: 'mistral, explicit head_dim 16 (≠ hidden/heads = 8), sliding_window larger than the sequence',
    config: { ...BASE, architectures: ['MistralForCausalLM'], model_type: 'mistral', head_dim: 16, rope_theta: 10000, sliding_window: 4096 },
  },
  {
    name: 'mistral-swa',
    what: 'mistral with sliding_window 5 < sequence length 16',
    config: { ...BASE, architectures: ['MistralForCausalLM'], model_type: 'mistral', rope_theta: 10000, sliding_window: 5 },
  },
  {
    name: 'qwen2',
    what: 'qwen2: q/k/v bias, no o bias, tied embeddings, rope_theta left to the family default',
    config: { ...BASE, architectures: ['Qwen2ForCausalLM'], model_type: 'qwen2', tie_word_embeddings: true, use_sliding_window: false, sliding_window: 4, max_window_layers: 1 },
  },
  {
    name: 'qwen2-swa',
    what: 'qwen2 with use_sliding_window: window 5 on layers ≥ max_window_layers (1) only',
    config: { ...BASE, architectures: ['Qwen2ForCausalLM'], model_type: 'qwen2', rope_theta: 1000000, use_sliding_window: true, sliding_window: 5, max_window_layers: 1 },
  },
  {
    name: 'qwen3',
    what: 'qwen3: per-head q/k RMSNorm before RoPE, explicit head_dim 16 (≠ hidden/heads = 8)',
    config: { ...BASE, architectures: ['Qwen3ForCausalLM'], model_type: 'qwen3', head_dim: 16, rope_theta: 1000000, attention_bias: false, use_sliding_window: false, sliding_window: null, max_window_layers: 2, tie_word_embeddings: true },
  },
  {
    name: 'mixtral',
    what: 'mixtral: 4 experts, top-2 with renormalised weights; rms_norm_eps and rope_theta left to the family defaults (1e-5, 1e6)',
    config: { ...BASE, architectures: ['MixtralForCausalLM'], model_type: 'mixtral', num_local_experts: 4, num_experts_per_tok: 2, sliding_window: null, rms_norm_eps: undefined },
  },
  {
    name: 'qwen2_moe',
    what: 'qwen2_moe: 4 experts top-2, norm_topk_prob false, sigmoid-gated shared expert, q/k/v bias',
    config: { ...BASE, architectures: ['Qwen2MoeForCausalLM'], model_type: 'qwen2_moe', num_experts: 4, num_experts_per_tok: 2, moe_intermediate_size: 24, shared_expert_intermediate_size: 40, norm_topk_prob: false, decoder_sparse_step: 1, mlp_only_layers: [], rope_theta: 1000000, use_sliding_window: false },
  },
  {
    name: 'qwen2_moe-sparse-step',
    what: 'qwen2_moe: 4 layers, decoder_sparse_step 2 and mlp_only_layers [3] (only layer 1 sparse), norm_topk_prob true',
    config: { ...BASE, architectures: ['Qwen2MoeForCausalLM'], model_type: 'qwen2_moe', num_hidden_layers: 4, num_experts: 4, num_experts_per_tok: 2, moe_intermediate_size: 24, shared_expert_intermediate_size: 40, norm_topk_prob: true, decoder_sparse_step: 2, mlp_only_layers: [3], rope_theta: 1000000, use_sliding_window: false },
  },
  {
    name: 'qwen2_moe-swa',
    what: 'qwen2_moe with use_sliding_window: window 6 on the even layers < max_window_layers (3), i.e. 0 and 2',
    config: { ...BASE, architectures: ['Qwen2MoeForCausalLM'], model_type: 'qwen2_moe', num_hidden_layers: 4, num_experts: 4, num_experts_per_tok: 2, moe_intermediate_size: 24, shared_expert_intermediate_size: 40, norm_topk_prob: false, rope_theta: 1000000, use_sliding_window: true, sliding_window: 6, max_window_layers: 3 },
  },
];

/** Mulberry32: small seeded PRNG. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function hashName(s: string): number {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619);
  return h >>> 0;
}

/** Values for one tensor, chosen by its role (name) so activations stay O(1). */
export function tinyValues(name: string, shape: number[], seed: number): Float32Array {
  const n = shape.reduce((a, d) => a * d, 1);
  const r = rng(seed ^ hashName(name));
  const out = new Float32Array(n);
  const uniform = (half: number) => {
    for (let i = 0; i < n; i++) out[i] = (2 * r() - 1) * half;
  };
  if (/norm\.weight$/.test(name)) {
    for (let i = 0; i < n; i++) out[i] = 1 + (2 * r() - 1) * 0.25;
  } else if (name.endsWith('.bias')) {
    uniform(0.3);
  } else if (name.includes('embed_tokens')) {
    uniform(Math.sqrt(3)); // std 1
  } else {
    const fanIn = shape[shape.length - 1]!;
    // Routers a little hotter, so the top-k choice is clear-cut (no near-ties between experts).
    const gain = /\.gate\.weight$/.test(name) ? 2 : 1;
    uniform(gain * Math.sqrt(3 / fanIn));
  }
  return out;
}

/** Writes config.json + model.safetensors of `config` into `dir` (which must not exist). */
export async function writeTinyModel(dir: string, config: Record<string, unknown>, seed = 1234): Promise<void> {
  const cfg = parseModelConfig(config);
  if (!cfg.family) throw new Error(`tiny model config is not runnable: ${cfg.notes.join('; ')}`);
  const plan = expectedTensors(cfg).filter((t) => !t.optional);
  const out = await OutputFolder.create(dir);
  try {
    await writeTensors(out, plan.map((t) => {
      const v = tinyValues(t.name, t.shape, seed);
      return { name: t.name, dtype: 'F32' as const, shape: t.shape, bytes: new Uint8Array(v.buffer, v.byteOffset, v.byteLength) };
    }));
    await out.writeFile('config.json', JSON.stringify({ ...config, torch_dtype: 'float32' }, null, 2) + '\n');
    await out.commit();
  } catch (e) {
    await out.abort();
    throw e;
  }
}

/** Deterministic token ids [batch][seqLen] in [0, vocab). */
export function tinyInputIds(batch: number, seqLen: number, vocab: number, seed = 7): number[][] {
  const r = rng(seed);
  return Array.from({ length: batch }, () => Array.from({ length: seqLen }, () => Math.floor(r() * vocab)));
}

/** Writes a JSON file (small helper for the oracle's job description). */
export function writeJson(path: string, value: unknown): void {
  writeFileSync(path, JSON.stringify(value));
}
