/**
 * MoE recipes: mergekit-moe YAML (base_model, gate_mode, dtype, experts_per_token, architecture,
 * experts[].source_model / positive_prompts / negative_prompts / noise_scale / residual_scale,
 * shared_experts) runs unchanged, plus our extensions:
 * - experts[].source_adapter: a PEFT LoRA on the base whose FFN deltas become the expert;
 * - experts[].seed_data: a JSONL file of {"text"} lines the expert excels at (UpIT calibration);
 * - gate_mode: random | uniform | cheap_embed | hidden (mergekit's, also hidden_avg/hidden_last) |
 *   hidden_router_input | calibrated; mergekit's uniform_random is accepted too;
 * - shared_expert: true → the base's FFN becomes Qwen2-MoE's gated shared expert;
 * - non_expert_weights: base | average | {merge_method, parameters} (any merge engine method);
 * - calibration: {steps, lr, l2, class_balance} for `calibrated`; random_seed.
 */
import { isAbsolute, join, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { parseDTypeName, type DType } from '../core/dtypes.js';
import { MERGE_METHOD_IDS } from '../core/merge/index.js';

export const GATE_MODES = ['random', 'uniform', 'uniform_random', 'cheap_embed', 'hidden', 'hidden_avg', 'hidden_last', 'hidden_router_input', 'calibrated'] as const;
export type GateMode = (typeof GATE_MODES)[number];

export interface ExpertSpec {
  label: string;
  /** A full checkpoint whose FFN becomes the expert. */
  model?: string;
  /** A LoRA adapter on the base whose FFN deltas become the expert. */
  adapter?: string;
  positivePrompts: string[];
  negativePrompts: string[];
  seedData?: string;
  noiseScale?: number;
  residualScale?: number;
}

export type NonExpertWeights = { kind: 'base' } | { kind: 'average' } | { kind: 'merge'; method: string; parameters: Record<string, unknown> };

export interface CalibrationOptions {
  steps: number;
  lr: number;
  l2: number;
  /** Weigh each expert's tokens equally (inverse frequency). */
  classBalance: boolean;
}

export interface MoeRecipe {
  base: string;
  gateMode: GateMode;
  outDtype?: DType;
  topK: number;
  architecture?: 'mixtral' | 'qwen2_moe';
  experts: ExpertSpec[];
  sharedExpert: { kind: 'none' } | { kind: 'base' } | { kind: 'model'; model: string; positivePrompts: string[]; residualScale?: number };
  nonExpert: NonExpertWeights;
  calibration: CalibrationOptions;
  seed: number;
  raw: Record<string, unknown>;
}

export class MoeRecipeError extends Error {
  override readonly name = 'MoeRecipeError';
}

const TOP = new Set(['base_model', 'gate_mode', 'dtype', 'experts_per_token', 'architecture', 'experts', 'shared_experts', 'shared_expert', 'non_expert_weights', 'calibration', 'random_seed', 'tokenizer_source', 'out_dtype']);
const EXPERT_KEYS = new Set(['source_model', 'source_adapter', 'positive_prompts', 'negative_prompts', 'seed_data', 'noise_scale', 'residual_scale', 'name']);

export function parseMoeYaml(text: string, yamlPath: string): MoeRecipe {
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (e) {
    throw new MoeRecipeError(`${yamlPath}: not valid YAML (${(e as Error).message.split('\n')[0]})`);
  }
  return parseMoeConfig(doc, resolve(yamlPath, '..'), yamlPath);
}

export function parseMoeConfig(doc: unknown, baseDir: string, where = 'config'): MoeRecipe {
  const bad = (m: string): never => {
    throw new MoeRecipeError(`${where}: ${m}`);
  };
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) bad('the config must be a mapping');
  const c = doc as Record<string, unknown>;
  for (const k of Object.keys(c)) if (!TOP.has(k)) bad(`unknown key "${k}" (supported: ${[...TOP].join(', ')})`);
  const path = (v: unknown, what: string): string => {
    if (typeof v !== 'string' || v.length === 0) bad(`${what} must be a local folder path`);
    return isAbsolute(v as string) ? (v as string) : join(baseDir, v as string);
  };
  const strings = (v: unknown, what: string): string[] => {
    if (v === undefined || v === null) return [];
    if (typeof v === 'string') return [v];
    if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) bad(`${what} must be a list of strings`);
    return v as string[];
  };
  const num = (v: unknown, what: string, min = -Infinity): number | undefined => {
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < min) bad(`${what} must be a number${min > -Infinity ? ` ≥ ${min}` : ''}`);
    return v as number;
  };
  const base = path(c['base_model'], 'base_model');
  const gm = (c['gate_mode'] ?? 'hidden') as string;
  if (!(GATE_MODES as readonly string[]).includes(gm)) bad(`gate_mode "${gm}" is not supported (supported: ${GATE_MODES.join(', ')})`);
  if (!Array.isArray(c['experts']) || c['experts'].length < 2) bad('experts must list at least two experts');
  const experts: ExpertSpec[] = (c['experts'] as unknown[]).map((e, i) => {
    if (typeof e !== 'object' || e === null) return bad(`experts[${i}] must be a mapping`);
    const x = e as Record<string, unknown>;
    for (const k of Object.keys(x)) if (!EXPERT_KEYS.has(k)) bad(`experts[${i}]: unknown key "${k}"`);
    if ((x['source_model'] === undefined) === (x['source_adapter'] === undefined)) bad(`experts[${i}] needs exactly one of source_model or source_adapter`);
    const model = x['source_model'] !== undefined ? path(x['source_model'], `experts[${i}].source_model`) : undefined;
    const adapter = x['source_adapter'] !== undefined ? path(x['source_adapter'], `experts[${i}].source_adapter`) : undefined;
    const label = typeof x['name'] === 'string' ? x['name'] : String(x['source_model'] ?? x['source_adapter']).split('/').filter(Boolean).pop()!;
    return {
      label,
      model,
      adapter,
      positivePrompts: strings(x['positive_prompts'], `experts[${i}].positive_prompts`),
      negativePrompts: strings(x['negative_prompts'], `experts[${i}].negative_prompts`),
      seedData: x['seed_data'] !== undefined ? path(x['seed_data'], `experts[${i}].seed_data`) : undefined,
      noiseScale: num(x['noise_scale'], `experts[${i}].noise_scale`, 0),
      residualScale: num(x['residual_scale'], `experts[${i}].residual_scale`),
    };
  });
  const gateMode = gm as GateMode;
  if (['hidden', 'hidden_avg', 'hidden_last', 'hidden_router_input', 'cheap_embed'].includes(gateMode)) {
    experts.forEach((e, i) => {
      if (e.positivePrompts.length === 0) bad(`experts[${i}] (${e.label}) needs positive_prompts for gate_mode ${gateMode}`);
    });
    const keys = experts.map((e) => JSON.stringify([e.positivePrompts, e.negativePrompts]));
    if (new Set(keys).size === 1) bad('every expert has the same prompts, so their routers would be identical (mergekit refuses this too)');
  }
  if (gateMode === 'calibrated') {
    experts.forEach((e, i) => {
      if (!e.seedData && e.positivePrompts.length === 0) bad(`experts[${i}] (${e.label}) needs seed_data (or positive_prompts) for gate_mode calibrated`);
    });
  }
  const topK = (c['experts_per_token'] ?? 2) as number;
  if (!Number.isInteger(topK) || topK < 1 || topK > experts.length) bad(`experts_per_token must be an integer from 1 to ${experts.length}`);
  let architecture: MoeRecipe['architecture'];
  const arch = c['architecture'];
  if (arch !== undefined && arch !== null) {
    const a = String(arch).toLowerCase();
    if (a.startsWith('mixtral')) architecture = 'mixtral';
    else if (a.startsWith('qwen')) {
      if (a.startsWith('qwen3')) bad('architecture "Qwen3 MoE" needs qwen3 experts; only Mixtral and Qwen2-MoE outputs are supported');
      architecture = 'qwen2_moe';
    } else bad(`architecture "${String(arch)}" is not supported (mixtral, qwen)`);
  }
  let sharedExpert: MoeRecipe['sharedExpert'] = { kind: 'none' };
  if (c['shared_expert'] === true) sharedExpert = { kind: 'base' };
  else if (c['shared_expert'] !== undefined && c['shared_expert'] !== false) bad('shared_expert must be true or false');
  if (c['shared_experts'] !== undefined) {
    const s = c['shared_experts'];
    if (!Array.isArray(s) || s.length !== 1) bad('shared_experts must list exactly one expert');
    const x = (s as unknown[])[0];
    if (typeof x !== 'object' || x === null || Array.isArray(x)) bad('shared_experts[0] must be a mapping with source_model');
    for (const k of Object.keys(x as object)) if (!['source_model', 'positive_prompts', 'negative_prompts', 'residual_scale', 'noise_scale'].includes(k)) bad(`shared_experts[0]: unknown key "${k}" (supported: source_model, positive_prompts, residual_scale)`);
    const sx = x as Record<string, unknown>;
    sharedExpert = { kind: 'model', model: path(sx['source_model'], 'shared_experts[0].source_model'), positivePrompts: strings(sx['positive_prompts'], 'shared_experts[0].positive_prompts'), residualScale: num(sx['residual_scale'], 'shared_experts[0].residual_scale') };
  }
  if (sharedExpert.kind !== 'none' && architecture === 'mixtral') bad('Mixtral has no shared expert; use architecture: qwen or drop the shared expert');
  let nonExpert: NonExpertWeights = { kind: 'base' };
  const ne = c['non_expert_weights'];
  if (ne === 'average') nonExpert = { kind: 'average' };
  else if (ne !== undefined && ne !== 'base') {
    if (typeof ne !== 'object' || ne === null || typeof (ne as { merge_method?: unknown }).merge_method !== 'string') bad('non_expert_weights must be base, average or {merge_method, parameters}');
    const m = (ne as { merge_method: string }).merge_method;
    if (!MERGE_METHOD_IDS.includes(m)) bad(`non_expert_weights.merge_method "${m}" is not supported (supported: ${MERGE_METHOD_IDS.join(', ')})`);
    nonExpert = { kind: 'merge', method: m, parameters: ((ne as { parameters?: Record<string, unknown> }).parameters ?? {}) };
  }
  const dt = c['out_dtype'] ?? c['dtype'];
  let outDtype: DType | undefined;
  if (dt !== undefined && dt !== null) {
    outDtype = typeof dt === 'string' ? parseDTypeName(dt) : undefined;
    if (!outDtype || !['F32', 'F16', 'BF16'].includes(outDtype)) bad(`dtype "${String(dt)}" is not one of float32, float16, bfloat16`);
  }
  const calRaw = c['calibration'] ?? {};
  if (typeof calRaw !== 'object' || calRaw === null || Array.isArray(calRaw)) bad('calibration must be a mapping {steps, lr, l2, class_balance}');
  const cal = calRaw as Record<string, unknown>;
  for (const k of Object.keys(cal)) if (!['steps', 'lr', 'l2', 'class_balance'].includes(k)) bad(`calibration: unknown key "${k}" (supported: steps, lr, l2, class_balance)`);
  if (cal['steps'] !== undefined && !Number.isInteger(cal['steps'])) bad('calibration.steps must be a whole number of optimiser steps');
  if (cal['class_balance'] !== undefined && typeof cal['class_balance'] !== 'boolean') bad('calibration.class_balance must be true or false');
  const calibration: CalibrationOptions = {
    // Measured on the fixtures (docs/RESULTS.md): weak L2 and more steps beat the reference's 300/1e-3.
    steps: num(cal['steps'], 'calibration.steps', 1) ?? 1000,
    lr: num(cal['lr'], 'calibration.lr', 0) ?? 0.05,
    l2: num(cal['l2'], 'calibration.l2', 0) ?? 1e-4,
    classBalance: cal['class_balance'] === undefined ? true : cal['class_balance'] === true,
  };
  const seed = c['random_seed'] ?? 0;
  if (!Number.isInteger(seed)) bad('random_seed must be an integer');
  if (c['tokenizer_source'] !== undefined && c['tokenizer_source'] !== 'base') bad('tokenizer_source: only base is supported for MoE outputs (experts share the base tokenizer)');
  return { base, gateMode, outDtype, topK, architecture, experts, sharedExpert, nonExpert, calibration, seed: seed as number, raw: c };
}
