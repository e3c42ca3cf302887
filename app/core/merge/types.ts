/**
 * Shared types for the per-tensor merge maths.
 *
 * Everything under `app/core/merge/` is pure: flat row-major `Float32Array`s plus a
 * `shape`, no I/O and no `node:` imports. One call to `MergeMethodDef.merge` merges ONE
 * output tensor; gradients, filters and slices have already been resolved by the caller,
 * so every parameter arrives as a plain scalar for this tensor.
 */
import type { Rng } from './rng.js';

/** A resolved parameter value (mergekit allows floats, ints, bools; we add enum strings). */
export type ParamValue = number | boolean | string;

/** Parameter values as supplied by a caller; missing entries fall back to the defaults. */
export type ParamValues = Readonly<Record<string, ParamValue | undefined>>;

export type ParamType = 'number' | 'integer' | 'boolean' | 'enum';

/** Schema of one parameter, for validation and (later) UI forms. */
export interface ParamDef {
  readonly name: string;
  readonly type: ParamType;
  /** Default value; `null` together with `required: true` means "must be supplied". */
  readonly default: ParamValue | null;
  readonly required?: boolean;
  readonly description: string;
  /** Allowed values for `type: 'enum'`. */
  readonly choices?: readonly string[];
  /**
   * True for options mergekit does not have (Upcycle Studio additions, e.g. the paper form
   * of a rescale). Their defaults always reproduce mergekit's behaviour.
   */
  readonly extension?: boolean;
  /** True when mergekit accepts the parameter but it has no numerical effect here. */
  readonly noEffect?: boolean;
}

/** One input tensor with its per-model parameters, already resolved for this tensor. */
export interface ModelInput {
  /**
   * Stable identity of the model (e.g. its path). Random methods derive the model's random
   * stream from it, so reordering models does not change their masks. Defaults to the
   * model's index in `models`.
   */
  readonly id?: string;
  readonly tensor: Float32Array;
  readonly params?: ParamValues;
}

/** Inputs of one merge call (one output tensor). */
export interface MergeInputs {
  /** Tensor name, e.g. `model.layers.0.mlp.down_proj.weight`. */
  readonly tensorName: string;
  /** Shape of every input tensor (all inputs must already have the same shape). */
  readonly shape: readonly number[];
  /**
   * The base model's tensor. For task-vector methods it is the origin θ₀; for `slerp` and
   * `nearswap` it is the t = 0 end; for `linear` and `karcher` (where mergekit treats the base
   * as an ordinary entry) it is merged as the first entry, with `base.params`.
   */
  readonly base?: ModelInput;
  /** The non-base models, in configuration order. */
  readonly models: readonly ModelInput[];
  /** Global (per-tensor, shared by all models) parameters. */
  readonly globals?: ParamValues;
  /**
   * Random stream for this tensor (see `tensorRng(seed, tensorName)`). Only DARE/DELLA use
   * it; when absent they fall back to `tensorRng(0, tensorName)`.
   */
  readonly rng?: Rng;
}

/** Fully resolved per-model input handed to method implementations. */
export interface ResolvedModel {
  readonly id: string;
  readonly tensor: Float32Array;
  readonly params: Readonly<Record<string, ParamValue>>;
}

/** Inputs after defaults have been applied and shapes checked. */
export interface ResolvedInputs {
  readonly tensorName: string;
  readonly shape: readonly number[];
  /** Element count (product of `shape`). */
  readonly numel: number;
  readonly base: ResolvedModel | undefined;
  readonly models: readonly ResolvedModel[];
  readonly globals: Readonly<Record<string, ParamValue>>;
  readonly rng: Rng;
}

/** How a method uses `MergeInputs.base`. */
export type BaseUsage =
  /** Required origin / anchor (task-vector methods, slerp, nearswap, model_stock, sce). */
  | 'required'
  /** Optional: switches the method to task-vector space (nuslerp, multislerp). */
  | 'optional'
  /** Optional: merged as one more ordinary entry (linear, karcher, passthrough). */
  | 'entry';

/** Static description of a merge method (what `listMergeMethods` returns). */
export interface MergeMethodInfo {
  /** mergekit's `merge_method` name. */
  readonly id: string;
  readonly label: string;
  /** Reference URL (paper, or mergekit's `reference_url`). */
  readonly paper: string;
  readonly description: string;
  readonly requiresBase: boolean;
  readonly baseUsage: BaseUsage;
  /** Minimum / maximum number of non-base models (`null` = unbounded). */
  readonly minModels: number;
  readonly maxModels: number | null;
  /** True when the result depends on the random stream (DARE, DELLA). */
  readonly random: boolean;
  readonly perModelParams: readonly ParamDef[];
  readonly globalParams: readonly ParamDef[];
}

/** A merge method: schema plus the per-tensor maths. */
export interface MergeMethodDef extends MergeMethodInfo {
  /** Merge one tensor; returns a new array of `numel` elements (inputs are not modified). */
  merge(inputs: MergeInputs): Float32Array;
}
