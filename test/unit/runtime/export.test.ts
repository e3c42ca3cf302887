import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { CheckpointError } from '../../../app/core/errors.js';
import { SafetensorsFile } from '../../../app/io/safetensors-reader.js';
import { exportOnnx } from '../../../app/runtime/export-onnx.js';
import { createSession } from '../../../app/runtime/ort.js';
import { DEMO, model, tempDir } from '../../helpers/paths.js';

test('an exported ONNX folder runs in a plain onnxruntime session and reproduces the golden logits, with a KV cache', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const out = join(dir, 'moe-onnx');
    const r = await exportOnnx(model('moe-4x'), out);
    assert.deepEqual(readdirSync(out).sort(), ['README.md', 'config.json', 'generation_config.json', 'model.onnx', 'special_tokens_map.json', 'tokenizer.json', 'tokenizer_config.json', 'w0.safetensors']);
    assert.match(readFileSync(join(out, 'README.md'), 'utf8'), /past_key_values/);
    assert.equal(r.inputs.length, 2 + 2 * 4);
    const session = await createSession(join(out, 'model.onnx'));
    const golden = await SafetensorsFile.open(join(DEMO, 'goldens', 'moe-4x.safetensors'));
    try {
      const ids = Array.from(await golden.readF32('input_ids.0'));
      const want = await golden.readF32('logits.0');
      // Prefill the first half, then feed the rest one token at a time through the cache.
      const split = Math.floor(ids.length / 2);
      const empty = () => ({ dims: [1, 2, 0, 24], data: new Float32Array(0) });
      let past: Record<string, { dims: readonly number[]; data: Float32Array }> = {};
      for (let i = 0; i < 4; i++) past[`past_key_values.${i}.key`] = past[`past_key_values.${i}.value`] = empty();
      const logits: number[] = [];
      const step = async (from: number, to: number) => {
        const chunk = ids.slice(from, to);
        const o = await session.run({
          input_ids: { dims: [1, chunk.length], data: BigInt64Array.from(chunk.map(BigInt)) },
          position_ids: { dims: [1, chunk.length], data: BigInt64Array.from(chunk.map((_, k) => BigInt(from + k))) },
          ...past,
        });
        logits.push(...(o['logits']!.data as Float32Array));
        past = {};
        for (let i = 0; i < 4; i++) {
          past[`past_key_values.${i}.key`] = o[`present.${i}.key`] as { dims: readonly number[]; data: Float32Array };
          past[`past_key_values.${i}.value`] = o[`present.${i}.value`] as { dims: readonly number[]; data: Float32Array };
        }
      };
      await step(0, split);
      for (let t = split; t < ids.length; t++) await step(t, t + 1);
      let max = 0;
      for (let j = 0; j < want.length; j++) max = Math.max(max, Math.abs(logits[j]! - want[j]!));
      assert.ok(max <= 1e-4, `max |Δlogit| ${max}`);
    } finally {
      await session.release();
      await golden.close();
    }
    await assert.rejects(exportOnnx(model('moe-4x'), out), (e: unknown) => e instanceof CheckpointError && e.code === 'OUTPUT_EXISTS');
  } finally {
    cleanup();
  }
});
