/**
 * transformers' per-family defaults and sliding-window rules, as hf-config reproduces them
 * (checked against transformers 5.23 by test/interop/runtime-families.test.ts).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseModelConfig, slidingWindowFor } from '../../../app/core/hf-config.js';
import { ropeInvFreq } from '../../../app/core/rope.js';

const base = { vocab_size: 100, hidden_size: 64, intermediate_size: 128, num_hidden_layers: 4, num_attention_heads: 4, num_key_value_heads: 2 };
const windows = (c: ReturnType<typeof parseModelConfig>) => Array.from({ length: c.numLayers }, (_, i) => slidingWindowFor(c, i) ?? null);

test('defaults for omitted fields follow transformers: theta 10000 (Mixtral 1e6), Mixtral eps 1e-5, Qwen3 head_dim 128, max positions', () => {
  for (const family of ['llama', 'mistral', 'qwen2', 'qwen3', 'qwen2_moe']) {
    const extra = family === 'qwen2_moe' ? { num_experts: 4 } : {};
    assert.equal(parseModelConfig({ ...base, ...extra, model_type: family }).rope.theta, 10000, family);
  }
  const mixtral = parseModelConfig({ ...base, model_type: 'mixtral', num_local_experts: 4 });
  assert.deepEqual([mixtral.rope.theta, mixtral.rmsNormEps, mixtral.maxPositionEmbeddings], [1e6, 1e-5, 131072]);
  assert.equal(parseModelConfig({ ...base, model_type: 'llama' }).rmsNormEps, 1e-6);
  assert.equal(parseModelConfig({ ...base, model_type: 'llama' }).maxPositionEmbeddings, 2048);
  assert.equal(parseModelConfig({ ...base, model_type: 'qwen3' }).headDim, 128);
  assert.equal(parseModelConfig({ ...base, model_type: 'qwen3', head_dim: 16 }).headDim, 16);
  assert.equal(parseModelConfig({ ...base, model_type: 'qwen2' }).headDim, 16);
});

test('sliding windows: Mistral every layer (default 4096, null = none), Qwen only with use_sliding_window', () => {
  assert.deepEqual(windows(parseModelConfig({ ...base, model_type: 'mistral' })), [4096, 4096, 4096, 4096]);
  assert.deepEqual(windows(parseModelConfig({ ...base, model_type: 'mistral', sliding_window: null })), [null, null, null, null]);
  assert.deepEqual(windows(parseModelConfig({ ...base, model_type: 'mixtral', num_local_experts: 4, sliding_window: 8 })), [8, 8, 8, 8]);
  assert.deepEqual(windows(parseModelConfig({ ...base, model_type: 'llama', sliding_window: 8 })), [null, null, null, null]);
  // Qwen2 configs ship sliding_window with use_sliding_window false: no window at all.
  assert.deepEqual(windows(parseModelConfig({ ...base, model_type: 'qwen2', sliding_window: 8, max_window_layers: 1 })), [null, null, null, null]);
  assert.deepEqual(windows(parseModelConfig({ ...base, model_type: 'qwen2', use_sliding_window: true, sliding_window: 8, max_window_layers: 1 })), [null, 8, 8, 8]);
  assert.deepEqual(windows(parseModelConfig({ ...base, model_type: 'qwen3', use_sliding_window: true, sliding_window: 8, max_window_layers: 2, layer_types: ['sliding_attention', 'full_attention', 'full_attention', 'sliding_attention'] })), [8, null, null, 8]);
  // Qwen2-MoE: the even layers below max_window_layers.
  assert.deepEqual(windows(parseModelConfig({ ...base, model_type: 'qwen2_moe', num_experts: 4, use_sliding_window: true, sliding_window: 8, max_window_layers: 3 })), [8, null, 8, null]);
});

test('llama3 / yarn take original_max_position_embeddings from the top level first, then rope_scaling, then max_position_embeddings', () => {
  const llama3 = (extra: Record<string, unknown>) => ropeInvFreq(parseModelConfig({ ...base, model_type: 'llama', max_position_embeddings: 64, rope_scaling: { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4 }, ...extra })).invFreq;
  const scaled = llama3({});
  const viaDict = ropeInvFreq(parseModelConfig({ ...base, model_type: 'llama', max_position_embeddings: 64, rope_scaling: { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 64 } })).invFreq;
  assert.deepEqual(scaled, viaDict);
  assert.notDeepEqual(llama3({ original_max_position_embeddings: 8 }), scaled);
});
