/**
 * Hugging Face `config.json` of the decoder families we build and run: llama, mistral, qwen2,
 * qwen3, mixtral, qwen2_moe. Normalises the fields that vary between families and transformers
 * versions (v5's `rope_parameters`, Mixtral's `num_local_experts` alias, optional `head_dim`).
 * Unknown architectures still parse, with a note of what will not work for them.
 */
import { z } from 'zod';

export const FAMILIES = ['llama', 'mistral', 'qwen2', 'qwen3', 'mixtral', 'qwen2_moe'] as const;
export type Family = (typeof FAMILIES)[number];

export interface RopeConfig {
  type: string; // default | linear | dynamic | llama3 | yarn | longrope | …
  theta: number;
  factor?: number;
  params: Record<string, unknown>;
}

export interface MoeConfig {
  numExperts: number;
  topK: number;
  /** Width of each routed expert's FFN. */
  expertIntermediateSize: number;
  /** Qwen2-MoE: width of the shared expert (0 = none). */
  sharedExpertIntermediateSize: number;
  normTopkProb: boolean;
  /** Qwen2-MoE: which layers are sparse. */
  decoderSparseStep: number;
  mlpOnlyLayers: number[];
}

export interface ModelConfig {
  architecture: string;
  modelType: string;
  /** A family we fully support, or undefined (tensors still load; building/running won't). */
  family?: Family;
  vocabSize: number;
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  rmsNormEps: number;
  rope: RopeConfig;
  /** config.json's value, else the family's transformers default. */
  maxPositionEmbeddings?: number;
  tieWordEmbeddings: boolean;
  attentionBias: boolean;
  mlpBias: boolean;
  qkNorm: boolean;
  /**
   * The attention window (tokens a query sees, itself included) where transformers applies one:
   * Mistral (default 4096) and Mixtral always; Qwen2/Qwen3/Qwen2-MoE only with use_sliding_window.
   * Which layers use it: `slidingWindowFor`.
   */
  slidingWindow?: number;
  hiddenAct: string;
  bosTokenId?: number;
  eosTokenId?: number | number[];
  torchDtype?: string;
  moe?: MoeConfig;
  /** What won't work and why (unknown family, unsupported activation, …). */
  notes: string[];
  raw: Record<string, unknown>;
}

const posInt = z.number().int().positive();
const baseSchema = z.looseObject({
  model_type: z.string().optional(),
  architectures: z.array(z.string()).optional(),
  vocab_size: posInt,
  hidden_size: posInt,
  intermediate_size: posInt.optional(),
  num_hidden_layers: posInt,
  num_attention_heads: posInt,
  num_key_value_heads: posInt.nullish(),
  head_dim: posInt.nullish(),
  rms_norm_eps: z.number().positive().optional(),
  rope_theta: z.number().positive().optional(),
  rope_scaling: z.looseObject({}).nullish(),
  rope_parameters: z.looseObject({}).nullish(),
  max_position_embeddings: posInt.optional(),
  tie_word_embeddings: z.boolean().optional(),
  attention_bias: z.boolean().optional(),
  qkv_bias: z.boolean().optional(),
  mlp_bias: z.boolean().optional(),
  sliding_window: z.number().int().nullish(),
  use_sliding_window: z.boolean().optional(),
  hidden_act: z.string().optional(),
  bos_token_id: z.number().int().nullish(),
  eos_token_id: z.union([z.number().int(), z.array(z.number().int())]).nullish(),
  torch_dtype: z.string().nullish(),
  dtype: z.string().nullish(),
  max_window_layers: z.number().int().nonnegative().optional(),
  layer_types: z.array(z.string()).nullish(),
  num_local_experts: posInt.optional(),
  num_experts: z.number().int().nonnegative().optional(),
  num_experts_per_tok: posInt.optional(),
  moe_intermediate_size: posInt.optional(),
  shared_expert_intermediate_size: z.number().int().nonnegative().optional(),
  norm_topk_prob: z.boolean().optional(),
  decoder_sparse_step: posInt.optional(),
  mlp_only_layers: z.array(z.number().int().nonnegative()).optional(),
});

// transformers' defaults for fields a config.json may omit (v5 configuration_*.py; only Mixtral's
// default_theta differs from the mixin's 10000 — the Qwen families default to 10000 too).
const DEFAULT_THETA: Record<string, number> = { llama: 10000, mistral: 10000, qwen2: 10000, qwen3: 10000, mixtral: 1e6, qwen2_moe: 10000 };
const DEFAULT_MAX_POSITIONS: Record<Family, number> = { llama: 2048, mistral: 131072, qwen2: 32768, qwen3: 32768, mixtral: 131072, qwen2_moe: 32768 };
const DEFAULT_RMS_EPS: Partial<Record<Family, number>> = { mixtral: 1e-5 };
const ARCH_FAMILY: Record<string, Family> = {
  LlamaForCausalLM: 'llama', MistralForCausalLM: 'mistral', Qwen2ForCausalLM: 'qwen2', Qwen3ForCausalLM: 'qwen3',
  MixtralForCausalLM: 'mixtral', Qwen2MoeForCausalLM: 'qwen2_moe',
};

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/** Parses a config.json object. Throws ConfigError with the field path on invalid input. */
export function parseModelConfig(raw: unknown): ModelConfig {
  const r = baseSchema.safeParse(raw);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    throw new ConfigError(`field "${issue.path.join('.') || '(root)'}": ${issue.message}`);
  }
  const c = r.data;
  const notes: string[] = [];
  const architecture = c.architectures?.[0] ?? '(none)';
  const modelType = c.model_type ?? '(none)';
  let family: Family | undefined = (FAMILIES as readonly string[]).includes(modelType) ? (modelType as Family) : ARCH_FAMILY[architecture];
  if (!family) {
    notes.push(`model_type "${modelType}" (${architecture}) is not one of ${FAMILIES.join(', ')}: its tensors load and can be merged by name, but it cannot be run, evaluated or upcycled to an MoE`);
  }
  const hiddenAct = c.hidden_act ?? 'silu';
  if (family && hiddenAct !== 'silu') {
    notes.push(`hidden_act "${hiddenAct}" is not silu: the runtime cannot evaluate this model`);
    family = undefined;
  }
  const numHeads = c.num_attention_heads;
  // Qwen3Config defaults head_dim to 128 rather than hidden/heads.
  const headDim = c.head_dim ?? (family === 'qwen3' && !('head_dim' in (raw as object)) ? 128 : c.hidden_size / numHeads);
  if (!Number.isInteger(headDim)) throw new ConfigError(`hidden_size ${c.hidden_size} is not divisible by num_attention_heads ${numHeads} and head_dim is not given`);
  const numKvHeads = c.num_key_value_heads ?? numHeads;
  if (numHeads % numKvHeads !== 0) throw new ConfigError(`num_attention_heads ${numHeads} is not a multiple of num_key_value_heads ${numKvHeads}`);

  // transformers v5 moved rope_theta and rope_scaling into rope_parameters; accept both.
  const ropeDict = (c.rope_parameters ?? c.rope_scaling ?? {}) as Record<string, unknown>;
  const ropeType = String(ropeDict['rope_type'] ?? ropeDict['type'] ?? 'default');
  const theta = Number(ropeDict['rope_theta'] ?? c.rope_theta ?? DEFAULT_THETA[family ?? 'llama'] ?? 10000);
  const factor = typeof ropeDict['factor'] === 'number' ? (ropeDict['factor'] as number) : undefined;
  const rope: RopeConfig = { type: ropeType, theta, factor, params: ropeDict };
  if (!['default', 'linear', 'dynamic', 'llama3', 'yarn'].includes(ropeType)) {
    notes.push(`rope type "${ropeType}" is not supported by the runtime (default, linear, dynamic, llama3, yarn are)`);
  }

  let moe: MoeConfig | undefined;
  const numExperts = c.num_local_experts ?? c.num_experts ?? 0;
  if (family === 'mixtral' || family === 'qwen2_moe' || numExperts > 0) {
    if (numExperts <= 0) throw new ConfigError(`${modelType} config has no num_local_experts/num_experts`);
    const topK = c.num_experts_per_tok ?? (family === 'qwen2_moe' ? 4 : 2);
    if (topK > numExperts) throw new ConfigError(`num_experts_per_tok ${topK} exceeds the ${numExperts} experts`);
    moe = {
      numExperts,
      topK,
      expertIntermediateSize: family === 'qwen2_moe' ? (c.moe_intermediate_size ?? 1408) : (c.intermediate_size ?? 14336),
      sharedExpertIntermediateSize: family === 'qwen2_moe' ? (c.shared_expert_intermediate_size ?? 5632) : 0,
      // Mixtral always renormalises the top-k weights; Qwen2-MoE only with norm_topk_prob.
      normTopkProb: family === 'mixtral' ? true : (c.norm_topk_prob ?? false),
      decoderSparseStep: c.decoder_sparse_step ?? 1,
      mlpOnlyLayers: c.mlp_only_layers ?? [],
    };
  }
  let slidingWindow: number | undefined;
  if (family === 'mistral') slidingWindow = 'sliding_window' in (raw as object) ? (c.sliding_window ?? undefined) : 4096;
  else if (family === 'qwen2' || family === 'qwen3' || family === 'qwen2_moe') slidingWindow = c.use_sliding_window ? (c.sliding_window ?? ('sliding_window' in (raw as object) ? undefined : 4096)) : undefined;
  else if (family === 'llama') slidingWindow = undefined; // LlamaConfig has no sliding window
  else slidingWindow = c.sliding_window ?? undefined;
  if (slidingWindow !== undefined && slidingWindow <= 0) slidingWindow = undefined;
  const attentionBias = family === 'qwen2' || (family === 'qwen2_moe' && c.qkv_bias !== false) ? true : (c.attention_bias ?? false);
  return {
    architecture,
    modelType,
    family,
    vocabSize: c.vocab_size,
    hiddenSize: c.hidden_size,
    intermediateSize: c.intermediate_size ?? 4 * c.hidden_size,
    numLayers: c.num_hidden_layers,
    numHeads,
    numKvHeads,
    headDim,
    rmsNormEps: c.rms_norm_eps ?? (family ? DEFAULT_RMS_EPS[family] : undefined) ?? 1e-6,
    rope,
    maxPositionEmbeddings: c.max_position_embeddings ?? (family ? DEFAULT_MAX_POSITIONS[family] : undefined),
    tieWordEmbeddings: c.tie_word_embeddings ?? false,
    attentionBias,
    mlpBias: c.mlp_bias ?? false,
    qkNorm: family === 'qwen3',
    slidingWindow,
    hiddenAct,
    bosTokenId: c.bos_token_id ?? undefined,
    eosTokenId: c.eos_token_id ?? undefined,
    torchDtype: c.torch_dtype ?? c.dtype ?? undefined,
    moe,
    notes,
    raw: raw as Record<string, unknown>,
  };
}

/** Is layer `i` sparse (an MoE block) under this config? Mixtral: all; Qwen2-MoE: per its rules. */
export function isSparseLayer(cfg: ModelConfig, i: number): boolean {
  if (!cfg.moe) return false;
  if (cfg.family !== 'qwen2_moe') return true;
  return !cfg.moe.mlpOnlyLayers.includes(i) && cfg.moe.numExperts > 0 && (i + 1) % cfg.moe.decoderSparseStep === 0;
}

/**
 * The sliding attention window of layer `i`, or undefined for full causal attention, by
 * transformers' rules: Mistral and Mixtral window every layer; Qwen2 and Qwen3 the layers
 * `i >= max_window_layers`; Qwen2-MoE the even layers `i < max_window_layers`; an explicit
 * `layer_types` list (Qwen families) overrides.
 */
export function slidingWindowFor(cfg: ModelConfig, i: number): number | undefined {
  const w = cfg.slidingWindow;
  if (w === undefined) return undefined;
  const fam = cfg.family;
  if (fam === 'qwen2' || fam === 'qwen3' || fam === 'qwen2_moe') {
    const types = cfg.raw['layer_types'];
    if (Array.isArray(types) && types.length === cfg.numLayers) return types[i] === 'sliding_attention' ? w : undefined;
    const maxWindowLayers = typeof cfg.raw['max_window_layers'] === 'number' ? (cfg.raw['max_window_layers'] as number) : 28;
    if (fam === 'qwen2_moe') return (i + 1) % 2 === 1 && i < maxWindowLayers ? w : undefined;
    return i >= maxWindowLayers ? w : undefined;
  }
  return w;
}
