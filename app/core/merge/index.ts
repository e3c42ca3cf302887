/**
 * Public entry point of the merge maths: types, the registry, the RNG and the building
 * blocks (sparsifiers, sign consensus, selection) for callers that need them directly.
 */
export type {
  BaseUsage,
  MergeInputs,
  MergeMethodDef,
  MergeMethodInfo,
  ModelInput,
  ParamDef,
  ParamType,
  ParamValue,
  ParamValues,
  ResolvedInputs,
  ResolvedModel,
} from './types.js';
export { getMergeMethod, listMergeMethods, MERGE_METHOD_IDS, MERGE_METHODS } from './registry.js';
export { createRng, tensorRng, type Rng } from './rng.js';
export { resolveParams, numelOf } from './params.js';
export {
  sparsify,
  magnitude,
  bernoulli,
  magnitudeOutliers,
  dellaMagprune,
  dellaKeepProbabilities,
  type RescaleMode,
  type SparsificationMethod,
  type SparsifyOptions,
} from './sparsify.js';
export { signConsensusMasks, majoritySign, type ConsensusMethod } from './consensus.js';
export { topKAbsMask, absRankWindowMask } from './select.js';
