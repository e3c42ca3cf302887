import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fromFloat32, toFloat32 } from '../../../app/core/dtypes.js';
import { loraDelta } from '../../../app/core/lora.js';
import { evaluateModel } from '../../../app/eval/evaluate.js';
import { Checkpoint, withCheckpoint } from '../../../app/io/checkpoint.js';
import { buildMoe } from '../../../app/moe/assemble.js';
import { MoeRecipeError, parseMoeConfig, parseMoeYaml } from '../../../app/moe/config.js';
import { hiddenRouters } from '../../../app/moe/routers.js';
import { TextTokenizer } from '../../../app/runtime/tokenizer.js';
import { DEMO, adapter, model, tempDir } from '../../helpers/paths.js';

const SKILLS = ['add', 'upper', 'rev', 'sort'];
const PROMPTS: Record<string, string[]> = {
  add: ['add 12 34 =', 'add 7 81 ='], upper: ['up cat dog =', 'up hello ='], rev: ['rev hello =', 'rev abc ='], sort: ['sort 3 1 2 =', 'sort 9 4 ='],
};
const recipe = (over: Record<string, unknown>, family = 'ffn') => parseMoeConfig({
  base_model: 'models/base',
  experts: SKILLS.map((s) => ({ source_model: `models/${family}-${s}`, positive_prompts: PROMPTS[s], seed_data: `eval/${s}.seed.jsonl` })),
  ...over,
}, DEMO);
const gen = SKILLS.map((s) => join(DEMO, 'eval', `${s}.gen.jsonl`));

test('mergekit-moe configs parse unchanged; bad ones name the problem', () => {
  const r = parseMoeConfig({ base_model: 'b', gate_mode: 'hidden', dtype: 'bfloat16', experts_per_token: 2, experts: [{ source_model: 'x', positive_prompts: ['a'], negative_prompts: ['n'] }, { source_model: 'y', positive_prompts: ['b'] }] }, '/m');
  assert.equal(r.gateMode, 'hidden');
  assert.equal(r.outDtype, 'BF16');
  assert.equal(r.experts[0]!.model, '/m/x');
  assert.deepEqual(r.experts[0]!.negativePrompts, ['n']);
  const bad = (doc: Record<string, unknown>, re: RegExp) => assert.throws(() => parseMoeConfig(doc, '/m'), (e: unknown) => e instanceof MoeRecipeError && re.test(e.message));
  const two = [{ source_model: 'x', positive_prompts: ['a'] }, { source_model: 'y', positive_prompts: ['b'] }];
  bad({ base_model: 'b', experts: two, fancy: 1 }, /unknown key "fancy"/);
  bad({ base_model: 'b', gate_mode: 'magic', experts: two }, /gate_mode "magic"/);
  bad({ base_model: 'b', experts: [{ source_model: 'x', positive_prompts: ['a'] }, { source_model: 'y', positive_prompts: ['a'] }] }, /same prompts/);
  bad({ base_model: 'b', experts: [{ source_model: 'x' }, { source_model: 'y' }] }, /needs positive_prompts/);
  bad({ base_model: 'b', experts: two, experts_per_token: 3 }, /experts_per_token/);
  bad({ base_model: 'b', experts: [{ source_model: 'x', source_adapter: 'a', positive_prompts: ['a'] }, two[1]] }, /exactly one of/);
  bad({ base_model: 'b', experts: two, architecture: 'mixtral', shared_expert: true }, /Mixtral has no shared expert/);
  bad({ base_model: 'b', experts: two, shared_experts: [null] }, /shared_experts\[0\] must be a mapping/);
  bad({ base_model: 'b', experts: two, shared_experts: [{ source_model: 's', gate: 1 }] }, /shared_experts\[0\]: unknown key "gate"/);
  bad({ base_model: 'b', experts: two, calibration: 5 }, /calibration must be a mapping/);
  bad({ base_model: 'b', experts: two, calibration: { class_balance: 'yes' } }, /class_balance must be true or false/);
  bad({ base_model: 'b', experts: two, calibration: { steps: 2.5 } }, /steps must be a whole number/);
  assert.throws(() => parseMoeYaml('experts: [a\n b', '/m/moe.yml'), /^MoeRecipeError: \/m\/moe\.yml: not valid YAML|\/m\/moe\.yml: not valid YAML/);
});

test('calibrated routers on the ffn-* experts: top-2 MoE scores well above 0.5 mean exact match; the Mixtral is complete', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const r = await buildMoe(recipe({ gate_mode: 'calibrated', experts_per_token: 2 }), join(dir, 'moe'));
    assert.equal(r.architecture.arch, 'mixtral');
    assert.equal(r.routingAccuracy!.length, 4);
    assert.ok(r.routingAccuracy!.every((a) => a > 0.9), `routing accuracy ${r.routingAccuracy}`);
    assert.ok(r.seedAgreement! > 0.9);
    assert.equal(r.drift.warning, null);
    const cfg = JSON.parse(readFileSync(join(dir, 'moe', 'config.json'), 'utf8'));
    assert.deepEqual([cfg.architectures[0], cfg.model_type, cfg.num_local_experts, cfg.num_experts_per_tok, cfg.router_aux_loss_coef, cfg.output_router_logits], ['MixtralForCausalLM', 'mixtral', 4, 2, 0.001, false]);
    assert.ok(readdirSync(join(dir, 'moe')).includes('mergekit_moe_config.yml'));
    const ev = await evaluateModel(join(dir, 'moe'), gen);
    const mean = SKILLS.reduce((a, s) => a + ev.tasks[`${s}.gen`]!.exact_match!, 0) / 4;
    assert.ok(mean >= 0.5, `mean exact match ${mean}`);
    // Experts are the specialists' FFNs, bit for bit; everything else is the base's.
    await withCheckpoint(join(dir, 'moe'), async (moe) => {
      assert.deepEqual(moe.problems, []);
      const rev = await Checkpoint.open(model('ffn-rev'));
      const base = await Checkpoint.open(model('base'));
      try {
        assert.deepEqual(Buffer.from(await moe.readBytes('model.layers.1.block_sparse_moe.experts.2.w3.weight')), Buffer.from(await rev.readBytes('model.layers.1.mlp.up_proj.weight')));
        assert.deepEqual(Buffer.from(await moe.readBytes('model.layers.3.self_attn.o_proj.weight')), Buffer.from(await base.readBytes('model.layers.3.self_attn.o_proj.weight')));
      } finally {
        await rev.close();
        await base.close();
      }
    });
  } finally {
    cleanup();
  }
});

test('hidden gates are mergekit-moe\'s: normalised mean of the last-token residual entering each layer', async () => {
  const r = recipe({ gate_mode: 'hidden' });
  const tok = TextTokenizer.load(model('base'), 2);
  const routers = await hiddenRouters(model('base'), r.experts, tok, 'last');
  assert.equal(routers.length, 4);
  // Layer 0's input is the embedding: the last token of every prompt is " =" → "=", the same row for all experts.
  const embed = await withCheckpoint(model('base'), (ck) => ck.readF32('model.embed_tokens.weight'));
  const eq = (await tok.encode('=', false))[0]!;
  const row = embed.subarray(eq * 96, eq * 96 + 96);
  const n = Math.hypot(...row);
  for (let e = 0; e < 4; e++) for (let h = 0; h < 96; h++) assert.ok(Math.abs(routers[0]![e * 96 + h]! - row[h]! / n) < 1e-5);
  for (const g of routers) for (let e = 0; e < 4; e++) assert.ok(Math.abs(Math.hypot(...g.subarray(e * 96, e * 96 + 96)) - 1) < 1e-5);
});

test('uniform is gate-less (all experts, equal weights); random is seeded', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const u = await buildMoe(recipe({ gate_mode: 'uniform' }), join(dir, 'u'));
    assert.equal(u.topK, 4);
    assert.match(u.notices.join('\n'), /activates every expert/);
    await buildMoe(recipe({ gate_mode: 'random', random_seed: 3 }), join(dir, 'r1'));
    await buildMoe(recipe({ gate_mode: 'random', random_seed: 3 }), join(dir, 'r2'));
    const [a, b] = await Promise.all([Checkpoint.open(join(dir, 'r1')), Checkpoint.open(join(dir, 'r2'))]);
    try {
      const g = await a.readF32('model.layers.2.block_sparse_moe.gate.weight');
      assert.deepEqual(g, await b.readF32('model.layers.2.block_sparse_moe.gate.weight'));
      const std = Math.sqrt(g.reduce((s, x) => s + x * x, 0) / g.length);
      assert.ok(Math.abs(std - 1 / Math.sqrt(96)) < 0.02, `std ${std}`);
    } finally {
      await a.close();
      await b.close();
    }
  } finally {
    cleanup();
  }
});

test('spec-* experts trigger the drift warning with its remedies', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const early: string[] = [];
    let writingSeen = false;
    const r = await buildMoe(recipe({ gate_mode: 'random' }, 'spec'), join(dir, 'spec'), {
      onWarning: (m) => early.push(`${writingSeen ? 'late' : 'early'}: ${m}`),
      onProgress: (p) => { if (p.phase === 'writing') writingSeen = true; },
    });
    assert.match(early[0] ?? '', /^early: .*will likely fail/, 'the drift warning comes before any tensor is written');
    assert.ok(r.drift.experts.every((d) => d.nonFfnMax > 0.02));
    assert.match(r.drift.warning!, /will likely fail.*non_expert_weights: average/);
    const avg = await buildMoe(recipe({ gate_mode: 'random', non_expert_weights: 'average' }, 'spec'), join(dir, 'avg'));
    assert.equal(avg.drift.warning, null);
    await withCheckpoint(join(dir, 'avg'), async (ck) => {
      const ws = await Promise.all(SKILLS.map((s) => withCheckpoint(model(`spec-${s}`), (c) => c.readF32('model.layers.0.self_attn.q_proj.weight'))));
      const got = await ck.readF32('model.layers.0.self_attn.q_proj.weight');
      for (let k = 0; k < got.length; k += 97) assert.ok(Math.abs(got[k]! - ws.reduce((a, w) => a + w[k]! / 4, 0)) < 1e-6);
    });
  } finally {
    cleanup();
  }
});

test('LoRA adapters as experts: each FFN is base + its delta; Qwen2-MoE with the base FFN as shared expert loads and runs', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const r = parseMoeConfig({
      base_model: 'models/base', gate_mode: 'cheap_embed', shared_expert: true, dtype: 'bfloat16',
      experts: SKILLS.map((s) => ({ source_adapter: `adapters/lora-${s}`, positive_prompts: PROMPTS[s] })),
    }, DEMO);
    const res = await buildMoe(r, join(dir, 'qwen'));
    assert.equal(res.architecture.arch, 'qwen2_moe');
    assert.match(res.notices.join('\n'), /also adapts q_proj, v_proj: with non-expert weights from the base those changes are dropped/);
    await withCheckpoint(join(dir, 'qwen'), async (moe) => {
      assert.equal(moe.config?.family, 'qwen2_moe');
      assert.deepEqual(moe.problems, []);
      const base = await Checkpoint.open(model('base'));
      const a = await Checkpoint.open(adapter('lora-rev'));
      try {
        const w = await base.readF32('model.layers.2.mlp.down_proj.weight');
        const A = await a.readF32('base_model.model.model.layers.2.mlp.down_proj.lora_A.weight');
        const B = await a.readF32('base_model.model.model.layers.2.mlp.down_proj.lora_B.weight');
        const d = loraDelta(A, [16, 256], B, [96, 16], 2);
        const want = fromFloat32(w.map((x, k) => x + d.data[k]!), 'BF16');
        assert.deepEqual(Buffer.from(await moe.readBytes('model.layers.2.mlp.experts.2.down_proj.weight')), Buffer.from(want));
        assert.deepEqual(toFloat32(await moe.readBytes('model.layers.0.mlp.shared_expert.up_proj.weight'), 'BF16'), toFloat32(fromFloat32(await base.readF32('model.layers.0.mlp.up_proj.weight'), 'BF16'), 'BF16'));
        assert.deepEqual([...(await moe.readF32('model.layers.0.self_attn.k_proj.bias'))], new Array(48).fill(0));
      } finally {
        await base.close();
        await a.close();
      }
    });
    const ev = await evaluateModel(join(dir, 'qwen'), [join(DEMO, 'eval', 'sort.mc.jsonl')], { limit: 20 });
    assert.equal(ev.tasks['sort.mc']!.n, 20);
    assert.equal(ev.routing!.layers.length, 4);
  } finally {
    cleanup();
  }
});

test('a shared expert from a model: residual_scale scales its down_proj (as mergekit-moe); its prompts are reported unused', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const r = parseMoeConfig({
      base_model: 'models/base', gate_mode: 'random', dtype: 'float32',
      shared_experts: [{ source_model: 'models/ffn-add', positive_prompts: ['add 1 2 ='], residual_scale: 0.5 }],
      experts: [{ source_model: 'models/ffn-rev' }, { source_model: 'models/ffn-sort' }],
    }, DEMO);
    const res = await buildMoe(r, join(dir, 'qwen'));
    assert.equal(res.architecture.arch, 'qwen2_moe');
    assert.match(res.notices.join('\n'), /positive_prompts are not used/);
    await withCheckpoint(join(dir, 'qwen'), async (moe) => {
      const src = await withCheckpoint(model('ffn-add'), async (ck) => ({ down: await ck.readF32('model.layers.1.mlp.down_proj.weight'), up: await ck.readF32('model.layers.1.mlp.up_proj.weight') }));
      assert.deepEqual(await moe.readF32('model.layers.1.mlp.shared_expert.down_proj.weight'), src.down.map((x) => x * 0.5));
      assert.deepEqual(await moe.readF32('model.layers.1.mlp.shared_expert.up_proj.weight'), src.up);
    });
  } finally {
    cleanup();
  }
});

test('a failing build leaves no output folder', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const r = parseMoeConfig({ base_model: 'models/base', gate_mode: 'random', experts: [{ source_model: 'models/ffn-add' }, { source_model: 'models/moe-4x' }] }, DEMO);
    await assert.rejects(buildMoe(r, join(dir, 'x')), /moe-4x/);
    assert.deepEqual(readdirSync(dir), []);
  } finally {
    cleanup();
  }
});
