/**
 * PEFT LoRA adapters: config parsing, the per-module scaling PEFT applies, the mapping from
 * adapter tensor names to the base model's, and the merged delta ΔW = scaling · B·A
 * (LoRA, Hu et al. 2021, arXiv 2106.09685; rsLoRA scaling α/√r, Kalajdzievski 2023, arXiv 2312.03732).
 * Semantics follow huggingface/peft `tuners/lora` (layer.py get_delta_weight, model.py patterns).
 */
import { z } from 'zod';

export interface LoraConfig {
  r: number;
  alpha: number;
  useRslora: boolean;
  fanInFanOut: boolean;
  targetModules: string[] | string | null;
  rankPattern: Record<string, number>;
  alphaPattern: Record<string, number>;
  modulesToSave: string[];
  bias: string;
  baseModelNameOrPath?: string;
  taskType?: string;
  raw: Record<string, unknown>;
}

const schema = z.looseObject({
  peft_type: z.string().optional(),
  r: z.number().int().positive().default(8),
  lora_alpha: z.number().positive().default(8),
  use_rslora: z.boolean().default(false),
  fan_in_fan_out: z.boolean().default(false),
  target_modules: z.union([z.array(z.string()), z.string()]).nullish(),
  rank_pattern: z.record(z.string(), z.number().int().positive()).nullish(),
  alpha_pattern: z.record(z.string(), z.number().positive()).nullish(),
  modules_to_save: z.array(z.string()).nullish(),
  bias: z.string().default('none'),
  use_dora: z.boolean().nullish(),
  base_model_name_or_path: z.string().nullish(),
  task_type: z.string().nullish(),
});

export class LoraConfigError extends Error {
  override readonly name = 'LoraConfigError';
}

export function parseLoraConfig(raw: unknown): LoraConfig {
  const r = schema.safeParse(raw);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    throw new LoraConfigError(`field "${issue.path.join('.') || '(root)'}": ${issue.message}`);
  }
  const c = r.data;
  if (c.peft_type !== undefined && c.peft_type.toUpperCase() !== 'LORA') {
    throw new LoraConfigError(`peft_type "${c.peft_type}" is not LORA; only LoRA adapters are supported`);
  }
  if (c.use_dora) throw new LoraConfigError('DoRA adapters (use_dora: true) are not supported yet; merge the adapter with PEFT first (merge_and_unload)');
  return {
    r: c.r,
    alpha: c.lora_alpha,
    useRslora: c.use_rslora,
    fanInFanOut: c.fan_in_fan_out,
    targetModules: c.target_modules ?? null,
    rankPattern: c.rank_pattern ?? {},
    alphaPattern: c.alpha_pattern ?? {},
    modulesToSave: c.modules_to_save ?? [],
    bias: c.bias,
    baseModelNameOrPath: c.base_model_name_or_path ?? undefined,
    taskType: c.task_type ?? undefined,
    raw: raw as Record<string, unknown>,
  };
}

/** PEFT's pattern lookup: the first key k with `^(.*\.)?(k)$` matching the module name. */
export function patternKey(patterns: Record<string, number>, moduleName: string): string | undefined {
  for (const k of Object.keys(patterns)) {
    let re: RegExp;
    try {
      re = new RegExp(`^(.*\\.)?(${k})$`);
    } catch {
      continue; // an invalid regex never matches in our port (PEFT would raise)
    }
    if (re.test(moduleName)) return k;
  }
  return undefined;
}

/** r, alpha and scaling for one module (e.g. `model.layers.0.self_attn.q_proj`). */
export function moduleScaling(cfg: LoraConfig, moduleName: string): { r: number; alpha: number; scaling: number } {
  const rk = patternKey(cfg.rankPattern, moduleName);
  const ak = patternKey(cfg.alphaPattern, moduleName);
  const r = rk !== undefined ? cfg.rankPattern[rk]! : cfg.r;
  const alpha = ak !== undefined ? cfg.alphaPattern[ak]! : cfg.alpha;
  return { r, alpha, scaling: cfg.useRslora ? alpha / Math.sqrt(r) : alpha / r };
}

export interface LoraModule {
  /** Module path in the base model, e.g. `model.layers.0.self_attn.q_proj`. */
  module: string;
  /** The base tensor the delta applies to (`<module>.weight`). */
  baseTensor: string;
  a: string;
  b: string;
  /** Embedding LoRA stores A as [r, vocab] and B as [hidden, r]; the delta is (B·A)ᵀ. */
  embedding: boolean;
  biasTensor?: string;
}

export interface AdapterTensorMap {
  modules: LoraModule[];
  /** modules_to_save: full replacement tensors, adapter name → base name. */
  replacements: { adapterTensor: string; baseTensor: string }[];
  /** Tensors we could not place (reported, never silently dropped). */
  unknown: string[];
}

const PREFIX = /^base_model\.model\./;
const LORA = /^(.*)\.(lora_A|lora_B|lora_embedding_A|lora_embedding_B)(?:\.[A-Za-z0-9_-]+)?(?:\.weight)?$/;

/** Groups an adapter file's tensor names into LoRA modules and full-tensor replacements. */
export function mapAdapterTensors(names: string[]): AdapterTensorMap {
  const parts = new Map<string, { a?: string; b?: string; embedding: boolean; bias?: string }>();
  const replacements: AdapterTensorMap['replacements'] = [];
  const unknown: string[] = [];
  for (const name of names) {
    const stripped = name.replace(PREFIX, '');
    if (/\.lora_B(\.[A-Za-z0-9_-]+)?\.bias$/.test(stripped)) {
      const mod = stripped.replace(/\.lora_B(\.[A-Za-z0-9_-]+)?\.bias$/, '');
      const e = parts.get(mod) ?? { embedding: false };
      e.bias = name;
      parts.set(mod, e);
      continue;
    }
    const m = LORA.exec(stripped);
    if (m) {
      const mod = m[1]!;
      const kind = m[2]!;
      const e = parts.get(mod) ?? { embedding: false };
      if (kind.endsWith('A')) e.a = name;
      else e.b = name;
      if (kind.startsWith('lora_embedding')) e.embedding = true;
      parts.set(mod, e);
      continue;
    }
    if (/lora_magnitude_vector/.test(stripped)) {
      unknown.push(name);
      continue;
    }
    if (/\.(weight|bias)$/.test(stripped)) {
      // modules_to_save are stored under the base name (PEFT strips `modules_to_save.default`).
      replacements.push({ adapterTensor: name, baseTensor: stripped.replace('.modules_to_save.default', '') });
      continue;
    }
    unknown.push(name);
  }
  const modules: LoraModule[] = [];
  for (const [mod, e] of parts) {
    if (!e.a || !e.b) {
      unknown.push(e.a ?? e.b ?? mod);
      continue;
    }
    modules.push({ module: mod, baseTensor: `${mod}.weight`, a: e.a, b: e.b, embedding: e.embedding, biasTensor: e.bias });
  }
  modules.sort((x, y) => (x.module < y.module ? -1 : x.module > y.module ? 1 : 0));
  return { modules, replacements, unknown };
}

/**
 * ΔW = scaling · B·A for a linear layer: A is [r, in], B is [out, r], the result [out, in]
 * (transposed to [in, out] when fan_in_fan_out, as PEFT's `transpose`). For embeddings A is
 * [r, vocab], B is [hidden, r], and ΔW = (B·A)ᵀ is [vocab, hidden]. Computed in float32.
 */
export function loraDelta(a: Float32Array, aShape: readonly number[], b: Float32Array, bShape: readonly number[], scaling: number, opts: { fanInFanOut?: boolean; embedding?: boolean } = {}): { data: Float32Array; shape: number[] } {
  const [r, inF] = aShape as [number, number];
  const [outF, rb] = bShape as [number, number];
  if (rb !== r) throw new RangeError(`lora_B has rank ${rb} but lora_A has rank ${r}`);
  // prod[o][i] = Σ_k B[o][k]·A[k][i]   shape [outF, inF]
  const prod = new Float32Array(outF * inF);
  for (let o = 0; o < outF; o++) {
    const row = o * inF;
    for (let k = 0; k < r; k++) {
      const bk = b[o * r + k]! * scaling;
      if (bk === 0) continue;
      const arow = k * inF;
      for (let i = 0; i < inF; i++) prod[row + i]! += bk * a[arow + i]!;
    }
  }
  const transpose = !!opts.embedding !== !!opts.fanInFanOut;
  if (!transpose) return { data: prod, shape: [outF, inF] };
  const t = new Float32Array(outF * inF);
  for (let o = 0; o < outF; o++) for (let i = 0; i < inF; i++) t[i * outF + o] = prod[o * inF + i]!;
  return { data: t, shape: [inF, outF] };
}
