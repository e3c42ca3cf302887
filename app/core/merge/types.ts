/**
 * Shared types for the per-tensor merge maths.
 *
 * Everything under `app/core/merge/` is pure: flat row-major `Float32Array`s plus a
 * `shape`, no I/O and no `node:` imports. One call to `MergeMethodDef.merge` merges ONE
 * output tensor; gradients, filters and slices have already been resolved by the caller,
 * so every parameter arrives as a plain scalar for this tensor.
 */
import type { DType } from '../dtypes.js';
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

/** One input of a streamed merge: identity and parameters, no data (see `TensorStream`). */
export interface StreamModel {
  readonly id?: string;
  readonly params?: ParamValues;
}

/** `MergeInputs` without the tensors: what a method needs to plan a streamed merge of one tensor. */
export interface StreamSpec {
  readonly tensorName: string;
  readonly shape: readonly number[];
  readonly base?: StreamModel;
  readonly models: readonly StreamModel[];
  readonly globals?: ParamValues;
  readonly rng?: Rng;
}

/** Resolved stream spec (defaults applied, like `ResolvedInputs` without the tensors). */
export interface ResolvedSpec {
  readonly tensorName: string;
  readonly shape: readonly number[];
  readonly numel: number;
  readonly base: ResolvedStreamModel | undefined;
  readonly models: readonly ResolvedStreamModel[];
  readonly globals: Readonly<Record<string, ParamValue>>;
  readonly rng: Rng;
}

export interface ResolvedStreamModel {
  readonly id: string;
  readonly params: Readonly<Record<string, ParamValue>>;
}

/**
 * A merge of one tensor computed block by block, so that a caller never holds whole float32
 * tensors: the inputs are fed as consecutive blocks in flat (row-major) order, each block as one
 * float32 array per input (index 0 = flat element `start`), `base` first when the spec has one,
 * then `models` in spec order.
 *
 * 0. optionally `sample`: a few thousand elements taken evenly across the tensor (hints only: a
 *    stream may use them to skip a statistics pass; results never depend on them);
 * 1. for p = 0, 1, … while `wantsPass(p)`: `scan(p, …)` every block of the tensor in order
 *    (blocks of any sizes that tile [0, numel)), then `endPass(p)` — whole-tensor statistics such
 *    as TIES's top-k threshold;
 * 2. `apply` every block in order, writing the merged values of the block into `out[0..length)`.
 *
 * The result equals `merge()` on the whole tensors element for element, bit for bit, for any
 * blocking and any sample.
 */
export interface TensorStream {
  /** Whether statistics pass `pass` is needed (asked before pass 0, then after each `endPass`). */
  wantsPass(pass: number): boolean;
  sample?(length: number, base: Float32Array | undefined, models: readonly Float32Array[]): void;
  scan(pass: number, start: number, length: number, base: Float32Array | undefined, models: readonly Float32Array[]): void;
  endPass(pass: number): void;
  apply(start: number, length: number, base: Float32Array | undefined, models: readonly Float32Array[], out: Float32Array): void;
  /**
   * Optional: `scan` / `apply` on blocks in their stored dtype (a stream may run them without
   * float32 copies, e.g. with SIMD); `applyRaw` writes the merged block as `out.dtype`. The same
   * results as decoding the blocks, calling `scan` / `apply` and encoding with `fromFloat32`. A
   * caller uses either form for a whole sweep (see `scanRaw` / `applyRaw` in stream-util.ts).
   */
  scanRaw?(pass: number, start: number, length: number, base: RawBlock | undefined, models: readonly RawBlock[]): void;
  applyRaw?(start: number, length: number, base: RawBlock | undefined, models: readonly RawBlock[], out: RawBlock): void;
  /** Optional: bytes the stream itself keeps for the whole tensor (e.g. DARE's keep flags), for the memory budget. */
  heldBytes?(): number;
}

/** A block of one tensor in its stored dtype: element e at byte `offset + e·size` of `bytes` (little-endian). */
export interface RawBlock {
  readonly bytes: Uint8Array;
  readonly offset: number;
  readonly dtype: DType;
}

/** A merge method: schema plus the per-tensor maths. */
export interface MergeMethodDef extends MergeMethodInfo {
  /** Merge one tensor; returns a new array of `numel` elements (inputs are not modified). */
  merge(inputs: MergeInputs): Float32Array;
  /**
   * The same merge as a block stream (see `TensorStream`), for methods and parameters that allow
   * it; undefined when this method (or these parameters) need the whole tensors at once.
   * Validates the spec like `merge` validates its inputs (throws on bad parameters).
   */
  stream?(spec: StreamSpec): TensorStream | undefined;
}
