/**
 * Passthrough, as mergekit's `passthrough`: copy the single input tensor (base or model),
 * optionally multiplied by its per-model `scale` (θ = s·x). Used for frankenmerges built
 * from `slices`; slicing itself is the planner's job.
 */
import { defineMethod } from './define.js';
import { entriesOf, optNum } from './params.js';

const f = Math.fround;

export const passthrough = defineMethod(
  {
    id: 'passthrough',
    label: 'Passthrough',
    paper: 'https://github.com/arcee-ai/mergekit#merge-methods',
    description: 'Copy one tensor unchanged (optionally scaled). For layer stacking / frankenmerges.',
    requiresBase: false,
    baseUsage: 'entry',
    minModels: 1,
    maxModels: 1,
    random: false,
    perModelParams: [
      { name: 'scale', type: 'number', default: null, description: 'Optional multiplier for the copied tensor.' },
    ],
    globalParams: [],
  },
  (r) => {
    const [entry] = entriesOf(r);
    const scale = optNum(entry.params, 'scale');
    if (scale === undefined) return entry.tensor.slice();
    const s = f(scale);
    return entry.tensor.map((x) => x * s);
  },
);
