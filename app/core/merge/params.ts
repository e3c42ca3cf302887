/**
 * Parameter defaults, validation and typed access for merge methods.
 */
import { tensorRng } from './rng.js';
import type {
  MergeInputs,
  MergeMethodInfo,
  ModelInput,
  ParamDef,
  ParamValue,
  ParamValues,
  ResolvedInputs,
  ResolvedModel,
  ResolvedSpec,
  StreamSpec,
} from './types.js';

export type Resolved = Readonly<Record<string, ParamValue>>;

function checkType(def: ParamDef, value: ParamValue, where: string): void {
  const bad = (expected: string): never => {
    throw new TypeError(`${where}: parameter "${def.name}" must be ${expected}, got ${JSON.stringify(value)}`);
  };
  switch (def.type) {
    case 'number':
      if (typeof value !== 'number' || Number.isNaN(value)) bad('a number');
      break;
    case 'integer':
      if (typeof value !== 'number' || !Number.isInteger(value)) bad('an integer');
      break;
    case 'boolean':
      if (typeof value !== 'boolean') bad('a boolean');
      break;
    case 'enum':
      if (typeof value !== 'string' || !(def.choices ?? []).includes(value)) {
        bad(`one of ${(def.choices ?? []).join(', ')}`);
      }
      break;
  }
}

/**
 * Apply defaults to `given` and type-check it against `defs`. Parameters without a default
 * (`default: null`) are left out when not given, unless `required`, which throws. Unknown
 * keys are ignored, as mergekit ignores parameters a method does not declare.
 */
export function resolveParams(defs: readonly ParamDef[], given: ParamValues | undefined, where: string): Resolved {
  const out: Record<string, ParamValue> = {};
  for (const def of defs) {
    const value = given?.[def.name] ?? def.default;
    if (value === null) {
      if (def.required) throw new Error(`${where}: missing required parameter "${def.name}"`);
      continue;
    }
    checkType(def, value, where);
    out[def.name] = value;
  }
  return out;
}

export function num(p: Resolved, name: string): number {
  const v = p[name];
  if (typeof v !== 'number') throw new TypeError(`parameter "${name}" is not a number`);
  return v;
}

export function optNum(p: Resolved, name: string): number | undefined {
  const v = p[name];
  return typeof v === 'number' ? v : undefined;
}

export function bool(p: Resolved, name: string): boolean {
  const v = p[name];
  if (typeof v !== 'boolean') throw new TypeError(`parameter "${name}" is not a boolean`);
  return v;
}

export function str(p: Resolved, name: string): string {
  const v = p[name];
  if (typeof v !== 'string') throw new TypeError(`parameter "${name}" is not a string`);
  return v;
}

/** The base model of resolved inputs (methods with `requiresBase` always have one). */
export function requireBase(r: ResolvedInputs): ResolvedModel {
  if (!r.base) throw new Error(`${r.tensorName}: a base model is required`);
  return r.base;
}

/** Base (if any) first, then the models: mergekit's entry list for `baseUsage: 'entry'`. */
export function entriesOf(r: ResolvedInputs): ResolvedModel[] {
  return r.base ? [r.base, ...r.models] : [...r.models];
}

/** Number of elements of a shape (a 0-d tensor has one). */
export function numelOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) throw new RangeError(`invalid shape [${shape.join(', ')}]`);
    n *= d;
  }
  return n;
}

function resolveModel(
  m: ModelInput,
  id: string,
  defs: readonly ParamDef[],
  numel: number,
  where: string,
): ResolvedModel {
  if (m.tensor.length !== numel) {
    throw new RangeError(`${where}: model "${id}" has ${m.tensor.length} elements, shape needs ${numel}`);
  }
  return { id, tensor: m.tensor, params: resolveParams(defs, m.params, `${where} (model "${id}")`) };
}

/** Validate inputs against a method's schema and apply every default. */
export function resolveInputs(info: MergeMethodInfo, inputs: MergeInputs): ResolvedInputs {
  const where = `${info.id}: ${inputs.tensorName}`;
  const numel = numelOf(inputs.shape);
  if (info.requiresBase && !inputs.base) throw new Error(`${where}: this method requires a base model`);
  const baseDefs = info.baseUsage === 'entry' ? info.perModelParams : []; // other methods ignore base params
  const base = inputs.base ? resolveModel(inputs.base, inputs.base.id ?? 'base', baseDefs, numel, where) : undefined;
  const models = inputs.models.map((m, i) => resolveModel(m, m.id ?? String(i), info.perModelParams, numel, where));
  const count = models.length + (info.baseUsage === 'entry' && base ? 1 : 0);
  if (count < info.minModels || (info.maxModels !== null && count > info.maxModels)) {
    const range = info.maxModels === null ? `at least ${info.minModels}` : `${info.minModels}..${info.maxModels}`;
    throw new Error(`${where}: expects ${range} models, got ${count}`);
  }
  return {
    tensorName: inputs.tensorName,
    shape: inputs.shape,
    numel,
    base,
    models,
    globals: resolveParams(info.globalParams, inputs.globals, where),
    rng: inputs.rng ?? tensorRng(0, inputs.tensorName),
  };
}

/**
 * `resolveInputs` for a streamed merge: the same validation and defaults, without tensors (so
 * without the length checks; the caller feeds blocks of the spec's shape).
 */
export function resolveSpec(info: MergeMethodInfo, spec: StreamSpec): ResolvedSpec {
  const where = `${info.id}: ${spec.tensorName}`;
  const numel = numelOf(spec.shape);
  if (info.requiresBase && !spec.base) throw new Error(`${where}: this method requires a base model`);
  const baseDefs = info.baseUsage === 'entry' ? info.perModelParams : [];
  const one = (m: { id?: string; params?: ParamValues }, id: string, defs: readonly ParamDef[]) => ({ id, params: resolveParams(defs, m.params, `${where} (model "${id}")`) });
  const base = spec.base ? one(spec.base, spec.base.id ?? 'base', baseDefs) : undefined;
  const models = spec.models.map((m, i) => one(m, m.id ?? String(i), info.perModelParams));
  const count = models.length + (info.baseUsage === 'entry' && base ? 1 : 0);
  if (count < info.minModels || (info.maxModels !== null && count > info.maxModels)) {
    const range = info.maxModels === null ? `at least ${info.minModels}` : `${info.minModels}..${info.maxModels}`;
    throw new Error(`${where}: expects ${range} models, got ${count}`);
  }
  return {
    tensorName: spec.tensorName,
    shape: spec.shape,
    numel,
    base,
    models,
    globals: resolveParams(info.globalParams, spec.globals, where),
    rng: spec.rng ?? tensorRng(0, spec.tensorName),
  };
}
