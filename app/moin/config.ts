/**
 * MoIN recipes (`upcycle moin build CONFIG.yml OUT_DIR`): sequence-level "introvert" experts on a
 * frozen base. The expert keys are mergekit-moe's (base_model, experts[].source_model /
 * source_adapter / positive_prompts, plus our seed_data and name), so an `upcycle moe` config
 * needs little more than `routing: sequence` and a `query_delimiter`:
 *
 *   base_model: models/base
 *   routing: sequence                # optional; the only value is `sequence`
 *   query_delimiter: "="             # embed seed lines up to and including the first "="
 *   embedding: {layers: [2], pooling: mean, …}   # optional; see embedding.ts (default: measured best)
 *   router:                          # optional; default method: centroids
 *     method: centroids | kmeans
 *     corpus: corpus.jsonl           # kmeans: unlabelled JSONL ({"text"} lines)
 *     k: 4                           # kmeans: clusters (default: number of experts)
 *     assign: centroid | majority | perplexity   # kmeans: how clusters map to experts
 *     seed: 0                        # kmeans: k-means++ seed
 *     restarts: 10                   # kmeans: runs, the lowest inertia wins
 *     samples: 16                    # perplexity mapping: texts per cluster scored by each expert
 *   experts:
 *     - name: add                    # default: the folder name
 *       source_adapter: adapters/lora-add     # or source_model: models/ffn-add
 *       seed_data: eval/add.seed.jsonl        # and/or positive_prompts: ["add 1 2 ="]
 *   merged_models: false             # also export base+adapter merged, one model per adapter expert
 *   copy_models: false               # copy model experts into the folder (adapters are always copied)
 *
 * Paths are relative to the YAML file.
 */
import { basename, isAbsolute, join, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { parseEmbeddingSpec, type EmbeddingSpec } from './embedding.js';

export const CLUSTER_ASSIGN = ['centroid', 'majority', 'perplexity'] as const;
export type ClusterAssign = (typeof CLUSTER_ASSIGN)[number];

export interface MoinExpertSpec {
  name: string;
  adapter?: string;
  model?: string;
  seedData?: string;
  positivePrompts: string[];
}

export interface KMeansSpec {
  corpus: string;
  k?: number;
  assign: ClusterAssign;
  seed: number;
  restarts: number;
  samples: number;
}

export interface MoinRecipe {
  base: string;
  embedding: EmbeddingSpec;
  queryDelimiter: string | null;
  router: { method: 'centroids' } | ({ method: 'kmeans' } & KMeansSpec);
  experts: MoinExpertSpec[];
  mergedModels: boolean;
  copyModels: boolean;
  raw: Record<string, unknown>;
}

export class MoinRecipeError extends Error {
  override readonly name = 'MoinRecipeError';
}

const TOP = ['base_model', 'routing', 'query_delimiter', 'embedding', 'router', 'experts', 'merged_models', 'copy_models'];
const EXPERT_KEYS = ['name', 'source_model', 'source_adapter', 'seed_data', 'positive_prompts'];
const ROUTER_KEYS = ['method', 'corpus', 'k', 'assign', 'seed', 'restarts', 'samples'];

export function parseMoinYaml(text: string, yamlPath: string): MoinRecipe {
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (e) {
    throw new MoinRecipeError(`${yamlPath}: not valid YAML (${(e as Error).message.split('\n')[0]})`);
  }
  return parseMoinConfig(doc, resolve(yamlPath, '..'), yamlPath);
}

export function parseMoinConfig(doc: unknown, baseDir: string, where = 'config'): MoinRecipe {
  const bad = (m: string): never => {
    throw new MoinRecipeError(`${where}: ${m}`);
  };
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) bad('the config must be a mapping');
  const c = doc as Record<string, unknown>;
  for (const k of Object.keys(c)) {
    if (TOP.includes(k)) continue;
    if (['gate_mode', 'experts_per_token', 'architecture', 'shared_experts', 'shared_expert'].includes(k)) bad(`"${k}" is a token-routed MoE key; sequence-level experts route each query whole to one expert (use \`upcycle moe\` for a token-routed MoE)`);
    bad(`unknown key "${k}" (supported: ${TOP.join(', ')})`);
  }
  if (c['routing'] !== undefined && c['routing'] !== 'sequence') bad('routing must be "sequence" (token routing is `upcycle moe`)');
  const path = (v: unknown, what: string): string => {
    if (typeof v !== 'string' || v.length === 0) bad(`${what} must be a local path`);
    return isAbsolute(v as string) ? (v as string) : join(baseDir, v as string);
  };
  const base = path(c['base_model'], 'base_model');
  const qd = c['query_delimiter'];
  if (qd !== undefined && qd !== null && (typeof qd !== 'string' || qd.length === 0)) bad('query_delimiter must be a non-empty string');
  let embedding: EmbeddingSpec;
  try {
    embedding = parseEmbeddingSpec(c['embedding'], `${where}: embedding`);
  } catch (e) {
    throw new MoinRecipeError((e as Error).message);
  }
  if (!Array.isArray(c['experts']) || c['experts'].length < 2) bad('experts must list at least two experts');
  const experts: MoinExpertSpec[] = (c['experts'] as unknown[]).map((e, i) => {
    if (typeof e !== 'object' || e === null || Array.isArray(e)) return bad(`experts[${i}] must be a mapping`);
    const x = e as Record<string, unknown>;
    for (const k of Object.keys(x)) if (!EXPERT_KEYS.includes(k)) bad(`experts[${i}]: unknown key "${k}" (supported: ${EXPERT_KEYS.join(', ')})`);
    if ((x['source_model'] === undefined) === (x['source_adapter'] === undefined)) bad(`experts[${i}] needs exactly one of source_model or source_adapter`);
    const model = x['source_model'] !== undefined ? path(x['source_model'], `experts[${i}].source_model`) : undefined;
    const adapter = x['source_adapter'] !== undefined ? path(x['source_adapter'], `experts[${i}].source_adapter`) : undefined;
    let pp: string[] = [];
    const p = x['positive_prompts'];
    if (typeof p === 'string') pp = [p];
    else if (p !== undefined && p !== null) {
      if (!Array.isArray(p) || !p.every((s) => typeof s === 'string')) bad(`experts[${i}].positive_prompts must be a list of strings`);
      pp = p as string[];
    }
    const name = x['name'] !== undefined ? x['name'] : basename((model ?? adapter)!.replace(/[/\\]+$/, ''));
    if (typeof name !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name)) bad(`experts[${i}].name must be a simple name (letters, digits, . _ -), used as a folder name`);
    return { name: name as string, model, adapter, seedData: x['seed_data'] !== undefined ? path(x['seed_data'], `experts[${i}].seed_data`) : undefined, positivePrompts: pp };
  });
  const names = experts.map((e) => e.name);
  const dup = names.find((n, i) => names.indexOf(n) !== i);
  if (dup) bad(`two experts are named "${dup}"; give them distinct names`);
  const r = (c['router'] ?? { method: 'centroids' }) as Record<string, unknown>;
  if (typeof r !== 'object' || r === null || Array.isArray(r)) bad('router must be a mapping');
  for (const k of Object.keys(r)) if (!ROUTER_KEYS.includes(k)) bad(`router: unknown key "${k}" (supported: ${ROUTER_KEYS.join(', ')})`);
  const method = r['method'] ?? 'centroids';
  let router: MoinRecipe['router'];
  if (method === 'centroids') {
    for (const k of ['corpus', 'k', 'assign', 'seed', 'restarts', 'samples']) if (r[k] !== undefined) bad(`router.${k} applies to method kmeans only`);
    experts.forEach((e, i) => {
      if (!e.seedData && e.positivePrompts.length === 0) bad(`experts[${i}] (${e.name}) needs seed_data or positive_prompts: its centroid is the mean embedding of those texts`);
    });
    router = { method: 'centroids' };
  } else if (method === 'kmeans') {
    const int = (v: unknown, what: string, dflt: number, min: number): number => {
      if (v === undefined) return dflt;
      if (!Number.isInteger(v) || (v as number) < min) bad(`router.${what} must be an integer ≥ ${min}`);
      return v as number;
    };
    const hasSeeds = experts.every((e) => e.seedData || e.positivePrompts.length > 0);
    const assign = (r['assign'] ?? (hasSeeds ? 'centroid' : 'perplexity')) as string;
    if (!(CLUSTER_ASSIGN as readonly string[]).includes(assign)) bad(`router.assign must be one of ${CLUSTER_ASSIGN.join(', ')}`);
    if (assign === 'centroid' && !hasSeeds) bad('router.assign centroid needs seed_data or positive_prompts for every expert (or use assign: perplexity, which needs none)');
    const k = r['k'] === undefined ? undefined : int(r['k'], 'k', experts.length, 1);
    router = { method: 'kmeans', corpus: path(r['corpus'], 'router.corpus'), k, assign: assign as ClusterAssign, seed: int(r['seed'], 'seed', 0, 0), restarts: int(r['restarts'], 'restarts', 10, 1), samples: int(r['samples'], 'samples', 16, 1) };
  } else {
    return bad('router.method must be centroids or kmeans');
  }
  const bool = (k: string): boolean => {
    const v = c[k];
    if (v === undefined) return false;
    if (typeof v !== 'boolean') bad(`${k} must be true or false`);
    return v as boolean;
  };
  return { base, embedding, queryDelimiter: (qd as string | undefined) ?? null, router, experts, mergedModels: bool('merged_models'), copyModels: bool('copy_models'), raw: c };
}
