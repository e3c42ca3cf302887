/**
 * The sequence-level router and its file format, `router.json` (format `upcycle-moin-router`,
 * version 1). Every query is embedded by the base model (see embedding.ts), post-processed by the
 * fitted transform, compared with every centroid, and sent whole to the expert of the most similar
 * centroid. Several centroids may point at one expert (k-means with k > experts). The full field
 * reference is in app/moin/README.md and in the README.md written beside each router.json.
 */
import { applyTransform, describeSpec, embeddingSpecJson, parseEmbeddingSpec, similarity, type EmbeddingSpec, type FittedTransform, type TransformKind } from './embedding.js';

export const ROUTER_FORMAT = 'upcycle-moin-router';
export const ROUTER_VERSION = 1;

export interface BaseRef {
  /** As written in router.json: relative to the router folder when possible. */
  path: string;
  /** config.json's model_type / architecture, for messages. */
  architecture?: string;
  hiddenSize: number;
  numLayers: number;
  /** sha256 of tokenizer.json. */
  tokenizerSha256: string | null;
  /** Sampled fingerprint of the weights (see identity.ts). */
  weightsFingerprint: string;
}

export interface ExpertRef {
  name: string;
  /** A PEFT adapter applied (unmerged) on the base; relative to the router folder. */
  adapter?: string;
  /** A full model; relative to the router folder when possible. */
  model?: string;
  /** base + adapter merged (optional export). */
  merged?: string;
  /** Where the expert's seed data came from (informational). */
  seedData?: string;
}

export interface Centroid {
  expert: number;
  vector: Float32Array;
  /** Training texts behind the centroid. */
  count: number;
  /** `seed` (the expert's seed data) or `cluster N` (k-means). */
  source: string;
}

export interface ClusterInfo {
  cluster: number;
  size: number;
  expert: number;
  /** How the cluster was mapped: centroid | majority | perplexity. */
  method: string;
  /** Per expert: similarity (centroid), votes (majority) or mean token NLL (perplexity). */
  scores: number[];
  examples: string[];
  /** Share of the cluster's texts whose label is the mapped expert (when the corpus is labelled). */
  purity?: number;
}

export interface SequenceRouter {
  base: BaseRef;
  spec: EmbeddingSpec;
  transform: FittedTransform;
  queryDelimiter: string | null;
  centroids: Centroid[];
  experts: ExpertRef[];
  method: 'centroids' | 'kmeans';
  clusters?: ClusterInfo[];
  /** Whatever else the builder wants to keep (seed routing accuracy, config). */
  info?: Record<string, unknown>;
}

export interface RouteDecision {
  expert: number;
  centroid: number;
  /** Best similarity per expert (over its centroids). */
  scores: number[];
}

/** Routes raw (untransformed) embeddings. */
export function routeEmbeddings(router: SequenceRouter, raw: Float32Array[]): RouteDecision[] {
  const E = router.experts.length;
  return raw.map((x) => {
    const q = applyTransform(router.transform, x);
    const scores = new Array<number>(E).fill(-Infinity);
    let best = -1;
    let bestScore = -Infinity;
    router.centroids.forEach((c, i) => {
      const s = similarity(router.spec.similarity, q, c.vector);
      if (s > scores[c.expert]!) scores[c.expert] = s;
      if (s > bestScore) {
        bestScore = s;
        best = i;
      }
    });
    return { expert: router.centroids[best]!.expert, centroid: best, scores };
  });
}

export class RouterFormatError extends Error {
  override readonly name = 'RouterFormatError';
}

/** 9 significant digits: enough for every float32 to survive the JSON round trip exactly. */
const round = (v: number) => Number(v.toPrecision(9));
const arr = (v: Float32Array | undefined) => (v ? Array.from(v, round) : undefined);

export function routerToJson(r: SequenceRouter): Record<string, unknown> {
  const dim = r.centroids[0]?.vector.length ?? 0;
  return {
    format: ROUTER_FORMAT,
    version: ROUTER_VERSION,
    routing: 'sequence',
    method: r.method,
    base_model: {
      path: r.base.path,
      architecture: r.base.architecture ?? null,
      hidden_size: r.base.hiddenSize,
      num_layers: r.base.numLayers,
      weights_fingerprint: r.base.weightsFingerprint,
    },
    tokenizer: { sha256: r.base.tokenizerSha256 },
    query_delimiter: r.queryDelimiter,
    embedding: { ...embeddingSpecJson(r.spec), dim, description: describeSpec(r.spec) },
    transform: { kind: r.transform.kind, mean: arr(r.transform.mean) ?? null, scale: arr(r.transform.scale) ?? null, matrix: arr(r.transform.matrix) ?? null },
    experts: r.experts.map((e) => ({ name: e.name, adapter: e.adapter ?? null, model: e.model ?? null, merged_model: e.merged ?? null, seed_data: e.seedData ?? null })),
    centroids: r.centroids.map((c) => ({ expert: c.expert, expert_name: r.experts[c.expert]?.name, source: c.source, count: c.count, vector: arr(c.vector) })),
    clusters: r.clusters?.map((c) => ({ cluster: c.cluster, size: c.size, expert: c.expert, expert_name: r.experts[c.expert]?.name, method: c.method, scores: c.scores.map(round), purity: c.purity ?? null, examples: c.examples })) ?? null,
    info: r.info ?? {},
  };
}

export function routerFromJson(doc: unknown, where = 'router.json'): SequenceRouter {
  const bad = (m: string): never => {
    throw new RouterFormatError(`${where}: ${m}`);
  };
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) return bad('is not a JSON object');
  const d = doc as Record<string, unknown>;
  if (d['format'] !== ROUTER_FORMAT) bad(`format is ${JSON.stringify(d['format'])}, expected "${ROUTER_FORMAT}"`);
  if (d['version'] !== ROUTER_VERSION) bad(`version ${JSON.stringify(d['version'])} is not supported (this build reads version ${ROUTER_VERSION}); update Upcycle Studio`);
  const obj = (v: unknown, what: string): Record<string, unknown> => {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) bad(`${what} must be an object`);
    return v as Record<string, unknown>;
  };
  const nums = (v: unknown, what: string, len?: number): Float32Array => {
    if (!Array.isArray(v) || !v.every((x) => typeof x === 'number' && Number.isFinite(x))) bad(`${what} must be a list of numbers`);
    if (len !== undefined && (v as number[]).length !== len) bad(`${what} has ${(v as number[]).length} numbers, expected ${len}`);
    return Float32Array.from(v as number[]);
  };
  const str = (v: unknown, what: string): string => {
    if (typeof v !== 'string' || !v) bad(`${what} must be a non-empty string`);
    return v as string;
  };
  const optStr = (v: unknown, what: string): string | undefined => (v === null || v === undefined ? undefined : str(v, what));
  const b = obj(d['base_model'], 'base_model');
  const tok = obj(d['tokenizer'] ?? {}, 'tokenizer');
  const int = (v: unknown, what: string): number => {
    if (!Number.isInteger(v) || (v as number) < 1) bad(`${what} must be a positive integer`);
    return v as number;
  };
  const base: BaseRef = {
    path: str(b['path'], 'base_model.path'),
    architecture: optStr(b['architecture'], 'base_model.architecture'),
    hiddenSize: int(b['hidden_size'], 'base_model.hidden_size'),
    numLayers: int(b['num_layers'], 'base_model.num_layers'),
    tokenizerSha256: optStr(tok['sha256'], 'tokenizer.sha256') ?? null,
    weightsFingerprint: str(b['weights_fingerprint'], 'base_model.weights_fingerprint'),
  };
  const embRaw = { ...obj(d['embedding'], 'embedding') };
  const dim = embRaw['dim'];
  delete embRaw['dim'];
  delete embRaw['description'];
  let spec: EmbeddingSpec;
  try {
    spec = parseEmbeddingSpec(embRaw, `${where}: embedding`);
  } catch (e) {
    return bad((e as Error).message.replace(`${where}: `, ''));
  }
  if (!Number.isInteger(dim) || (dim as number) < 1) bad('embedding.dim must be a positive integer');
  const D = dim as number;
  const t = obj(d['transform'], 'transform');
  const kind = t['kind'] as TransformKind;
  if (kind !== spec.transform) bad(`transform.kind "${String(kind)}" does not match embedding.transform "${spec.transform}"`);
  const transform: FittedTransform = { kind };
  if (kind !== 'none') transform.mean = nums(t['mean'], 'transform.mean', D);
  if (kind === 'standardize') transform.scale = nums(t['scale'], 'transform.scale', D);
  if (kind === 'whiten') transform.matrix = nums(t['matrix'], 'transform.matrix', D * D);
  if (!Array.isArray(d['experts']) || d['experts'].length < 1) bad('experts must list at least one expert');
  const experts: ExpertRef[] = (d['experts'] as unknown[]).map((x, i) => {
    const e = obj(x, `experts[${i}]`);
    const r: ExpertRef = { name: str(e['name'], `experts[${i}].name`) };
    const adapter = optStr(e['adapter'], `experts[${i}].adapter`);
    const model = optStr(e['model'], `experts[${i}].model`);
    const merged = optStr(e['merged_model'], `experts[${i}].merged_model`);
    const seed = optStr(e['seed_data'], `experts[${i}].seed_data`);
    if (!adapter && !model) bad(`experts[${i}] (${r.name}) needs an adapter or a model`);
    if (adapter) r.adapter = adapter;
    if (model) r.model = model;
    if (merged) r.merged = merged;
    if (seed) r.seedData = seed;
    return r;
  });
  if (new Set(experts.map((e) => e.name)).size !== experts.length) bad('expert names must be unique');
  if (!Array.isArray(d['centroids']) || d['centroids'].length < 1) bad('centroids must list at least one centroid');
  const centroids: Centroid[] = (d['centroids'] as unknown[]).map((x, i) => {
    const c = obj(x, `centroids[${i}]`);
    const expert = c['expert'];
    if (!Number.isInteger(expert) || (expert as number) < 0 || (expert as number) >= experts.length) bad(`centroids[${i}].expert must be an index into experts`);
    return { expert: expert as number, vector: nums(c['vector'], `centroids[${i}].vector`, D), count: typeof c['count'] === 'number' ? c['count'] : 0, source: typeof c['source'] === 'string' ? c['source'] : '' };
  });
  const method = d['method'] === 'kmeans' ? 'kmeans' : 'centroids';
  const qd = d['query_delimiter'];
  if (qd !== null && qd !== undefined && (typeof qd !== 'string' || qd.length === 0)) bad('query_delimiter must be a non-empty string or null');
  const router: SequenceRouter = { base, spec, transform, queryDelimiter: (qd as string | null | undefined) ?? null, centroids, experts, method };
  if (Array.isArray(d['clusters'])) {
    router.clusters = (d['clusters'] as Record<string, unknown>[]).map((c) => ({
      cluster: Number(c['cluster']), size: Number(c['size']), expert: Number(c['expert']), method: String(c['method']),
      scores: Array.isArray(c['scores']) ? (c['scores'] as number[]) : [], examples: Array.isArray(c['examples']) ? (c['examples'] as string[]) : [],
      ...(typeof c['purity'] === 'number' ? { purity: c['purity'] } : {}),
    }));
  }
  if (typeof d['info'] === 'object' && d['info'] !== null) router.info = d['info'] as Record<string, unknown>;
  return router;
}

/** router.json text: indented, but every list of numbers on one line (vectors stay readable). */
export function formatRouterJson(doc: unknown, indent = ''): string {
  const next = indent + '  ';
  if (Array.isArray(doc)) {
    if (doc.length === 0) return '[]';
    if (doc.every((x) => typeof x === 'number')) return `[${doc.map((x) => (Number.isFinite(x) ? String(x) : 'null')).join(', ')}]`;
    return `[\n${doc.map((x) => next + formatRouterJson(x, next)).join(',\n')}\n${indent}]`;
  }
  if (typeof doc === 'object' && doc !== null) {
    const entries = Object.entries(doc).filter(([, v]) => v !== undefined);
    if (entries.length === 0) return '{}';
    return `{\n${entries.map(([k, v]) => `${next}${JSON.stringify(k)}: ${formatRouterJson(v, next)}`).join(',\n')}\n${indent}}`;
  }
  if (typeof doc === 'number' && !Number.isFinite(doc)) return 'null';
  return JSON.stringify(doc) ?? 'null';
}
