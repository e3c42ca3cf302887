/**
 * Self-consistency of the graph features transformers checks in test/interop (which needs Python):
 * dynamic-NTK RoPE computed in-graph per run, sliding-window masks, head_dim ≠ hidden/heads.
 * Each compares two tiny models with the same weights whose outputs must agree by construction.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, test } from 'node:test';
import type { HostTensor } from '../../../app/runtime/host-tensor.js';
import { loadModelSession } from '../../../app/runtime/model-session.js';
import { tempDir } from '../../helpers/paths.js';
import { tinyInputIds, writeTinyModel } from '../../helpers/tiny-models.js';

const tmp = tempDir('upcycle-rope-window-');
process.env['UPCYCLE_CACHE_DIR'] = join(tmp.dir, 'cache');
after(tmp.cleanup);

const llama = { architectures: ['LlamaForCausalLM'], model_type: 'llama', vocab_size: 64, hidden_size: 32, intermediate_size: 48, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, rms_norm_eps: 1e-6, rope_theta: 10000, max_position_embeddings: 16 };
let n = 0;

async function logits(config: Record<string, unknown>, ids: number[][], opts: { kv?: boolean; maxPositions?: number } = {}): Promise<Float32Array> {
  const dir = join(tmp.dir, `m${n++}`);
  await writeTinyModel(dir, config, 42);
  const loaded = await loadModelSession(dir, { kvCache: opts.kv, maxPositions: opts.maxPositions });
  try {
    const S = ids[0]!.length;
    const feeds: Record<string, HostTensor> = {
      input_ids: { dims: [ids.length, S], data: BigInt64Array.from(ids.flat().map(BigInt)) },
      position_ids: { dims: [ids.length, S], data: BigInt64Array.from(ids.flatMap((r) => r.map((_, s) => BigInt(s)))) },
    };
    if (opts.kv) {
      feeds['logits_to_keep'] = { dims: [], data: BigInt64Array.of(0n) };
      const c = loaded.config;
      for (let i = 0; i < c.numLayers; i++) {
        for (const kv of ['key', 'value']) {
          feeds[`past_key_values.${i}.${kv}`] = { dims: [ids.length, c.numKvHeads, 0, c.headDim], data: new Float32Array(0) };
          feeds[`recent_key_values.${i}.${kv}`] = { dims: [ids.length, c.numKvHeads, 0, c.headDim], data: new Float32Array(0) };
        }
      }
    }
    const out = await loaded.session.run(feeds, ['logits']);
    return out['logits']!.data as Float32Array;
  } finally {
    await loaded.session.release();
  }
}

function maxDiff(a: Float32Array, b: Float32Array, from = 0, to = a.length): number {
  let m = 0;
  for (let i = from; i < to; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

test('dynamic RoPE: unscaled up to max_position_embeddings, then the base of the run\'s own length', async () => {
  const dynamic = { ...llama, rope_scaling: { rope_type: 'dynamic', factor: 2 } };
  const short = tinyInputIds(2, 12, 64, 3);
  assert.ok(maxDiff(await logits(dynamic, short), await logits(llama, short)) < 1e-5, 'short sequences use the trained frequencies');
  const S = 40;
  const long = tinyInputIds(2, S, 64, 4);
  const dim = 8;
  const theta = 10000 * (2 * S / 16 - 1) ** (dim / (dim - 2));
  const want = await logits({ ...llama, rope_theta: theta }, long, { maxPositions: S });
  assert.ok(maxDiff(await logits(dynamic, long), want) < 1e-4, 'a 40-token run is rotated with base(40)');
  // No table limit: the graph accepts any length.
  assert.equal((await logits(dynamic, tinyInputIds(1, 100, 64, 5))).length, 100 * 64);
});

test('sliding window: positions inside the window match full attention, later ones differ; Qwen2 without use_sliding_window ignores it', async () => {
  const mistral = { ...llama, architectures: ['MistralForCausalLM'], model_type: 'mistral', max_position_embeddings: 64 };
  const ids = tinyInputIds(2, 16, 64, 6);
  const full = await logits({ ...mistral, sliding_window: null }, ids);
  const windowed = await logits({ ...mistral, sliding_window: 5 }, ids);
  const V = 64;
  for (const b of [0, 1]) {
    assert.ok(maxDiff(full, windowed, (b * 16) * V, (b * 16 + 5) * V) < 1e-6, 'the first 5 positions see everything either way');
    assert.ok(maxDiff(full, windowed, (b * 16 + 6) * V, (b * 16 + 16) * V) > 1e-3, 'later positions lose the tokens outside the window');
  }
  assert.ok(maxDiff(await logits({ ...mistral, sliding_window: 64 }, ids), full) < 1e-6, 'a window wider than the sequence changes nothing');
  const qwen = { ...mistral, architectures: ['Qwen2ForCausalLM'], model_type: 'qwen2', rope_theta: 10000 };
  assert.ok(maxDiff(await logits({ ...qwen, use_sliding_window: false, sliding_window: 5, max_window_layers: 0 }, ids), await logits(qwen, ids)) < 1e-6);
});

test('explicit head_dim different from hidden/heads (Qwen3, Mistral-Nemo style) builds and runs, with and without a cache', async () => {
  const qwen3 = { ...llama, architectures: ['Qwen3ForCausalLM'], model_type: 'qwen3', head_dim: 16, max_position_embeddings: 64 };
  const ids = tinyInputIds(1, 6, 64, 7);
  const plain = await logits(qwen3, ids);
  assert.equal(plain.length, 6 * 64);
  assert.ok(maxDiff(plain, await logits(qwen3, ids, { kv: true })) < 1e-6);
});
