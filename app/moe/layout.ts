/**
 * Output layouts of an upcycled MoE that stock transformers loads: Mixtral (experts' gate/up/down →
 * w1/w3/w2 under block_sparse_moe, router `block_sparse_moe.gate`) and Qwen2-MoE (mlp.experts.e.*,
 * router `mlp.gate`, optional gated shared expert, q/k/v biases required). Also the config.json each
 * needs, written complete so training can continue in transformers.
 */
import type { ModelConfig } from '../core/hf-config.js';

export type MoeArch = 'mixtral' | 'qwen2_moe';

export interface ArchChoice {
  arch: MoeArch;
  reason: string;
}

/** Mixtral whenever it fits (as mergekit does); Qwen2-MoE when a shared expert is wanted or asked for. */
export function chooseArchitecture(base: ModelConfig, requested: MoeArch | undefined, sharedExpert: boolean): ArchChoice {
  if (!base.family || !['llama', 'mistral', 'qwen2'].includes(base.family)) {
    throw new Error(`a ${base.modelType} base cannot be upcycled to Mixtral or Qwen2-MoE (llama, mistral and qwen2 bases can)`);
  }
  if (requested === 'mixtral') {
    if (base.family === 'qwen2') throw new Error('a qwen2 base has attention biases, which Mixtral cannot hold: use architecture: qwen');
    return { arch: 'mixtral', reason: 'asked for in the recipe' };
  }
  if (requested === 'qwen2_moe') {
    if (!sharedExpert) throw new Error('a Qwen2-MoE output needs its shared expert: add shared_expert: true (the base FFN) or shared_experts');
    return { arch: 'qwen2_moe', reason: 'asked for in the recipe' };
  }
  if (sharedExpert) return { arch: 'qwen2_moe', reason: 'a shared expert was asked for, which only Qwen2-MoE has' };
  if (base.family === 'qwen2') throw new Error('a qwen2 base has attention biases, which Mixtral cannot hold; a Qwen2-MoE output needs a shared expert: add shared_expert: true');
  return { arch: 'mixtral', reason: `the base is ${base.family} without attention biases: Mixtral loads everywhere (transformers, vLLM, llama.cpp)` };
}

export const FFN = ['gate_proj', 'up_proj', 'down_proj'] as const;
export type FfnPart = (typeof FFN)[number];
const MIXTRAL_NAME: Record<FfnPart, string> = { gate_proj: 'w1', up_proj: 'w3', down_proj: 'w2' };

export function expertTensorName(arch: MoeArch, layer: number, expert: number, part: FfnPart): string {
  return arch === 'mixtral'
    ? `model.layers.${layer}.block_sparse_moe.experts.${expert}.${MIXTRAL_NAME[part]}.weight`
    : `model.layers.${layer}.mlp.experts.${expert}.${part}.weight`;
}

export function routerTensorName(arch: MoeArch, layer: number): string {
  return arch === 'mixtral' ? `model.layers.${layer}.block_sparse_moe.gate.weight` : `model.layers.${layer}.mlp.gate.weight`;
}

export function isDenseFfnTensor(name: string): boolean {
  return /\.layers\.\d+\.mlp\.(gate_proj|up_proj|down_proj)\.(weight|bias)$/.test(name);
}

/** config.json of the MoE, from the base's. */
export function moeConfig(base: ModelConfig, arch: MoeArch, numExperts: number, topK: number, torchDtype: string): Record<string, unknown> {
  const raw = { ...base.raw };
  for (const k of ['architectures', 'model_type', 'auto_map', '_name_or_path', 'transformers_version']) delete raw[k];
  const common = {
    torch_dtype: torchDtype,
    num_experts_per_tok: topK,
    output_router_logits: false,
    router_aux_loss_coef: 0.001,
  };
  if (arch === 'mixtral') {
    return {
      architectures: ['MixtralForCausalLM'],
      model_type: 'mixtral',
      ...raw,
      ...common,
      num_local_experts: numExperts,
      router_jitter_noise: 0.0,
      sliding_window: null,
      rope_theta: base.rope.theta,
    };
  }
  return {
    architectures: ['Qwen2MoeForCausalLM'],
    model_type: 'qwen2_moe',
    ...raw,
    ...common,
    num_experts: numExperts,
    moe_intermediate_size: base.intermediateSize,
    shared_expert_intermediate_size: base.intermediateSize,
    // Renormalise the top-k weights, as Mixtral does (mergekit's choice too): the experts were trained dense.
    norm_topk_prob: true,
    decoder_sparse_step: 1,
    mlp_only_layers: [],
    use_sliding_window: false,
    sliding_window: null,
    max_window_layers: base.numLayers,
    qkv_bias: true,
    rope_theta: base.rope.theta,
  };
}
