/**
 * Small float32-faithful vector helpers and fibre iteration over row-major tensors.
 *
 * Reductions (dot products, norms) accumulate in double and round once to float32; torch
 * accumulates float32 with pairwise/vectorised summation, so the two agree to a few ulps.
 */

const f = Math.fround;

/** A 1-D fibre of a flat row-major tensor: elements `offset + j·stride`, j < `length`. */
export interface Fibre {
  readonly offset: number;
  readonly stride: number;
  readonly length: number;
}

/**
 * All fibres of `shape` along `axis` (the vectors torch reduces over with `dim=axis`).
 * A 0-d tensor is one fibre of length 1.
 */
export function fibres(shape: readonly number[], axis: number): Fibre[] {
  if (shape.length === 0) return [{ offset: 0, stride: 1, length: 1 }];
  const a = axis < 0 ? shape.length + axis : axis;
  if (a < 0 || a >= shape.length) throw new RangeError(`axis ${axis} out of range for shape [${shape.join(', ')}]`);
  const length = shape[a];
  let inner = 1;
  for (let i = a + 1; i < shape.length; i++) inner *= shape[i];
  let outer = 1;
  for (let i = 0; i < a; i++) outer *= shape[i];
  const out: Fibre[] = [];
  for (let o = 0; o < outer; o++) {
    for (let j = 0; j < inner; j++) out.push({ offset: o * length * inner + j, stride: inner, length });
  }
  return out;
}

/** The whole flat tensor as one fibre. */
export function flatFibre(numel: number): Fibre {
  return { offset: 0, stride: 1, length: numel };
}

/** Σ a·b over a fibre, rounded to float32. */
export function dotF(a: Float32Array, b: Float32Array, fb: Fibre): number {
  let s = 0;
  for (let j = 0, p = fb.offset; j < fb.length; j++, p += fb.stride) s += a[p] * b[p];
  return f(s);
}

/** ‖a‖₂ over a fibre, rounded to float32. */
export function normF(a: Float32Array, fb: Fibre): number {
  let s = 0;
  for (let j = 0, p = fb.offset; j < fb.length; j++, p += fb.stride) s += a[p] * a[p];
  return f(Math.sqrt(s));
}

/** ‖a‖₂ of a whole array, rounded to float32. */
export function norm(a: Float32Array): number {
  return normF(a, flatFibre(a.length));
}

/** a − b elementwise into a new float32 array. */
export function sub(a: Float32Array, b: Float32Array): Float32Array {
  const out = new Float32Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i] - b[i];
  return out;
}
