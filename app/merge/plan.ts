/**
 * A merge planned as a list of independent tensor tasks: for every output tensor, which input
 * tensors it reads (model, name, rows), the per-model and global parameters resolved for it
 * (gradients at the layer's position in its slice, filters by tensor name), and its output shape and
 * dtype. Planning reads headers only; execution streams tensors (execute.ts).
 */
import { torchDTypeName, type DType } from '../core/dtypes.js';
import { compareCheckpoints, type Difference } from '../core/compat.js';
import { CheckpointError } from '../core/errors.js';
import type { Checkpoint } from '../io/checkpoint.js';
import { summarize } from '../io/summary.js';
import { evaluateSetting, type MergeRecipe, type ModelRef, type Scalar, type Setting, type SliceSource } from './config.js';

export interface InputRef {
  /** Index into recipe.models. */
  model: number;
  tensor: string;
  /** Read only the first `rows` rows (embedding rows beyond the output vocabulary). */
  rows?: number;
  params: Record<string, Scalar>;
}

export interface TensorTask {
  name: string;
  shape: number[];
  outDtype: DType;
  base?: InputRef;
  models: InputRef[];
  globals: Record<string, Scalar>;
  /** Bytes the task reads (as stored) and writes. */
  readBytes: number;
  writeBytes: number;
}

export interface MergePlan {
  tasks: TensorTask[];
  /** config.json of the output (the reference model's, with layer count and dtype updated). */
  config: Record<string, unknown>;
  reference: number;
  notices: string[];
  numLayers: number;
}

const LAYER = /^(.*?\.layers\.)(\d+)(\..+)$/;
const DTYPE_BYTES: Record<string, number> = { F32: 4, F16: 2, BF16: 2, F64: 8 };

/**
 * Plans the merge. `cks[i]` is the opened checkpoint of recipe.models[i] (its base model when the
 * ref has a LoRA adapter: adapters only change values, never names or shapes).
 */
export function planMerge(recipe: MergeRecipe, cks: Checkpoint[], opts: { outDtype?: DType } = {}): MergePlan {
  const notices: string[] = [];
  const index = (r: ModelRef) => recipe.models.indexOf(r);
  const refIdx = recipe.base ? index(recipe.base) : index(recipe.slices[0]!.sources[0]!.model);
  const ref = cks[refIdx]!;
  const cfg = ref.config;
  for (const [i, ck] of cks.entries()) {
    if (ck.kind !== 'model') throw new CheckpointError('INVALID_CONFIG', ck.path, `is a ${ck.kind}, not a model folder`, `use "model+adapter" to merge an adapter (${recipe.models[i]!.label})`);
  }
  stopOnIncompatibility(recipe, cks, refIdx);

  const refNames = ref.names;
  const layerNames = new Map<string, string[]>(); // suffix template per source layer index
  const prePost: string[] = [];
  for (const n of refNames) {
    const m = LAYER.exec(n);
    if (!m) prePost.push(n);
    else layerNames.set(`${m[1]}{}${m[3]}`, []);
  }
  const layerTemplates = [...layerNames.keys()];
  const outDtype = opts.outDtype ?? recipe.outDtype ?? ref.storedFloatDtype;

  const tasks: TensorTask[] = [];
  const resolveFor = (src: SliceSource, sliceParams: Record<string, Setting>, t: number, name: string) => {
    const params: Record<string, Scalar> = {};
    for (const def of recipe.method.perModelParams) {
      const v = evaluateSetting(src.parameters[def.name], t, name) ?? evaluateSetting(sliceParams[def.name], t, name) ?? evaluateSetting(recipe.parameters[def.name], t, name);
      if (v !== undefined) params[def.name] = v;
    }
    return params;
  };
  const globalsFor = (sliceParams: Record<string, Setting>, t: number, name: string) => {
    const g: Record<string, Scalar> = {};
    for (const def of recipe.method.globalParams) {
      const v = evaluateSetting(sliceParams[def.name], t, name) ?? evaluateSetting(recipe.parameters[def.name], t, name);
      if (v !== undefined) g[def.name] = v;
    }
    return g;
  };
  const addTask = (outName: string, sources: { src: SliceSource; tensor: string }[], sliceParams: Record<string, Setting>, t: number) => {
    const inputs = sources.map(({ src, tensor }) => {
      const mi = index(src.model);
      const ck = cks[mi]!;
      if (!ck.has(tensor)) {
        throw new CheckpointError('MISSING_TENSOR', ck.path, `has no tensor "${tensor}", needed for output ${outName}`, 'the models do not share an architecture; check the recipe\'s models and layer ranges');
      }
      return { src, ref: { model: mi, tensor, params: resolveFor(src, sliceParams, t, outName) } as InputRef, shape: ck.info(tensor).shape, dtype: ck.info(tensor).dtype };
    });
    let shape = [...inputs[0]!.shape];
    const baseIn = inputs.find((x) => x.src.model === recipe.base);
    const mismatch = inputs.some((x) => x.shape.length !== shape.length || x.shape.some((d, k) => d !== shape[k]));
    if (mismatch) {
      const rest = (s: number[]) => s.slice(1).join(',');
      if (!inputs.every((x) => x.shape.length === shape.length && rest(x.shape) === rest(shape)) || !/embed_tokens|lm_head/.test(outName)) {
        throw new CheckpointError('INCOMPATIBLE', cks[inputs[0]!.ref.model]!.path, `tensor ${outName} has shapes ${inputs.map((x) => `[${x.shape}]`).join(' vs ')}`, 'these models are not fine-tunes of one base');
      }
      // mergekit's rectify_embed_sizes: the base's rows when there is a base, else the common rows.
      const rows = baseIn ? baseIn.shape[0]! : Math.min(...inputs.map((x) => x.shape[0]!));
      const short = inputs.find((x) => x.shape[0]! < rows);
      if (short) throw new CheckpointError('INCOMPATIBLE', cks[short.ref.model]!.path, `${outName} has ${short.shape[0]} rows, fewer than the base's ${rows}`, 'merge with a tokenizer that both models share, or drop this model');
      for (const x of inputs) if (x.shape[0]! > rows) x.ref.rows = rows;
      notices.push(`${outName}: vocabularies differ (${inputs.map((x) => `${recipe.models[x.ref.model]!.label} ${x.shape[0]}`).join(', ')}); kept the first ${rows} rows${baseIn ? ' (the base\'s)' : ' (common to all)'}, as mergekit does`);
      shape = [rows, ...shape.slice(1)];
    }
    const numel = shape.reduce((a, d) => a * d, 1);
    const base = baseIn && recipe.base ? baseIn.ref : undefined;
    const models = inputs.filter((x) => x !== baseIn).map((x) => x.ref);
    tasks.push({
      name: outName,
      shape,
      outDtype,
      base,
      models,
      globals: globalsFor(sliceParams, t, outName),
      readBytes: inputs.reduce((a, x) => a + numel * (DTYPE_BYTES[x.dtype] ?? 4), 0),
      writeBytes: numel * DTYPE_BYTES[outDtype]!,
    });
  };

  // Pre-weights (embeddings) come from the first slice, post-weights (final norm, lm_head) from the
  // last, always at t = 0 (mergekit's plan_module).
  const first = recipe.slices[0]!;
  const last = recipe.slices[recipe.slices.length - 1]!;
  const pre = prePost.filter((n) => /embed/.test(n));
  const post = prePost.filter((n) => !/embed/.test(n));
  for (const n of pre) addTask(n, first.sources.map((src) => ({ src, tensor: n })), first.parameters, 0);
  let outLayer = 0;
  const numRefLayers = cfg?.numLayers ?? Math.max(-1, ...refNames.map((n) => Number(LAYER.exec(n)?.[2] ?? -1))) + 1;
  for (const slice of recipe.slices) {
    const [start, end] = slice.sources[0]!.layerRange ?? [0, numRefLayers];
    const L = end - start;
    for (let j = 0; j < L; j++) {
      const t = L === 1 ? 1 : j / (L - 1);
      for (const tpl of layerTemplates) {
        addTask(tpl.replace('{}', String(outLayer)), slice.sources.map((src) => ({ src, tensor: tpl.replace('{}', String((src.layerRange?.[0] ?? 0) + j)) })), slice.parameters, t);
      }
      outLayer++;
    }
  }
  for (const n of post) addTask(n, last.sources.map((src) => ({ src, tensor: n })), last.parameters, 0);

  const config: Record<string, unknown> = { ...(cfg?.raw ?? {}) };
  if (cfg) {
    config['num_hidden_layers'] = outLayer;
    const embed = tasks.find((t) => t.name.endsWith('embed_tokens.weight'));
    if (embed) config['vocab_size'] = embed.shape[0];
    config['torch_dtype'] = torchDTypeName(outDtype);
  }
  return { tasks, config, reference: refIdx, notices, numLayers: outLayer };
}

/**
 * The compatibility check before any long run: differences that make the merge meaningless stop it
 * (different families or shapes); vocabulary differences are handled (and reported) by the planner.
 */
function stopOnIncompatibility(recipe: MergeRecipe, cks: Checkpoint[], refIdx: number): void {
  const ref = summarize(cks[refIdx]!);
  const frankenmerge = !recipe.fullDepth;
  for (const [i, ck] of cks.entries()) {
    if (i === refIdx) continue;
    const diffs: Difference[] = compareCheckpoints(ref, summarize(ck)).filter((d) => d.severity === 'error');
    const fatal = diffs.filter((d) => {
      if (d.code === 'missing_tensors' || d.code === 'shape') return !frankenmerge; // layer counts may differ across slices
      if (d.code === 'config') return !(frankenmerge && /num_hidden_layers/.test(d.message));
      return true;
    });
    if (fatal.length > 0) {
      throw new CheckpointError('INCOMPATIBLE', ck.path, `cannot be merged with ${ref.label}: ${fatal[0]!.message}`, fatal[0]!.meaning);
    }
  }
}

export function describePlan(p: MergePlan): { tensors: number; readBytes: number; writeBytes: number } {
  return { tensors: p.tasks.length, readBytes: p.tasks.reduce((a, t) => a + t.readBytes, 0), writeBytes: p.tasks.reduce((a, t) => a + t.writeBytes, 0) };
}
