import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loraDelta, mapAdapterTensors, moduleScaling, parseLoraConfig } from '../../../app/core/lora.js';

test('scaling: alpha/r, rsLoRA alpha/sqrt(r), rank and alpha patterns as PEFT matches them', () => {
  const c = parseLoraConfig({ peft_type: 'LORA', r: 16, lora_alpha: 32, rank_pattern: { q_proj: 4, 'layers\\.1\\..*v_proj': 8 }, alpha_pattern: { q_proj: 2 } });
  assert.deepEqual(moduleScaling(c, 'model.layers.0.mlp.up_proj'), { r: 16, alpha: 32, scaling: 2 });
  assert.deepEqual(moduleScaling(c, 'model.layers.0.self_attn.q_proj'), { r: 4, alpha: 2, scaling: 0.5 });
  assert.deepEqual(moduleScaling(c, 'model.layers.1.self_attn.v_proj'), { r: 8, alpha: 32, scaling: 4 });
  assert.equal(moduleScaling(c, 'model.layers.0.self_attn.v_proj').r, 16);
  // "q_proj" must not match "xq_proj" (PEFT anchors the key at a dot boundary).
  assert.equal(moduleScaling(c, 'model.layers.0.self_attn.xq_proj').r, 16);
  const rs = parseLoraConfig({ r: 16, lora_alpha: 32, use_rslora: true });
  assert.equal(moduleScaling(rs, 'a.q_proj').scaling, 8);
  assert.throws(() => parseLoraConfig({ peft_type: 'LORA', use_dora: true }), /DoRA/);
  assert.throws(() => parseLoraConfig({ peft_type: 'IA3' }), /only LoRA/);
});

test('tensor names map to base tensors; modules_to_save and strays are kept apart', () => {
  const m = mapAdapterTensors([
    'base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight',
    'base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight',
    'base_model.model.model.embed_tokens.lora_embedding_A',
    'base_model.model.model.embed_tokens.lora_embedding_B',
    'base_model.model.lm_head.weight',
    'base_model.model.model.layers.0.mlp.up_proj.lora_A.weight',
  ]);
  assert.deepEqual(m.modules.map((x) => [x.module, x.baseTensor, x.embedding]), [
    ['model.embed_tokens', 'model.embed_tokens.weight', true],
    ['model.layers.0.self_attn.q_proj', 'model.layers.0.self_attn.q_proj.weight', false],
  ]);
  assert.deepEqual(m.replacements, [{ adapterTensor: 'base_model.model.lm_head.weight', baseTensor: 'lm_head.weight' }]);
  assert.deepEqual(m.unknown, ['base_model.model.model.layers.0.mlp.up_proj.lora_A.weight']);
});

test('delta = scaling · B·A, transposed for fan_in_fan_out and embeddings', () => {
  // A [r=1, in=3] = [1 2 3];  B [out=2, r=1] = [[1],[−1]];  B·A = [[1 2 3], [−1 −2 −3]]; × scaling 2.
  const a = Float32Array.from([1, 2, 3]);
  const b = Float32Array.from([1, -1]);
  const d = loraDelta(a, [1, 3], b, [2, 1], 2);
  assert.deepEqual(d.shape, [2, 3]);
  assert.deepEqual([...d.data], [2, 4, 6, -2, -4, -6]);
  const t = loraDelta(a, [1, 3], b, [2, 1], 2, { fanInFanOut: true });
  assert.deepEqual(t.shape, [3, 2]);
  assert.deepEqual([...t.data], [2, -2, 4, -4, 6, -6]);
  // r=2: A = [[1 0],[0 1]], B = [[1 2],[3 4]] → B·A = B.
  const r2 = loraDelta(Float32Array.from([1, 0, 0, 1]), [2, 2], Float32Array.from([1, 2, 3, 4]), [2, 2], 1);
  assert.deepEqual([...r2.data], [1, 2, 3, 4]);
  assert.throws(() => loraDelta(a, [1, 3], Float32Array.from([1, 2]), [1, 2], 1), /rank/);
});
