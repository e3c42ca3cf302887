/**
 * Model Stock (Jang et al., arXiv 2403.19522), as mergekit's `model_stock`. Base θ₀ and
 * N ≥ 2 fine-tuned models; per vector (the whole tensor, or with `filter_wise` each row —
 * each fibre along the last axis, a 1-D tensor being one row):
 *
 *   δᵢ = θᵢ − θ₀,   cos θ = mean over pairs i<j of clamp(δᵢ·δⱼ / max(‖δᵢ‖‖δⱼ‖, 1e-6), −1, 1)
 *   t = N·cos θ / (1 + (N−1)·cos θ)     (t = 0 where |1 + (N−1)·cos θ| < 1e-6, mergekit's guard)
 *   θ = t·(Σᵢ θᵢ)/N + (1 − t)·θ₀
 *
 * The paper derives t for the angle between two models; mergekit (and we) average the
 * pairwise cosines for N > 2.
 */
import { defineMethod } from './define.js';
import { bool, requireBase } from './params.js';
import { dotF, fibres, flatFibre, normF, sub } from './vectors.js';

const f = Math.fround;
const NORM_FLOOR = f(1e-6);

export const modelStock = defineMethod(
  {
    id: 'model_stock',
    label: 'Model Stock',
    paper: 'https://arxiv.org/abs/2403.19522',
    description: 'Interpolate between the base and the models’ average with a ratio set by the angle between their task vectors.',
    requiresBase: true,
    baseUsage: 'required',
    minModels: 2,
    maxModels: null,
    random: false,
    perModelParams: [],
    globalParams: [
      {
        name: 'filter_wise',
        type: 'boolean',
        default: false,
        description: 'Compute the ratio per row (vectors along the last axis) instead of for the whole tensor.',
      },
    ],
  },
  (r) => {
    const w0 = requireBase(r).tensor;
    const ws = r.models.map((m) => m.tensor);
    const count = ws.length;
    const offsets = ws.map((w) => sub(w, w0));
    const out = new Float32Array(r.numel);
    const fbs = bool(r.globals, 'filter_wise') ? fibres(r.shape, -1) : [flatFibre(r.numel)];
    for (const fb of fbs) {
      const norms = offsets.map((d) => normF(d, fb));
      let cosSum = 0;
      let pairs = 0;
      for (let a = 0; a < count; a++) {
        for (let b = a + 1; b < count; b++) {
          const denom = Math.max(f(norms[a] * norms[b]), NORM_FLOOR);
          cosSum += Math.min(1, Math.max(-1, f(dotF(offsets[a], offsets[b], fb) / denom)));
          pairs++;
        }
      }
      const cos = f(cosSum / pairs);
      const denominator = f(1 + f((count - 1) * cos));
      const t = Math.abs(denominator) < 1e-6 ? 0 : f(f(count * cos) / denominator);
      const oneMinusT = f(1 - t);
      for (let j = 0, p = fb.offset; j < fb.length; j++, p += fb.stride) {
        let s = 0;
        for (const w of ws) s = f(s + w[p]);
        const avg = f(s / count);
        out[p] = f(t * avg) + f(oneMinusT * w0[p]);
      }
    }
    return out;
  },
);
