import assert from 'node:assert/strict';
import { test } from 'node:test';
import { expectedTensors } from '../../../app/core/architectures.js';
import { ConfigError, isSparseLayer, parseModelConfig } from '../../../app/core/hf-config.js';

const base = { vocab_size: 100, hidden_size: 64, intermediate_size: 128, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2 };

test('llama: defaults, head_dim derived, legacy rope_scaling', () => {
  const c = parseModelConfig({ ...base, model_type: 'llama', architectures: ['LlamaForCausalLM'], rope_theta: 500000, rope_scaling: { type: 'llama3', factor: 8 } });
  assert.equal(c.family, 'llama');
  assert.equal(c.headDim, 16);
  assert.deepEqual([c.rope.type, c.rope.theta, c.rope.factor], ['llama3', 500000, 8]);
  assert.equal(expectedTensors(c).length, 1 + 2 * 9 + 2);
});

test('transformers v5 rope_parameters carries theta and type', () => {
  const c = parseModelConfig({ ...base, model_type: 'mistral', rope_parameters: { rope_type: 'yarn', rope_theta: 1e6, factor: 4 } });
  assert.deepEqual([c.family, c.rope.type, c.rope.theta, c.rope.factor], ['mistral', 'yarn', 1e6, 4]);
});

test('qwen2 has q/k/v bias (no o_proj bias); qwen3 has q/k norms and explicit head_dim', () => {
  const q2 = parseModelConfig({ ...base, model_type: 'qwen2', tie_word_embeddings: true });
  const names = expectedTensors(q2).map((t) => t.name);
  assert.ok(names.includes('model.layers.0.self_attn.k_proj.bias'));
  assert.ok(!names.includes('model.layers.0.self_attn.o_proj.bias'));
  assert.equal(expectedTensors(q2).find((t) => t.name === 'lm_head.weight')?.optional, true);
  const q3 = parseModelConfig({ ...base, model_type: 'qwen3', head_dim: 32 });
  const t3 = expectedTensors(q3);
  assert.deepEqual(t3.find((t) => t.name === 'model.layers.1.self_attn.q_norm.weight')?.shape, [32]);
  assert.deepEqual(t3.find((t) => t.name === 'model.layers.0.self_attn.q_proj.weight')?.shape, [128, 64]);
});

test('mixtral: num_local_experts, always renormalised top-k, per-expert w1/w2/w3', () => {
  const c = parseModelConfig({ ...base, model_type: 'mixtral', num_local_experts: 4, num_experts_per_tok: 2 });
  assert.deepEqual(c.moe, { numExperts: 4, topK: 2, expertIntermediateSize: 128, sharedExpertIntermediateSize: 0, normTopkProb: true, decoderSparseStep: 1, mlpOnlyLayers: [] });
  const names = expectedTensors(c).map((t) => t.name);
  assert.ok(names.includes('model.layers.1.block_sparse_moe.experts.3.w2.weight'));
  assert.ok(names.includes('model.layers.0.block_sparse_moe.gate.weight'));
});

test('qwen2_moe: shared expert and its gate, sparse-step and mlp-only layers, norm_topk_prob default false', () => {
  const c = parseModelConfig({ ...base, num_hidden_layers: 4, model_type: 'qwen2_moe', num_experts: 4, num_experts_per_tok: 2, moe_intermediate_size: 32, shared_expert_intermediate_size: 64, decoder_sparse_step: 2, mlp_only_layers: [3] });
  assert.equal(c.moe?.normTopkProb, false);
  assert.deepEqual([0, 1, 2, 3].map((i) => isSparseLayer(c, i)), [false, true, false, false]);
  const t = expectedTensors(c);
  assert.deepEqual(t.find((x) => x.name === 'model.layers.1.mlp.shared_expert_gate.weight')?.shape, [1, 64]);
  assert.deepEqual(t.find((x) => x.name === 'model.layers.1.mlp.experts.0.up_proj.weight')?.shape, [32, 64]);
  assert.deepEqual(t.find((x) => x.name === 'model.layers.0.mlp.up_proj.weight')?.shape, [128, 64]);
  assert.equal(c.attentionBias, true);
});

test('invalid configs name the field', () => {
  assert.throws(() => parseModelConfig({ ...base, num_attention_heads: 0 }), (e: unknown) => e instanceof ConfigError && /num_attention_heads/.test(e.message));
  assert.throws(() => parseModelConfig({ ...base, num_key_value_heads: 3 }), /not a multiple/);
  assert.throws(() => parseModelConfig({ ...base, model_type: 'mixtral', num_local_experts: 2, num_experts_per_tok: 3 }), /exceeds/);
  const odd = parseModelConfig({ ...base, model_type: 'llama', hidden_act: 'gelu' });
  assert.equal(odd.family, undefined);
  assert.match(odd.notes[0]!, /gelu/);
});
