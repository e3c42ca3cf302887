import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fromFloat32, toFloat32 } from '../../../app/core/dtypes.js';
import { CheckpointError } from '../../../app/core/errors.js';
import { getMergeMethod, tensorRng } from '../../../app/core/merge/index.js';
import { evaluateModel } from '../../../app/eval/evaluate.js';
import { Checkpoint, withCheckpoint } from '../../../app/io/checkpoint.js';
import { parseMergeConfig } from '../../../app/merge/config.js';
import { runMerge, type MergeProgress } from '../../../app/merge/execute.js';
import { DEMO, MODELS, adapter, model, tempDir } from '../../helpers/paths.js';

const recipe = (doc: Record<string, unknown>) => parseMergeConfig(doc, MODELS);

test('TIES of the four spec-* over base equals the method applied tensor by tensor, and writes a full HF folder', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const r = recipe({ merge_method: 'ties', base_model: 'base', models: ['add', 'upper', 'rev', 'sort'].map((s) => ({ model: `spec-${s}`, parameters: { weight: 1, density: 0.5 } })), parameters: { normalize: true } });
    const events: MergeProgress[] = [];
    const res = await runMerge(r, join(dir, 'ties'), { onProgress: (p) => events.push(p) });
    assert.equal(res.tensors, 39);
    assert.deepEqual(readdirSync(join(dir, 'ties')).sort(), ['README.md', 'config.json', 'generation_config.json', 'mergekit_config.yml', 'model.safetensors', 'special_tokens_map.json', 'tokenizer.json', 'tokenizer_config.json', 'upcycle_pipeline.json']);
    assert.deepEqual(events.map((e) => e.phase).filter((p, i, a) => a.indexOf(p) === i), ['planning', 'merging', 'finishing', 'done']);
    assert.equal(events.filter((e) => e.phase === 'merging').at(-1)!.tensorsDone, 39);
    const ties = getMergeMethod('ties')!;
    const out = await Checkpoint.open(join(dir, 'ties'));
    const inputs = await Promise.all(['base', 'spec-add', 'spec-upper', 'spec-rev', 'spec-sort'].map((m) => Checkpoint.open(model(m))));
    try {
      for (const name of out.names) {
        const [b, ...ms] = await Promise.all(inputs.map((c) => c.readF32(name)));
        const want = ties.merge({ tensorName: name, shape: out.info(name).shape, base: { id: 'base', tensor: b! }, models: ms.map((t, i) => ({ id: `spec-${i}`, tensor: t, params: { weight: 1, density: 0.5 } })), globals: { normalize: true } });
        assert.deepEqual(await out.readF32(name), want, name);
      }
      assert.equal(JSON.parse(readFileSync(join(dir, 'ties', 'config.json'), 'utf8')).torch_dtype, 'float32');
      assert.match(readFileSync(join(dir, 'ties', 'mergekit_config.yml'), 'utf8'), /merge_method: ties/);
      assert.match(out.files[0]!.metadata['upcycle_recipe']!, /"merge_method":"ties"/);
    } finally {
      await out.close();
      await Promise.all(inputs.map((c) => c.close()));
    }
  } finally {
    cleanup();
  }
});

test('model+lora merges the adapter first: base+lora-rev at weight 1 evaluates like the adapter itself', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const r = parseMergeConfig({ merge_method: 'linear', models: [{ model: `models/base+adapters/lora-rev`, parameters: { weight: 1 } }] }, DEMO);
    await runMerge(r, join(dir, 'rev'));
    const ev = await evaluateModel(join(dir, 'rev'), [join(DEMO, 'eval', 'rev.gen.jsonl')], { limit: 40 });
    assert.equal(ev.tasks['rev.gen']!.exact_match, 1);
    // And tensor-wise: W + 2·B·A for an adapted module, untouched elsewhere.
    await withCheckpoint(join(dir, 'rev'), async (out) => {
      const base = await Checkpoint.open(model('base'));
      const a = await Checkpoint.open(adapter('lora-rev'));
      try {
        assert.deepEqual(await out.readF32('model.layers.0.self_attn.k_proj.weight'), await base.readF32('model.layers.0.self_attn.k_proj.weight'));
        const w = await out.readF32('model.layers.0.self_attn.q_proj.weight');
        const w0 = await base.readF32('model.layers.0.self_attn.q_proj.weight');
        const A = await a.readF32('base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight');
        const B = await a.readF32('base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight');
        let d = 0;
        for (let k = 0; k < 16; k++) d += B[5 * 16 + k]! * A[k * 96 + 7]!;
        assert.ok(Math.abs(w[5 * 96 + 7]! - (w0[5 * 96 + 7]! + 2 * d)) < 1e-5);
      } finally {
        await base.close();
        await a.close();
      }
    });
  } finally {
    cleanup();
  }
});

test('passthrough slices stack and renumber layers (a frankenmerge)', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const r = recipe({ merge_method: 'passthrough', slices: [{ sources: [{ model: 'base', layer_range: [0, 3] }] }, { sources: [{ model: 'spec-add', layer_range: [1, 4] }] }], dtype: 'float16' });
    await runMerge(r, join(dir, 'stack'));
    const cfg = JSON.parse(readFileSync(join(dir, 'stack', 'config.json'), 'utf8'));
    assert.equal(cfg.num_hidden_layers, 6);
    assert.equal(cfg.torch_dtype, 'float16');
    await withCheckpoint(join(dir, 'stack'), async (out) => {
      assert.deepEqual(out.problems, []);
      const src = await Checkpoint.open(model('spec-add'));
      try {
        const got = await out.readBytes('model.layers.4.mlp.up_proj.weight');
        const want = fromFloat32(await src.readF32('model.layers.2.mlp.up_proj.weight'), 'F16');
        assert.deepEqual(Buffer.from(got), Buffer.from(want));
      } finally {
        await src.close();
      }
    });
  } finally {
    cleanup();
  }
});

test('DARE is deterministic for a seed and differs across seeds; shards follow the budget', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const r = recipe({ merge_method: 'dare_ties', base_model: 'base', models: [{ model: 'ffn-add', parameters: { weight: 1, density: 0.3 } }, { model: 'ffn-sort', parameters: { weight: 1, density: 0.3 } }] });
    await runMerge(r, join(dir, 'a'), { seed: 7, shardBytes: 400_000 });
    await runMerge(r, join(dir, 'b'), { seed: 7, shardBytes: 400_000, workers: 1 });
    await runMerge(r, join(dir, 'c'), { seed: 8 });
    const files = readdirSync(join(dir, 'a')).filter((f) => f.endsWith('.safetensors'));
    assert.ok(files.length >= 4, `sharded: ${files}`);
    assert.ok(existsSync(join(dir, 'a', 'model.safetensors.index.json')));
    const [a, b, c] = await Promise.all(['a', 'b', 'c'].map((x) => Checkpoint.open(join(dir, x))));
    try {
      const n = 'model.layers.2.mlp.down_proj.weight';
      assert.deepEqual(await a!.readF32(n), await b!.readF32(n));
      assert.notDeepEqual(await a!.readF32(n), await c!.readF32(n));
      // Same stream the method sees: tensor-name keyed, independent of worker count and order.
      assert.ok(tensorRng(7, n).nextUint32() !== tensorRng(8, n).nextUint32());
    } finally {
      await Promise.all([a, b, c].map((x) => x!.close()));
    }
  } finally {
    cleanup();
  }
});

test('bad merges stop before writing and leave no output folder; cancel leaves none either', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const moe = recipe({ merge_method: 'linear', models: [{ model: 'base', parameters: { weight: 1 } }, { model: 'moe-4x', parameters: { weight: 1 } }] });
    await assert.rejects(runMerge(moe, join(dir, 'x')), (e: unknown) => e instanceof CheckpointError && e.code === 'INCOMPATIBLE' && /moe-4x/.test(e.message));
    const missing = recipe({ merge_method: 'linear', models: [{ model: 'nope', parameters: { weight: 1 } }] });
    await assert.rejects(runMerge(missing, join(dir, 'x')), (e: unknown) => e instanceof CheckpointError && e.code === 'NOT_FOUND');
    const ac = new AbortController();
    const ok = recipe({ merge_method: 'linear', models: [{ model: 'spec-add', parameters: { weight: 1 } }, { model: 'spec-rev', parameters: { weight: 1 } }] });
    await assert.rejects(runMerge(ok, join(dir, 'x'), { signal: ac.signal, onProgress: (p) => { if (p.tensorsDone === 5) ac.abort(new Error('cancelled')); } }), /cancelled/);
    assert.deepEqual(readdirSync(dir), []);
  } finally {
    cleanup();
  }
});

test('bf16 output is the float32 result rounded to nearest even', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const r = recipe({ merge_method: 'linear', models: [{ model: 'ffn-add', parameters: { weight: 1 } }, { model: 'ffn-rev', parameters: { weight: 3 } }] });
    await runMerge(r, join(dir, 'f32'));
    await runMerge(r, join(dir, 'bf16'), { outDtype: 'BF16' });
    const [x, y] = await Promise.all([Checkpoint.open(join(dir, 'f32')), Checkpoint.open(join(dir, 'bf16'))]);
    try {
      for (const n of x.names.slice(0, 8)) assert.deepEqual(Buffer.from(await y.readBytes(n)), Buffer.from(fromFloat32(toFloat32(await x.readBytes(n), 'F32'), 'BF16')));
    } finally {
      await x.close();
      await y.close();
    }
  } finally {
    cleanup();
  }
});
