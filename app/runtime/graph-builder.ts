/**
 * A small typed builder over the ONNX encoder: declare inputs, initializers and nodes in order,
 * then serialize. It checks what ORT would otherwise report less clearly (unknown node inputs,
 * duplicate names, raw data whose size does not match the shape).
 *
 * Pure code: no node: imports, no dependencies.
 */
import {
  DATA_TYPE_BYTES, encodeModel,
  type AttributeSpec, type DataTypeName, type Dim, type ExternalDataRef, type Int64, type GraphSpec,
  type NodeSpec, type OpsetImport, type TensorSpec, type ValueInfoSpec,
} from './onnx-proto.js';

/** Inline initializer bytes (any typed array is taken as its little-endian bytes) or an external reference. */
export type InitializerData = ArrayBufferView | { readonly external: ExternalDataRef };

/**
 * Attribute values: a typed spec from `attr.*`, or a shorthand where an integer number or a
 * bigint is an INT and a string is a STRING. Floats must use `attr.float` (a JS number cannot say).
 */
export type AttrInput = AttributeSpec | number | bigint | string;

export interface ModelOptions {
  /** Default-domain (ai.onnx) opset version. ORT 1.30 accepts up to 26. */
  opset: number;
  /** Defaults to the IR version released with `opset` (capped at 13, the highest ORT 1.30 loads). */
  irVersion?: number;
  /** Extra operator-set domains and versions, e.g. `{ 'com.microsoft': 1 }`. */
  domains?: Readonly<Record<string, number>>;
  producerName?: string;
  producerVersion?: string;
  metadata?: Readonly<Record<string, string>>;
}

/**
 * Minimum IR version for a default-domain opset (onnx/helper.py VERSION_TABLE: opset 21–22 → IR 10,
 * 23 → IR 11, 24 → IR 12). Higher opsets get IR 13, the ceiling of ORT 1.30 (verified).
 */
export function defaultIrVersion(opset: number): number {
  if (opset <= 14) return 7;
  if (opset <= 18) return 8;
  if (opset <= 20) return 9;
  if (opset <= 22) return 10;
  if (opset === 23) return 11;
  if (opset === 24) return 12;
  return 13;
}

function toAttribute(name: string, v: AttrInput): AttributeSpec {
  if (typeof v === 'bigint') return { type: 'int', value: v };
  if (typeof v === 'string') return { type: 'string', value: v };
  if (typeof v === 'number') {
    if (!Number.isSafeInteger(v)) {
      throw new TypeError(`attribute ${name}=${v}: a non-integer number needs attr.float(...)`);
    }
    return { type: 'int', value: v };
  }
  return v;
}

function elementCount(dims: readonly Int64[]): bigint {
  return dims.reduce<bigint>((n, d) => n * BigInt(d), 1n);
}

export class GraphBuilder {
  private readonly nodes: NodeSpec[] = [];
  private readonly initializers: TensorSpec[] = [];
  private readonly inputs: ValueInfoSpec[] = [];
  private readonly outputs: ValueInfoSpec[] = [];
  private readonly valueInfos: ValueInfoSpec[] = [];
  /** Every value name defined so far (graph inputs, initializers, node outputs). */
  private readonly defined = new Set<string>();
  private readonly usedNames = new Set<string>();
  private nodeCounter = 0;

  constructor(readonly name = 'main') {}

  private define(name: string, what: string): void {
    if (name === '') throw new Error(`${what}: empty value name`);
    if (this.defined.has(name)) throw new Error(`${what}: value "${name}" is already defined`);
    this.defined.add(name);
    this.usedNames.add(name);
  }

  /** A value name not used yet in this graph, e.g. `uniqueName('q')` → 'q', then 'q_1', … */
  uniqueName(prefix: string): string {
    let name = prefix;
    for (let i = 1; this.usedNames.has(name); i++) name = `${prefix}_${i}`;
    this.usedNames.add(name);
    return name;
  }

  /** Declares a graph input; string dims are symbolic (e.g. 'batch', 'seq'). */
  input(name: string, elemType: DataTypeName, dims: readonly Dim[] | null): string {
    this.define(name, 'input');
    this.inputs.push({ name, elemType, dims });
    return name;
  }

  /** Declares a graph output; it must be produced by a node or be an input/initializer. */
  output(name: string, elemType: DataTypeName, dims: readonly Dim[] | null = null): string {
    this.outputs.push({ name, elemType, dims });
    return name;
  }

  /** Optional type/shape annotation of an intermediate value. */
  valueInfo(name: string, elemType: DataTypeName, dims: readonly Dim[] | null): string {
    this.valueInfos.push({ name, elemType, dims });
    return name;
  }

  /** Adds a constant tensor, stored inline or as external data. Returns its name. */
  initializer(name: string, dataType: DataTypeName, dims: readonly Int64[], data: InitializerData): string {
    this.define(name, 'initializer');
    if (dataType === 'STRING') throw new Error(`initializer ${name}: STRING tensors are not supported`);
    const expected = elementCount(dims) * BigInt(DATA_TYPE_BYTES[dataType]);
    if ('external' in data) {
      const ext = data.external;
      if (ext.length !== undefined && BigInt(ext.length) !== expected) {
        throw new Error(`initializer ${name}: external length ${ext.length} ≠ ${expected} bytes for ${dataType}[${dims.join(',')}]`);
      }
      this.initializers.push({ name, dataType, dims, externalData: ext });
    } else {
      // Typed arrays are viewed, not copied; all supported hosts are little-endian like raw_data.
      const raw = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
      if (BigInt(raw.length) !== expected) {
        throw new Error(`initializer ${name}: ${raw.length} bytes ≠ ${expected} for ${dataType}[${dims.join(',')}]`);
      }
      this.initializers.push({ name, dataType, dims, rawData: raw });
    }
    return name;
  }

  /**
   * Appends a node. Inputs must already be defined ('' marks a skipped optional input).
   * Returns the output names so calls can be chained.
   */
  node(
    opType: string,
    inputs: readonly string[],
    outputs: readonly string[],
    attrs: Readonly<Record<string, AttrInput>> = {},
    domain = '',
  ): string[] {
    // Validate everything before touching state, so a rejected node leaves the graph unchanged.
    const what = `${opType} node`;
    for (const i of inputs) {
      if (i !== '' && !this.defined.has(i)) throw new Error(`${what}: input "${i}" is not defined yet`);
    }
    const named = outputs.filter((o) => o !== '');
    for (const [k, o] of named.entries()) {
      if (this.defined.has(o) || named.indexOf(o) !== k) throw new Error(`${what}: value "${o}" is already defined`);
    }
    const attributes: Record<string, AttributeSpec> = {};
    for (const [k, v] of Object.entries(attrs)) attributes[k] = toAttribute(k, v);
    const nodeName = this.uniqueName(`${opType}_${this.nodeCounter++}`);
    for (const o of named) this.define(o, `${what} output`);
    this.nodes.push({ opType, inputs: [...inputs], outputs: [...outputs], name: nodeName, domain, attributes });
    return [...outputs];
  }

  /** Domains used by nodes, other than the default one. */
  usedDomains(): string[] {
    const ds = new Set<string>();
    for (const n of this.nodes) if (n.domain !== undefined && n.domain !== '' && n.domain !== 'ai.onnx') ds.add(n.domain);
    return [...ds];
  }

  toGraphSpec(): GraphSpec {
    for (const o of this.outputs) {
      if (!this.defined.has(o.name)) throw new Error(`graph output "${o.name}" is never produced`);
    }
    return {
      name: this.name,
      nodes: this.nodes,
      initializers: this.initializers,
      inputs: this.inputs,
      outputs: this.outputs,
      valueInfo: this.valueInfos,
    };
  }

  /**
   * Serializes the model. Domains used by nodes but missing from `domains` are imported at
   * version 1, the only version ORT registers for its contrib domains (com.microsoft).
   */
  toModelBytes(opts: ModelOptions): Uint8Array {
    const opsetImports: OpsetImport[] = [{ domain: '', version: opts.opset }];
    const domains: Record<string, number> = { ...opts.domains };
    for (const d of this.usedDomains()) domains[d] ??= 1;
    for (const [domain, version] of Object.entries(domains)) opsetImports.push({ domain, version });
    return encodeModel({
      irVersion: opts.irVersion ?? defaultIrVersion(opts.opset),
      opsetImports,
      producerName: opts.producerName ?? 'upcycle-studio',
      ...(opts.producerVersion !== undefined ? { producerVersion: opts.producerVersion } : {}),
      graph: this.toGraphSpec(),
      ...(opts.metadata !== undefined ? { metadata: opts.metadata } : {}),
    });
  }
}
