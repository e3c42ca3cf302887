/**
 * ONNX protobuf encoder for the subset of onnx.proto this project writes: ModelProto, GraphProto,
 * NodeProto, AttributeProto, TensorProto (inline raw_data or external data), ValueInfoProto with
 * TypeProto.Tensor shapes, OperatorSetIdProto and StringStringEntryProto.
 *
 * Field numbers are those of onnx/onnx `onnx/onnx.proto` (proto2). Repeated scalars are written
 * unpacked because onnx.proto declares them without `[packed = true]`; protobuf parsers accept
 * either form, but unpacked is the canonical encoding for these fields.
 *
 * Pure code: no node: imports, no dependencies.
 */
import { PbWriter } from './pb-writer.js';

/** TensorProto.DataType values. */
export const DataType = {
  FLOAT: 1,
  UINT8: 2,
  INT8: 3,
  UINT16: 4,
  INT16: 5,
  INT32: 6,
  INT64: 7,
  STRING: 8,
  BOOL: 9,
  FLOAT16: 10,
  DOUBLE: 11,
  UINT32: 12,
  UINT64: 13,
  BFLOAT16: 16,
  FLOAT8E4M3FN: 17,
  FLOAT8E5M2: 19,
} as const;
export type DataTypeName = keyof typeof DataType;

/** Bytes per element of each fixed-width data type (STRING has no fixed width). */
export const DATA_TYPE_BYTES: Readonly<Record<Exclude<DataTypeName, 'STRING'>, number>> = {
  FLOAT: 4, UINT8: 1, INT8: 1, UINT16: 2, INT16: 2, INT32: 4, INT64: 8, BOOL: 1, FLOAT16: 2,
  DOUBLE: 8, UINT32: 4, UINT64: 8, BFLOAT16: 2, FLOAT8E4M3FN: 1, FLOAT8E5M2: 1,
};

/** AttributeProto.AttributeType values (only the kinds this encoder writes). */
export const AttributeType = {
  FLOAT: 1,
  INT: 2,
  STRING: 3,
  TENSOR: 4,
  FLOATS: 6,
  INTS: 7,
  STRINGS: 8,
} as const;

/** int64 protobuf value: a safe-integer number, or a bigint beyond 2^53. */
export type Int64 = number | bigint;

/** A shape dimension: a number becomes `dim_value`, a string becomes a symbolic `dim_param`. */
export type Dim = number | string;

/** Where an initializer's bytes live outside the model file (onnx docs/ExternalData.md). */
export interface ExternalDataRef {
  /** Path relative to the model file's directory (ORT rejects absolute paths and `..`). */
  location: string;
  /** Byte offset of the tensor inside `location`; any alignment is accepted by ORT 1.30. */
  offset: Int64;
  /** Byte length; ORT checks it against dims × element size when present. */
  length?: Int64;
}

export interface TensorSpec {
  name?: string;
  dataType: DataTypeName;
  dims: readonly Int64[];
  /** Little-endian element bytes, stored inline as raw_data. */
  rawData?: Uint8Array;
  /** Bytes stored in another file instead (data_location = EXTERNAL). */
  externalData?: ExternalDataRef;
}

export type AttributeSpec =
  | { readonly type: 'float'; readonly value: number }
  | { readonly type: 'int'; readonly value: Int64 }
  | { readonly type: 'string'; readonly value: string | Uint8Array }
  | { readonly type: 'tensor'; readonly value: TensorSpec }
  | { readonly type: 'floats'; readonly value: readonly number[] }
  | { readonly type: 'ints'; readonly value: readonly Int64[] }
  | { readonly type: 'strings'; readonly value: readonly (string | Uint8Array)[] };

/** Typed attribute constructors; JS numbers cannot tell an int from a float, so say which. */
export const attr = {
  float: (value: number): AttributeSpec => ({ type: 'float', value }),
  int: (value: Int64): AttributeSpec => ({ type: 'int', value }),
  string: (value: string | Uint8Array): AttributeSpec => ({ type: 'string', value }),
  tensor: (value: TensorSpec): AttributeSpec => ({ type: 'tensor', value }),
  floats: (value: readonly number[]): AttributeSpec => ({ type: 'floats', value }),
  ints: (value: readonly Int64[]): AttributeSpec => ({ type: 'ints', value }),
  strings: (value: readonly (string | Uint8Array)[]): AttributeSpec => ({ type: 'strings', value }),
};

export interface NodeSpec {
  opType: string;
  inputs: readonly string[];
  outputs: readonly string[];
  name?: string;
  /** Operator set domain; '' (default) is ai.onnx, e.g. 'com.microsoft' for ORT contrib ops. */
  domain?: string;
  attributes?: Readonly<Record<string, AttributeSpec>>;
}

export interface ValueInfoSpec {
  name: string;
  elemType: DataTypeName;
  /** Omitted or null: rank unknown (no shape written). */
  dims?: readonly Dim[] | null;
}

export interface GraphSpec {
  name: string;
  nodes: readonly NodeSpec[];
  initializers: readonly TensorSpec[];
  inputs: readonly ValueInfoSpec[];
  outputs: readonly ValueInfoSpec[];
  valueInfo?: readonly ValueInfoSpec[];
}

export interface OpsetImport {
  /** '' is the default ONNX domain. */
  domain: string;
  version: number;
}

export interface ModelSpec {
  irVersion: number;
  opsetImports: readonly OpsetImport[];
  producerName?: string;
  producerVersion?: string;
  graph: GraphSpec;
  metadata?: Readonly<Record<string, string>>;
}

// Field numbers from onnx.proto, grouped per message.
const F = {
  model: { irVersion: 1, producerName: 2, producerVersion: 3, graph: 7, opsetImport: 8, metadataProps: 14 },
  opset: { domain: 1, version: 2 },
  entry: { key: 1, value: 2 },
  graph: { node: 1, name: 2, initializer: 5, input: 11, output: 12, valueInfo: 13 },
  node: { input: 1, output: 2, name: 3, opType: 4, attribute: 5, domain: 7 },
  attr: { name: 1, f: 2, i: 3, s: 4, t: 5, floats: 7, ints: 8, strings: 9, type: 20 },
  tensor: { dims: 1, dataType: 2, name: 8, rawData: 9, externalData: 13, dataLocation: 14 },
  valueInfo: { name: 1, type: 2 },
  typeProto: { tensorType: 1 },
  typeTensor: { elemType: 1, shape: 2 },
  shape: { dim: 1 },
  dim: { dimValue: 1, dimParam: 2 },
} as const;

/** TensorProto.DataLocation.EXTERNAL */
const DATA_LOCATION_EXTERNAL = 1;

function checkInt64(v: Int64, what: string): void {
  if (typeof v === 'number' && !Number.isSafeInteger(v)) {
    throw new RangeError(`${what} must be an integer (got ${v}); use a bigint beyond 2^53`);
  }
}

function entry(key: string, value: string): PbWriter {
  return new PbWriter().string(F.entry.key, key).string(F.entry.value, value);
}

export function encodeTensor(t: TensorSpec): PbWriter {
  const w = new PbWriter();
  for (const d of t.dims) {
    checkInt64(d, 'tensor dim');
    w.varint(F.tensor.dims, d);
  }
  w.varint(F.tensor.dataType, DataType[t.dataType]);
  if (t.name !== undefined) w.string(F.tensor.name, t.name);
  if (t.rawData !== undefined && t.externalData !== undefined) {
    throw new Error(`tensor ${t.name ?? '(unnamed)'}: rawData and externalData are exclusive`);
  }
  if (t.rawData !== undefined) w.bytes(F.tensor.rawData, t.rawData);
  if (t.externalData !== undefined) {
    const x = t.externalData;
    checkInt64(x.offset, 'external data offset');
    // Key/value strings per docs/ExternalData.md; offset and length are decimal strings,
    // which is why BigInt offsets past 2^53 survive exactly.
    w.message(F.tensor.externalData, entry('location', x.location));
    w.message(F.tensor.externalData, entry('offset', x.offset.toString()));
    if (x.length !== undefined) {
      checkInt64(x.length, 'external data length');
      w.message(F.tensor.externalData, entry('length', x.length.toString()));
    }
    w.varint(F.tensor.dataLocation, DATA_LOCATION_EXTERNAL);
  }
  return w;
}

const textEncoder = new TextEncoder();
const asBytes = (s: string | Uint8Array): Uint8Array => (typeof s === 'string' ? textEncoder.encode(s) : s);

export function encodeAttribute(name: string, a: AttributeSpec): PbWriter {
  const w = new PbWriter().string(F.attr.name, name);
  switch (a.type) {
    case 'float':
      w.float(F.attr.f, a.value).varint(F.attr.type, AttributeType.FLOAT);
      break;
    case 'int':
      checkInt64(a.value, `attribute ${name}`);
      w.varint(F.attr.i, a.value).varint(F.attr.type, AttributeType.INT);
      break;
    case 'string':
      w.bytes(F.attr.s, asBytes(a.value)).varint(F.attr.type, AttributeType.STRING);
      break;
    case 'tensor':
      w.message(F.attr.t, encodeTensor(a.value)).varint(F.attr.type, AttributeType.TENSOR);
      break;
    case 'floats':
      for (const v of a.value) w.float(F.attr.floats, v);
      w.varint(F.attr.type, AttributeType.FLOATS);
      break;
    case 'ints':
      for (const v of a.value) {
        checkInt64(v, `attribute ${name}`);
        w.varint(F.attr.ints, v);
      }
      w.varint(F.attr.type, AttributeType.INTS);
      break;
    case 'strings':
      for (const v of a.value) w.bytes(F.attr.strings, asBytes(v));
      w.varint(F.attr.type, AttributeType.STRINGS);
      break;
  }
  return w;
}

export function encodeNode(n: NodeSpec): PbWriter {
  const w = new PbWriter();
  for (const i of n.inputs) w.string(F.node.input, i);
  for (const o of n.outputs) w.string(F.node.output, o);
  if (n.name !== undefined) w.string(F.node.name, n.name);
  w.string(F.node.opType, n.opType);
  for (const [k, v] of Object.entries(n.attributes ?? {})) w.message(F.node.attribute, encodeAttribute(k, v));
  if (n.domain !== undefined && n.domain !== '') w.string(F.node.domain, n.domain);
  return w;
}

export function encodeValueInfo(v: ValueInfoSpec): PbWriter {
  const tensorType = new PbWriter().varint(F.typeTensor.elemType, DataType[v.elemType]);
  if (v.dims !== undefined && v.dims !== null) {
    const shape = new PbWriter();
    for (const d of v.dims) {
      const dim = new PbWriter();
      if (typeof d === 'number') {
        if (!Number.isSafeInteger(d) || d < 0) throw new RangeError(`${v.name}: bad dim ${d}`);
        dim.varint(F.dim.dimValue, d);
      } else {
        dim.string(F.dim.dimParam, d);
      }
      shape.message(F.shape.dim, dim);
    }
    tensorType.message(F.typeTensor.shape, shape);
  }
  const type = new PbWriter().message(F.typeProto.tensorType, tensorType);
  return new PbWriter().string(F.valueInfo.name, v.name).message(F.valueInfo.type, type);
}

export function encodeGraph(g: GraphSpec): PbWriter {
  const w = new PbWriter();
  for (const n of g.nodes) w.message(F.graph.node, encodeNode(n));
  w.string(F.graph.name, g.name);
  for (const t of g.initializers) w.message(F.graph.initializer, encodeTensor(t));
  for (const v of g.inputs) w.message(F.graph.input, encodeValueInfo(v));
  for (const v of g.outputs) w.message(F.graph.output, encodeValueInfo(v));
  for (const v of g.valueInfo ?? []) w.message(F.graph.valueInfo, encodeValueInfo(v));
  return w;
}

/** Serializes a whole model to the bytes of an `.onnx` file. */
export function encodeModel(m: ModelSpec): Uint8Array {
  const w = new PbWriter().varint(F.model.irVersion, m.irVersion);
  if (m.producerName !== undefined) w.string(F.model.producerName, m.producerName);
  if (m.producerVersion !== undefined) w.string(F.model.producerVersion, m.producerVersion);
  w.message(F.model.graph, encodeGraph(m.graph));
  for (const o of m.opsetImports) {
    const op = new PbWriter();
    if (o.domain !== '') op.string(F.opset.domain, o.domain);
    op.varint(F.opset.version, o.version);
    w.message(F.model.opsetImport, op);
  }
  for (const [k, v] of Object.entries(m.metadata ?? {})) w.message(F.model.metadataProps, entry(k, v));
  // protobuf (and so ORT's parser) cannot read a message of 2 GiB or more.
  if (w.length >= 2 ** 31) throw new RangeError(`model is ${w.length} bytes; store large initializers as external data`);
  return w.finish();
}
