/**
 * Fitting a sequence-level router in memory (no files written; build.ts exports the folder).
 *
 * - `centroids`: each expert's centroid is the mean transformed embedding of its seed texts (the
 *   query part of each seed_data line, plus positive_prompts). The transform (centring,
 *   standardisation, whitening) is fitted on all experts' seed embeddings together.
 * - `kmeans`: an unlabelled corpus is embedded, the transform fitted on it, and k-means++ (seeded,
 *   deterministic) splits it into k groups; with cosine similarity the vectors are L2-normalised
 *   first (spherical k-means), so clusters agree with how queries are routed. Each group is then
 *   mapped to an expert:
 *   - `centroid`: similarity between the group's centroid and the expert's seed centroid (computed
 *     in the same space), one-to-one (Hungarian method) while there are groups for every expert,
 *     the remaining groups to their most similar expert;
 *   - `majority`: each member votes, with its `label` when the corpus line has one, otherwise for
 *     the expert whose seed centroid is nearest; the group goes to the most votes;
 *   - `perplexity`: each expert (base + adapter, or the model) scores up to `samples` whole lines of
 *     the group by mean token negative log-likelihood; lowest loss wins, one-to-one as for
 *     `centroid`. This needs no seed data at all (UpIT assigns seed data the same way).
 */
import { Decoder } from '../runtime/decoder.js';
import { loadModelSession } from '../runtime/model-session.js';
import type { ProviderRequest } from '../runtime/ort.js';
import { TextTokenizer } from '../runtime/tokenizer.js';
import { applyTransform, assemble, fitTransform, resolveSpec, similarity, type BaseEmbedder, type EmbeddingSpec } from './embedding.js';
import { baseIdentity } from './identity.js';
import { kmeans, maxAssignment } from './kmeans.js';
import type { MoinExpertSpec, MoinRecipe } from './config.js';
import { routeEmbeddings, type Centroid, type ClusterInfo, type SequenceRouter } from './router.js';
import { queryOf, readTexts, type RoutedText } from './texts.js';

export interface FitProgress {
  phase: 'embedding' | 'clustering' | 'mapping';
  detail?: string;
}

export interface FitOptions {
  provider?: ProviderRequest;
  signal?: AbortSignal;
  onProgress?: (p: FitProgress) => void;
}

export interface FitResult {
  router: SequenceRouter;
  /** Share of the seed texts routed back to their own expert (training accuracy), when there are seeds. */
  seedAccuracy: number | null;
  notices: string[];
}

/** Embeds texts under a spec (raw, before the transform). */
export async function embedTexts(embedder: BaseEmbedder, spec: EmbeddingSpec, queries: string[]): Promise<Float32Array[]> {
  const layers = embedder.resolveLayers(spec.layers);
  const feats = await embedder.features(queries, spec.maxTokens);
  return feats.map((f) => assemble(spec, layers, f));
}

export async function expertSeedTexts(e: MoinExpertSpec, delimiter: string | null): Promise<RoutedText[]> {
  const out: RoutedText[] = e.seedData ? await readTexts(e.seedData, delimiter) : [];
  for (const p of e.positivePrompts) out.push({ query: queryOf(p, delimiter), full: p });
  return out;
}

function unit(v: Float32Array): Float32Array {
  let s = 0;
  for (const x of v) s += x * x;
  const n = Math.max(Math.sqrt(s), 1e-12);
  return Float32Array.from(v, (x) => x / n);
}

function meanOf(vs: Float32Array[]): Float32Array {
  const d = vs[0]!.length;
  const m = new Float64Array(d);
  for (const v of vs) for (let i = 0; i < d; i++) m[i]! += v[i]! / vs.length;
  return Float32Array.from(m);
}

/** Cluster → expert, maximising the total score; one-to-one while possible (see the header). */
export function assignClusters(score: number[][], oneToOne: boolean): number[] {
  const K = score.length;
  const E = score[0]!.length;
  const argmax = (row: number[]) => row.reduce((b, v, i) => (v > row[b]! ? i : b), 0);
  const out = score.map(argmax);
  if (!oneToOne) return out;
  if (K >= E) {
    // Every expert gets its own cluster; the other clusters go to their best expert.
    const byExpert = Array.from({ length: E }, (_, e) => score.map((row) => row[e]!));
    maxAssignment(byExpert).forEach((c, e) => {
      out[c] = e;
    });
    return out;
  }
  return maxAssignment(score);
}

export async function fitRouter(recipe: MoinRecipe, embedder: BaseEmbedder, opts: FitOptions = {}): Promise<FitResult> {
  const notices: string[] = [];
  const id = await baseIdentity(recipe.base);
  // router.json stores layer indices, not `middle`/`last`.
  const spec = resolveSpec(recipe.embedding, embedder.numLayers);
  const delim = recipe.queryDelimiter;
  const E = recipe.experts.length;
  const experts = recipe.experts.map((e) => ({ name: e.name, ...(e.adapter ? { adapter: e.adapter } : {}), ...(e.model ? { model: e.model } : {}), ...(e.seedData ? { seedData: e.seedData } : {}) }));
  const base = { path: recipe.base, architecture: id.architecture, hiddenSize: id.hiddenSize, numLayers: id.numLayers, tokenizerSha256: id.tokenizerSha256, weightsFingerprint: id.weightsFingerprint };
  const progress = (phase: FitProgress['phase'], detail?: string) => opts.onProgress?.({ phase, detail });

  // Seed texts (all experts for `centroids`; for k-means only when the mapping uses them).
  const haveSeeds = recipe.experts.every((e) => e.seedData || e.positivePrompts.length > 0);
  const needSeeds = recipe.router.method === 'centroids' || recipe.router.assign === 'centroid' || (recipe.router.assign === 'majority' && haveSeeds);
  const seeds: RoutedText[][] = [];
  const seedRaw: Float32Array[][] = [];
  if (needSeeds) {
    progress('embedding', 'seed texts');
    for (const e of recipe.experts) {
      const t = await expertSeedTexts(e, delim);
      if (t.length === 0) throw new Error(`expert ${e.name} has no seed texts`);
      seeds.push(t);
      seedRaw.push(await embedTexts(embedder, spec, t.map((x) => x.query)));
    }
    if (delim && seeds.flat().every((t) => t.query === t.full)) notices.push(`no seed text contains the query delimiter ${JSON.stringify(delim)}: whole lines are embedded`);
  }

  if (recipe.router.method === 'centroids') {
    const transform = fitTransform(spec.transform, seedRaw.flat(), spec.shrinkage);
    const centroids: Centroid[] = seedRaw.map((vs, e) => ({ expert: e, vector: meanOf(vs.map((v) => applyTransform(transform, v))), count: vs.length, source: 'seed' }));
    const router: SequenceRouter = { base, spec, transform, queryDelimiter: delim, centroids, experts, method: 'centroids' };
    const acc = seedAccuracy(router, seedRaw);
    router.info = { seed_routing_accuracy: acc };
    return { router, seedAccuracy: acc, notices };
  }

  const km = recipe.router;
  progress('embedding', 'corpus');
  const corpus = await readTexts(km.corpus, delim);
  const corpusRaw = await embedTexts(embedder, spec, corpus.map((t) => t.query));
  const transform = fitTransform(spec.transform, corpusRaw, spec.shrinkage);
  const cos = spec.similarity === 'cosine';
  const space = (v: Float32Array) => (cos ? unit(applyTransform(transform, v)) : applyTransform(transform, v));
  const X = corpusRaw.map(space);
  const k = km.k ?? E;
  if (k < E) notices.push(`k = ${k} clusters for ${E} experts: ${E - k} expert(s) will never be chosen`);
  progress('clustering', `k-means++ k=${k} on ${X.length} texts`);
  const res = kmeans(X, { k, seed: km.seed, restarts: km.restarts });
  const members: number[][] = Array.from({ length: k }, () => []);
  res.assignment.forEach((c, i) => members[c]!.push(i));

  progress('mapping', km.assign);
  const expertCentroids = needSeeds ? seedRaw.map((vs) => meanOf(vs.map(space))) : [];
  let score: number[][];
  let oneToOne = true;
  if (km.assign === 'centroid') {
    score = res.centroids.map((c) => expertCentroids.map((ec) => similarity(spec.similarity, c, ec)));
  } else if (km.assign === 'majority') {
    oneToOne = false;
    const names = new Map(recipe.experts.map((e, i) => [e.name, i]));
    score = members.map((ms) => {
      const votes = new Array<number>(E).fill(0);
      for (const i of ms) {
        const l = corpus[i]!.label;
        if (l !== undefined && names.has(l)) votes[names.get(l)!]!++;
        else if (expertCentroids.length === 0) {
          throw new Error(`${km.corpus}: ${JSON.stringify(corpus[i]!.query)} has no "label" naming an expert (${recipe.experts.map((e) => e.name).join(', ')}), and the experts have no seed data to vote with`);
        } else {
          const s = expertCentroids.map((ec) => similarity(spec.similarity, X[i]!, ec));
          votes[s.reduce((b, v, j) => (v > s[b]! ? j : b), 0)]!++;
        }
      }
      return votes;
    });
  } else {
    score = await perplexityScores(recipe, corpus, members, km.samples, opts);
  }
  const mapped = assignClusters(score, oneToOne);
  const clusters: ClusterInfo[] = members.map((ms, c) => {
    const labelled = ms.filter((i) => corpus[i]!.label !== undefined);
    const info: ClusterInfo = {
      cluster: c,
      size: ms.length,
      expert: mapped[c]!,
      method: km.assign,
      scores: km.assign === 'perplexity' ? score[c]!.map((s) => -s) : score[c]!,
      examples: ms.slice(0, 3).map((i) => corpus[i]!.query),
    };
    if (labelled.length > 0) info.purity = labelled.filter((i) => corpus[i]!.label === recipe.experts[mapped[c]!]!.name).length / labelled.length;
    return info;
  });
  const centroids: Centroid[] = res.centroids.map((v, c) => ({ expert: mapped[c]!, vector: v, count: res.sizes[c]!, source: `cluster ${c}` }));
  const unused = recipe.experts.filter((_, e) => !mapped.includes(e)).map((e) => e.name);
  if (unused.length) notices.push(`no cluster maps to ${unused.join(', ')}`);
  const router: SequenceRouter = { base, spec, transform, queryDelimiter: delim, centroids, experts, method: 'kmeans', clusters };
  const acc = needSeeds ? seedAccuracy(router, seedRaw) : null;
  router.info = { seed_routing_accuracy: acc, kmeans: { k, seed: km.seed, restarts: km.restarts, inertia: res.inertia, iterations: res.iterations, corpus: km.corpus, corpus_size: corpus.length, assign: km.assign } };
  return { router, seedAccuracy: acc, notices };
}

function seedAccuracy(router: SequenceRouter, seedRaw: Float32Array[][]): number | null {
  let hit = 0;
  let n = 0;
  seedRaw.forEach((vs, e) => {
    for (const d of routeEmbeddings(router, vs)) {
      n++;
      if (d.expert === e) hit++;
    }
  });
  return n ? hit / n : null;
}

/** −(mean token NLL) of each expert on up to `samples` evenly spaced whole lines of each cluster. */
async function perplexityScores(recipe: MoinRecipe, corpus: RoutedText[], members: number[][], samples: number, opts: FitOptions): Promise<number[][]> {
  const tok = TextTokenizer.load(recipe.base);
  const picked = members.map((ms) => {
    if (ms.length <= samples) return ms;
    return Array.from({ length: samples }, (_, j) => ms[Math.floor((j * ms.length) / samples)]!);
  });
  const flat = picked.flat();
  const seqs = await tok.encodeBatch(flat.map((i) => corpus[i]!.full), true);
  const score = members.map(() => new Array<number>(recipe.experts.length).fill(0));
  for (const [e, ex] of recipe.experts.entries()) {
    opts.signal?.throwIfAborted();
    opts.onProgress?.({ phase: 'mapping', detail: `perplexity of ${ex.name}` });
    const loaded = await loadModelSession(ex.model ?? recipe.base, { adapter: ex.adapter, tokenLogprobs: true, session: { provider: opts.provider } });
    try {
      const lps = await new Decoder(loaded).logprobs(seqs, { signal: opts.signal });
      let at = 0;
      picked.forEach((ms, c) => {
        let ll = 0;
        let n = 0;
        for (let j = 0; j < ms.length; j++, at++) {
          for (const v of lps[at]!) ll += v;
          n += lps[at]!.length;
        }
        score[c]![e] = n ? ll / n : -Infinity;
      });
    } finally {
      await loaded.session.release();
    }
  }
  return score;
}
