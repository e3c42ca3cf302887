import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pushVarint } from '../../../app/runtime/pb-writer.js';
import { attr, encodeModel, DataType } from '../../../app/runtime/onnx-proto.js';
import { GraphBuilder, defaultIrVersion } from '../../../app/runtime/graph-builder.js';
import { decodeMessage, fields, int64, str, sub } from './helpers.js';

const varint = (v: number | bigint): number[] => {
  const out: number[] = [];
  pushVarint(out, v);
  return out;
};

// Field numbers from onnx.proto, restated here so the test checks the encoder independently.
const MODEL = { irVersion: 1, producerName: 2, graph: 7, opsetImport: 8, metadataProps: 14 };
const GRAPH = { node: 1, name: 2, initializer: 5, input: 11, output: 12 };
const NODE = { input: 1, output: 2, name: 3, opType: 4, attribute: 5, domain: 7 };
const ATTR = { name: 1, f: 2, i: 3, s: 4, t: 5, floats: 7, ints: 8, strings: 9, type: 20 };
const TENSOR = { dims: 1, dataType: 2, name: 8, rawData: 9, externalData: 13, dataLocation: 14 };

test('varints: small, 32-bit boundary, >2^53 as bigint, negative as 10-byte two\'s complement', () => {
  assert.deepEqual(varint(0), [0]);
  assert.deepEqual(varint(127), [0x7f]);
  assert.deepEqual(varint(128), [0x80, 0x01]);
  assert.deepEqual(varint(300), [0xac, 0x02]);
  assert.deepEqual(varint(2 ** 31), [0x80, 0x80, 0x80, 0x80, 0x08]);
  assert.deepEqual(varint(2 ** 32 + 5), [0x85, 0x80, 0x80, 0x80, 0x10]);
  assert.deepEqual(varint(2 ** 53 - 1), varint(2n ** 53n - 1n));
  assert.deepEqual(varint(2n ** 63n - 1n), [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]);
  assert.deepEqual(varint(2n ** 64n - 1n), [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
  assert.deepEqual(varint(-1), [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
  assert.deepEqual(varint(-1), varint(-1n));
  assert.deepEqual(varint(-(2n ** 63n)), [0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01]);
  assert.throws(() => varint(2 ** 53), RangeError);
  assert.throws(() => varint(1.5), RangeError);
  assert.throws(() => varint(2n ** 64n), RangeError);
});

function modelWithBigInts(): Uint8Array {
  const g = new GraphBuilder('g');
  g.input('x', 'FLOAT', [1]);
  g.node('Identity', ['x'], ['y'], {
    big: 2n ** 40n + 3n,
    huge: attr.int(2n ** 62n + 1n),
    neg: -5,
    list: attr.ints([2 ** 33, -(2n ** 62n), 7]),
    eps: attr.float(1e-6),
    mode: 'linear',
    names: attr.strings(['a', 'bc']),
    fs: attr.floats([0.5, -2]),
  });
  g.output('y', 'FLOAT', [1]);
  return g.toModelBytes({ opset: 23, metadata: { k: 'v' } });
}

test('int64 attributes beyond 2^31 (and negative) decode back to the same values', () => {
  const model = modelWithBigInts();
  const node = sub(sub(model, MODEL.graph), GRAPH.node);
  assert.equal(str(node, NODE.opType), 'Identity');
  const attrs = new Map(fields(node, NODE.attribute).map((f) => {
    const b = f.value as Uint8Array;
    return [str(b, ATTR.name), b] as const;
  }));
  const big = attrs.get('big')!;
  assert.equal(int64(big, ATTR.i), 2n ** 40n + 3n);
  assert.equal(int64(big, ATTR.type), 2n); // INT
  assert.equal(int64(attrs.get('huge')!, ATTR.i), 2n ** 62n + 1n);
  assert.equal(int64(attrs.get('neg')!, ATTR.i), -5n);
  const list = attrs.get('list')!;
  assert.deepEqual(fields(list, ATTR.ints).map((_, i) => int64(list, ATTR.ints, i)), [2n ** 33n, -(2n ** 62n), 7n]);
  assert.equal(int64(list, ATTR.type), 7n); // INTS
  const eps = attrs.get('eps')!;
  const fBytes = sub(eps, ATTR.f);
  assert.equal(new DataView(fBytes.buffer, fBytes.byteOffset, 4).getFloat32(0, true), Math.fround(1e-6));
  assert.equal(int64(eps, ATTR.type), 1n); // FLOAT
  assert.equal(str(attrs.get('mode')!, ATTR.s), 'linear');
  assert.equal(int64(attrs.get('mode')!, ATTR.type), 3n); // STRING
  assert.deepEqual(fields(attrs.get('names')!, ATTR.strings).map((f) => new TextDecoder().decode(f.value as Uint8Array)), ['a', 'bc']);
  assert.equal(int64(attrs.get('names')!, ATTR.type), 8n); // STRINGS
  assert.equal(fields(attrs.get('fs')!, ATTR.floats).length, 2);
  assert.equal(int64(attrs.get('fs')!, ATTR.type), 6n); // FLOATS
});

test('model header: IR version, producer, default and custom-domain opset imports, metadata', () => {
  const g = new GraphBuilder();
  g.input('x', 'FLOAT', ['n']);
  g.node('Gelu', ['x'], ['y'], {}, 'com.microsoft');
  g.output('y', 'FLOAT', ['n']);
  const model = g.toModelBytes({ opset: 23, metadata: { arch: 'llama' } });
  assert.equal(int64(model, MODEL.irVersion), 11n);
  assert.equal(str(model, MODEL.producerName), 'upcycle-studio');
  const opsets = fields(model, MODEL.opsetImport).map((f) => {
    const b = f.value as Uint8Array;
    const d = fields(b, 1);
    return [d.length ? new TextDecoder().decode(d[0]!.value as Uint8Array) : '', int64(b, 2)];
  });
  assert.deepEqual(opsets, [['', 23n], ['com.microsoft', 1n]]);
  const meta = sub(model, MODEL.metadataProps);
  assert.deepEqual([str(meta, 1), str(meta, 2)], ['arch', 'llama']);
  const node = sub(sub(model, MODEL.graph), GRAPH.node);
  assert.equal(str(node, NODE.domain), 'com.microsoft');
});

test('external-data initializer: location/offset/length entries (offset > 2^32 as a string) and data_location', () => {
  const g = new GraphBuilder();
  g.initializer('w', 'BFLOAT16', [2, 3], { external: { location: 'model.safetensors', offset: 5_000_000_003n, length: 12 } });
  g.input('x', 'FLOAT', [1]);
  g.node('Identity', ['x'], ['y']);
  g.output('y', 'FLOAT', [1]);
  const init = sub(sub(g.toModelBytes({ opset: 23 }), MODEL.graph), GRAPH.initializer);
  assert.deepEqual(fields(init, TENSOR.dims).map((f) => f.value), [2n, 3n]);
  assert.equal(int64(init, TENSOR.dataType), BigInt(DataType.BFLOAT16));
  assert.equal(str(init, TENSOR.name), 'w');
  assert.equal(fields(init, TENSOR.rawData).length, 0);
  const entries = fields(init, TENSOR.externalData).map((f) => [str(f.value as Uint8Array, 1), str(f.value as Uint8Array, 2)]);
  assert.deepEqual(entries, [['location', 'model.safetensors'], ['offset', '5000000003'], ['length', '12']]);
  assert.equal(int64(init, TENSOR.dataLocation), 1n);
});

test('value infos: numeric dims as dim_value, symbolic dims as dim_param, null shape omitted', () => {
  const g = new GraphBuilder();
  g.input('ids', 'INT64', ['batch', 'seq']);
  g.input('any', 'FLOAT', null);
  g.node('Identity', ['ids'], ['out']);
  g.output('out', 'INT64', ['batch', 7]);
  const graph = sub(g.toModelBytes({ opset: 23 }), MODEL.graph);
  const dimsOf = (vi: Uint8Array): (string | bigint)[] => {
    const tensorType = sub(sub(vi, 2), 1);
    assert.equal(int64(tensorType, 1) > 0n, true);
    const shapes = fields(tensorType, 2);
    if (shapes.length === 0) return [];
    return fields(shapes[0]!.value as Uint8Array, 1).map((d) => {
      const f = decodeMessage(d.value as Uint8Array)[0]!;
      return f.field === 1 ? (f.value as bigint) : new TextDecoder().decode(f.value as Uint8Array);
    });
  };
  assert.deepEqual(dimsOf(sub(graph, GRAPH.input, 0)), ['batch', 'seq']);
  assert.deepEqual(dimsOf(sub(graph, GRAPH.input, 1)), []);
  assert.deepEqual(dimsOf(sub(graph, GRAPH.output)), ['batch', 7n]);
});

test('raw initializer bytes round-trip through encodeModel', () => {
  const raw = new Float32Array([1, 2, 3, 4]);
  const model = encodeModel({
    irVersion: 10,
    opsetImports: [{ domain: '', version: 21 }],
    graph: { name: 'g', nodes: [], inputs: [], outputs: [], initializers: [{ name: 'w', dataType: 'FLOAT', dims: [4], rawData: new Uint8Array(raw.buffer) }] },
  });
  const init = sub(sub(model, MODEL.graph), GRAPH.initializer);
  assert.deepEqual([...new Float32Array(sub(init, TENSOR.rawData).slice().buffer)], [1, 2, 3, 4]);
});

test('builder rejects undefined inputs, duplicates, size mismatches, float shorthand, unproduced outputs', () => {
  const g = new GraphBuilder();
  g.input('x', 'FLOAT', [2]);
  assert.throws(() => g.node('Relu', ['nope'], ['y']), /not defined/);
  assert.throws(() => g.input('x', 'FLOAT', [2]), /already defined/);
  assert.throws(() => g.initializer('w', 'FLOAT', [3], new Float32Array(2)), /8 bytes ≠ 12/);
  assert.throws(() => g.initializer('e', 'FLOAT', [3], { external: { location: 'f', offset: 0, length: 10 } }), /external length/);
  assert.throws(() => g.node('LeakyRelu', ['x'], ['z'], { alpha: 0.1 }), /attr\.float/);
  g.output('missing', 'FLOAT', [2]);
  assert.throws(() => g.toGraphSpec(), /never produced/);
  assert.equal(g.uniqueName('x'), 'x_1');
  assert.equal(g.uniqueName('x'), 'x_2');
});

test('default IR versions follow the opset (capped at ORT 1.30\'s IR 13)', () => {
  assert.equal(defaultIrVersion(21), 10);
  assert.equal(defaultIrVersion(23), 11);
  assert.equal(defaultIrVersion(24), 12);
  assert.equal(defaultIrVersion(26), 13);
});
