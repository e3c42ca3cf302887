/**
 * Plain tensors exchanged with the runtime: `{ dims, data }` over a typed array. Kept free of
 * onnxruntime imports so callers can build and read tensors without loading the native binding.
 */

export type HostTensorData = Float32Array | BigInt64Array | Int32Array | Uint16Array | Uint8Array;

/**
 * Element types a HostTensor can carry. Uint16Array is ambiguous (float16 bits or uint16) and so
 * is Uint8Array (uint8 or bool); `type` settles it. bfloat16 is absent on purpose: onnxruntime-node
 * cannot pass bf16 across the graph boundary (research §0.4), so graphs Cast inside instead.
 */
export type HostElementType = 'float32' | 'float16' | 'int64' | 'int32' | 'uint16' | 'uint8' | 'bool';

export interface HostTensor {
  dims: readonly number[];
  data: HostTensorData;
  /** Defaults by array class: Float32Array→float32, BigInt64Array→int64, Int32Array→int32, Uint16Array→float16, Uint8Array→uint8. */
  type?: HostElementType;
}

const ARRAY_OF: Readonly<Record<HostElementType, new (n: number) => HostTensorData>> = {
  float32: Float32Array,
  float16: Uint16Array,
  int64: BigInt64Array,
  int32: Int32Array,
  uint16: Uint16Array,
  uint8: Uint8Array,
  bool: Uint8Array,
};

export function numel(dims: readonly number[]): number {
  let n = 1;
  for (const d of dims) {
    if (!Number.isSafeInteger(d) || d < 0) throw new RangeError(`bad dimension ${d} in [${dims.join(',')}]`);
    n *= d;
  }
  return n;
}

/** The element type of a tensor: its explicit `type`, else the default for its array class. */
export function elementType(t: HostTensor): HostElementType {
  if (t.type !== undefined) return t.type;
  const d = t.data;
  if (d instanceof Float32Array) return 'float32';
  if (d instanceof BigInt64Array) return 'int64';
  if (d instanceof Int32Array) return 'int32';
  // LLM graphs exchange fp16 activations far more often than uint16 values.
  if (d instanceof Uint16Array) return 'float16';
  return 'uint8';
}

/** Throws when the data array does not match the declared type or the element count of `dims`. */
export function checkHostTensor(t: HostTensor, what = 'tensor'): void {
  const type = elementType(t);
  if (!(t.data instanceof ARRAY_OF[type])) {
    throw new TypeError(`${what}: ${type} needs a ${ARRAY_OF[type].name}, got ${t.data.constructor.name}`);
  }
  const n = numel(t.dims);
  if (t.data.length !== n) {
    throw new RangeError(`${what}: ${t.data.length} elements for dims [${t.dims.join(',')}] (${n} expected)`);
  }
}

/** A zero-filled tensor, e.g. a pre-allocated output or an empty KV cache (a 0 dim is fine). */
export function zeros(type: HostElementType, dims: readonly number[]): HostTensor {
  return { type, dims: [...dims], data: new ARRAY_OF[type](numel(dims)) };
}
