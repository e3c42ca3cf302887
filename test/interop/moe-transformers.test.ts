/**
 * Mixture-of-Experts models built by our engine (buildMoe) against Hugging Face transformers and
 * mergekit-moe (the Python oracle's transformers 5.x and mergekit 0.1.5), on the demo fixtures:
 *
 * 1. transformers loads each of our MoEs as written (AutoModelForCausalLM, float32, output_loading_info)
 *    with no missing, unexpected or mismatched tensors and no loading warnings, and its logits equal
 *    our runtime's (loadModelSession + Decoder) within max |Δlogit| ≤ 1e-4, on a few inputs:
 *    (a) a Mixtral from the four ffn-* specialists with calibrated routers;
 *    (b) a Qwen2-MoE whose experts are the LoRA adapters, with the base FFN as its gated shared
 *        expert, cheap_embed routers and averaged non-expert weights;
 *    (c) the Mixtral our engine builds from the mergekit-moe YAML of 2;
 *    (d) a Mixtral whose hidden routers tie exactly at layer 0 (every prompt ends in " ="), also
 *        compared with transformers breaking top-k ties toward the lower index, as ONNX TopK does.
 * 2. mergekit-moe parity: one mergekit-moe YAML (gate_mode hidden, base + ffn-* experts with
 *    positive and negative prompts, float32) run by mergekit-moe (test/interop/moe_oracle.py) and by
 *    our engine. mergekit writes the transformers-v5 fused layout (model.layers.L.mlp.experts.gate_up_proj
 *    [E, 2I, H] = [w1; w3] per expert, mlp.experts.down_proj [E, H, I], router mlp.gate.weight); we write
 *    the per-expert layout transformers converts on load (block_sparse_moe.experts.E.w1/w2/w3,
 *    block_sparse_moe.gate.weight). Expert and non-expert tensors must be bit-identical, routers
 *    (mergekit computes its hidden states in bfloat16, we in float32) cosine ≥ 0.999 per layer and
 *    expert, and the configs must agree on the architecture.
 *
 * Differences traced to a cause (KNOWN_LOAD, KNOWN_LOGITS) are marked TODO with it instead of failing;
 * the logits of a model transformers refuses as written are still compared, through a copy of its
 * config.json with the refused fields fixed. Only when the oracle cannot be set up
 * (scripts/python-oracle.sh fails) are the tests skipped. UPCYCLE_INTEROP_KEEP=1 keeps the models.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { stringify } from 'yaml';
import { Checkpoint } from '../../app/io/checkpoint.js';
import { buildMoe, type MoeBuildResult } from '../../app/moe/assemble.js';
import { parseMoeYaml } from '../../app/moe/config.js';
import { Decoder } from '../../app/runtime/decoder.js';
import { loadModelSession } from '../../app/runtime/model-session.js';
import { TextTokenizer } from '../../app/runtime/tokenizer.js';
import { interopWorkDir, oracleEnv, oraclePython, runQuiet, tail } from '../helpers/oracle.js';
import { adapter, DEMO, model, ROOT } from '../helpers/paths.js';

const LOGIT_TOLERANCE = 1e-4;
const ROUTER_COSINE = 0.999;
const MOE_SCRIPT = join(ROOT, 'test', 'interop', 'moe_oracle.py');

const SKILLS = ['add', 'upper', 'rev', 'sort'] as const;
type Skill = (typeof SKILLS)[number];
/** Prompts that end in " =": their last-token residual at layer 0 is the same for every expert. */
const PROMPTS: Record<Skill, string[]> = {
  add: ['add 12 34 =', 'add 7 81 =', 'add 55 5 ='],
  upper: ['up cat dog =', 'up hello =', 'up zebra ='],
  rev: ['rev hello =', 'rev abc =', 'rev lamp ='],
  sort: ['sort 3 1 2 =', 'sort 9 4 =', 'sort 5 8 1 ='],
};
/** Complete examples: different last tokens per expert, so hidden routers differ in every layer. */
const EXAMPLES: Record<Skill, string[]> = {
  add: ['add 12 34 = 46', 'add 7 81 = 88'],
  upper: ['up cat dog = CAT DOG', 'up hello = HELLO'],
  rev: ['rev hello = olleh', 'rev abc = cba'],
  sort: ['sort 3 1 2 = 1 2 3', 'sort 9 4 = 4 9'],
};
const NEGATIVE: Partial<Record<Skill, string[]>> = { add: ['sort 4 2 = 2 4'], rev: ['up abc = ABC'] };
/** Inputs for the logits comparison: text of every skill, and token soup. */
const TEXTS = ['add 23 69 = 92', 'up cat dog = CAT DOG', 'rev zmuzf = fzumz', 'sort 9 4 7 = 4 7 9', 'the quick brown fox = 12 + ab'];

const seed = (s: string) => join(DEMO, 'eval', `${s}.seed.jsonl`);

/** The mergekit-moe YAML: run unchanged by mergekit-moe and by our engine. */
const MERGEKIT_MOE = {
  base_model: model('base'),
  gate_mode: 'hidden',
  dtype: 'float32',
  experts_per_token: 2,
  experts: SKILLS.map((s) => ({ source_model: model(`ffn-${s}`), positive_prompts: EXAMPLES[s], ...(NEGATIVE[s] ? { negative_prompts: NEGATIVE[s] } : {}) })),
};

interface ModelCase {
  what: string;
  config: Record<string, unknown>;
  /** Also ask transformers for logits with top-k ties broken toward the lower expert index. */
  tiesProbe?: boolean;
}

/** Our MoEs (YAML objects, absolute paths). */
const MODELS = {
  'mixtral-calibrated': {
    what: 'Mixtral from ffn-add/upper/rev/sort, calibrated routers',
    config: {
      base_model: model('base'),
      gate_mode: 'calibrated',
      dtype: 'float32',
      experts_per_token: 2,
      experts: SKILLS.map((s) => ({ source_model: model(`ffn-${s}`), positive_prompts: PROMPTS[s], seed_data: seed(s) })),
      calibration: { steps: 300 },
    },
  },
  'qwen2moe-lora': {
    what: 'Qwen2-MoE, LoRA experts lora-add/upper/rev/sort, base FFN as gated shared expert, cheap_embed routers, averaged non-expert weights',
    config: {
      base_model: model('base'),
      architecture: 'qwen',
      shared_expert: true,
      gate_mode: 'cheap_embed',
      dtype: 'float32',
      experts_per_token: 2,
      non_expert_weights: 'average',
      experts: SKILLS.map((s) => ({ source_adapter: adapter(`lora-${s}`), positive_prompts: PROMPTS[s] })),
    },
  },
  'mixtral-hidden': {
    what: 'Mixtral from the mergekit-moe YAML (hidden gates)',
    config: MERGEKIT_MOE,
  },
  'mixtral-hidden-tied': {
    what: 'Mixtral with hidden gates from prompts that all end in " =" (identical layer-0 routers: exact top-k ties)',
    config: { ...MERGEKIT_MOE, experts: SKILLS.map((s) => ({ source_model: model(`ffn-${s}`), positive_prompts: PROMPTS[s] })) },
    tiesProbe: true,
  },
} satisfies Record<string, ModelCase>;
type ModelName = keyof typeof MODELS;

/**
 * Discrepancies traced to a real difference (model → cause). A listed test is marked TODO instead
 * of failing, and still reports its numbers.
 */
// Fixed: config.json floats are written as floats (app/io/hf-json.ts), so strict transformers 5 configs load.
const KNOWN_LOAD: Partial<Record<ModelName, string>> = {};
const KNOWN_LOGITS: Partial<Record<ModelName, string>> = {
  'mixtral-hidden-tied':
    'exact top-k ties: mergekit\'s hidden gates at layer 0 are the normalised last-token embedding, identical for ' +
    'experts whose prompts all end in the same token, so their router logits tie exactly. Our runtime\'s ONNX TopK ' +
    '(app/runtime/decoder-graph.ts) keeps the lower expert index on a tie (ONNX spec); torch.topk on CPU (transformers\' ' +
    'Mixtral router: torch.topk(router_probs, top_k)) does not always (4 tied experts: torch.topk([¼, ¼, ¼, ¼], 2) → [2, 3], ours [0, 1]), so different experts run. ' +
    'With ties broken toward the lower index in transformers, the logits match (next test).',
};

interface Logits { dims: number[]; data: number[] }
interface LogitsResult {
  logits?: Logits[];
  /** transformers refused config.json as written (a float field written as an integer). */
  config_error?: string | null;
  config_fixes?: string[];
  /** tiesProbe: the logits with torch.topk breaking ties toward the lower index. */
  logits_lower_index_ties?: Logits[];
  loading?: { missing: string[]; unexpected: string[]; mismatched: string[] };
  warnings?: string[];
  model_class?: string;
  error?: string;
}
interface Prepared {
  skip?: string;
  dirs: Record<ModelName, string>;
  built: Partial<Record<ModelName, MoeBuildResult>>;
  buildErrors: Partial<Record<ModelName, string>>;
  inputs: number[][];
  hf: Record<string, LogitsResult>;
  mk: { out?: string; seconds?: number; error?: string };
  versions: Record<string, string>;
  seconds: { ours: number; oracle: number };
}

const work = interopWorkDir('upcycle-moe-interop-', 'MoE interop');

let prepared: Promise<Prepared> | undefined;

function prepare(): Promise<Prepared> {
  prepared ??= (async () => {
    const dirs = {} as Record<ModelName, string>;
    const yamls = {} as Record<ModelName, string>;
    for (const name of Object.keys(MODELS) as ModelName[]) {
      const d = join(work, name);
      mkdirSync(d, { recursive: true });
      yamls[name] = join(d, 'config.yml');
      writeFileSync(yamls[name], stringify(MODELS[name].config));
      dirs[name] = join(d, 'ours');
    }
    const tok = TextTokenizer.load(model('base'));
    const inputs = await Promise.all(TEXTS.map((t) => tok.encode(t, true)));
    const empty = { dirs, built: {}, buildErrors: {}, inputs, hf: {}, mk: {}, versions: {}, seconds: { ours: 0, oracle: 0 } };
    const { python, skip } = oraclePython('transformers / mergekit-moe comparison');
    if (!python) return { ...empty, skip };

    // mergekit-moe (and the imports) run while we build our MoEs; transformers then loads those.
    const job = join(work, 'job.json');
    const logitsJob = join(work, 'logits-job.json');
    const result = join(work, 'oracle.json');
    writeFileSync(job, JSON.stringify({
      mergekit_moe: [{ name: 'hidden', config: yamls['mixtral-hidden'], out: join(work, 'mixtral-hidden', 'mergekit') }],
      logits_from: logitsJob,
    }));
    const t0 = performance.now();
    const oracle = runQuiet(python, [MOE_SCRIPT, job, result], oracleEnv('warning'));
    const built: Prepared['built'] = {};
    const buildErrors: Prepared['buildErrors'] = {};
    try {
      for (const name of Object.keys(MODELS) as ModelName[]) {
        try {
          built[name] = await buildMoe(parseMoeYaml(readFileSync(yamls[name], 'utf8'), yamls[name]), dirs[name]);
        } catch (e) {
          buildErrors[name] = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
        }
      }
    } finally {
      // Always written (atomically), so the oracle never waits for nothing.
      writeFileSync(`${logitsJob}.tmp`, JSON.stringify({
        logits: (Object.keys(built) as ModelName[]).map((name) => ({ name, dir: dirs[name], inputs, ties_probe: (MODELS[name] as ModelCase).tiesProbe === true })),
      }));
      renameSync(`${logitsJob}.tmp`, logitsJob);
    }
    const ours = (performance.now() - t0) / 1000;
    const r = await oracle;
    // The oracle is installed, so a failure here is a real failure, not a reason to skip.
    assert.ok(r.status === 0 && existsSync(result), `moe_oracle.py failed (exit ${r.status}):\n${tail(r.stderr, 40)}`);
    const parsed = JSON.parse(readFileSync(result, 'utf8')) as { versions: Record<string, string>; logits: Record<string, LogitsResult>; mergekit_moe: Record<string, Prepared['mk']> };
    return { dirs, built, buildErrors, inputs, hf: parsed.logits, mk: parsed.mergekit_moe['hidden'] ?? { error: 'no result' }, versions: parsed.versions, seconds: { ours, oracle: (performance.now() - t0) / 1000 } };
  })();
  return prepared;
}

for (const name of Object.keys(MODELS) as ModelName[]) {
  const expectClass = name.startsWith('qwen') ? 'Qwen2MoeForCausalLM' : 'MixtralForCausalLM';

  test(`${name}: transformers loads our ${MODELS[name].what} as written, with exactly its tensors and no warnings`, async (t) => {
    const p = await prepare();
    if (p.skip) {
      t.skip(p.skip);
      return;
    }
    const known = KNOWN_LOAD[name];
    if (known) t.todo(`known discrepancy: ${known}`);
    assert.equal(p.buildErrors[name], undefined, `our engine failed to build ${name}: ${p.buildErrors[name]}`);
    const hf = p.hf[name];
    assert.ok(hf, `no transformers result for ${name}`);
    assert.equal(hf.error, undefined, `transformers failed on ${name}: ${hf.error}`);
    t.diagnostic(`${hf.model_class}; config fields transformers refused: ${hf.config_fixes?.join(', ') || 'none'}`);
    if (known && !hf.config_error) t.diagnostic(`KNOWN_LOAD["${name}"] now loads as written: remove the entry`);
    assert.equal(hf.config_error ?? undefined, undefined, `transformers refuses our config.json: ${hf.config_error}`);
    assert.equal(hf.model_class, expectClass);
    const loading = hf.loading!;
    assert.deepEqual({ missing: loading.missing, unexpected: loading.unexpected, mismatched: loading.mismatched }, { missing: [], unexpected: [], mismatched: [] },
      'transformers does not find exactly the tensors of its architecture in our checkpoint');
    assert.deepEqual(hf.warnings, [], 'transformers warned while loading our checkpoint');
  });

  const compare = async (t: TestContext, p: Prepared, want: Logits[] | undefined, what: string) => {
    assert.equal(p.buildErrors[name], undefined, `our engine failed to build ${name}: ${p.buildErrors[name]}`);
    const hf = p.hf[name];
    assert.ok(hf, `no transformers result for ${name}`);
    assert.equal(hf.error, undefined, `transformers failed on ${name}: ${hf.error}`);
    assert.equal(hf.model_class, expectClass);
    assert.ok(want, `no ${what} logits for ${name}`);
    const got = await ourLogits(p, name);
    let worst = 0;
    const perInput = got.map((g, i) => {
      assert.deepEqual(want[i]!.dims, [p.inputs[i]!.length, g.length / p.inputs[i]!.length]);
      assert.equal(g.length, want[i]!.data.length);
      let m = 0;
      for (let k = 0; k < g.length; k++) {
        const d = Math.abs(g[k]! - want[i]!.data[k]!);
        if (!(d <= m)) m = Number.isNaN(d) ? Infinity : d;
      }
      worst = Math.max(worst, m);
      return m.toExponential(2);
    });
    const b = p.built[name]!;
    t.diagnostic(`${b.architecture.arch}, ${b.numExperts} experts, top-${b.topK}${b.routingAccuracy ? `, routing accuracy ${b.routingAccuracy.map((a) => a.toFixed(3)).join('/')}` : ''}; ` +
      `max |Δlogit| per input vs ${what}: ${perInput.join(', ')} (transformers ${p.versions['transformers']}${hf.config_fixes?.length ? `, loaded with ${hf.config_fixes.join(', ')} as float` : ''}); built in ${b.seconds.toFixed(1)} s`);
    return { worst, perInput };
  };

  test(`${name}: transformers' logits equal our runtime's (max |Δlogit| ≤ ${LOGIT_TOLERANCE})`, async (t) => {
    const p = await prepare();
    if (p.skip) {
      t.skip(p.skip);
      return;
    }
    const known = KNOWN_LOGITS[name];
    if (known) t.todo(`known discrepancy: ${known}`);
    const { worst, perInput } = await compare(t, p, p.hf[name]?.logits, 'transformers');
    if (known && worst <= LOGIT_TOLERANCE) t.diagnostic(`KNOWN_LOGITS["${name}"] now matches: remove the entry`);
    assert.ok(worst <= LOGIT_TOLERANCE, `${name}: max |Δlogit| = ${worst} > ${LOGIT_TOLERANCE} (per input: ${perInput.join(', ')})`);
  });

  if ((MODELS[name] as ModelCase).tiesProbe) {
    test(`${name}: with top-k ties broken toward the lower expert index, transformers' logits equal our runtime's`, async (t) => {
      const p = await prepare();
      if (p.skip) {
        t.skip(p.skip);
        return;
      }
      const { worst, perInput } = await compare(t, p, p.hf[name]?.logits_lower_index_ties, 'transformers with lower-index ties');
      assert.ok(worst <= LOGIT_TOLERANCE, `${name}: max |Δlogit| = ${worst} > ${LOGIT_TOLERANCE} (per input: ${perInput.join(', ')})`);
    });
  }
}

const ours = new Map<ModelName, Promise<Float32Array[]>>();
/** Our runtime's logits [S, V] for every input (each its own batch of one), once per model. */
function ourLogits(p: Prepared, name: ModelName): Promise<Float32Array[]> {
  let r = ours.get(name);
  if (!r) {
    r = (async () => {
      const loaded = await loadModelSession(p.dirs[name]);
      try {
        const dec = new Decoder(loaded);
        const out: Float32Array[] = [];
        for (const ids of p.inputs) out.push((await dec.forward([ids])).logits);
        return out;
      } finally {
        await loaded.session.release();
      }
    })();
    ours.set(name, r);
  }
  return r;
}

test('mergekit-moe parity (gate_mode hidden): identical experts and non-expert tensors, routers cosine ≥ 0.999', async (t) => {
  const p = await prepare();
  if (p.skip) {
    t.skip(p.skip);
    return;
  }
  assert.equal(p.buildErrors['mixtral-hidden'], undefined, `our engine failed on the mergekit-moe YAML: ${p.buildErrors['mixtral-hidden']}`);
  assert.equal(p.mk.error, undefined, `mergekit-moe failed: ${p.mk.error}`);
  const ours = await Checkpoint.open(p.dirs['mixtral-hidden']);
  const mk = await Checkpoint.open(p.mk.out!);
  try {
    const oc = JSON.parse(readFileSync(join(p.dirs['mixtral-hidden'], 'config.json'), 'utf8')) as Record<string, unknown>;
    const mc = JSON.parse(readFileSync(join(p.mk.out!, 'config.json'), 'utf8')) as Record<string, unknown>;
    const keys = ['architectures', 'model_type', 'num_local_experts', 'num_experts_per_tok', 'hidden_size', 'intermediate_size', 'num_hidden_layers', 'num_attention_heads', 'num_key_value_heads', 'head_dim', 'vocab_size', 'rms_norm_eps', 'tie_word_embeddings', 'hidden_act', 'sliding_window'];
    const pick = (c: Record<string, unknown>) => Object.fromEntries(keys.map((k) => [k, c[k] ?? null]));
    assert.deepEqual(pick(oc), pick(mc), 'config.json: our MoE and mergekit-moe\'s describe different models');

    const E = Number(mc['num_local_experts']);
    const L = Number(mc['num_hidden_layers']);
    const H = Number(mc['hidden_size']);
    const I = Number(mc['intermediate_size']);
    const same = (a: Float32Array, b: Float32Array, what: string) => {
      assert.equal(a.length, b.length, `${what}: sizes differ`);
      for (let k = 0; k < a.length; k++) if (!Object.is(a[k], b[k])) assert.fail(`${what}[${k}]: ours ${a[k]}, mergekit ${b[k]}`);
    };
    const mkNames = new Set(mk.names);
    const covered = new Set<string>();
    // Non-expert tensors: same names, bit-identical values.
    const nonExpert = ours.names.filter((n) => !/\.block_sparse_moe\./.test(n)).sort();
    for (const n of nonExpert) {
      assert.ok(mkNames.has(n), `mergekit-moe has no ${n}`);
      same(await ours.readF32(n), await mk.readF32(n), n);
      covered.add(n);
    }
    // Experts: our per-expert w1/w3/w2 against the fused gate_up_proj [E, 2I, H] and down_proj [E, H, I].
    for (let l = 0; l < L; l++) {
      const gu = `model.layers.${l}.mlp.experts.gate_up_proj`;
      const dn = `model.layers.${l}.mlp.experts.down_proj`;
      assert.deepEqual(mk.info(gu).shape, [E, 2 * I, H], `${gu}: layout`);
      assert.deepEqual(mk.info(dn).shape, [E, H, I], `${dn}: layout`);
      const gateUp = await mk.readF32(gu);
      const down = await mk.readF32(dn);
      for (let e = 0; e < E; e++) {
        const x = `model.layers.${l}.block_sparse_moe.experts.${e}`;
        same(await ours.readF32(`${x}.w1.weight`), gateUp.subarray(e * 2 * I * H, (e * 2 + 1) * I * H), `${x}.w1 vs ${gu}[${e}, :I]`);
        same(await ours.readF32(`${x}.w3.weight`), gateUp.subarray((e * 2 + 1) * I * H, (e + 1) * 2 * I * H), `${x}.w3 vs ${gu}[${e}, I:]`);
        same(await ours.readF32(`${x}.w2.weight`), down.subarray(e * H * I, (e + 1) * H * I), `${x}.w2 vs ${dn}[${e}]`);
      }
      covered.add(gu).add(dn);
    }
    // Routers: per layer and expert, cosine of our row and mergekit's.
    const cosines: number[][] = [];
    let worst = 1;
    for (let l = 0; l < L; l++) {
      const mg = `model.layers.${l}.mlp.gate.weight`;
      const a = await ours.readF32(`model.layers.${l}.block_sparse_moe.gate.weight`);
      const b = await mk.readF32(mg);
      assert.deepEqual(mk.info(mg).shape, [E, H]);
      covered.add(mg);
      const row: number[] = [];
      for (let e = 0; e < E; e++) {
        let d = 0;
        let na = 0;
        let nb = 0;
        for (let h = 0; h < H; h++) {
          d += a[e * H + h]! * b[e * H + h]!;
          na += a[e * H + h]! ** 2;
          nb += b[e * H + h]! ** 2;
        }
        // Two zero rows (prompts whose differences cancel) are the same router; one zero row is not.
        const c = na === 0 && nb === 0 ? 1 : d / Math.sqrt(na * nb);
        row.push(c);
        worst = Math.min(worst, c);
      }
      cosines.push(row);
    }
    assert.deepEqual(mk.names.filter((n) => !covered.has(n)), [], 'mergekit-moe wrote tensors we have no counterpart for');
    t.diagnostic(`${L} layers × ${E} experts; router cosine per layer (min over experts): ${cosines.map((r) => Math.min(...r).toFixed(6)).join(', ')}; ` +
      `our build ${p.built['mixtral-hidden']!.seconds.toFixed(1)} s, mergekit-moe ${p.mk.seconds!.toFixed(1)} s (mergekit ${p.versions['mergekit']}); ` +
      `oracle process ${p.seconds.oracle.toFixed(0)} s, our four builds ${p.seconds.ours.toFixed(0)} s (concurrently)`);
    assert.ok(worst >= ROUTER_COSINE, `router cosine ${worst} < ${ROUTER_COSINE}: ${JSON.stringify(cosines)}`);
  } finally {
    await ours.close();
    await mk.close();
  }
});
