/**
 * Which sequence embedding routes best? Each candidate spec is scored on labelled held-out queries:
 *
 * - `accuracy`: nearest centroid, centroids from each expert's seed texts cut at the query delimiter
 *   (what `upcycle moin build` does);
 * - `full_line_accuracy`: the same with centroids from the whole seed lines, answers included (what
 *   a router that ignores the train/test mismatch does); a robustness measure;
 * - `kmeans_purity`: k-means (k = experts, seeded) on the held-out queries alone, without labels:
 *   the share of queries in their cluster's majority expert (how well the space separates the
 *   skills with no supervision at all, i.e. how usable it is for `router.method: kmeans`).
 *
 * The base runs once per text; every spec is assembled from the same pooled features.
 */
import { applyTransform, assemble, DEFAULT_EMBEDDING, describeSpec, fitTransform, similarity, type BaseEmbedder, type EmbeddingSpec, type PooledFeatures } from './embedding.js';
import { kmeans } from './kmeans.js';
import type { RoutedText } from './texts.js';

export interface ComparisonInput {
  expertNames: string[];
  /** Per expert: its seed texts. */
  train: RoutedText[][];
  /** Labelled held-out queries, e.g. the gen prompts of each skill. */
  heldOut: { name: string; expert: number; queries: string[] }[];
}

export interface ComparisonRow {
  description: string;
  note: string;
  spec: EmbeddingSpec;
  dim: number;
  accuracy: number;
  perSet: Record<string, number>;
  fullLineAccuracy: number;
  fullLinePerSet: Record<string, number>;
  kmeansPurity: number;
}

const S = (over: Partial<EmbeddingSpec>): EmbeddingSpec => ({ ...DEFAULT_EMBEDDING, transform: 'none', ...over });
const RAW = { skipBos: false, normalizeParts: false } as const;

/** The candidates reported in README.md (for the fixtures' 4-layer base: hidden states 0…4, middle = 2). */
export const COMPARISON_SPECS: { spec: EmbeddingSpec; note: string }[] = [
  { spec: S({ layers: ['last'], ...RAW }), note: 'mean of the last hidden states, raw (the independent implementation)' },
  { spec: S({ layers: ['last'] }), note: 'same, BOS left out, L2-normalised' },
  { spec: S({ layers: ['last'], pooling: 'last', ...RAW }), note: 'last token of the last layer' },
  { spec: S({ layers: [0] }), note: 'bag of token embeddings' },
  { spec: S({ layers: [1] }), note: 'mean of hidden state 1' },
  { spec: S({ layers: ['middle'] }), note: 'mean of the middle layer' },
  { spec: S({ layers: [3] }), note: 'mean of hidden state 3' },
  { spec: S({ layers: ['middle'], pooling: 'last' }), note: 'last token of the middle layer' },
  { spec: S({ layers: ['middle'], pooling: 'mean+last' }), note: 'mean and last token of the middle layer' },
  { spec: S({ layers: [0, 'middle', 'last'] }), note: 'concatenation: embeddings, middle, last' },
  { spec: S({ layers: [1, 2, 3] }), note: 'concatenation of the inner layers' },
  { spec: S({ layers: ['last'], transform: 'center' }), note: 'last layer, mean-centred' },
  { spec: S({ layers: ['last'], transform: 'standardize' }), note: 'last layer, standardised' },
  { spec: S({ layers: ['last'], transform: 'whiten', shrinkage: 0.1 }), note: 'last layer, whitened' },
  { spec: { ...DEFAULT_EMBEDDING }, note: '**default**: middle layer, mean-centred' },
  { spec: S({ layers: ['middle'], transform: 'standardize' }), note: 'middle layer, standardised' },
  { spec: S({ layers: ['middle'], transform: 'whiten', shrinkage: 0.1 }), note: 'middle layer, whitened' },
  { spec: S({ layers: ['middle'], transform: 'whiten', shrinkage: 0.5 }), note: 'middle layer, whitened, more shrinkage' },
  { spec: S({ layers: ['middle'], transform: 'whiten', shrinkage: 0.8 }), note: 'middle layer, whitened, most shrinkage' },
  { spec: S({ layers: ['middle'], transform: 'standardize', similarity: 'euclidean' }), note: 'middle layer, standardised, Euclidean' },
  { spec: S({ layers: ['middle'], transform: 'whiten', shrinkage: 0.1, similarity: 'euclidean' }), note: 'middle layer, whitened, Euclidean (= Mahalanobis)' },
  { spec: S({ layers: [1, 2, 3], transform: 'standardize' }), note: 'inner layers, standardised' },
  { spec: S({ layers: [1, 2, 3], transform: 'whiten', shrinkage: 0.1 }), note: 'inner layers, whitened' },
];

export async function compareEmbeddings(embedder: BaseEmbedder, input: ComparisonInput, specs: { spec: EmbeddingSpec; note: string }[] = COMPARISON_SPECS, opts: { seed?: number } = {}): Promise<ComparisonRow[]> {
  const E = input.train.length;
  const trainQ = await embedder.features(input.train.flat().map((t) => t.query));
  const trainF = await embedder.features(input.train.flat().map((t) => t.full));
  const trainY = input.train.flatMap((ts, e) => ts.map(() => e));
  const heldF = await embedder.features(input.heldOut.flatMap((h) => h.queries));
  const heldY = input.heldOut.flatMap((h) => h.queries.map(() => h.expert));
  const heldSet = input.heldOut.flatMap((h) => h.queries.map(() => h.name));
  return specs.map(({ spec, note }) => {
    const layers = embedder.resolveLayers(spec.layers);
    const route = (train: PooledFeatures[]) => {
      const raw = train.map((f) => assemble(spec, layers, f));
      const t = fitTransform(spec.transform, raw, spec.shrinkage);
      const X = raw.map((x) => applyTransform(t, x));
      const d = X[0]!.length;
      const C = Array.from({ length: E }, (_, e) => {
        const c = new Float64Array(d);
        let n = 0;
        X.forEach((x, i) => {
          if (trainY[i] !== e) return;
          n++;
          for (let k = 0; k < d; k++) c[k]! += x[k]!;
        });
        return Float32Array.from(c, (v) => v / n);
      });
      const hits: Record<string, [number, number]> = {};
      let hit = 0;
      heldF.forEach((f, i) => {
        const q = applyTransform(t, assemble(spec, layers, f));
        const s = C.map((c) => similarity(spec.similarity, q, c));
        const best = s.reduce((b, v, j) => (v > s[b]! ? j : b), 0);
        const h = (hits[heldSet[i]!] ??= [0, 0]);
        h[1]++;
        if (best === heldY[i]) {
          h[0]++;
          hit++;
        }
      });
      return { acc: hit / heldF.length, per: Object.fromEntries(Object.entries(hits).map(([k, [a, n]]) => [k, a / n])), dim: d };
    };
    const q = route(trainQ);
    const full = route(trainF);
    // Unsupervised: k-means on the held-out queries alone.
    const raw = heldF.map((f) => assemble(spec, layers, f));
    const t = fitTransform(spec.transform, raw, spec.shrinkage);
    const X = raw.map((x) => {
      const y = applyTransform(t, x);
      if (spec.similarity !== 'cosine') return y;
      let n = 0;
      for (const v of y) n += v * v;
      const s = 1 / Math.max(Math.sqrt(n), 1e-12);
      return Float32Array.from(y, (v) => v * s);
    });
    const km = kmeans(X, { k: E, seed: opts.seed ?? 0, restarts: 10 });
    const counts = Array.from({ length: E }, () => new Array<number>(E).fill(0));
    km.assignment.forEach((c, i) => counts[c]![heldY[i]!]!++);
    const purity = counts.reduce((a, row) => a + Math.max(...row), 0) / X.length;
    return { description: describeSpec(spec), note, spec, dim: q.dim, accuracy: q.acc, perSet: q.per, fullLineAccuracy: full.acc, fullLinePerSet: full.per, kmeansPurity: purity };
  });
}

/** The best row: highest accuracy, then full-line accuracy, then k-means purity, then the smaller dimension. */
export function pickBest(rows: ComparisonRow[]): ComparisonRow {
  const key = (r: ComparisonRow) => [r.accuracy, r.fullLineAccuracy, r.kmeansPurity, -r.dim];
  return rows.reduce((best, r) => {
    const a = key(r);
    const b = key(best);
    for (let i = 0; i < a.length; i++) {
      if (Math.abs(a[i]! - b[i]!) > 1e-12) return a[i]! > b[i]! ? r : best;
    }
    return best;
  });
}

export function comparisonMarkdown(rows: ComparisonRow[]): string {
  const sets = Object.keys(rows[0]?.perSet ?? {});
  const f = (x: number) => x.toFixed(3);
  return [
    `| embedding | dim | routing acc. | ${sets.join(' | ')} | whole-line seeds | k-means purity | what it is |`,
    `|---|---:|---:|${sets.map(() => '---:').join('|')}|---:|---:|---|`,
    ...rows.map((r) => `| \`${r.description}\` | ${r.dim} | ${f(r.accuracy)} | ${sets.map((s) => f(r.perSet[s] ?? NaN)).join(' | ')} | ${f(r.fullLineAccuracy)} (${sets.map((s) => f(r.fullLinePerSet[s] ?? NaN)).join('/')}) | ${f(r.kmeansPurity)} | ${r.note} |`),
  ].join('\n');
}
