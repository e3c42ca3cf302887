/**
 * `defineMethod` binds a method's schema to its maths, and shared parameter schemas.
 */
import { resolveInputs, resolveSpec } from './params.js';
import type { MergeMethodDef, MergeMethodInfo, ParamDef, ResolvedInputs, ResolvedSpec, TensorStream } from './types.js';

/**
 * Wrap an implementation so `merge()` validates inputs and applies defaults first; `stream`, when
 * given, is the block-streamed form of the same maths (it may decline a spec by returning undefined).
 */
export function defineMethod(
  info: MergeMethodInfo,
  impl: (inputs: ResolvedInputs) => Float32Array,
  stream?: (spec: ResolvedSpec) => TensorStream | undefined,
): MergeMethodDef {
  return {
    ...info,
    merge: (inputs) => impl(resolveInputs(info, inputs)),
    ...(stream ? { stream: (spec) => stream(resolveSpec(info, spec)) } : {}),
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
