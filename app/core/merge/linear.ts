/**
 * Linear merge ("model soup", Wortsman et al., arXiv 2203.05482), as mergekit's `linear`:
 *
 *   θ = Σᵢ wᵢθᵢ / Σᵢ wᵢ      (normalize = true, the default)
 *   θ = Σᵢ wᵢθᵢ              (normalize = false)
 *
 * The base model, if given, is just one more entry with its own `weight` (mergekit treats it
 * the same way). As in mergekit there is no guard for Σ wᵢ = 0 (the result is ±Inf/NaN).
 * Float32 as in torch: wᵢ and every product and partial sum are rounded to float32, summed
 * in entry order. (Embedding size mismatches, `rectify_embed_sizes`, are the caller's job.)
 */
import { defineMethod, WEIGHT_PARAM } from './define.js';
import { bool, entriesOf, num } from './params.js';

const f = Math.fround;

export const linear = defineMethod(
  {
    id: 'linear',
    label: 'Linear',
    paper: 'https://arxiv.org/abs/2203.05482',
    description: 'Weighted average θ = Σ wᵢθᵢ / Σ wᵢ (or the plain weighted sum without normalize).',
    requiresBase: false,
    baseUsage: 'entry',
    minModels: 1,
    maxModels: null,
    random: false,
    perModelParams: [WEIGHT_PARAM],
    globalParams: [
      { name: 'normalize', type: 'boolean', default: true, description: 'Divide by the sum of the weights.' },
    ],
  },
  (r) => {
    const entries = entriesOf(r);
    const weights = entries.map((e) => f(num(e.params, 'weight')));
    const out = new Float32Array(r.numel);
    for (let j = 0; j < r.numel; j++) {
      let s = 0;
      for (let i = 0; i < entries.length; i++) s = f(s + f(weights[i] * entries[i].tensor[j]));
      out[j] = s;
    }
    if (bool(r.globals, 'normalize')) {
      let total = 0;
      for (const w of weights) total = f(total + w);
      for (let j = 0; j < r.numel; j++) out[j] = out[j] / total;
    }
    return out;
  },
);
