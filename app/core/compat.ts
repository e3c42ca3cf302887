/**
 * Compatibility between checkpoints, checked from headers and configs before any long job: family,
 * tensor names and shapes, vocabulary size, tokenizer identity, and adapters against their base.
 * mergekit's users often learn of a vocab or tokenizer mismatch only at the end of a merge (or when
 * the merged model talks nonsense); here every difference is reported up front with what it means.
 */
import type { ModelConfig } from './hf-config.js';
import type { LoraModule } from './lora.js';

export interface TensorSummary {
  dtype: string;
  shape: number[];
}

export interface CheckpointSummary {
  /** How to call it in messages (folder name). */
  label: string;
  kind: 'model' | 'adapter' | 'safetensors';
  config?: ModelConfig;
  tensors: Map<string, TensorSummary>;
  tokenizerSha256?: string;
  loraModules?: LoraModule[];
}

export interface Difference {
  severity: 'error' | 'warning' | 'info';
  code: 'family' | 'missing_tensors' | 'shape' | 'vocab' | 'tokenizer' | 'dtype' | 'config' | 'adapter_target' | 'adapter_shape';
  message: string;
  /** What the difference means for merging / upcycling. */
  meaning: string;
}

const CONFIG_FIELDS: [keyof ModelConfig, string][] = [
  ['hiddenSize', 'hidden_size'], ['numLayers', 'num_hidden_layers'], ['numHeads', 'num_attention_heads'],
  ['numKvHeads', 'num_key_value_heads'], ['headDim', 'head_dim'], ['intermediateSize', 'intermediate_size'],
];

/** Differences between a reference checkpoint `a` (usually the base) and `b`. */
export function compareCheckpoints(a: CheckpointSummary, b: CheckpointSummary): Difference[] {
  const out: Difference[] = [];
  const ca = a.config;
  const cb = b.config;
  if (ca && cb) {
    if (ca.modelType !== cb.modelType || ca.architecture !== cb.architecture) {
      out.push({
        severity: ca.family && cb.family && isDenseMoePair(ca, cb) ? 'warning' : 'error',
        code: 'family',
        message: `${a.label} is ${ca.architecture} (${ca.modelType}), ${b.label} is ${cb.architecture} (${cb.modelType})`,
        meaning: 'parameters of different architectures do not correspond; merging them is meaningless',
      });
    }
    for (const [k, name] of CONFIG_FIELDS) {
      if (ca[k] !== cb[k]) {
        out.push({ severity: 'error', code: 'config', message: `${name}: ${a.label} has ${String(ca[k])}, ${b.label} has ${String(cb[k])}`, meaning: 'the models have different shapes; they cannot be merged tensor by tensor' });
      }
    }
    if (ca.rope.theta !== cb.rope.theta || ca.rope.type !== cb.rope.type) {
      out.push({ severity: 'warning', code: 'config', message: `RoPE differs: ${a.label} ${ca.rope.type} θ=${ca.rope.theta}, ${b.label} ${cb.rope.type} θ=${cb.rope.theta}`, meaning: 'the merged model takes the RoPE settings of the base (or first model); the other model\'s positions will be off' });
    }
    if (ca.vocabSize !== cb.vocabSize) {
      out.push({ severity: 'warning', code: 'vocab', message: `vocab_size: ${a.label} has ${ca.vocabSize}, ${b.label} has ${cb.vocabSize}`, meaning: 'embed_tokens and lm_head differ in rows: choose a tokenizer source; rows beyond the smaller vocabulary are taken from one model only (as mergekit does)' });
    }
  }
  if (a.tokenizerSha256 && b.tokenizerSha256 && a.tokenizerSha256 !== b.tokenizerSha256) {
    out.push({ severity: 'warning', code: 'tokenizer', message: `tokenizer.json differs (${a.label} ${a.tokenizerSha256.slice(0, 12)}…, ${b.label} ${b.tokenizerSha256.slice(0, 12)}…)`, meaning: 'the same token ids may mean different text; merge only if one tokenizer extends the other, and choose the tokenizer source explicitly' });
  } else if (!a.tokenizerSha256 !== !b.tokenizerSha256 && a.kind === 'model' && b.kind === 'model') {
    out.push({ severity: 'info', code: 'tokenizer', message: `only ${a.tokenizerSha256 ? a.label : b.label} has a tokenizer.json`, meaning: 'tokenizer identity cannot be checked' });
  }
  const onlyA: string[] = [];
  const onlyB: string[] = [];
  const shape: string[] = [];
  const dtypes = new Set<string>();
  for (const [n, ta] of a.tensors) {
    const tb = b.tensors.get(n);
    if (!tb) {
      onlyA.push(n);
      continue;
    }
    if (ta.dtype !== tb.dtype) dtypes.add(`${ta.dtype}→${tb.dtype}`);
    if (!sameShape(ta.shape, tb.shape) && !isEmbeddingName(n)) shape.push(`${n} [${ta.shape}] vs [${tb.shape}]`);
    else if (!sameShape(ta.shape, tb.shape)) {
      out.push({ severity: 'warning', code: 'vocab', message: `${n}: ${a.label} [${ta.shape}], ${b.label} [${tb.shape}]`, meaning: 'embedding rows differ (different vocabularies); the merge keeps the tokenizer source\'s rows' });
    }
  }
  for (const n of b.tensors.keys()) if (!a.tensors.has(n)) onlyB.push(n);
  if (onlyA.length > 0 || onlyB.length > 0) {
    const parts = [];
    if (onlyA.length) parts.push(`${onlyA.length} only in ${a.label} (first: ${onlyA[0]})`);
    if (onlyB.length) parts.push(`${onlyB.length} only in ${b.label} (first: ${onlyB[0]})`);
    out.push({ severity: 'error', code: 'missing_tensors', message: `tensor names differ: ${parts.join('; ')}`, meaning: 'tensors present in one model only cannot be merged; they would be copied from one side or dropped' });
  }
  if (shape.length > 0) {
    out.push({ severity: 'error', code: 'shape', message: `${shape.length} tensors differ in shape (first: ${shape[0]})`, meaning: 'these models are not fine-tunes of one base; merging them is meaningless' });
  }
  if (dtypes.size > 0) {
    out.push({ severity: 'info', code: 'dtype', message: `dtypes differ (${[...dtypes].join(', ')})`, meaning: 'harmless: merging computes in float32 and writes the chosen output dtype' });
  }
  return out;
}

/** An adapter's LoRA modules against the base model it will be applied to. */
export function checkAdapterAgainstBase(adapter: CheckpointSummary, base: CheckpointSummary): Difference[] {
  const out: Difference[] = [];
  const missing: string[] = [];
  const bad: string[] = [];
  for (const m of adapter.loraModules ?? []) {
    const w = base.tensors.get(m.baseTensor);
    if (!w) {
      missing.push(m.baseTensor);
      continue;
    }
    const a = adapter.tensors.get(m.a)!;
    const b = adapter.tensors.get(m.b)!;
    const [outF, inF] = m.embedding ? [w.shape[1], w.shape[0]] : [w.shape[0], w.shape[1]];
    if (a.shape[1] !== inF || b.shape[0] !== outF) bad.push(`${m.module}: A [${a.shape}] B [${b.shape}] vs weight [${w.shape}]`);
  }
  if (missing.length > 0) {
    out.push({ severity: 'error', code: 'adapter_target', message: `${missing.length} modules the adapter changes are not in ${base.label} (first: ${missing[0]})`, meaning: `${adapter.label} was trained for another base model` });
  }
  if (bad.length > 0) {
    out.push({ severity: 'error', code: 'adapter_shape', message: `${bad.length} LoRA pairs do not fit ${base.label}'s weights (first: ${bad[0]})`, meaning: `${adapter.label} was trained for another base model (or another size of it)` });
  }
  if (adapter.tokenizerSha256 && base.tokenizerSha256 && adapter.tokenizerSha256 !== base.tokenizerSha256) {
    out.push({ severity: 'warning', code: 'tokenizer', message: `the adapter ships a tokenizer.json that differs from ${base.label}'s`, meaning: 'the adapter may have been trained with added tokens; check embed/lm_head in modules_to_save' });
  }
  return out;
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

function isEmbeddingName(n: string): boolean {
  return /embed_tokens\.weight$|^lm_head\.weight$/.test(n);
}

/** A dense model and an MoE of the same family (e.g. llama base and mixtral) — expected in upcycling. */
function isDenseMoePair(a: ModelConfig, b: ModelConfig): boolean {
  return !!a.moe !== !!b.moe;
}
