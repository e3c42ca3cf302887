/**
 * Expansion recipes (UpIT's genetic expert expansion, research merge-anchors §4.1): YAML naming the
 * base, the K checkpoints to start from and how to grow them to M experts.
 *
 * ```yaml
 * base_model: models/base              # origin of the task vectors (and of the DARE merges)
 * models:                              # the K ≥ 2 starting experts (paths, or {model, name})
 *   - models/sft-step250
 *   - {model: models/sft-step500, name: step500}
 * num_experts: 8                       # M ≥ K
 * candidates: 4                        # N children tried per generation (default 4)
 * density: 0.9                         # DARE keep probability, the mutation strength (default 0.9)
 * alpha: [0.0, 1.0]                    # α ~ U(min, max); child = DARE-merge α·p₁ + (1−α)·p₂
 * rescale_mode: l1                     # DARE rescale: l1 (mergekit) | inverse_density (paper)
 * sample_size: 1000000                 # parameters sampled for the cosine similarity (0 = all)
 * similarity_scope: all                # all tensors | mlp (only the FFN weights MoE experts keep)
 * seed: 0                              # (or random_seed) same seed → byte-identical experts and log
 * seed_data: [eval/add.seed.jsonl]     # optional: weigh candidates by mean log-likelihood on it
 * seed_weight: 0.5                     # 0 = diversity only … 1 = seed-data score only
 * dtype: bfloat16                      # of the new experts (default: the base's)
 * originals: link                      # link (hard-link weights) | copy | reference (log paths only)
 * ```
 * Paths are relative to the YAML file. Unknown keys are errors naming the supported ones.
 */
import { isAbsolute, join, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { parseDTypeName, type DType } from '../core/dtypes.js';

export interface ExpertSource {
  /** As written in the YAML (or its `name`), for the log and messages. */
  label: string;
  path: string;
}

export type OriginalsMode = 'link' | 'copy' | 'reference';
export type SimilarityScope = 'all' | 'mlp';

export interface ExpandRecipe {
  base: string;
  models: ExpertSource[];
  numExperts: number;
  candidates: number;
  density: number;
  alpha: [number, number];
  rescaleMode: 'l1' | 'inverse_density';
  /** Parameters sampled for the similarity; 0 = every parameter. */
  sampleSize: number;
  scope: SimilarityScope;
  seed: number;
  seedData: string[];
  seedWeight: number;
  outDtype?: DType;
  originals: OriginalsMode;
  /** The YAML as parsed (for the log). */
  raw: Record<string, unknown>;
}

export class ExpandRecipeError extends Error {
  override readonly name = 'ExpandRecipeError';
}

const KEYS = [
  'base_model', 'models', 'num_experts', 'candidates', 'density', 'alpha', 'rescale_mode', 'sample_size', 'similarity_scope',
  'seed', 'random_seed', 'seed_data', 'seed_weight', 'dtype', 'out_dtype', 'originals',
];

export const DEFAULTS = { candidates: 4, density: 0.9, alpha: [0, 1] as [number, number], sampleSize: 1_000_000, seedWeight: 0.5 };

export function parseExpandYaml(text: string, yamlPath: string): ExpandRecipe {
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (e) {
    throw new ExpandRecipeError(`${yamlPath}: not valid YAML (${(e as Error).message.split('\n')[0]})`);
  }
  return parseExpandConfig(doc, resolve(yamlPath, '..'), yamlPath);
}

export function parseExpandConfig(doc: unknown, baseDir: string, where = 'config'): ExpandRecipe {
  const bad = (m: string): never => {
    throw new ExpandRecipeError(`${where}: ${m}`);
  };
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) bad('the config must be a mapping (base_model, models, num_experts, …)');
  const c = doc as Record<string, unknown>;
  for (const k of Object.keys(c)) if (!KEYS.includes(k)) bad(`unknown key "${k}" (supported: ${KEYS.join(', ')})`);
  const path = (v: unknown, what: string): string => {
    if (typeof v !== 'string' || v.length === 0) return bad(`${what} must be a local path`);
    return isAbsolute(v) ? v : join(baseDir, v);
  };
  const num = (key: string, dflt: number | undefined, check: (x: number) => boolean, rule: string): number => {
    const v = c[key];
    if (v === undefined || v === null) {
      if (dflt === undefined) bad(`${key} is missing (${rule})`);
      return dflt!;
    }
    if (typeof v !== 'number' || !Number.isFinite(v) || !check(v)) bad(`${key} must be ${rule}, got ${JSON.stringify(v)}`);
    return v as number;
  };

  const base = path(c['base_model'], 'base_model');
  if (!Array.isArray(c['models']) || c['models'].length < 2) bad('models must list at least two checkpoints (the pair of the first generation)');
  const models = (c['models'] as unknown[]).map((m, i): ExpertSource => {
    if (typeof m === 'string') return { label: m, path: path(m, `models[${i}]`) };
    if (typeof m !== 'object' || m === null) return bad(`models[${i}] must be a path or {model, name}`);
    const e = m as Record<string, unknown>;
    for (const k of Object.keys(e)) if (k !== 'model' && k !== 'name') bad(`models[${i}]: unknown key "${k}" (model, name)`);
    if (e['name'] !== undefined && (typeof e['name'] !== 'string' || e['name'].length === 0)) bad(`models[${i}].name must be a non-empty string`);
    return { label: (e['name'] as string | undefined) ?? String(e['model']), path: path(e['model'], `models[${i}].model`) };
  });
  const paths = models.map((m) => resolve(m.path));
  const dup = paths.find((p, i) => paths.indexOf(p) !== i);
  if (dup) bad(`models lists ${dup} twice`);
  if (paths.includes(resolve(base))) bad('base_model is also listed in models: its task vector would be zero');

  const K = models.length;
  const numExperts = num('num_experts', undefined, (x) => Number.isInteger(x) && x >= K, `an integer ≥ the number of models (${K})`);
  const candidates = num('candidates', DEFAULTS.candidates, (x) => Number.isInteger(x) && x >= 1, 'a positive integer');
  const density = num('density', DEFAULTS.density, (x) => x > 0 && x <= 1, 'in (0, 1] (the DARE keep probability)');

  let alpha: [number, number] = DEFAULTS.alpha;
  const a = c['alpha'];
  if (a !== undefined && a !== null) {
    let lo: unknown;
    let hi: unknown;
    if (typeof a === 'number') [lo, hi] = [a, a];
    else if (Array.isArray(a) && a.length === 2) [lo, hi] = a;
    else if (typeof a === 'object' && !Array.isArray(a)) [lo, hi] = [(a as Record<string, unknown>)['min'], (a as Record<string, unknown>)['max']];
    if (typeof lo !== 'number' || typeof hi !== 'number' || !(lo >= 0) || !(hi <= 1) || lo > hi) {
      bad(`alpha must be [min, max] (or {min, max}) with 0 ≤ min ≤ max ≤ 1, got ${JSON.stringify(a)}`);
    }
    alpha = [lo as number, hi as number];
  }
  const rm = c['rescale_mode'] ?? 'l1';
  if (rm !== 'l1' && rm !== 'inverse_density') bad(`rescale_mode must be l1 or inverse_density, got ${JSON.stringify(rm)}`);
  const sampleSize = num('sample_size', DEFAULTS.sampleSize, (x) => Number.isSafeInteger(x) && x >= 0, 'a non-negative integer (0 = all parameters)');
  const scope = c['similarity_scope'] ?? 'all';
  if (scope !== 'all' && scope !== 'mlp') bad(`similarity_scope must be all or mlp, got ${JSON.stringify(scope)}`);
  if (c['seed'] !== undefined && c['random_seed'] !== undefined) bad('give seed or random_seed, not both');
  const seedRaw = c['seed'] ?? c['random_seed'] ?? 0;
  if (typeof seedRaw !== 'number' || !Number.isSafeInteger(seedRaw) || seedRaw < 0) bad(`seed must be a non-negative integer, got ${JSON.stringify(seedRaw)}`);

  const sd = c['seed_data'];
  let seedData: string[] = [];
  if (sd !== undefined && sd !== null) {
    const list = typeof sd === 'string' ? [sd] : sd;
    if (!Array.isArray(list) || list.length === 0) bad('seed_data must be a JSONL path or a non-empty list of them');
    seedData = (list as unknown[]).map((p, i) => path(p, `seed_data[${i}]`));
  }
  const seedWeight = num('seed_weight', DEFAULTS.seedWeight, (x) => x >= 0 && x <= 1, 'in [0, 1]');
  if (c['seed_weight'] !== undefined && seedData.length === 0) bad('seed_weight needs seed_data');

  if (c['dtype'] !== undefined && c['out_dtype'] !== undefined) bad('give dtype or out_dtype, not both');
  const dt = c['dtype'] ?? c['out_dtype'];
  let outDtype: DType | undefined;
  if (dt !== undefined && dt !== null) {
    outDtype = typeof dt === 'string' ? parseDTypeName(dt) : undefined;
    if (!outDtype || !['F32', 'F16', 'BF16'].includes(outDtype)) bad(`dtype "${String(dt)}" is not one of float32, float16, bfloat16`);
  }
  const orig = c['originals'] ?? 'link';
  if (orig !== 'link' && orig !== 'copy' && orig !== 'reference') bad(`originals must be link, copy or reference, got ${JSON.stringify(orig)}`);

  return {
    base,
    models,
    numExperts,
    candidates,
    density,
    alpha,
    rescaleMode: rm as ExpandRecipe['rescaleMode'],
    sampleSize,
    scope: scope as SimilarityScope,
    seed: seedRaw as number,
    seedData,
    seedWeight: seedData.length ? seedWeight : 0,
    outDtype,
    originals: orig as OriginalsMode,
    raw: c,
  };
}
