/**
 * TIES sign election, as in mergekit's `get_mask` (generalized_task_arithmetic.py).
 *
 * Inputs are the WEIGHTED task vectors Δᵢ = wᵢ·δ̃ᵢ (mergekit elects after weighting, so a
 * negative weight flips a model's vote).
 * - `'sum'` (every registered mergekit method): s = sign(Σᵢ Δᵢ), a sum of exactly 0 counts
 *   as +1 (`(Σ ≥ 0)·2 − 1`). This is the paper's "elect by total mass".
 * - `'count'` (in mergekit's code, not reachable from its configs): s = sign(Σᵢ sign(Δᵢ)),
 *   0 counted as +1.
 * mᵢ = [sign(Δᵢ) = s]; entries that are exactly zero (pruned, or weight 0) have sign 0 and
 * are therefore never selected.
 *
 * int8_mask: mergekit can hold m as int8 instead of the tensor dtype to save memory. The
 * merge loops here never materialise m at all (they elect per element, fused with the
 * disjoint sum); `signConsensusMasks` builds one-byte `Uint8Array` masks when a caller
 * wants to inspect them.
 */

export type ConsensusMethod = 'sum' | 'count';

const f = Math.fround;

/** Majority sign (+1 or −1) at element `j` of the weighted task vectors. */
export function majoritySign(weighted: readonly Float32Array[], j: number, method: ConsensusMethod): 1 | -1 {
  let s = 0;
  if (method === 'sum') {
    for (const d of weighted) s = f(s + d[j]); // float32, in model order, like torch's sum(dim=0)
  } else {
    for (const d of weighted) s += Math.sign(d[j]);
  }
  return s >= 0 ? 1 : -1;
}

/** True when Δᵢ[j] agrees with the elected sign (zeros never agree). */
export function agrees(value: number, majority: 1 | -1): boolean {
  return Math.sign(value) === majority;
}

/** One `Uint8Array` mask per model: mᵢ[j] = [sign(Δᵢ[j]) = s[j]]. */
export function signConsensusMasks(weighted: readonly Float32Array[], method: ConsensusMethod): Uint8Array[] {
  const n = weighted[0]?.length ?? 0;
  const masks = weighted.map(() => new Uint8Array(n));
  for (let j = 0; j < n; j++) {
    const s = majoritySign(weighted, j, method);
    for (let i = 0; i < weighted.length; i++) masks[i][j] = agrees(weighted[i][j], s) ? 1 : 0;
  }
  return masks;
}
