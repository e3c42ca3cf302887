/**
 * Naive, sort-based reference implementations of `select.ts`, written to mirror mergekit's
 * code literally (`argsort(|x|, descending)[:k]`, `sort(|x|).indices[a:b]`) with a stable
 * sort. O(n log n); used by tests to check the fast paths and readable as a specification.
 * Assumes finite inputs.
 */

/** Indices of `x` sorted by |x| (ascending or descending), ties by ascending index. */
export function stableAbsOrder(x: Float32Array, descending: boolean): number[] {
  const idx = Array.from({ length: x.length }, (_, i) => i);
  const sign = descending ? -1 : 1;
  idx.sort((a, b) => sign * (Math.abs(x[a]) - Math.abs(x[b])) || a - b);
  return idx;
}

/** `mask[argsort(|x|, descending=True, stable=True)[:k]] = 1`. */
export function topKAbsMaskNaive(x: Float32Array, k: number): Uint8Array {
  const mask = new Uint8Array(x.length);
  for (const i of stableAbsOrder(x, true).slice(0, Math.max(0, k))) mask[i] = 1;
  return mask;
}

/** `mask[sort(|x|, stable=True).indices[start:stop]] = 1` with non-negative bounds. */
export function absRankWindowMaskNaive(x: Float32Array, start: number, stop: number): Uint8Array {
  const mask = new Uint8Array(x.length);
  for (const i of stableAbsOrder(x, false).slice(Math.max(0, start), Math.max(0, stop))) mask[i] = 1;
  return mask;
}
