/**
 * Architectures as data: the tensor names and shapes each supported family expects, derived from its
 * config. Used to find missing, unexpected and wrongly-shaped tensors before any long job starts,
 * and (later) by exporters and the runtime's graph builder.
 */
import { isSparseLayer, type ModelConfig } from './hf-config.js';

export interface ExpectedTensor {
  name: string;
  shape: number[];
  /** What the tensor is, for messages and the expert-drift groups. */
  group: 'embed' | 'attn' | 'norm' | 'mlp' | 'router' | 'expert' | 'shared_expert' | 'lm_head';
  optional?: boolean;
}

export function expectedTensors(cfg: ModelConfig): ExpectedTensor[] {
  if (!cfg.family) return [];
  const H = cfg.hiddenSize;
  const q = cfg.numHeads * cfg.headDim;
  const kv = cfg.numKvHeads * cfg.headDim;
  const out: ExpectedTensor[] = [{ name: 'model.embed_tokens.weight', shape: [cfg.vocabSize, H], group: 'embed' }];
  for (let i = 0; i < cfg.numLayers; i++) {
    const p = `model.layers.${i}`;
    out.push({ name: `${p}.input_layernorm.weight`, shape: [H], group: 'norm' });
    out.push({ name: `${p}.post_attention_layernorm.weight`, shape: [H], group: 'norm' });
    out.push({ name: `${p}.self_attn.q_proj.weight`, shape: [q, H], group: 'attn' });
    out.push({ name: `${p}.self_attn.k_proj.weight`, shape: [kv, H], group: 'attn' });
    out.push({ name: `${p}.self_attn.v_proj.weight`, shape: [kv, H], group: 'attn' });
    out.push({ name: `${p}.self_attn.o_proj.weight`, shape: [H, q], group: 'attn' });
    if (cfg.attentionBias) {
      out.push({ name: `${p}.self_attn.q_proj.bias`, shape: [q], group: 'attn' });
      out.push({ name: `${p}.self_attn.k_proj.bias`, shape: [kv], group: 'attn' });
      out.push({ name: `${p}.self_attn.v_proj.bias`, shape: [kv], group: 'attn' });
      // Llama-style attention_bias also biases o_proj; Qwen2's does not.
      if (cfg.family !== 'qwen2' && cfg.family !== 'qwen2_moe') out.push({ name: `${p}.self_attn.o_proj.bias`, shape: [H], group: 'attn' });
    }
    if (cfg.qkNorm) {
      out.push({ name: `${p}.self_attn.q_norm.weight`, shape: [cfg.headDim], group: 'norm' });
      out.push({ name: `${p}.self_attn.k_norm.weight`, shape: [cfg.headDim], group: 'norm' });
    }
    out.push(...ffnTensors(cfg, i));
  }
  out.push({ name: 'model.norm.weight', shape: [H], group: 'norm' });
  out.push({ name: 'lm_head.weight', shape: [cfg.vocabSize, H], group: 'lm_head', optional: cfg.tieWordEmbeddings });
  return out;
}

function ffnTensors(cfg: ModelConfig, i: number): ExpectedTensor[] {
  const H = cfg.hiddenSize;
  const p = `model.layers.${i}`;
  const dense = (prefix: string, I: number, group: ExpectedTensor['group']): ExpectedTensor[] => {
    const t: ExpectedTensor[] = [
      { name: `${prefix}.gate_proj.weight`, shape: [I, H], group },
      { name: `${prefix}.up_proj.weight`, shape: [I, H], group },
      { name: `${prefix}.down_proj.weight`, shape: [H, I], group },
    ];
    if (cfg.mlpBias) t.push(...t.map((x) => ({ ...x, name: x.name.replace(/weight$/, 'bias'), shape: [x.shape[0]!] })));
    return t;
  };
  if (!cfg.moe || !isSparseLayer(cfg, i)) return dense(`${p}.mlp`, cfg.intermediateSize, 'mlp');
  const E = cfg.moe.numExperts;
  const I = cfg.moe.expertIntermediateSize;
  const out: ExpectedTensor[] = [];
  if (cfg.family === 'mixtral') {
    out.push({ name: `${p}.block_sparse_moe.gate.weight`, shape: [E, H], group: 'router' });
    for (let e = 0; e < E; e++) {
      const x = `${p}.block_sparse_moe.experts.${e}`;
      out.push({ name: `${x}.w1.weight`, shape: [I, H], group: 'expert' });
      out.push({ name: `${x}.w3.weight`, shape: [I, H], group: 'expert' });
      out.push({ name: `${x}.w2.weight`, shape: [H, I], group: 'expert' });
    }
    return out;
  }
  out.push({ name: `${p}.mlp.gate.weight`, shape: [E, H], group: 'router' });
  for (let e = 0; e < E; e++) out.push(...dense(`${p}.mlp.experts.${e}`, I, 'expert'));
  if (cfg.moe.sharedExpertIntermediateSize > 0) {
    out.push(...dense(`${p}.mlp.shared_expert`, cfg.moe.sharedExpertIntermediateSize, 'shared_expert'));
    out.push({ name: `${p}.mlp.shared_expert_gate.weight`, shape: [1, H], group: 'shared_expert' });
  }
  return out;
}

/** The tensor-group of a name by pattern (for checkpoints whose family we do not know, too). */
export function tensorGroup(name: string): ExpectedTensor['group'] | 'other' {
  if (name.includes('embed_tokens')) return 'embed';
  if (name.startsWith('lm_head')) return 'lm_head';
  if (/shared_expert/.test(name)) return 'shared_expert';
  if (/\.(block_sparse_moe|mlp)\.gate\.weight$/.test(name)) return 'router';
  if (/\.experts\./.test(name)) return 'expert';
  if (/\.(mlp|feed_forward)\./.test(name)) return 'mlp';
  if (/\.(self_attn|attention)\./.test(name) && !/norm/.test(name)) return 'attn';
  if (/norm/.test(name)) return 'norm';
  return 'other';
}
