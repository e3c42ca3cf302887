/**
 * mergekit YAML configs (`mergekit-yaml` format) parsed into a normalised recipe, with mergekit's
 * semantics (research merge-anchors §1.2): a top-level `models:` list becomes one full-depth slice,
 * per-model `parameters` become per-source parameters, the base model joins automatically, and
 * parameter settings may be scalars, gradients (lists interpolated across a slice's layers) or
 * `{filter, value}` conditionals. Paths are local folders relative to the YAML file; `a+b` is a
 * model with a PEFT adapter merged in first. Anything we do not support is an error naming it.
 */
import { parseChatTemplateChoice, type ChatTemplateChoice } from './chat-template.js';
import { isAbsolute, join, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { parseDTypeName, type DType } from '../core/dtypes.js';
import { getMergeMethod, MERGE_METHOD_IDS, type MergeMethodDef } from '../core/merge/index.js';

export type Scalar = number | boolean | string;
export type Setting = Scalar | Scalar[] | { filter?: string | null; value: Setting }[];

export interface ModelRef {
  /** As written in the YAML (for messages, the model card and mergekit_config.yml). */
  label: string;
  path: string;
  /** A PEFT adapter merged into `path` first (`model+lora`). */
  lora?: string;
}

export interface SliceSource {
  model: ModelRef;
  /** [start, end) in the source model; undefined = all layers (models: form). */
  layerRange?: [number, number];
  parameters: Record<string, Setting>;
}

export interface Slice {
  sources: SliceSource[];
  parameters: Record<string, Setting>;
}

export interface MergeRecipe {
  method: MergeMethodDef;
  base?: ModelRef;
  /** True when the config used `models:` (one full-depth slice). */
  fullDepth: boolean;
  slices: Slice[];
  parameters: Record<string, Setting>;
  outDtype?: DType;
  tokenizerSource: 'base' | ModelRef;
  /** mergekit's `chat_template`: set on the output's tokenizer (app/merge/chat-template.ts). */
  chatTemplate?: ChatTemplateChoice;
  randomSeed?: number;
  /** The YAML as parsed, for mergekit_config.yml and the model card. */
  raw: Record<string, unknown>;
  /** Every distinct model reference (base first). */
  models: ModelRef[];
}

export class RecipeError extends Error {
  override readonly name = 'RecipeError';
}

const TOP_KEYS = new Set(['merge_method', 'base_model', 'models', 'slices', 'parameters', 'dtype', 'out_dtype', 'tokenizer_source', 'tokenizer', 'chat_template', 'name', 'modules', 'random_seed']);

export function parseMergeYaml(text: string, yamlPath: string): MergeRecipe {
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (e) {
    throw new RecipeError(`${yamlPath}: not valid YAML (${(e as Error).message.split('\n')[0]})`);
  }
  return parseMergeConfig(doc, resolve(yamlPath, '..'), yamlPath);
}

export function parseMergeConfig(doc: unknown, baseDir: string, where = 'config'): MergeRecipe {
  const bad = (msg: string): never => {
    throw new RecipeError(`${where}: ${msg}`);
  };
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) bad('the config must be a mapping (merge_method, models or slices, …)');
  const c = doc as Record<string, unknown>;
  for (const k of Object.keys(c)) if (!TOP_KEYS.has(k)) bad(`unknown key "${k}" (supported: ${[...TOP_KEYS].filter((x) => x !== 'modules').join(', ')})`);
  if (c['modules'] !== undefined) bad('"modules" (multi-module configs) is not supported; use models or slices');
  if (c['tokenizer'] !== undefined) bad('"tokenizer" (vocabulary surgery) is not supported yet; use tokenizer_source: base or a model');
  if (c['chat_template'] !== undefined && typeof c['chat_template'] !== 'string') bad('chat_template must be a string: "auto", a format name or a Jinja template');
  let chatTemplate: ChatTemplateChoice | undefined;
  try {
    chatTemplate = typeof c['chat_template'] === 'string' ? parseChatTemplateChoice(c['chat_template']) : undefined;
  } catch (e) {
    bad((e as Error).message);
  }
  const methodId = c['merge_method'];
  if (typeof methodId !== 'string') bad('merge_method is missing');
  if (!MERGE_METHOD_IDS.includes(methodId as string)) bad(`merge_method "${String(methodId)}" is not supported (supported: ${MERGE_METHOD_IDS.join(', ')})`);
  const m = getMergeMethod(methodId as string);

  const refs = new Map<string, ModelRef>();
  const ref = (v: unknown, what: string): ModelRef => {
    let s: string | undefined;
    if (typeof v === 'string') s = v;
    else if (typeof v === 'object' && v !== null && typeof (v as { model?: unknown }).model === 'string') s = (v as { model: string }).model;
    if (!s) return bad(`${what} must be a model path`);
    const hit = refs.get(s!);
    if (hit) return hit;
    const [modelPart, loraPart, ...rest] = s!.split('+');
    if (rest.length > 0) bad(`${what} "${s}": use at most one "+adapter"`);
    const abs = (p: string) => (isAbsolute(p) ? p : join(baseDir, p));
    const r: ModelRef = { label: s!, path: abs(modelPart!), ...(loraPart ? { lora: abs(loraPart) } : {}) };
    refs.set(s!, r);
    return r;
  };

  const base = c['base_model'] !== undefined && c['base_model'] !== null ? ref(c['base_model'], 'base_model') : undefined;
  const parameters = settings(c['parameters'], 'parameters', bad);
  checkParamNames(m, parameters, 'parameters', true, bad);

  let slices: Slice[];
  let fullDepth = false;
  if (c['models'] !== undefined && c['slices'] !== undefined) bad('give either models or slices, not both');
  if (Array.isArray(c['models'])) {
    fullDepth = true;
    const sources: SliceSource[] = (c['models'] as unknown[]).map((entry, i) => {
      const e = (typeof entry === 'object' && entry !== null ? entry : { model: entry }) as Record<string, unknown>;
      for (const k of Object.keys(e)) if (k !== 'model' && k !== 'parameters') bad(`models[${i}]: unknown key "${k}"`);
      const p = settings(e['parameters'], `models[${i}].parameters`, bad);
      checkParamNames(m, p, `models[${i}].parameters`, false, bad);
      return { model: ref(e['model'], `models[${i}].model`), parameters: p };
    });
    // mergekit adds the base model as a source when it is missing, whatever the method (plan.py normalize_config).
    if (base && !sources.some((s) => s.model === base)) sources.push({ model: base, parameters: {} });
    slices = [{ sources, parameters: {} }];
  } else if (Array.isArray(c['slices'])) {
    slices = (c['slices'] as unknown[]).map((sl, i) => {
      if (typeof sl !== 'object' || sl === null) return bad(`slices[${i}] must be a mapping with sources`);
      const s = sl as Record<string, unknown>;
      for (const k of Object.keys(s)) if (k !== 'sources' && k !== 'parameters') bad(`slices[${i}]: unknown key "${k}"`);
      if (!Array.isArray(s['sources']) || s['sources'].length === 0) bad(`slices[${i}].sources must be a non-empty list`);
      const sp = settings(s['parameters'], `slices[${i}].parameters`, bad);
      checkParamNames(m, sp, `slices[${i}].parameters`, true, bad);
      const sources = (s['sources'] as unknown[]).map((src, j) => {
        const e = src as Record<string, unknown>;
        const w = `slices[${i}].sources[${j}]`;
        for (const k of Object.keys(e ?? {})) if (!['model', 'layer_range', 'parameters'].includes(k)) bad(`${w}: unknown key "${k}"`);
        const lr = e?.['layer_range'] as unknown[] | undefined;
        if (!Array.isArray(lr) || lr.length !== 2 || !lr.every((x) => Number.isInteger(x) && (x as number) >= 0) || (lr[0] as number) >= (lr[1] as number)) {
          return bad(`${w}.layer_range must be [start, end) with 0 ≤ start < end`);
        }
        const p = settings(e['parameters'], `${w}.parameters`, bad);
        checkParamNames(m, p, `${w}.parameters`, false, bad);
        return { model: ref(e['model'], `${w}.model`), layerRange: [lr[0] as number, lr[1] as number] as [number, number], parameters: p };
      });
      const n = sources[0]!.layerRange[1] - sources[0]!.layerRange[0];
      if (sources.some((x) => x.layerRange[1] - x.layerRange[0] !== n)) bad(`slices[${i}]: every source must cover the same number of layers`);
      if (base && m.baseUsage !== 'entry' && !sources.some((x) => x.model === base) && m.id !== 'passthrough') {
        sources.push({ model: base, layerRange: [...sources[0]!.layerRange], parameters: {} });
      }
      return { sources, parameters: sp };
    });
  } else {
    return bad('give models: (a list of models to merge) or slices:');
  }
  if (m.requiresBase && !base) bad(`${m.id} needs a base_model`);
  const nonBase = slices.map((s) => s.sources.filter((x) => x.model !== base || m.baseUsage === 'entry').length);
  for (const n of nonBase) {
    if (n < m.minModels) bad(`${m.id} needs at least ${m.minModels} model(s) besides the base, got ${n}`);
    if (m.maxModels !== null && n > m.maxModels) bad(`${m.id} takes at most ${m.maxModels} model(s) besides the base, got ${n}`);
  }

  const dt = (key: string): DType | undefined => {
    const v = c[key];
    if (v === undefined || v === null) return undefined;
    const d = typeof v === 'string' ? parseDTypeName(v) : undefined;
    if (!d || !['F32', 'F16', 'BF16'].includes(d)) bad(`${key} "${String(v)}" is not one of float32, float16, bfloat16`);
    return d;
  };
  // mergekit's `dtype` is the compute dtype; we always compute in float32 (never less precise) and
  // use it as the output dtype when out_dtype is absent, which is what mergekit writes then.
  const outDtype = dt('out_dtype') ?? dt('dtype');
  let tokenizerSource: 'base' | ModelRef = 'base';
  const ts = c['tokenizer_source'];
  if (ts !== undefined && ts !== null && ts !== 'base') {
    if (ts === 'union') bad('tokenizer_source: union is not supported yet; use base or one model');
    tokenizerSource = ref(ts, 'tokenizer_source');
  }
  const seed = c['random_seed'];
  if (seed !== undefined && !Number.isInteger(seed)) bad('random_seed must be an integer');
  const models = [...(base ? [base] : []), ...[...refs.values()].filter((r) => r !== base)];
  return { method: m, base, fullDepth, slices, parameters, outDtype, tokenizerSource, chatTemplate, randomSeed: seed as number | undefined, raw: c, models };
}

function settings(v: unknown, where: string, bad: (m: string) => never): Record<string, Setting> {
  if (v === undefined || v === null) return {};
  if (typeof v !== 'object' || Array.isArray(v)) bad(`${where} must be a mapping of parameter names to values`);
  const out: Record<string, Setting> = {};
  for (const [k, s] of Object.entries(v as Record<string, unknown>)) out[k] = setting(s, `${where}.${k}`, bad);
  return out;
}

function setting(v: unknown, where: string, bad: (m: string) => never): Setting {
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'string') return v;
  if (Array.isArray(v)) {
    if (v.length === 0) bad(`${where} is an empty list`);
    if (v.every((x) => typeof x === 'number' || typeof x === 'boolean' || typeof x === 'string')) return v as Scalar[];
    if (v.every((x) => typeof x === 'object' && x !== null && 'value' in x)) {
      return v.map((x, i) => {
        const e = x as Record<string, unknown>;
        const f = e['filter'];
        if (f !== undefined && f !== null && typeof f !== 'string') bad(`${where}[${i}].filter must be a string`);
        return { filter: (f as string | null | undefined) ?? null, value: setting(e['value'], `${where}[${i}].value`, bad) };
      });
    }
  }
  if (typeof v === 'object' && v !== null && 'value' in v) return setting([v], where, bad);
  return bad(`${where}: expected a number, a list (gradient) or {filter, value} entries`);
}

function checkParamNames(m: MergeMethodDef, p: Record<string, Setting>, where: string, allowGlobal: boolean, bad: (msg: string) => never): void {
  const perModel = new Set(m.perModelParams.map((x) => x.name));
  const global = new Set(m.globalParams.map((x) => x.name));
  for (const k of Object.keys(p)) {
    if (perModel.has(k) || (allowGlobal && global.has(k))) continue;
    if (global.has(k)) bad(`${where}.${k} is a global parameter of ${m.id}; put it under the top-level or slice parameters`);
    const known = [...perModel, ...(allowGlobal ? global : [])];
    bad(`${where}.${k} is not a parameter of ${m.id} (it takes: ${known.join(', ') || 'none'})`);
  }
}

/**
 * mergekit's `evaluate_setting`: `t` is the layer's position in its slice (0…1; 0 for embeddings,
 * norms and lm_head). Numeric lists interpolate piecewise-linearly; other lists step; conditional
 * lists take the first entry whose filter is empty, "*" or a substring of the tensor name.
 */
export function evaluateSetting(s: Setting | undefined, t: number, tensorName: string): Scalar | undefined {
  if (s === undefined) return undefined;
  if (!Array.isArray(s)) return s;
  if (s.length > 0 && typeof s[0] === 'object') {
    for (const e of s as { filter?: string | null; value: Setting }[]) {
      if (!e.filter || e.filter === '*' || tensorName.includes(e.filter)) return evaluateSetting(e.value, t, tensorName);
    }
    return undefined;
  }
  const list = s as Scalar[];
  if (list.every((x) => typeof x === 'number')) {
    const nums = list as number[];
    if (nums.length === 1) return nums[0];
    const scaled = t * (nums.length - 1);
    const i0 = Math.floor(scaled);
    const i1 = Math.min(nums.length - 1, i0 + 1);
    const frac = scaled - i0;
    return (1 - frac) * nums[i0]! + frac * nums[i1]!;
  }
  return list[Math.floor(t * (list.length - 1))];
}
