/**
 * Our merge engine against mergekit itself (the Python oracle's mergekit 0.1.5), on the demo
 * fixtures: for every merge method, one mergekit YAML (gradients, {filter, value} conditionals,
 * a `model+lora` reference, slices) is run by mergekit (test/interop/mergekit_merges.py, which does
 * what `mergekit-yaml` does, all cases in one process) and by our engine (parseMergeYaml + runMerge),
 * and the outputs are compared tensor by tensor.
 *
 * - Deterministic methods: the same tensor names and shapes, and max |Δ| ≤ 1e-5 in float32.
 * - Random methods (DARE, DELLA): torch's RNG is not ours, so statistics are compared instead, per
 *   tensor and pooled: the share of entries left at the base (1 − the kept share), the mean and the
 *   standard deviation of the merged delta, and for DELLA the kept share among the larger and the
 *   smaller half of |δ| (its magnitude-ranked keep probabilities).
 *
 * A discrepancy we have traced to a difference between the two implementations (not a test setup
 * problem) is listed in KNOWN with its cause; such a case still runs, reports its numbers and is
 * marked TODO instead of failing. Only when the oracle cannot be set up (scripts/python-oracle.sh
 * fails) are the tests skipped, with the reason.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { stringify } from 'yaml';
import { Checkpoint } from '../../app/io/checkpoint.js';
import { parseMergeYaml } from '../../app/merge/config.js';
import { runMerge } from '../../app/merge/execute.js';
import { interopWorkDir, oracleEnv, oraclePython, runQuiet, tail } from '../helpers/oracle.js';
import { adapter, model, ROOT } from '../helpers/paths.js';

const TOLERANCE = 1e-5;
const MERGE_SCRIPT = join(ROOT, 'test', 'interop', 'mergekit_merges.py');

interface Case {
  name: string;
  /** The mergekit YAML, as an object (paths absolute). */
  config: Record<string, unknown>;
  kind: 'exact' | 'stats';
  /** `--random-seed` for mergekit, `seed` for us. */
  seed?: number;
  /** The base of the delta statistics (random methods). */
  base?: string;
  /** DELLA: also compare the kept share among the larger / smaller half of |δ| of this model. */
  ranked?: string;
}

/**
 * Discrepancies traced to a real difference between our engine and mergekit 0.1.5 (method → cause).
 * Listed cases are marked TODO, not failed; an entry that starts to match is reported as fixed.
 */
// Both discrepancies found by this test were fixed (magnitude_outliers window as mergekit 0.1.5;
// base_model joins the sources for every method); new ones go here with their cause.
const KNOWN: Record<string, string> = {};

const p = (name: string) => model(name);
const lora = (name: string) => adapter(name);
const dtype = 'float32';

const CASES: Case[] = [
  {
    name: 'linear',
    kind: 'exact',
    config: {
      merge_method: 'linear',
      dtype,
      models: [
        { model: p('spec-add'), parameters: { weight: 0.6 } },
        { model: p('spec-upper'), parameters: { weight: [0.2, 0.8] } }, // gradient over the layers
        { model: p('spec-rev'), parameters: { weight: [{ filter: 'self_attn', value: 0.5 }, { value: 0.2 }] } },
        { model: `${p('base')}+${lora('lora-add')}`, parameters: { weight: 0.3 } }, // base + a PEFT LoRA
      ],
    },
  },
  {
    name: 'linear (normalize: false)',
    kind: 'exact',
    config: {
      merge_method: 'linear',
      dtype,
      parameters: { normalize: false },
      models: [
        { model: p('sft-step250'), parameters: { weight: 0.25 } },
        { model: p('sft-step1000'), parameters: { weight: [0.5, 0.25, 0.9] } },
      ],
    },
  },
  {
    name: 'task_arithmetic',
    kind: 'exact',
    config: {
      merge_method: 'task_arithmetic',
      dtype,
      base_model: p('base'),
      parameters: { lambda: 0.8 },
      models: [
        { model: p('spec-add'), parameters: { weight: 0.5 } },
        { model: p('spec-upper'), parameters: { weight: [1.0, 0.3] } },
        { model: p('sft-step500'), parameters: { weight: [{ filter: 'mlp', value: 0.7 }, { value: 0.4 }] } },
      ],
    },
  },
  {
    name: 'task_arithmetic (normalize: true)',
    kind: 'exact',
    config: {
      merge_method: 'task_arithmetic',
      dtype,
      base_model: p('base'),
      parameters: { normalize: true },
      models: [
        { model: p('ffn-add'), parameters: { weight: 1.0 } },
        { model: p('ffn-sort'), parameters: { weight: 0.5 } },
      ],
    },
  },
  {
    name: 'ties',
    kind: 'exact',
    config: {
      merge_method: 'ties',
      dtype,
      base_model: p('base'),
      parameters: { int8_mask: true },
      models: [
        { model: p('spec-add'), parameters: { weight: 1.0, density: 0.5 } },
        { model: p('spec-upper'), parameters: { weight: 0.8, density: [0.3, 0.7] } },
        { model: p('spec-sort'), parameters: { weight: 0.6, density: 0.4 } },
        // FFN-only fine-tune: its attention/embedding deltas are all zero.
        { model: p('ffn-add'), parameters: { weight: 0.5, density: [{ filter: 'mlp', value: 0.6 }, { value: 0.9 }] } },
      ],
    },
  },
  {
    name: 'ties (rescale, lambda)',
    kind: 'exact',
    config: {
      merge_method: 'ties',
      dtype,
      base_model: p('base'),
      parameters: { rescale: true, normalize: false, lambda: 0.7 },
      models: [
        { model: p('spec-rev'), parameters: { weight: 0.9, density: 0.35 } },
        { model: p('sft-step750'), parameters: { weight: 0.4, density: 0.8 } },
      ],
    },
  },
  {
    name: 'breadcrumbs',
    kind: 'exact',
    config: {
      merge_method: 'breadcrumbs',
      dtype,
      base_model: p('base'),
      // γ·numel ≥ 1 for every tensor (the norms have 96 entries): see the γ·n < 1 cases below.
      models: [
        { model: p('spec-add'), parameters: { weight: 0.7, density: 0.8, gamma: 0.05 } },
        { model: p('spec-upper'), parameters: { weight: 0.5, density: [0.9, 0.6], gamma: 0.02 } },
      ],
    },
  },
  {
    name: 'breadcrumbs_ties',
    kind: 'exact',
    config: {
      merge_method: 'breadcrumbs_ties',
      dtype,
      base_model: p('base'),
      parameters: { rescale: true, normalize: true },
      models: [
        { model: p('spec-add'), parameters: { weight: 1.0, density: 0.6, gamma: 0.1 } },
        { model: p('spec-rev'), parameters: { weight: 0.7, density: 0.7, gamma: [{ filter: 'embed', value: 0.2 }, { value: 0.02 }] } },
      ],
    },
  },
  {
    name: 'breadcrumbs (γ·numel < 1: no outliers to drop)',
    kind: 'exact',
    config: {
      merge_method: 'breadcrumbs',
      dtype,
      base_model: p('base'),
      // int(0.01 · 96) = 0 for the norms; gamma 0 for the embeddings.
      models: [
        { model: p('spec-add'), parameters: { weight: 0.7, density: 0.8, gamma: [{ filter: 'embed', value: 0.0 }, { value: 0.01 }] } },
        { model: p('spec-upper'), parameters: { weight: 0.5, density: 0.9, gamma: 0.05 } },
      ],
    },
  },
  {
    name: 'breadcrumbs_ties (γ·numel < 1: no outliers to drop)',
    kind: 'exact',
    config: {
      merge_method: 'breadcrumbs_ties',
      dtype,
      base_model: p('base'),
      models: [
        { model: p('spec-add'), parameters: { weight: 1.0, density: 0.6, gamma: 0.1 } },
        { model: p('spec-rev'), parameters: { weight: 0.7, density: 0.7, gamma: [{ filter: 'embed', value: 0.0 }, { value: 0.02 }] } },
      ],
    },
  },
  {
    name: 'slerp',
    kind: 'exact',
    config: {
      merge_method: 'slerp',
      dtype,
      base_model: p('base'),
      parameters: { t: [{ filter: 'self_attn', value: [0, 0.5, 1] }, { filter: 'mlp', value: [1, 0.5, 0] }, { value: 0.3 }] },
      models: [{ model: p('base') }, { model: p('spec-add') }],
    },
  },
  {
    name: 'nuslerp',
    kind: 'exact',
    config: {
      merge_method: 'nuslerp',
      dtype,
      models: [
        { model: p('spec-add'), parameters: { weight: 0.3 } },
        { model: p('spec-upper'), parameters: { weight: [0.5, 0.9] } },
      ],
    },
  },
  {
    name: 'nuslerp (base, not flattened, row/column-wise)',
    kind: 'exact',
    config: {
      merge_method: 'nuslerp',
      dtype,
      base_model: p('base'),
      parameters: { nuslerp_flatten: false, nuslerp_row_wise: [{ filter: 'mlp', value: true }, { value: false }] },
      models: [
        { model: p('spec-add'), parameters: { weight: 1.0 } },
        { model: p('spec-rev'), parameters: { weight: 2.0 } },
      ],
    },
  },
  {
    name: 'multislerp',
    kind: 'exact',
    config: {
      merge_method: 'multislerp',
      dtype,
      base_model: p('base'),
      models: [
        { model: p('spec-add'), parameters: { weight: 1.0 } },
        { model: p('spec-upper'), parameters: { weight: 0.5 } },
        { model: p('spec-sort'), parameters: { weight: [0.2, 0.8] } },
      ],
    },
  },
  {
    name: 'multislerp (no base)',
    kind: 'exact',
    config: {
      merge_method: 'multislerp',
      dtype,
      parameters: { normalize_weights: false },
      models: [
        { model: p('sft-step250'), parameters: { weight: 0.3 } },
        { model: p('sft-step1000'), parameters: { weight: 0.7 } },
      ],
    },
  },
  {
    name: 'karcher',
    kind: 'exact',
    config: {
      merge_method: 'karcher',
      dtype,
      parameters: { max_iter: 20, tol: 1e-6 },
      models: [{ model: p('base') }, { model: p('spec-add') }, { model: p('spec-upper') }],
    },
  },
  {
    name: 'karcher (base_model not listed in models)',
    kind: 'exact',
    config: {
      merge_method: 'karcher',
      dtype,
      base_model: p('base'),
      models: [{ model: p('spec-add') }, { model: p('spec-upper') }],
    },
  },
  {
    name: 'model_stock',
    kind: 'exact',
    config: {
      merge_method: 'model_stock',
      dtype,
      base_model: p('base'),
      models: [{ model: p('sft-step250') }, { model: p('sft-step500') }, { model: p('sft-step750') }, { model: p('sft-step1000') }],
    },
  },
  {
    name: 'model_stock (filter_wise)',
    kind: 'exact',
    config: {
      merge_method: 'model_stock',
      dtype,
      base_model: p('base'),
      parameters: { filter_wise: true },
      models: [{ model: p('spec-add') }, { model: p('spec-upper') }, { model: p('spec-rev') }],
    },
  },
  {
    name: 'sce',
    kind: 'exact',
    config: {
      merge_method: 'sce',
      dtype,
      base_model: p('base'),
      parameters: { select_topk: 0.5 },
      models: [{ model: p('spec-add') }, { model: p('spec-upper') }, { model: p('spec-sort') }],
    },
  },
  {
    name: 'nearswap',
    kind: 'exact',
    config: {
      merge_method: 'nearswap',
      dtype,
      base_model: p('base'),
      parameters: { t: [{ filter: 'embed', value: 0.002 }, { value: 0.01 }] },
      models: [{ model: p('spec-add') }],
    },
  },
  {
    name: 'passthrough (slices)',
    kind: 'exact',
    config: {
      merge_method: 'passthrough',
      dtype,
      slices: [
        { sources: [{ model: p('base'), layer_range: [0, 2] }] },
        { sources: [{ model: p('spec-add'), layer_range: [1, 3], parameters: { scale: [{ filter: 'o_proj', value: 0.5 }, { value: 1.0 }] } }] },
        { sources: [{ model: p('spec-upper'), layer_range: [3, 4] }] },
      ],
    },
  },
  // Random methods: statistics only.
  {
    name: 'dare_linear',
    kind: 'stats',
    seed: 7,
    base: 'base',
    config: {
      merge_method: 'dare_linear',
      dtype,
      base_model: p('base'),
      models: [
        { model: p('spec-add'), parameters: { weight: 0.6, density: 0.3 } },
        { model: p('spec-upper'), parameters: { weight: 0.4, density: 0.5 } },
      ],
    },
  },
  {
    name: 'dare_ties',
    kind: 'stats',
    seed: 7,
    base: 'base',
    config: {
      merge_method: 'dare_ties',
      dtype,
      base_model: p('base'),
      models: [
        { model: p('spec-add'), parameters: { weight: 1.0, density: 0.4 } },
        { model: p('spec-rev'), parameters: { weight: 0.7, density: 0.6 } },
      ],
    },
  },
  {
    name: 'della',
    kind: 'stats',
    seed: 7,
    base: 'base',
    ranked: 'spec-add',
    config: {
      merge_method: 'della',
      dtype,
      base_model: p('base'),
      // One model: the kept share by |δ| rank is then that model's own.
      models: [{ model: p('spec-add'), parameters: { weight: 1.0, density: 0.5, epsilon: 0.3 } }],
    },
  },
  {
    name: 'della_linear',
    kind: 'stats',
    seed: 7,
    base: 'base',
    config: {
      merge_method: 'della_linear',
      dtype,
      base_model: p('base'),
      models: [
        { model: p('spec-add'), parameters: { weight: 0.5, density: 0.4, epsilon: 0.1 } },
        { model: p('spec-upper'), parameters: { weight: 0.5, density: 0.6, epsilon: 0.2 } },
      ],
    },
  },
];

interface OracleCase { out?: string; seconds?: number; error?: string }
interface Prepared {
  skip?: string;
  mk: Record<string, OracleCase>;
  ours: Record<string, { out?: string; error?: string; seconds?: number }>;
  versions: Record<string, string>;
  dir: Record<string, string>;
}

const work = interopWorkDir('upcycle-mkparity-', 'mergekit parity');
const slug = (name: string) => name.replace(/[^a-z0-9]+/gi, '-').replace(/^-|-$/g, '');

let prepared: Promise<Prepared> | undefined;

function prepare(): Promise<Prepared> {
  prepared ??= (async () => {
    const dir: Record<string, string> = {};
    for (const c of CASES) {
      const d = join(work, slug(c.name));
      mkdirSync(d, { recursive: true });
      writeFileSync(join(d, 'config.yml'), stringify(c.config));
      dir[c.name] = d;
    }
    const { python, skip } = oraclePython('mergekit comparison');
    if (!python) return { skip, mk: {}, ours: {}, versions: {}, dir };
    const job = join(work, 'job.json');
    const result = join(work, 'mergekit.json');
    writeFileSync(job, JSON.stringify({
      lora_cache: join(work, 'lora-cache'),
      cases: CASES.map((c) => ({ name: c.name, config: join(dir[c.name]!, 'config.yml'), out: join(dir[c.name]!, 'mergekit'), seed: c.seed ?? null })),
    }));
    const oracle = runQuiet(python, [MERGE_SCRIPT, job, result], oracleEnv());
    // Our engine, meanwhile.
    const ours: Prepared['ours'] = {};
    for (const c of CASES) {
      const t0 = performance.now();
      try {
        const yamlPath = join(dir[c.name]!, 'config.yml');
        const recipe = parseMergeYaml(readFileSync(yamlPath, 'utf8'), yamlPath);
        const r = await runMerge(recipe, join(dir[c.name]!, 'ours'), { seed: c.seed, workers: 2 });
        ours[c.name] = { out: r.out, seconds: (performance.now() - t0) / 1000 };
      } catch (e) {
        ours[c.name] = { error: e instanceof Error ? `${e.name}: ${e.message}` : String(e) };
      }
    }
    const r = await oracle;
    // The oracle is installed, so a failure here is a real failure, not a reason to skip.
    assert.ok(r.status === 0 && existsSync(result), `mergekit_merges.py failed (exit ${r.status}):\n${tail(r.stderr, 40)}`);
    const parsed = JSON.parse(readFileSync(result, 'utf8')) as { versions: Record<string, string>; cases: Record<string, OracleCase> };
    return { mk: parsed.cases, ours, versions: parsed.versions, dir };
  })();
  return prepared;
}

interface Opened { ck: Checkpoint; names: string[] }
async function openOut(dir: string): Promise<Opened> {
  const ck = await Checkpoint.open(dir);
  return { ck, names: ck.names.sort() };
}

interface ExactReport { maxDiff: number; worst: string; worstOurs: number; worstMk: number; tensors: number; perTensor: Map<string, number> }

async function compareExact(ours: string, mk: string): Promise<ExactReport> {
  const a = await openOut(ours);
  const b = await openOut(mk);
  try {
    assert.deepEqual(a.names, b.names, 'our output and mergekit\'s hold different tensors');
    const rep: ExactReport = { maxDiff: 0, worst: '', worstOurs: NaN, worstMk: NaN, tensors: a.names.length, perTensor: new Map() };
    for (const n of a.names) {
      assert.deepEqual(a.ck.info(n).shape, b.ck.info(n).shape, `${n}: shapes differ`);
      const x = await a.ck.readF32(n);
      const y = await b.ck.readF32(n);
      let m = 0;
      let at = 0;
      for (let i = 0; i < x.length; i++) {
        const d = Math.abs(x[i]! - y[i]!);
        if (!(d <= m)) {
          m = Number.isNaN(d) ? Infinity : d;
          at = i;
        }
      }
      rep.perTensor.set(n, m);
      if (m > rep.maxDiff || rep.worst === '') Object.assign(rep, { maxDiff: m, worst: `${n}[${at}]`, worstOurs: x[at]!, worstMk: y[at]! });
    }
    return rep;
  } finally {
    await a.ck.close();
    await b.ck.close();
  }
}

/** Statistics of a random merge's delta against the base, per tensor. */
interface DeltaStats { n: number; unchanged: number; mean: number; std: number; keptHi?: number; keptLo?: number }

async function deltaStats(out: string, base: Checkpoint, ranked: Checkpoint | undefined): Promise<Map<string, DeltaStats>> {
  const o = await openOut(out);
  try {
    const res = new Map<string, DeltaStats>();
    for (const n of o.names) {
      const x = await o.ck.readF32(n);
      const b = await base.readF32(n);
      let unchanged = 0;
      let s = 0;
      let s2 = 0;
      for (let i = 0; i < x.length; i++) {
        const d = x[i]! - b[i]!;
        if (d === 0) unchanged++;
        s += d;
        s2 += d * d;
      }
      const mean = s / x.length;
      const st: DeltaStats = { n: x.length, unchanged: unchanged / x.length, mean, std: Math.sqrt(Math.max(0, s2 / x.length - mean * mean)) };
      if (ranked) {
        // Kept share among the entries whose |δ| is above / below the tensor's median |δ|.
        const r = await ranked.readF32(n);
        const mag = Float32Array.from(r, (v, i) => Math.abs(v - b[i]!));
        const median = Float32Array.from(mag).sort()[mag.length >> 1]!;
        let hi = 0;
        let hiN = 0;
        let lo = 0;
        let loN = 0;
        for (let i = 0; i < x.length; i++) {
          if (mag[i] === 0) continue;
          const kept = x[i] !== b[i] ? 1 : 0;
          if (mag[i]! > median) {
            hi += kept;
            hiN++;
          } else {
            lo += kept;
            loN++;
          }
        }
        st.keptHi = hi / Math.max(1, hiN);
        st.keptLo = lo / Math.max(1, loN);
      }
      res.set(n, st);
    }
    return res;
  } finally {
    await o.ck.close();
  }
}

for (const c of CASES) {
  test(`${c.name}: our merge ${c.kind === 'exact' ? 'equals' : 'matches the statistics of'} mergekit's`, async (t) => {
    const pr = await prepare();
    if (pr.skip) {
      t.skip(pr.skip);
      return;
    }
    const known = KNOWN[c.name];
    if (known) t.todo(`known discrepancy: ${known}`);
    const mk = pr.mk[c.name];
    assert.ok(mk, `no mergekit result for ${c.name}`);
    assert.equal(mk.error, undefined, `mergekit failed on ${c.name}: ${mk.error}`);
    const ours = pr.ours[c.name]!;
    assert.equal(ours.error, undefined, `our engine failed on ${c.name}: ${ours.error}`);
    const timing = `ours ${ours.seconds!.toFixed(2)} s, mergekit ${mk.seconds!.toFixed(2)} s (mergekit ${pr.versions['mergekit']})`;

    if (c.kind === 'exact') {
      const rep = await compareExact(ours.out!, mk.out!);
      const over = [...rep.perTensor].filter(([, d]) => d > TOLERANCE).map(([n, d]) => `${n} ${d.toExponential(2)}`);
      t.diagnostic(rep.maxDiff === 0
        ? `${rep.tensors} tensors, bit-identical; ${timing}`
        : `${rep.tensors} tensors, max |Δ| ${rep.maxDiff.toExponential(2)} at ${rep.worst} (ours ${rep.worstOurs}, mergekit ${rep.worstMk}); ${timing}`);
      if (known && over.length === 0) t.diagnostic(`KNOWN["${c.name}"] now matches mergekit: remove the entry`);
      assert.ok(rep.maxDiff <= TOLERANCE,
        `${c.name}: max |Δ| = ${rep.maxDiff} > ${TOLERANCE} at ${rep.worst} (ours ${rep.worstOurs}, mergekit ${rep.worstMk}); ${over.length} tensors over: ${over.slice(0, 8).join(', ')}`);
      return;
    }

    const base = await Checkpoint.open(model(c.base!));
    const ranked = c.ranked ? await Checkpoint.open(model(c.ranked)) : undefined;
    try {
      const a = await deltaStats(ours.out!, base, ranked);
      const b = await deltaStats(mk.out!, base, ranked);
      assert.deepEqual([...a.keys()], [...b.keys()], 'our output and mergekit\'s hold different tensors');
      const problems: string[] = [];
      const pooled = { n: 0, ours: 0, mk: 0, hiO: 0, hiM: 0, loO: 0, loM: 0, big: 0 };
      for (const [n, x] of a) {
        const y = b.get(n)!;
        pooled.n += x.n;
        pooled.ours += x.unchanged * x.n;
        pooled.mk += y.unchanged * y.n;
        if (x.keptHi !== undefined) {
          pooled.hiO += x.keptHi * x.n;
          pooled.hiM += y.keptHi! * y.n;
          pooled.loO += x.keptLo! * x.n;
          pooled.loM += y.keptLo! * y.n;
        }
        if (x.n < 4096) continue; // norms: too few entries for per-tensor statistics
        pooled.big++;
        // Binomial noise of a share over n entries: ≤ 0.5/√n per run; allow 6σ of the difference of two runs.
        const shareTol = 6 * Math.SQRT2 * 0.5 / Math.sqrt(x.n);
        if (Math.abs(x.unchanged - y.unchanged) > shareTol) problems.push(`${n}: unchanged share ours ${x.unchanged.toFixed(4)} vs mergekit ${y.unchanged.toFixed(4)}`);
        if (Math.abs(x.std - y.std) > 0.1 * y.std) problems.push(`${n}: delta std ours ${x.std.toExponential(3)} vs mergekit ${y.std.toExponential(3)}`);
        if (Math.abs(x.mean - y.mean) > 0.1 * y.std + 1e-7) problems.push(`${n}: delta mean ours ${x.mean.toExponential(3)} vs mergekit ${y.mean.toExponential(3)} (std ${y.std.toExponential(3)})`);
        if (x.keptHi !== undefined) {
          if (Math.abs(x.keptHi - y.keptHi!) > 2 * shareTol) problems.push(`${n}: kept share of the larger |δ| ours ${x.keptHi.toFixed(4)} vs mergekit ${y.keptHi!.toFixed(4)}`);
          if (Math.abs(x.keptLo! - y.keptLo!) > 2 * shareTol) problems.push(`${n}: kept share of the smaller |δ| ours ${x.keptLo!.toFixed(4)} vs mergekit ${y.keptLo!.toFixed(4)}`);
        }
      }
      const uo = pooled.ours / pooled.n;
      const um = pooled.mk / pooled.n;
      let msg = `${a.size} tensors (${pooled.big} compared one by one); unchanged share pooled: ours ${uo.toFixed(4)}, mergekit ${um.toFixed(4)}`;
      if (c.ranked) msg += `; kept share larger/smaller half of |δ|: ours ${(pooled.hiO / pooled.n).toFixed(3)}/${(pooled.loO / pooled.n).toFixed(3)}, mergekit ${(pooled.hiM / pooled.n).toFixed(3)}/${(pooled.loM / pooled.n).toFixed(3)}`;
      t.diagnostic(`${msg}; ${timing}`);
      if (Math.abs(uo - um) > 0.005) problems.unshift(`pooled unchanged share: ours ${uo.toFixed(4)} vs mergekit ${um.toFixed(4)}`);
      if (known && problems.length === 0) t.diagnostic(`KNOWN["${c.name}"] now matches mergekit: remove the entry`);
      assert.deepEqual(problems, [], `${c.name}: statistics differ from mergekit's:\n${problems.slice(0, 12).join('\n')}`);
    } finally {
      await base.close();
      await ranked?.close();
    }
  });
}
