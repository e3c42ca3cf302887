/**
 * Sequence embeddings from the frozen base model, for sequence-level ("introvert", MoIN) routing.
 *
 * A query runs once through the base with `hidden_states.0…L` as graph outputs (0 = the token
 * embeddings, i = the residual stream entering layer i, L = the final normed state). An embedding
 * spec picks which of those to pool, how, and how to post-process the pooled vector:
 *
 * - `layers`: hidden-state indices (negative counts from the end: −1 = L), or `middle` (⌊L/2⌋) and
 *   `last` (L); several are concatenated in the order given. router.json stores resolved numbers;
 * - `pooling`: `mean` over the tokens, `last` token, or `mean+last` (both, concatenated);
 * - `skip_bos`: leave the BOS position out of the mean (its state is the same for every query, so
 *   it only dilutes the mean);
 * - `normalize_parts`: L2-normalise each pooled part before concatenating, so layers with large
 *   activations do not drown the others;
 * - `transform`: fitted on the router's training embeddings and stored in router.json:
 *   `none`, `center` (subtract their mean), `standardize` (centre and divide each dimension by its
 *   standard deviation) or `whiten` (centre and multiply by L⁻¹ where LLᵀ is the shrunk covariance
 *   (1−α)Σ + α·tr(Σ)/d·I: Euclidean distances become Mahalanobis distances; cosine is the same as
 *   with ZCA whitening, because any W with WᵀW = Σ⁻¹ differs from Σ^{-1/2} by a rotation);
 * - `similarity`: `cosine` or `euclidean` (negative squared distance) between query and centroids;
 * - `max_tokens`: queries are cut to their first max_tokens tokens (BOS included) before embedding.
 *
 * `mean` of layer 0 is the bag of token embeddings (no position information: RoPE lives in attention).
 * Batches are right-padded: with causal attention a real token never sees the padding after it, so
 * padded batches give exactly the per-query states.
 */
import { Decoder } from '../runtime/decoder.js';
import { loadModelSession, type LoadedSession } from '../runtime/model-session.js';
import type { ProviderRequest } from '../runtime/ort.js';
import { TextTokenizer } from '../runtime/tokenizer.js';

export const POOLINGS = ['mean', 'last', 'mean+last'] as const;
export type Pooling = (typeof POOLINGS)[number];
export const TRANSFORMS = ['none', 'center', 'standardize', 'whiten'] as const;
export type TransformKind = (typeof TRANSFORMS)[number];
export const SIMILARITIES = ['cosine', 'euclidean'] as const;
export type Similarity = (typeof SIMILARITIES)[number];

/** A hidden-state index (0 = token embeddings … L = final normed state; negative counts from L+1, −1 = L) or a name. */
export type LayerRef = number | 'middle' | 'last';

export interface EmbeddingSpec {
  layers: LayerRef[];
  pooling: Pooling;
  skipBos: boolean;
  normalizeParts: boolean;
  transform: TransformKind;
  /** Shrinkage α of the covariance for `whiten`. */
  shrinkage: number;
  similarity: Similarity;
  maxTokens: number;
}

/**
 * The default, chosen on the fixtures (comparison table in app/moin/README.md): the mean over the
 * query's tokens (BOS left out) of the residual stream entering the middle layer, L2-normalised,
 * mean-centred, cosine. It routes 99.9% of the held-out gen prompts, keeps that accuracy best when
 * the seed lines are embedded whole, separates the skills perfectly without labels (k-means purity
 * 1.000), and stores O(hidden) numbers. Whitening routes one more prompt correctly but stores a
 * d×d matrix and, at low shrinkage, destroys the cluster structure k-means needs.
 */
export const DEFAULT_EMBEDDING: EmbeddingSpec = {
  layers: ['middle'],
  pooling: 'mean',
  skipBos: true,
  normalizeParts: true,
  transform: 'center',
  shrinkage: 0.1,
  similarity: 'cosine',
  maxTokens: 512,
};

export class EmbeddingSpecError extends Error {
  override readonly name = 'EmbeddingSpecError';
}

/** router.json / YAML form (snake_case) → spec, with defaults for missing keys. */
export function parseEmbeddingSpec(doc: unknown, where = 'embedding'): EmbeddingSpec {
  if (doc === undefined || doc === null) return { ...DEFAULT_EMBEDDING, layers: [...DEFAULT_EMBEDDING.layers] };
  const bad = (m: string): never => {
    throw new EmbeddingSpecError(`${where}: ${m}`);
  };
  if (typeof doc !== 'object' || Array.isArray(doc)) bad('must be a mapping (layers, pooling, skip_bos, normalize_parts, transform, shrinkage, similarity)');
  const d = doc as Record<string, unknown>;
  const KEYS = ['layers', 'pooling', 'skip_bos', 'normalize_parts', 'transform', 'shrinkage', 'similarity', 'max_tokens'];
  for (const k of Object.keys(d)) if (!KEYS.includes(k)) bad(`unknown key "${k}" (supported: ${KEYS.join(', ')})`);
  const spec: EmbeddingSpec = { ...DEFAULT_EMBEDDING, layers: [...DEFAULT_EMBEDDING.layers] };
  if (d['layers'] !== undefined) {
    const l = typeof d['layers'] === 'number' ? [d['layers']] : d['layers'];
    const ok = (x: unknown) => Number.isInteger(x) || x === 'middle' || x === 'last';
    const list = typeof l === 'string' ? [l] : l;
    if (!Array.isArray(list) || list.length === 0 || !list.every(ok)) bad('layers must be a non-empty list of hidden-state indices (or middle, last)');
    spec.layers = list as LayerRef[];
  }
  const oneOf = <T extends string>(key: string, allowed: readonly T[]): T | undefined => {
    const v = d[key];
    if (v === undefined) return undefined;
    if (typeof v !== 'string' || !(allowed as readonly string[]).includes(v)) bad(`${key} must be one of ${allowed.join(', ')}`);
    return v as T;
  };
  const bool = (key: string): boolean | undefined => {
    const v = d[key];
    if (v === undefined) return undefined;
    if (typeof v !== 'boolean') bad(`${key} must be true or false`);
    return v as boolean;
  };
  spec.pooling = oneOf('pooling', POOLINGS) ?? spec.pooling;
  spec.transform = oneOf('transform', TRANSFORMS) ?? spec.transform;
  spec.similarity = oneOf('similarity', SIMILARITIES) ?? spec.similarity;
  spec.skipBos = bool('skip_bos') ?? spec.skipBos;
  spec.normalizeParts = bool('normalize_parts') ?? spec.normalizeParts;
  if (d['shrinkage'] !== undefined) {
    const s = d['shrinkage'];
    if (typeof s !== 'number' || !(s >= 0 && s <= 1)) bad('shrinkage must be a number from 0 to 1');
    spec.shrinkage = s as number;
  }
  if (d['max_tokens'] !== undefined) {
    const m = d['max_tokens'];
    if (!Number.isInteger(m) || (m as number) < 2) bad('max_tokens must be an integer ≥ 2');
    spec.maxTokens = m as number;
  }
  return spec;
}

export function embeddingSpecJson(spec: EmbeddingSpec): Record<string, unknown> {
  return { layers: spec.layers, pooling: spec.pooling, skip_bos: spec.skipBos, normalize_parts: spec.normalizeParts, transform: spec.transform, shrinkage: spec.shrinkage, similarity: spec.similarity, max_tokens: spec.maxTokens };
}

/** A short human-readable name, e.g. `mean(h2)·norm·standardize·cosine`. */
export function describeSpec(spec: EmbeddingSpec): string {
  const parts = spec.layers.map((l) => (typeof l === 'number' ? `h${l}` : `h_${l}`)).join('+');
  return `${spec.pooling}(${parts})${spec.skipBos ? '' : '+bos'}${spec.normalizeParts ? '·norm' : ''}${spec.transform === 'none' ? '' : spec.transform === 'whiten' ? `·whiten(${spec.shrinkage})` : `·${spec.transform}`}·${spec.similarity}`;
}

/**
 * Pooled per-layer features of one query: for each hidden-state index, the mean with and without
 * BOS and the last token's state. Any spec is assembled from these without re-running the model.
 */
export interface PooledFeatures {
  mean: Float32Array[];
  meanNoBos: Float32Array[];
  last: Float32Array[];
}

export interface EmbedderOptions {
  provider?: ProviderRequest;
  signal?: AbortSignal;
  /** At most this many sequences per forward pass (default 64). */
  batchSize?: number;
  /** Floats of graph outputs (hidden states of every layer + logits) allowed per forward pass (default 64M). */
  outputBudget?: number;
}

/** The base model loaded once with hidden-state outputs, and its tokenizer. */
export class BaseEmbedder {
  readonly numLayers: number;
  readonly hiddenSize: number;

  private constructor(private readonly loaded: LoadedSession, readonly tokenizer: TextTokenizer, private readonly opts: EmbedderOptions) {
    this.numLayers = loaded.config.numLayers;
    this.hiddenSize = loaded.config.hiddenSize;
  }

  static async load(baseDir: string, opts: EmbedderOptions = {}): Promise<BaseEmbedder> {
    const loaded = await loadModelSession(baseDir, { hiddenStates: true, session: { provider: opts.provider } });
    try {
      return new BaseEmbedder(loaded, TextTokenizer.load(baseDir, loaded.config.eosTokenId), opts);
    } catch (e) {
      await loaded.session.release();
      throw e;
    }
  }

  get notices(): string[] {
    return this.loaded.notices;
  }

  /** Resolves negative layer indices and checks the range (0…L). */
  resolveLayers(layers: LayerRef[]): number[] {
    return resolveLayers(layers, this.numLayers);
  }

  /**
   * Pooled features of every text (tokenised with the tokenizer's special tokens, i.e. with BOS, and
   * cut to the first `maxTokens` tokens). Batches are bounded by count and by output size.
   */
  async features(texts: string[], maxTokens = DEFAULT_EMBEDDING.maxTokens): Promise<PooledFeatures[]> {
    const ids = (await this.tokenizer.encodeBatch(texts, true)).map((r) => r.slice(0, maxTokens));
    const bos = this.tokenizer.bosId;
    const dec = new Decoder(this.loaded);
    const L = this.numLayers;
    const H = this.hiddenSize;
    const out: PooledFeatures[] = new Array(texts.length);
    const order = ids.map((_, i) => i).sort((a, b) => ids[a]!.length - ids[b]!.length);
    const bsz = this.opts.batchSize ?? 64;
    const perToken = (L + 1) * H + this.loaded.config.vocabSize;
    const budget = Math.max(1, Math.floor((this.opts.outputBudget ?? 64_000_000) / perToken));
    const pad = this.tokenizer.padId ?? this.loaded.config.bosTokenId ?? 0;
    for (let s = 0; s < order.length;) {
      this.opts.signal?.throwIfAborted();
      // Sorted ascending, so the last member sets the width: grow while the padded batch fits.
      let e = s + 1;
      while (e < order.length && e - s < bsz && (e - s + 1) * Math.max(1, ids[order[e]!]!.length) <= budget) e++;
      const members = order.slice(s, e);
      s = e;
      const W = Math.max(1, ...members.map((m) => ids[m]!.length));
      const batch = members.map((m) => {
        const row = ids[m]!.length > 0 ? ids[m]! : [pad];
        return [...row, ...new Array<number>(W - row.length).fill(pad)];
      });
      const r = await dec.forward(batch);
      members.forEach((m, b) => {
        const row = ids[m]!.length > 0 ? ids[m]! : [pad];
        const S = row.length;
        const first = bos !== undefined && row[0] === bos && S > 1 ? 1 : 0;
        const f: PooledFeatures = { mean: [], meanNoBos: [], last: [] };
        for (let l = 0; l <= L; l++) {
          const hs = r.hiddenStates.get(l);
          if (!hs) throw new Error(`the base graph has no hidden_states.${l} output`);
          const mean = new Float64Array(H);
          const tail = new Float64Array(H);
          for (let t = 0; t < S; t++) {
            const off = (b * W + t) * H;
            for (let h = 0; h < H; h++) {
              mean[h]! += hs[off + h]!;
              if (t >= first) tail[h]! += hs[off + h]!;
            }
          }
          f.mean.push(Float32Array.from(mean, (v) => v / S));
          f.meanNoBos.push(Float32Array.from(tail, (v) => v / (S - first)));
          f.last.push(hs.slice((b * W + S - 1) * H, (b * W + S) * H));
        }
        out[m] = f;
      });
    }
    return out;
  }

  async release(): Promise<void> {
    await this.loaded.session.release();
  }
}

/** Hidden-state indices of layer references for a base with L layers (hidden states 0…L). */
export function resolveLayers(layers: LayerRef[], L: number): number[] {
  return layers.map((l) => {
    const r = l === 'middle' ? Math.floor(L / 2) : l === 'last' ? L : l < 0 ? L + 1 + l : l;
    if (r < 0 || r > L) throw new EmbeddingSpecError(`embedding layer ${l} is out of range: the base has hidden states 0…${L}`);
    return r;
  });
}

/** The spec with its layers resolved to indices (what router.json stores). */
export function resolveSpec(spec: EmbeddingSpec, L: number): EmbeddingSpec {
  return { ...spec, layers: resolveLayers(spec.layers, L) };
}

/** The raw (untransformed) embedding of pooled features under a spec. */
export function assemble(spec: EmbeddingSpec, layers: number[], f: PooledFeatures): Float32Array {
  const parts: Float32Array[] = [];
  for (const l of layers) {
    if (spec.pooling === 'mean' || spec.pooling === 'mean+last') parts.push((spec.skipBos ? f.meanNoBos : f.mean)[l]!);
    if (spec.pooling === 'last' || spec.pooling === 'mean+last') parts.push(f.last[l]!);
  }
  const dim = parts.reduce((a, p) => a + p.length, 0);
  const v = new Float32Array(dim);
  let at = 0;
  for (const p of parts) {
    let n2 = 0;
    for (const x of p) n2 += x * x;
    const s = spec.normalizeParts ? 1 / Math.max(Math.sqrt(n2), 1e-12) : 1;
    for (let i = 0; i < p.length; i++) v[at + i] = p[i]! * s;
    at += p.length;
  }
  return v;
}

/** Fitted post-processing of raw embeddings (stored in router.json). */
export interface FittedTransform {
  kind: TransformKind;
  mean?: Float32Array;
  /** standardize: 1/σ per dimension. */
  scale?: Float32Array;
  /** whiten: L⁻¹, [d, d] row-major (lower triangular). */
  matrix?: Float32Array;
}

export function fitTransform(kind: TransformKind, X: Float32Array[], shrinkage: number): FittedTransform {
  if (kind === 'none' || X.length === 0) return { kind };
  const d = X[0]!.length;
  const N = X.length;
  const mean = new Float64Array(d);
  for (const x of X) for (let i = 0; i < d; i++) mean[i]! += x[i]! / N;
  if (kind === 'center') return { kind, mean: Float32Array.from(mean) };
  if (kind === 'standardize') {
    const v = new Float64Array(d);
    for (const x of X) for (let i = 0; i < d; i++) v[i]! += (x[i]! - mean[i]!) ** 2 / N;
    const avg = v.reduce((a, b) => a + b, 0) / d;
    // A floor keeps dimensions that are constant on the training data from exploding.
    return { kind, mean: Float32Array.from(mean), scale: Float32Array.from(v, (s) => 1 / Math.sqrt(s + 1e-3 * avg + 1e-12)) };
  }
  const C = new Float64Array(d * d);
  for (const x of X) {
    for (let i = 0; i < d; i++) {
      const xi = x[i]! - mean[i]!;
      for (let j = 0; j <= i; j++) C[i * d + j]! += (xi * (x[j]! - mean[j]!)) / N;
    }
  }
  let tr = 0;
  for (let i = 0; i < d; i++) tr += C[i * d + i]!;
  const a = Math.min(1, Math.max(shrinkage, 1e-6));
  for (let i = 0; i < d; i++) {
    for (let j = 0; j <= i; j++) C[i * d + j] = (1 - a) * C[i * d + j]! + (i === j ? (a * tr) / d + 1e-12 : 0);
  }
  const Lc = cholesky(C, d);
  return { kind, mean: Float32Array.from(mean), matrix: Float32Array.from(invertLower(Lc, d)) };
}

export function applyTransform(t: FittedTransform, x: Float32Array): Float32Array {
  if (t.kind === 'none') return x;
  const d = x.length;
  const c = Float64Array.from(x, (v, i) => v - (t.mean ? t.mean[i]! : 0));
  if (t.kind === 'center') return Float32Array.from(c);
  if (t.kind === 'standardize') return Float32Array.from(c, (v, i) => v * t.scale![i]!);
  const M = t.matrix!;
  const y = new Float32Array(d);
  for (let i = 0; i < d; i++) {
    let s = 0;
    for (let j = 0; j <= i; j++) s += M[i * d + j]! * c[j]!;
    y[i] = s;
  }
  return y;
}

/** Lower-triangular L with LLᵀ = A (A symmetric positive definite, lower half used). */
export function cholesky(A: Float64Array, d: number): Float64Array {
  const L = new Float64Array(d * d);
  for (let i = 0; i < d; i++) {
    for (let j = 0; j <= i; j++) {
      let s = A[i * d + j]!;
      for (let k = 0; k < j; k++) s -= L[i * d + k]! * L[j * d + k]!;
      if (i === j) {
        if (!(s > 0)) throw new Error('covariance is not positive definite; raise the shrinkage');
        L[i * d + i] = Math.sqrt(s);
      } else {
        L[i * d + j] = s / L[j * d + j]!;
      }
    }
  }
  return L;
}

function invertLower(L: Float64Array, d: number): Float64Array {
  const M = new Float64Array(d * d);
  for (let c = 0; c < d; c++) {
    // Forward substitution of L·m = e_c.
    for (let i = c; i < d; i++) {
      let s = i === c ? 1 : 0;
      for (let k = c; k < i; k++) s -= L[i * d + k]! * M[k * d + c]!;
      M[i * d + c] = s / L[i * d + i]!;
    }
  }
  return M;
}

/** Similarity of a (transformed) query to a (transformed) centroid: higher is closer. */
export function similarity(kind: Similarity, a: Float32Array, b: Float32Array): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  let d2 = 0;
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    dot += x * y;
    na += x * x;
    nb += y * y;
    d2 += (x - y) ** 2;
  }
  return kind === 'cosine' ? dot / Math.max(Math.sqrt(na * nb), 1e-12) : -d2;
}
