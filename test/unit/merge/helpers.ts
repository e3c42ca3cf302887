/** Shared helpers for the merge-maths tests. */
import assert from 'node:assert/strict';
import { createRng, type Rng } from '../../../app/core/merge/rng.js';
import type { MergeInputs, MergeMethodDef, ModelInput, ParamValues } from '../../../app/core/merge/types.js';

export const f32 = (xs: readonly number[]): Float32Array => Float32Array.from(xs);

/** Assert |actual − expected| ≤ tol elementwise, with a readable message. */
export function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol = 1e-6, label = ''): void {
  assert.equal(actual.length, expected.length, `${label} length`);
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i];
    const e = expected[i];
    const ok = Number.isNaN(e) ? Number.isNaN(a) : Math.abs(a - e) <= tol;
    if (!ok) {
      assert.fail(`${label} [${i}]: got ${a}, expected ${e} (tol ${tol})\n  actual:   ${Array.from(actual).join(', ')}`);
    }
  }
}

/** Largest elementwise |a − b|. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** Deterministic pseudo-random normal-ish tensor (sum of uniforms), for property tests. */
export function randomTensor(seed: number, n: number, scale = 1): Float32Array {
  const rng = createRng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    out[i] = (rng.nextFloat() + rng.nextFloat() + rng.nextFloat() - 1.5) * scale;
  }
  return out;
}

/** Random tensor with many exact ties: small integers times `scale`, including ±0. */
export function tiedTensor(seed: number, n: number, levels = 4, scale = 0.25): Float32Array {
  const rng = createRng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const v = Math.floor(rng.nextFloat() * (2 * levels + 1)) - levels;
    out[i] = v === 0 && rng.nextFloat() < 0.5 ? -0 : v * scale;
  }
  return out;
}

export interface Call {
  readonly shape?: readonly number[];
  readonly base?: readonly number[] | Float32Array;
  readonly baseParams?: ParamValues;
  readonly models: readonly (readonly number[] | Float32Array | { t: readonly number[] | Float32Array; p?: ParamValues; id?: string })[];
  readonly globals?: ParamValues;
  readonly tensorName?: string;
  readonly rng?: MergeInputs['rng'];
}

function toModel(m: Call['models'][number]): ModelInput {
  if (m instanceof Float32Array || Array.isArray(m)) return { tensor: Float32Array.from(m as ArrayLike<number>) };
  const o = m as { t: readonly number[] | Float32Array; p?: ParamValues; id?: string };
  return { tensor: Float32Array.from(o.t), params: o.p, id: o.id };
}

/** Run `method.merge` on plain arrays. */
export function run(method: MergeMethodDef, c: Call): Float32Array {
  const models = c.models.map(toModel);
  const n = models[0]?.tensor.length ?? c.base?.length ?? 0;
  return method.merge({
    tensorName: c.tensorName ?? 'model.layers.0.mlp.down_proj.weight',
    shape: c.shape ?? [n],
    base: c.base ? { tensor: Float32Array.from(c.base), params: c.baseParams } : undefined,
    models,
    globals: c.globals,
    rng: c.rng,
  });
}

/**
 * A fake random stream for hand-computed DARE/DELLA tests: `fork(modelId)` yields the listed
 * uniforms in order (each draw u keeps an entry when u < p).
 */
export function scriptedRng(streams: Record<string, readonly number[]>): Rng {
  const fail = (what: string) => (): never => {
    throw new Error(`scriptedRng: unexpected ${what}`);
  };
  return {
    nextFloat: fail('draw on the tensor stream'),
    nextUint32: fail('draw on the tensor stream'),
    fillBernoulli: fail('draw on the tensor stream'),
    fork: (key) => {
      const values = streams[String(key)];
      if (!values) throw new Error(`scriptedRng: no stream for ${String(key)}`);
      let i = 0;
      const nextFloat = () => {
        if (i >= values.length) throw new Error(`scriptedRng: stream ${String(key)} exhausted`);
        return values[i++];
      };
      return {
        nextFloat,
        nextUint32: fail('nextUint32'),
        fork: fail('nested fork'),
        fillBernoulli: (p, keep, length) => {
          for (let j = 0; j < length; j++) keep[j] = nextFloat() < p ? 1 : 0;
        },
      };
    },
  };
}
