/**
 * NearSwap, as mergekit's `nearswap` (alchemonaut,
 * https://huggingface.co/alchemonaut/QuartetAnemoi-70B-t0.0001): take the other model's value
 * where it is close to the base, interpolating by closeness. Per element, base a, model b:
 *
 *   w = clamp(t / max(|a − b|, 1e-6), 0, 1),   θ = w·b + (1 − w)·a
 *
 * (Entries with |a − b| ≤ t become b; far entries stay near a.) torch evaluates `t / x` as
 * `x.reciprocal() * t`; we round the same way.
 */
import { defineMethod } from './define.js';
import { num, requireBase } from './params.js';

const f = Math.fround;
const FLOOR = f(1e-6);

export const nearswap = defineMethod(
  {
    id: 'nearswap',
    label: 'NearSwap',
    paper: 'https://huggingface.co/alchemonaut/QuartetAnemoi-70B-t0.0001',
    description: 'Per element, move from the base to the other model by clamp(t/|a−b|, 0, 1).',
    requiresBase: true,
    baseUsage: 'required',
    minModels: 1,
    maxModels: 1,
    random: false,
    perModelParams: [],
    globalParams: [
      {
        name: 't',
        type: 'number',
        default: null,
        required: true,
        description: 'Distance scale: entries closer than t to the base are swapped entirely.',
      },
    ],
  },
  (r) => {
    const a = requireBase(r).tensor;
    const b = r.models[0].tensor;
    const t = f(num(r.globals, 't'));
    const out = new Float32Array(r.numel);
    for (let j = 0; j < out.length; j++) {
      const diff = Math.max(Math.abs(f(a[j] - b[j])), FLOOR);
      const w = Math.min(1, Math.max(0, f(f(1 / diff) * t)));
      out[j] = f(w * b[j]) + f(f(1 - w) * a[j]);
    }
    return out;
  },
);
