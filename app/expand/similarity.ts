/**
 * The maths of expert expansion, pure (no I/O): which parameters are sampled, cosine similarity of
 * task vectors from accumulated dot products, parent selection, pool diversity and candidate choice.
 *
 * Task vector of expert e: τₑ = θₑ − θ_base over the sampled parameters (the same index set for every
 * expert). cos(a, b) = ⟨τₐ, τ_b⟩ / (‖τₐ‖·‖τ_b‖); when a norm is 0 (an expert equal to the base on the
 * sample) cos is 1 if both are 0, else 0. Dot products are accumulated in float64 in a fixed order,
 * so equal inputs give bit-identical similarities.
 *
 * Sampling (`planSample`): the flattened parameters are cut into chunks of `chunk` consecutive
 * elements per tensor (the last chunk of a tensor may be shorter). k = ⌈sampleSize / chunk⌉ chunks
 * are chosen: allocated to tensors in proportion to their chunk counts (largest remainder, ties to
 * the earlier tensor), then chosen uniformly without replacement inside each tensor (Floyd's
 * algorithm) from `createRng(seed).fork('expand/similarity').fork(tensorName)`. Stratified by tensor,
 * so every tensor is represented by its share; chunks keep reads large enough to be cheap. The plan
 * depends only on (tensor names and sizes, sampleSize, chunk, seed), never on the experts.
 */
import { createRng } from '../core/merge/index.js';

export interface SampleTensor {
  name: string;
  numel: number;
}

export interface TensorSample {
  name: string;
  numel: number;
  /** Sorted, disjoint element ranges [start, end) of this tensor that are sampled. */
  ranges: [number, number][];
  /** Elements sampled in this tensor. */
  count: number;
}

export interface SamplePlan {
  /** True when every parameter is used (sampleSize 0 or ≥ the total). */
  full: boolean;
  chunk: number;
  totalParameters: number;
  sampledParameters: number;
  tensors: TensorSample[];
}

export const DEFAULT_CHUNK = 256;

/** Uniform integer in [0, n) from 32 random bits (n < 2^32). */
function below(rng: { nextUint32(): number }, n: number): number {
  return Math.floor((rng.nextUint32() / 4294967296) * n);
}

/** k distinct integers of [0, n), sorted (Floyd's algorithm: k draws, no O(n) memory). */
export function chooseDistinct(n: number, k: number, rng: { nextUint32(): number }): number[] {
  if (k >= n) return Array.from({ length: n }, (_, i) => i);
  const set = new Set<number>();
  for (let j = n - k; j < n; j++) {
    const t = below(rng, j + 1);
    set.add(set.has(t) ? j : t);
  }
  return [...set].sort((a, b) => a - b);
}

export function planSample(tensors: readonly SampleTensor[], sampleSize: number, seed: number, chunk = DEFAULT_CHUNK): SamplePlan {
  if (!Number.isInteger(chunk) || chunk < 1) throw new RangeError(`chunk must be a positive integer, got ${chunk}`);
  const total = tensors.reduce((a, t) => a + t.numel, 0);
  if (sampleSize === 0 || sampleSize >= total) {
    return {
      full: true,
      chunk,
      totalParameters: total,
      sampledParameters: total,
      tensors: tensors.map((t) => ({ name: t.name, numel: t.numel, ranges: t.numel > 0 ? [[0, t.numel]] : [], count: t.numel })),
    };
  }
  const slots = tensors.map((t) => Math.ceil(t.numel / chunk));
  const totalSlots = slots.reduce((a, b) => a + b, 0);
  const k = Math.min(totalSlots, Math.ceil(sampleSize / chunk));
  // Largest-remainder allocation of k chunks over the tensors.
  const alloc = slots.map((s) => Math.floor((k * s) / totalSlots));
  let left = k - alloc.reduce((a, b) => a + b, 0);
  const order = slots
    .map((s, i) => ({ i, r: (k * s) / totalSlots - alloc[i]! }))
    .sort((a, b) => b.r - a.r || a.i - b.i);
  for (const { i } of order) {
    if (left === 0) break;
    if (alloc[i]! < slots[i]!) {
      alloc[i]!++;
      left--;
    }
  }
  const root = createRng(seed).fork('expand/similarity');
  let sampled = 0;
  const out: TensorSample[] = tensors.map((t, ti) => {
    const chosen = chooseDistinct(slots[ti]!, alloc[ti]!, root.fork(t.name));
    const ranges: [number, number][] = [];
    let count = 0;
    for (const s of chosen) {
      const start = s * chunk;
      const end = Math.min(t.numel, start + chunk);
      const last = ranges[ranges.length - 1];
      if (last && last[1] === start) last[1] = end;
      else ranges.push([start, end]);
      count += end - start;
    }
    sampled += count;
    return { name: t.name, numel: t.numel, ranges, count };
  });
  return { full: false, chunk, totalParameters: total, sampledParameters: sampled, tensors: out };
}

/**
 * Dot products between experts, keyed by expert index pairs; ⟨a, a⟩ is the squared norm. Filled by
 * the streaming reader (task-vectors.ts) and by `addDots` here.
 */
export class Gram {
  private readonly dots = new Map<string, number>();

  private static key(a: number, b: number): string {
    return a <= b ? `${a},${b}` : `${b},${a}`;
  }

  set(a: number, b: number, v: number): void {
    this.dots.set(Gram.key(a, b), v);
  }

  has(a: number, b: number): boolean {
    return this.dots.has(Gram.key(a, b));
  }

  dot(a: number, b: number): number {
    const v = this.dots.get(Gram.key(a, b));
    if (v === undefined) throw new Error(`no dot product for experts ${a} and ${b}`);
    return v;
  }

  cosine(a: number, b: number): number {
    return cosineOf(this.dot(a, b), this.dot(a, a), this.dot(b, b));
  }

  /** The cosine similarity matrix of `ids` (1 on the diagonal). */
  matrix(ids: readonly number[]): number[][] {
    return ids.map((a) => ids.map((b) => (a === b ? 1 : this.cosine(a, b))));
  }
}

/** cos from ⟨a,b⟩, ‖a‖², ‖b‖² with the zero-norm convention of the file comment. */
export function cosineOf(dot: number, aa: number, bb: number): number {
  if (aa === 0 || bb === 0) return aa === 0 && bb === 0 ? 1 : 0;
  const c = dot / Math.sqrt(aa * bb);
  return Math.max(-1, Math.min(1, c));
}

/** Pair index lists as [a, b] with a, b positions in `vectors`. */
export type Pair = readonly [number, number];

/**
 * Adds Σₖ vectors[a][k]·vectors[b][k] over k < length to sums[p] for each pair p (float64, in order).
 */
export function addDots(vectors: readonly Float32Array[], length: number, pairs: readonly Pair[], sums: Float64Array): void {
  // Blocks of DOT_BLOCK elements, every pair per block: the vectors' blocks stay in the CPU cache.
  for (let start = 0; start < length; start += DOT_BLOCK) {
    const end = Math.min(length, start + DOT_BLOCK);
    for (let p = 0; p < pairs.length; p++) {
      const [a, b] = pairs[p]!;
      sums[p]! += dot(vectors[a]!, vectors[b]!, start, end);
    }
  }
}

const DOT_BLOCK = 4096;

function dot(x: Float32Array, y: Float32Array, start: number, end: number): number {
  let s0 = 0;
  let s1 = 0;
  let k = start;
  for (; k + 1 < end; k += 2) {
    s0 += x[k]! * y[k]!;
    s1 += x[k + 1]! * y[k + 1]!;
  }
  if (k < end) s0 += x[k]! * y[k]!;
  return s0 + s1;
}

/** The pair (i < j) with the lowest similarity; ties go to the first in row-major order. */
export function mostDissimilarPair(sim: readonly (readonly number[])[]): [number, number] {
  if (sim.length < 2) throw new Error('need at least two experts to pick a pair');
  let best: [number, number] = [0, 1];
  let low = Infinity;
  for (let i = 0; i < sim.length; i++) {
    for (let j = i + 1; j < sim.length; j++) {
      if (sim[i]![j]! < low) {
        low = sim[i]![j]!;
        best = [i, j];
      }
    }
  }
  return best;
}

/** Mean pairwise (1 − cos) over i < j; 0 for fewer than two experts. */
export function diversity(sim: readonly (readonly number[])[]): number {
  let s = 0;
  let n = 0;
  for (let i = 0; i < sim.length; i++) {
    for (let j = i + 1; j < sim.length; j++) {
      s += 1 - sim[i]![j]!;
      n++;
    }
  }
  return n ? s / n : 0;
}

export interface CandidateScore {
  /** max over the pool of cos(candidate, expert): lower = more novel. */
  maxSimilarity: number;
  /** Mean log-likelihood per token on the seed data (when seed data is given). */
  seedLogLikelihood?: number;
}

export interface Choice {
  index: number;
  /** Combined score per candidate (higher is better); null when only similarity decides. */
  scores: number[] | null;
}

/**
 * Which candidate to keep.
 * - Without seed scores: the one with the lowest max similarity to the pool.
 * - With seed scores and weight w ∈ [0, 1]: both criteria are min–max normalised over the candidates,
 *     D_c = (max_c' s_c' − s_c) / (max s − min s)   (novelty; 0 for all when every s is equal)
 *     Q_c = (ℓ_c − min ℓ) / (max ℓ − min ℓ)          (seed-data fit; 0 for all when every ℓ is equal)
 *   with s = max similarity and ℓ = mean log-likelihood, and the kept candidate maximises
 *     score_c = (1 − w)·D_c + w·Q_c.
 * Ties go to the lower max similarity, then to the lower candidate index.
 */
export function chooseCandidate(cands: readonly CandidateScore[], weight = 0): Choice {
  if (cands.length === 0) throw new Error('no candidates');
  const s = cands.map((c) => c.maxSimilarity);
  const byNovelty = (a: number, b: number) => s[a]! - s[b]! || a - b;
  const useSeed = cands.every((c) => c.seedLogLikelihood !== undefined) && weight > 0;
  if (!useSeed) return { index: cands.map((_, i) => i).sort(byNovelty)[0]!, scores: null };
  const ll = cands.map((c) => c.seedLogLikelihood!);
  const norm = (xs: number[], invert: boolean) => {
    const lo = Math.min(...xs);
    const hi = Math.max(...xs);
    return xs.map((x) => (hi > lo ? (invert ? hi - x : x - lo) / (hi - lo) : 0));
  };
  const D = norm(s, true);
  const Q = norm(ll, false);
  const scores = cands.map((_, i) => (1 - weight) * D[i]! + weight * Q[i]!);
  const index = cands.map((_, i) => i).sort((a, b) => scores[b]! - scores[a]! || byNovelty(a, b))[0]!;
  return { index, scores };
}
