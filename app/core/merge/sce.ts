/**
 * SCE — Select, Calculate, Erase (FuseChat, Wan et al., arXiv 2408.07990), as mergekit's
 * `sce`. No per-model weight. With τᵢ = θᵢ − θ₀:
 *
 *   Select (select_topk = k̃ < 1): var_j = population variance of τ₁[j..], …, τ_N[j] across
 *     models; keep the k = int(nnz(var)·k̃) highest-variance positions (one mask for all
 *     models; k̃ ≤ 0 or k = 0 keeps none); τᵢ ← mask ⊙ τᵢ
 *   Calculate: wᵢ = mean(τᵢ²) / Σⱼ mean(τⱼ²)   (1/N each when that sum is < 1e-6)
 *   Erase: TIES `sum` election on the unweighted τᵢ: mᵢ = [sign τᵢ = sign Σⱼ τⱼ]
 *   θ = θ₀ + Σᵢ wᵢmᵢτᵢ / max(Σᵢ wᵢmᵢ, 1e-6)
 *
 * Variance ties at the top-k threshold go to the lower index (see select.ts).
 */
import { agrees, majoritySign } from './consensus.js';
import { defineMethod, INT8_MASK_PARAM } from './define.js';
import { num, requireBase } from './params.js';
import { topKAbsMask } from './select.js';

const f = Math.fround;
const DIVISOR_FLOOR = f(1e-6);

/** mergekit `sce_mask`: positions kept by variance selection. */
export function sceMask(tvs: readonly Float32Array[], density: number): Uint8Array {
  const n = tvs[0]?.length ?? 0;
  if (density <= 0) return new Uint8Array(n);
  if (density >= 1) return new Uint8Array(n).fill(1);
  const count = tvs.length;
  const variance = new Float32Array(n);
  let nonzero = 0;
  for (let j = 0; j < n; j++) {
    let mean = 0;
    for (const t of tvs) mean += t[j];
    mean /= count;
    let v = 0;
    for (const t of tvs) v += (t[j] - mean) * (t[j] - mean);
    variance[j] = v / count;
    if (variance[j] !== 0) nonzero++;
  }
  return topKAbsMask(variance, Math.trunc(nonzero * density));
}

export const sce = defineMethod(
  {
    id: 'sce',
    label: 'SCE',
    paper: 'https://arxiv.org/abs/2408.07990',
    description:
      'Select high-variance positions, weight each task vector by its mean square, erase minority signs, average.',
    requiresBase: true,
    baseUsage: 'required',
    minModels: 0,
    maxModels: null,
    random: false,
    perModelParams: [],
    globalParams: [
      INT8_MASK_PARAM,
      {
        name: 'select_topk',
        type: 'number',
        default: 1.0,
        description: 'Fraction of (non-zero-variance) positions to keep by variance across models; 1 disables selection.',
      },
    ],
  },
  (r) => {
    const base = requireBase(r).tensor;
    const n = r.numel;
    if (r.models.length === 0) return base.slice();
    const tvs = r.models.map((m) => {
      const d = new Float32Array(n);
      for (let j = 0; j < n; j++) d[j] = m.tensor[j] - base[j];
      return d;
    });
    const topk = num(r.globals, 'select_topk');
    if (topk < 1) {
      const mask = sceMask(tvs, topk);
      for (const t of tvs) for (let j = 0; j < n; j++) if (!mask[j]) t[j] = 0;
    }
    let weights = tvs.map((t) => {
      let s = 0;
      for (let j = 0; j < n; j++) s += f(t[j] * t[j]);
      return f(s / n);
    });
    let total = 0;
    for (const w of weights) total = f(total + w);
    weights = Math.abs(total) < 1e-6 ? weights.map(() => f(1 / weights.length)) : weights.map((w) => f(w / total));

    const out = new Float32Array(n);
    for (let j = 0; j < n; j++) {
      const s = majoritySign(tvs, j, 'sum');
      let merged = 0;
      let divisor = 0;
      for (let i = 0; i < tvs.length; i++) {
        const x = tvs[i][j];
        if (!agrees(x, s)) continue;
        merged = f(merged + f(x * weights[i]));
        divisor = f(divisor + weights[i]);
      }
      out[j] = base[j] + f(merged / Math.max(divisor, DIVISOR_FLOOR));
    }
    return out;
  },
);
