/**
 * `defineMethod` binds a method's schema to its maths, and shared parameter schemas.
 */
import { resolveInputs } from './params.js';
import type { MergeMethodDef, MergeMethodInfo, ParamDef, ResolvedInputs } from './types.js';

/** Wrap an implementation so `merge()` validates inputs and applies defaults first. */
export function defineMethod(info: MergeMethodInfo, impl: (inputs: ResolvedInputs) => Float32Array): MergeMethodDef {
  return {
    ...info,
    merge: (inputs) => impl(resolveInputs(info, inputs)),
  };
}

/** mergekit's required per-model `weight`. */
export const WEIGHT_PARAM: ParamDef = {
  name: 'weight',
  type: 'number',
  default: null,
  required: true,
  description: 'Per-model weight (required, no default in mergekit).',
};

/** mergekit's `int8_mask`: a memory saving in torch; here masks are always `Uint8Array`s. */
export const INT8_MASK_PARAM: ParamDef = {
  name: 'int8_mask',
  type: 'boolean',
  default: false,
  noEffect: true,
  description:
    'mergekit stores sign-consensus masks as int8 instead of the tensor dtype to save memory. ' +
    'Accepted for config compatibility; Upcycle Studio always uses one-byte Uint8Array masks, so it changes nothing.',
};
