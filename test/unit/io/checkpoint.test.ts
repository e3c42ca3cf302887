import assert from 'node:assert/strict';
import { cpSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { CheckpointError } from '../../../app/core/errors.js';
import { Checkpoint, withCheckpoint } from '../../../app/io/checkpoint.js';
import { checkCompatibility } from '../../../app/io/compat-check.js';
import { inspectCheckpoint } from '../../../app/io/inspect.js';
import { adapter, model, tempDir } from '../../helpers/paths.js';

const isCode = (code: string) => (e: unknown) => {
  assert.ok(e instanceof CheckpointError, `expected CheckpointError, got ${String(e)}`);
  assert.equal(e.code, code, e.message);
  return true;
};

test('a model folder: config, tensors, tokenizer hash, generation config, no problems', async () => {
  await withCheckpoint(model('base'), async (ck) => {
    assert.equal(ck.kind, 'model');
    assert.equal(ck.config?.family, 'llama');
    assert.equal(ck.config?.numKvHeads, 2);
    assert.equal(ck.config?.headDim, 24);
    assert.equal(ck.numParameters, 458_592);
    assert.equal(ck.names.length, 39);
    assert.match(ck.tokenizerSha256 ?? '', /^[0-9a-f]{64}$/);
    assert.equal(ck.generationConfig?.['eos_token_id'], 2);
    assert.deepEqual(ck.problems, []);
  });
});

test('a sharded folder reads the same tensors as the single-file one', async () => {
  const a = await Checkpoint.open(model('base'));
  const b = await Checkpoint.open(model('base-sharded'));
  try {
    assert.equal(b.files.length, 2);
    assert.deepEqual([...b.names].sort(), [...a.names].sort());
    for (const n of a.names) assert.deepEqual(Buffer.from(await b.readBytes(n)), Buffer.from(await a.readBytes(n)), n);
    assert.equal(a.tokenizerSha256, b.tokenizerSha256);
  } finally {
    await a.close();
    await b.close();
  }
});

test('a PEFT adapter: LoRA config, modules mapped to base tensors, checked against its base', async () => {
  const r = await inspectCheckpoint(adapter('lora-add'));
  assert.equal(r.kind, 'adapter');
  assert.equal(r.adapter?.r, 16);
  assert.equal(r.adapter?.scaling, 2);
  assert.equal(r.adapter?.num_modules, 20);
  assert.deepEqual(r.adapter?.target_modules, ['down_proj', 'gate_proj', 'q_proj', 'up_proj', 'v_proj']);
  assert.equal(r.adapter?.base_found, true);
  assert.deepEqual(r.problems, []);
  await withCheckpoint(adapter('lora-add'), async (ck) => {
    const m = ck.adapterMap!.modules.find((x) => x.module === 'model.layers.0.self_attn.q_proj')!;
    assert.equal(m.baseTensor, 'model.layers.0.self_attn.q_proj.weight');
    assert.deepEqual(ck.info(m.a).shape, [16, 96]);
    assert.deepEqual(ck.info(m.b).shape, [96, 16]);
  });
});

test('pickle checkpoints are refused with the reason and the conversion', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const m = join(dir, 'pickled');
    mkdirSync(m);
    cpSync(join(model('base'), 'config.json'), join(m, 'config.json'));
    writeFileSync(join(m, 'pytorch_model.bin'), 'not really a pickle');
    await assert.rejects(Checkpoint.open(m), (e: unknown) => isCode('PICKLE_REFUSED')(e) && /arbitrary code/.test((e as Error).message) && /safe_serialization/.test((e as Error).message));
    await assert.rejects(Checkpoint.open(join(m, 'pytorch_model.bin')), isCode('PICKLE_REFUSED'));
    const a = join(dir, 'adapter');
    mkdirSync(a);
    cpSync(join(adapter('lora-add'), 'adapter_config.json'), join(a, 'adapter_config.json'));
    writeFileSync(join(a, 'adapter_model.bin'), 'x');
    await assert.rejects(Checkpoint.open(a), isCode('PICKLE_REFUSED'));
  } finally {
    cleanup();
  }
});

test('links and index entries that escape the folder are refused; the hub cache layout is accepted', async () => {
  const { dir, cleanup } = tempDir();
  try {
    // A symlinked weight file pointing outside the folder.
    const m = join(dir, 'linked');
    mkdirSync(m);
    cpSync(join(model('base'), 'config.json'), join(m, 'config.json'));
    symlinkSync(join(model('base'), 'model.safetensors'), join(m, 'model.safetensors'));
    await assert.rejects(Checkpoint.open(m), isCode('UNSAFE_PATH'));
    // A weight_map entry with ../
    const s = join(dir, 'sharded');
    cpSync(model('base-sharded'), s, { recursive: true });
    const idxPath = join(s, 'model.safetensors.index.json');
    const idx = JSON.parse(readFileSync(idxPath, 'utf8'));
    const first = Object.keys(idx.weight_map)[0]!;
    for (const evil of ['../linked/model.safetensors', '/etc/passwd', 'sub/../../x.safetensors']) {
      idx.weight_map[first] = evil;
      writeFileSync(idxPath, JSON.stringify(idx));
      await assert.rejects(Checkpoint.open(s), isCode('UNSAFE_PATH'), evil);
    }
    // HF cache: snapshots/<rev>/model.safetensors -> ../../blobs/<sha>
    const repo = join(dir, 'models--x--y');
    mkdirSync(join(repo, 'blobs'), { recursive: true });
    mkdirSync(join(repo, 'snapshots', 'abc'), { recursive: true });
    for (const f of ['config.json', 'model.safetensors', 'tokenizer.json']) {
      cpSync(join(model('base'), f), join(repo, 'blobs', `sha-${f}`));
      symlinkSync(`../../blobs/sha-${f}`, join(repo, 'snapshots', 'abc', f));
    }
    await withCheckpoint(join(repo, 'snapshots', 'abc'), async (ck) => assert.equal(ck.names.length, 39));
  } finally {
    cleanup();
  }
});

test('missing shards and index entries naming absent tensors are clear errors', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const s = join(dir, 'sharded');
    cpSync(model('base-sharded'), s, { recursive: true });
    rmSync(join(s, 'model-00002-of-00002.safetensors'));
    await assert.rejects(Checkpoint.open(s), (e: unknown) => isCode('MISSING_SHARD')(e) && (e as Error).message.includes('model-00002-of-00002.safetensors'));
    cpSync(model('base-sharded'), s, { recursive: true });
    const idxPath = join(s, 'model.safetensors.index.json');
    const idx = JSON.parse(readFileSync(idxPath, 'utf8'));
    idx.weight_map['model.layers.9.mlp.up_proj.weight'] = 'model-00001-of-00002.safetensors';
    writeFileSync(idxPath, JSON.stringify(idx));
    await assert.rejects(Checkpoint.open(s), (e: unknown) => isCode('MISSING_TENSOR')(e) && (e as Error).message.includes('model.layers.9.mlp.up_proj.weight'));
    writeFileSync(idxPath, '{"weight_map": [}');
    await assert.rejects(Checkpoint.open(s), isCode('INVALID_CONFIG'));
  } finally {
    cleanup();
  }
});

test('problems: missing and mis-shaped tensors against config.json, unknown architectures', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const m = join(dir, 'm');
    cpSync(model('base'), m, { recursive: true });
    const cfg = JSON.parse(readFileSync(join(m, 'config.json'), 'utf8'));
    writeFileSync(join(m, 'config.json'), JSON.stringify({ ...cfg, num_hidden_layers: 5, intermediate_size: 128 }));
    await withCheckpoint(m, async (ck) => {
      const msgs = ck.problems.map((p) => p.message).join('\n');
      assert.match(msgs, /tensors required by LlamaForCausalLM are missing \(first: model\.layers\.4\./);
      assert.match(msgs, /mlp\.gate_proj\.weight is \[256, 96\], config\.json implies \[128, 96\]/);
    });
    writeFileSync(join(m, 'config.json'), JSON.stringify({ ...cfg, model_type: 'gpt_neox', architectures: ['GPTNeoXForCausalLM'] }));
    await withCheckpoint(m, async (ck) => {
      assert.equal(ck.config?.family, undefined);
      assert.match(ck.problems[0]!.message, /not one of llama.*cannot be run/);
      assert.equal(ck.names.length, 39, 'tensors still load');
    });
    writeFileSync(join(m, 'config.json'), JSON.stringify({ ...cfg, hidden_size: 'big' }));
    await assert.rejects(Checkpoint.open(m), (e: unknown) => isCode('INVALID_CONFIG')(e) && /hidden_size/.test((e as Error).message));
  } finally {
    cleanup();
  }
});

test('compatibility: identical bases pass; tokenizer, vocab and shape differences are reported with meaning', async () => {
  const ok = await checkCompatibility(model('base'), [model('spec-add'), model('base-sharded'), model('base-bf16'), adapter('lora-rev')]);
  assert.equal(ok.ok, true);
  assert.deepEqual(ok.pairs[0]!.differences, []);
  assert.deepEqual(ok.pairs[2]!.differences.map((d) => d.code), ['dtype']);
  const { dir, cleanup } = tempDir();
  try {
    const m = join(dir, 'other-tok');
    cpSync(model('spec-add'), m, { recursive: true });
    const tok = JSON.parse(readFileSync(join(m, 'tokenizer.json'), 'utf8'));
    tok.added_tokens.push({ id: 271, content: '<extra>', special: true, single_word: false, lstrip: false, rstrip: false, normalized: false });
    writeFileSync(join(m, 'tokenizer.json'), JSON.stringify(tok));
    const r = await checkCompatibility(model('base'), [m, model('moe-4x')]);
    const tokDiff = r.pairs[0]!.differences.find((d) => d.code === 'tokenizer')!;
    assert.match(tokDiff.message, /tokenizer\.json differs/);
    assert.match(tokDiff.meaning, /same token ids may mean different text/);
    const moe = r.pairs[1]!.differences;
    assert.ok(moe.some((d) => d.code === 'missing_tensors' && d.severity === 'error'));
    assert.equal(r.ok, false);
  } finally {
    cleanup();
  }
});

test('an adapter for another base is reported', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const m = join(dir, 'wide');
    mkdirSync(m);
    const cfg = JSON.parse(readFileSync(join(model('base'), 'config.json'), 'utf8'));
    writeFileSync(join(m, 'config.json'), JSON.stringify({ ...cfg, hidden_size: 48, head_dim: 12 }));
    // Headers only matter for the check: write a tiny file declaring q_proj with another shape.
    const { writeTensors } = await import('../../../app/io/safetensors-writer.js');
    const { OutputFolder } = await import('../../../app/io/output-folder.js');
    const out = await OutputFolder.create(join(dir, 'weights'));
    await writeTensors(out, [{ name: 'model.layers.0.self_attn.q_proj.weight', dtype: 'F32', shape: [48, 48], bytes: new Uint8Array(48 * 48 * 4) }]);
    await out.commit();
    cpSync(join(dir, 'weights', 'model.safetensors'), join(m, 'model.safetensors'));
    const r = await checkCompatibility(m, [adapter('lora-add')]);
    const codes = r.pairs[0]!.differences.map((d) => d.code).sort();
    assert.deepEqual(codes, ['adapter_shape', 'adapter_target']);
    assert.equal(r.ok, false);
  } finally {
    cleanup();
  }
});

test('the MoE fixture parses as Mixtral with 4 experts, top-2', async () => {
  await withCheckpoint(model('moe-4x'), async (ck) => {
    assert.equal(ck.config?.family, 'mixtral');
    assert.deepEqual(ck.config?.moe && { e: ck.config.moe.numExperts, k: ck.config.moe.topK, norm: ck.config.moe.normTopkProb }, { e: 4, k: 2, norm: true });
    assert.deepEqual(ck.problems, []);
  });
});
