/**
 * Deterministic k-means (Lloyd's algorithm) with k-means++ seeding (Arthur & Vassilvitskii 2007):
 * the first centre is drawn uniformly, each next one with probability ∝ D(x)², the squared distance to
 * the nearest centre so far. Random numbers come from the project's seeded xoshiro128** streams, so
 * the same data, k and seed always give the same clusters, on every platform. `restarts` runs are
 * made from independent streams (`fork(run)`) and the one with the lowest inertia is kept (ties: the
 * earliest). A cluster that loses all its points is re-seeded with the point farthest from its centre.
 * Final clusters are renumbered by their first member, so the labelling does not depend on which
 * restart won.
 */
import { createRng } from '../core/merge/index.js';

export interface KMeansOptions {
  k: number;
  seed?: number;
  restarts?: number;
  maxIter?: number;
}

export interface KMeansResult {
  k: number;
  /** Cluster of each point, 0…k-1. */
  assignment: Int32Array;
  centroids: Float32Array[];
  sizes: number[];
  /** Sum of squared distances to the assigned centre. */
  inertia: number;
  iterations: number;
}

function dist2(a: Float32Array, b: Float64Array | Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i]! - b[i]!) ** 2;
  return s;
}

export function kmeans(X: Float32Array[], opts: KMeansOptions): KMeansResult {
  const N = X.length;
  const { k } = opts;
  if (!Number.isInteger(k) || k < 1) throw new Error('k-means: k must be a positive integer');
  if (N < k) throw new Error(`k-means: ${N} points cannot form ${k} clusters`);
  const restarts = Math.max(1, opts.restarts ?? 10);
  const root = createRng(opts.seed ?? 0).fork('moin-kmeans');
  let best: KMeansResult | undefined;
  for (let run = 0; run < restarts; run++) {
    const r = lloyd(X, k, root.fork(run), opts.maxIter ?? 100);
    if (!best || r.inertia < best.inertia - 1e-9 * Math.max(1, best.inertia)) best = r;
  }
  return canonical(best!);
}

function lloyd(X: Float32Array[], k: number, rng: { nextFloat(): number }, maxIter: number): KMeansResult {
  const N = X.length;
  const d = X[0]!.length;
  // k-means++ seeding.
  const centres: Float64Array[] = [Float64Array.from(X[Math.min(N - 1, Math.floor(rng.nextFloat() * N))]!)];
  const D = X.map((x) => dist2(x, centres[0]!));
  while (centres.length < k) {
    const total = D.reduce((a, b) => a + b, 0);
    let pick = 0;
    if (total > 0) {
      let u = rng.nextFloat() * total;
      pick = N - 1;
      for (let i = 0; i < N; i++) {
        u -= D[i]!;
        if (u < 0) {
          pick = i;
          break;
        }
      }
    } else {
      pick = Math.min(N - 1, Math.floor(rng.nextFloat() * N));
    }
    const c = Float64Array.from(X[pick]!);
    centres.push(c);
    for (let i = 0; i < N; i++) D[i] = Math.min(D[i]!, dist2(X[i]!, c));
  }
  const assignment = new Int32Array(N).fill(-1);
  let iterations = 0;
  for (; iterations < maxIter; iterations++) {
    let changed = false;
    for (let i = 0; i < N; i++) {
      let bi = 0;
      let bd = Infinity;
      for (let c = 0; c < k; c++) {
        const dd = dist2(X[i]!, centres[c]!);
        if (dd < bd) {
          bd = dd;
          bi = c;
        }
      }
      if (assignment[i] !== bi) {
        assignment[i] = bi;
        changed = true;
      }
    }
    if (!changed && iterations > 0) break;
    const sums = Array.from({ length: k }, () => new Float64Array(d));
    const counts = new Array<number>(k).fill(0);
    for (let i = 0; i < N; i++) {
      const c = assignment[i]!;
      counts[c]!++;
      for (let j = 0; j < d; j++) sums[c]![j]! += X[i]![j]!;
    }
    for (let c = 0; c < k; c++) {
      if (counts[c] === 0) {
        // Re-seed an empty cluster with the point farthest from its current centre.
        let far = 0;
        let fd = -1;
        for (let i = 0; i < N; i++) {
          const dd = dist2(X[i]!, centres[assignment[i]!]!);
          if (dd > fd) {
            fd = dd;
            far = i;
          }
        }
        centres[c] = Float64Array.from(X[far]!);
        assignment[far] = c;
        continue;
      }
      for (let j = 0; j < d; j++) centres[c]![j] = sums[c]![j]! / counts[c]!;
    }
  }
  let inertia = 0;
  const sizes = new Array<number>(k).fill(0);
  for (let i = 0; i < N; i++) {
    inertia += dist2(X[i]!, centres[assignment[i]!]!);
    sizes[assignment[i]!]!++;
  }
  return { k, assignment, centroids: centres.map((c) => Float32Array.from(c)), sizes, inertia, iterations };
}

/** Renumbers clusters in order of their first member. */
function canonical(r: KMeansResult): KMeansResult {
  const map = new Map<number, number>();
  for (const c of r.assignment) if (!map.has(c)) map.set(c, map.size);
  for (let c = 0; c < r.k; c++) if (!map.has(c)) map.set(c, map.size);
  const assignment = Int32Array.from(r.assignment, (c) => map.get(c)!);
  const centroids: Float32Array[] = new Array(r.k);
  const sizes: number[] = new Array(r.k);
  for (const [from, to] of map) {
    centroids[to] = r.centroids[from]!;
    sizes[to] = r.sizes[from]!;
  }
  return { ...r, assignment, centroids, sizes };
}

/**
 * One-to-one assignment maximising the total score (Hungarian method, O(n³)) for a rows × cols
 * matrix with rows ≤ cols. Returns the column of each row.
 */
export function maxAssignment(score: number[][]): number[] {
  const n = score.length;
  const m = score[0]?.length ?? 0;
  if (n === 0) return [];
  if (n > m) throw new Error('maxAssignment needs rows ≤ columns');
  // Minimise cost = −score with the classic potentials formulation (1-based).
  const u = new Float64Array(n + 1);
  const v = new Float64Array(m + 1);
  const p = new Int32Array(m + 1);
  const way = new Int32Array(m + 1);
  for (let i = 1; i <= n; i++) {
    p[0] = i;
    let j0 = 0;
    const minv = new Float64Array(m + 1).fill(Infinity);
    const used = new Uint8Array(m + 1);
    do {
      used[j0] = 1;
      const i0 = p[j0]!;
      let delta = Infinity;
      let j1 = 0;
      for (let j = 1; j <= m; j++) {
        if (used[j]) continue;
        const cur = -score[i0 - 1]![j - 1]! - u[i0]! - v[j]!;
        if (cur < minv[j]!) {
          minv[j] = cur;
          way[j] = j0;
        }
        if (minv[j]! < delta) {
          delta = minv[j]!;
          j1 = j;
        }
      }
      for (let j = 0; j <= m; j++) {
        if (used[j]) {
          u[p[j]!]! += delta;
          v[j]! -= delta;
        } else {
          minv[j]! -= delta;
        }
      }
      j0 = j1;
    } while (p[j0] !== 0);
    do {
      const j1 = way[j0]!;
      p[j0] = p[j1]!;
      j0 = j1;
    } while (j0 !== 0);
  }
  const out = new Array<number>(n).fill(-1);
  for (let j = 1; j <= m; j++) if (p[j]! > 0) out[p[j]! - 1] = j - 1;
  return out;
}
