import assert from 'node:assert/strict';
import { readFileSync, readdirSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fromFloat32, toFloat32 } from '../../../app/core/dtypes.js';
import { CheckpointError } from '../../../app/core/errors.js';
import { SafetensorsFile } from '../../../app/io/safetensors-reader.js';
import { parseByteSize, SafetensorsWriter, splitIntoShards, writeTensors } from '../../../app/io/safetensors-writer.js';
import { OutputFolder } from '../../../app/io/output-folder.js';
import { model, tempDir } from '../../helpers/paths.js';
import { fileBytes } from '../../helpers/safetensors-bytes.js';

async function expectCode(bytes: Uint8Array, code: string): Promise<void> {
  const { dir, cleanup } = tempDir();
  try {
    const p = join(dir, 'bad.safetensors');
    writeFileSync(p, bytes);
    await assert.rejects(SafetensorsFile.open(p), (e: unknown) => {
      assert.ok(e instanceof CheckpointError, `expected CheckpointError, got ${String(e)}`);
      assert.equal(e.code, code, e.message);
      assert.ok(e.message.includes(p), 'the error names the file');
      return true;
    });
  } finally {
    cleanup();
  }
}

test('reads a fixture lazily: header on open, then only the requested tensor', async () => {
  const f = await SafetensorsFile.open(join(model('base'), 'model.safetensors'));
  try {
    assert.equal(f.names.length, 39);
    const headerRead = f.stats.bytesRead;
    assert.equal(headerRead, 8 + f.header.headerLength);
    const info = f.info('model.embed_tokens.weight');
    assert.deepEqual(info.shape, [272, 96]);
    assert.equal(info.dtype, 'F32');
    const w = await f.readF32('model.embed_tokens.weight');
    assert.equal(w.length, 272 * 96);
    assert.equal(f.stats.bytesRead, headerRead + 272 * 96 * 4, 'nothing but the tensor was read');
    assert.ok(f.stats.maxAllocation <= f.size);
    await assert.rejects(f.readBytes('nope'), (e: unknown) => e instanceof CheckpointError && e.code === 'MISSING_TENSOR');
  } finally {
    await f.close();
  }
});

test('base-bf16 is exactly base rounded to bfloat16 (our f32→bf16 matches torch)', async () => {
  const a = await SafetensorsFile.open(join(model('base'), 'model.safetensors'));
  const b = await SafetensorsFile.open(join(model('base-bf16'), 'model.safetensors'));
  try {
    for (const name of a.names) {
      assert.equal(b.info(name).dtype, 'BF16');
      const ours = fromFloat32(await a.readF32(name), 'BF16');
      assert.deepEqual(Buffer.from(ours), Buffer.from(await b.readBytes(name)), name);
    }
  } finally {
    await a.close();
    await b.close();
  }
});

test('validation follows the reference implementation', async () => {
  const f32 = (n: number) => new Uint8Array(n * 4);
  const t = (dtype: string, shape: number[], offs: number[]) => ({ dtype, shape, data_offsets: offs });
  await expectCode(new Uint8Array(5), 'HEADER_TOO_SMALL');
  await expectCode(fileBytes({}, new Uint8Array(0), { lengthOverride: 100_000_001n }), 'HEADER_TOO_LARGE');
  await expectCode(fileBytes({}, new Uint8Array(0), { lengthOverride: 2n ** 63n }), 'HEADER_TOO_LARGE');
  await expectCode(fileBytes({}, new Uint8Array(0), { lengthOverride: 500n }), 'INVALID_HEADER_LENGTH');
  await expectCode(fileBytes('{"a": '), 'INVALID_HEADER');
  await expectCode(fileBytes('[1,2]'), 'INVALID_HEADER');
  await expectCode(fileBytes({ a: t('Q8', [1], [0, 1]) }, new Uint8Array(1)), 'INVALID_DTYPE');
  await expectCode(fileBytes({ a: t('F32', [2], [0, 8]), b: t('F32', [2], [4, 12]) }, f32(3)), 'INVALID_OFFSET'); // overlap
  await expectCode(fileBytes({ a: t('F32', [1], [4, 8]) }, f32(2)), 'INVALID_OFFSET'); // gap at start
  await expectCode(fileBytes({ a: t('F32', [1], [-4, 0]) }, f32(1)), 'INVALID_OFFSET');
  await expectCode(fileBytes({ a: t('F32', [3], [0, 8]) }, f32(2)), 'TENSOR_INVALID_INFO');
  await expectCode(fileBytes({ a: t('F32', [2 ** 40, 2 ** 40], [0, 8]) }, f32(2)), 'INVALID_SHAPE');
  await expectCode(fileBytes({ a: t('F32', [-1], [0, 0]) }), 'INVALID_SHAPE');
  await expectCode(fileBytes({ a: t('F32', [2], [0, 8]) }, f32(3)), 'INCOMPLETE_BUFFER'); // trailing bytes
  await expectCode(fileBytes({ a: t('F32', [2], [0, 8]) }, f32(1)), 'INCOMPLETE_BUFFER'); // truncated
  await expectCode(fileBytes({ __metadata__: { format: 1 }, a: t('F32', [1], [0, 4]) }, f32(1)), 'INVALID_HEADER');
  // Non-UTF-8 bytes in a tensor name.
  const bad = fileBytes({ aXb: t('U8', [1], [0, 1]) }, new Uint8Array(1));
  const i = bad.indexOf('X'.charCodeAt(0), 8);
  bad[i] = 0xff;
  await expectCode(bad, 'INVALID_HEADER');
});

test('accepts what the reference accepts: empty tensors, scalars, unpadded headers, no metadata', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const p = join(dir, 'ok.safetensors');
    writeFileSync(p, fileBytes({ empty: { dtype: 'F32', shape: [0, 4], data_offsets: [0, 0] }, s: { dtype: 'I64', shape: [], data_offsets: [0, 8] } }, new Uint8Array(8)));
    const f = await SafetensorsFile.open(p);
    assert.deepEqual([...(await f.readF32('empty'))], []);
    assert.deepEqual([...(await f.readF32('s'))], [0]);
    await f.close();
  } finally {
    cleanup();
  }
});

test('writer: aligned header, format pt, alignment per dtype, positioned writes in any order', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const out = await OutputFolder.create(join(dir, 'm'));
    const plan = [
      { name: 'b.half', dtype: 'BF16' as const, shape: [3] },
      { name: 'a.float', dtype: 'F32' as const, shape: [2, 2] },
      { name: 'c.byte', dtype: 'U8' as const, shape: [5] },
      { name: 'd.double', dtype: 'F64' as const, shape: [1] },
    ];
    const w = await SafetensorsWriter.create(out, plan, { metadata: { upcycle_recipe: '{}' } });
    const values = { 'a.float': fromFloat32(Float32Array.from([1, 2, 3, 4]), 'F32'), 'b.half': fromFloat32(Float32Array.from([1, -1, 0.5]), 'BF16'), 'c.byte': Uint8Array.from([1, 2, 3, 4, 5]), 'd.double': fromFloat32(Float32Array.from([7]), 'F64') };
    for (const n of ['d.double', 'c.byte', 'a.float', 'b.half'] as const) await w.write(n, values[n]);
    await w.finish();
    assert.ok(!existsSync(join(dir, 'm')), 'nothing appears before commit');
    await out.commit();
    const bytes = readFileSync(join(dir, 'm', 'model.safetensors'));
    const n = Number(bytes.readBigUInt64LE(0));
    assert.equal(n % 8, 0);
    const header = JSON.parse(bytes.subarray(8, 8 + n).toString());
    assert.deepEqual(header.__metadata__, { format: 'pt', upcycle_recipe: '{}' });
    for (const [name, t] of Object.entries(header)) {
      if (name === '__metadata__') continue;
      const { dtype, data_offsets } = t as { dtype: string; data_offsets: number[] };
      const size = { F64: 8, F32: 4, BF16: 2, U8: 1 }[dtype]!;
      assert.equal((8 + n + data_offsets[0]!) % size, 0, `${name} is aligned`);
    }
    const f = await SafetensorsFile.open(join(dir, 'm', 'model.safetensors'));
    assert.deepEqual([...(await f.readF32('a.float'))], [1, 2, 3, 4]);
    assert.deepEqual([...(await f.readF32('b.half'))], [1, -1, 0.5]);
    assert.deepEqual([...(await f.readBytes('c.byte'))], [1, 2, 3, 4, 5]);
    assert.deepEqual([...(await f.readF32('d.double'))], [7]);
    await f.close();
  } finally {
    cleanup();
  }
});

test('writer: shards by byte budget with HF names and an index; round-trips the fixture', async () => {
  const { dir, cleanup } = tempDir();
  const src = await SafetensorsFile.open(join(model('base'), 'model.safetensors'));
  try {
    const out = await OutputFolder.create(join(dir, 'sharded'));
    const tensors = [];
    for (const name of src.names) {
      const i = src.info(name);
      tensors.push({ name, dtype: 'F32' as const, shape: i.shape, bytes: await src.readBytes(name) });
    }
    const files = await writeTensors(out, tensors, { maxShardBytes: 600_000 });
    await out.commit();
    assert.ok(files.length >= 3);
    assert.deepEqual(files, files.map((_, i) => `model-${String(i + 1).padStart(5, '0')}-of-${String(files.length).padStart(5, '0')}.safetensors`));
    const index = JSON.parse(readFileSync(join(dir, 'sharded', 'model.safetensors.index.json'), 'utf8'));
    assert.equal(index.metadata.total_size, 458_592 * 4);
    assert.equal(Object.keys(index.weight_map).length, 39);
    for (const name of src.names) {
      const shard = await SafetensorsFile.open(join(dir, 'sharded', index.weight_map[name]));
      assert.deepEqual(Buffer.from(await shard.readBytes(name)), Buffer.from(await src.readBytes(name)));
      await shard.close();
    }
  } finally {
    await src.close();
    cleanup();
  }
});

test('writer: a failed write leaves no output folder; unwritten tensors are caught', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const out = await OutputFolder.create(join(dir, 'out'));
    const w = await SafetensorsWriter.create(out, [{ name: 'x', dtype: 'F32', shape: [2] }, { name: 'y', dtype: 'F32', shape: [1] }]);
    await w.write('x', new Uint8Array(8));
    await assert.rejects(w.write('x', new Uint8Array(8)), /written twice/);
    await assert.rejects(w.write('y', new Uint8Array(8)), /has 8 bytes, the plan says 4/);
    await assert.rejects(w.finish(), /never written/);
    await w.close();
    await out.abort();
    assert.deepEqual(readdirSync(dir), [], 'the partial folder is gone');
    await OutputFolder.create(join(dir, 'exists')).then((o) => o.commit());
    await assert.rejects(OutputFolder.create(join(dir, 'exists')), (e: unknown) => e instanceof CheckpointError && e.code === 'OUTPUT_EXISTS');
    const o2 = await OutputFolder.create(join(dir, 'exists'), { overwrite: true });
    await o2.writeFile('marker', 'new');
    await o2.commit();
    assert.equal(readFileSync(join(dir, 'exists', 'marker'), 'utf8'), 'new');
    assert.throws(() => o2.path('../escape'), /outside the output folder/);
  } finally {
    cleanup();
  }
});

test('shard split and size parsing', () => {
  const plan = [10, 10, 30, 5].map((n, i) => ({ name: `t${i}`, dtype: 'U8' as const, shape: [n] }));
  assert.deepEqual(splitIntoShards(plan, 25).map((g) => g.map((t) => t.name)), [['t0', 't1'], ['t2'], ['t3']]);
  assert.equal(parseByteSize('5GB'), 5e9);
  assert.equal(parseByteSize('2GiB'), 2 * 1024 ** 3);
  assert.equal(parseByteSize('500mb'), 5e8);
  assert.equal(parseByteSize('123'), 123);
  assert.throws(() => parseByteSize('lots'));
});

test('readF32 of a bf16 fixture matches the f32 base within bf16 precision', async () => {
  const a = await SafetensorsFile.open(join(model('base'), 'model.safetensors'));
  const b = await SafetensorsFile.open(join(model('base-bf16'), 'model.safetensors'));
  try {
    const x = await a.readF32('model.norm.weight');
    const y = await b.readF32('model.norm.weight');
    for (let i = 0; i < x.length; i++) assert.ok(Math.abs(x[i]! - y[i]!) <= Math.abs(x[i]!) * 2 ** -8);
    assert.deepEqual(toFloat32(fromFloat32(y, 'BF16'), 'BF16'), y);
  } finally {
    await a.close();
    await b.close();
  }
});
