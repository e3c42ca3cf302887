import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { SafetensorsFile } from '../../../app/io/safetensors-reader.js';
import { loadModelSession } from '../../../app/runtime/model-session.js';
import { DEMO } from '../../helpers/paths.js';

interface GoldenEntry { model: string; adapter: string | null; texts: string[] }
const index = JSON.parse(readFileSync(join(DEMO, 'goldens', 'index.json'), 'utf8')) as Record<string, GoldenEntry>;

for (const [file, entry] of Object.entries(index)) {
  test(`logits match the independent reference: ${file}`, async () => {
    const golden = await SafetensorsFile.open(join(DEMO, 'goldens', file));
    const loaded = await loadModelSession(join(DEMO, entry.model), { adapter: entry.adapter ? join(DEMO, entry.adapter) : undefined });
    try {
      for (let i = 0; i < entry.texts.length; i++) {
        const ids = Array.from(await golden.readF32(`input_ids.${i}`));
        const want = await golden.readF32(`logits.${i}`);
        const S = ids.length;
        const out = await loaded.session.run({
          input_ids: { dims: [1, S], data: BigInt64Array.from(ids.map(BigInt)) },
          position_ids: { dims: [1, S], data: BigInt64Array.from(ids.map((_, p) => BigInt(p))) },
        }, ['logits']);
        const got = out['logits']!.data as Float32Array;
        assert.deepEqual(out['logits']!.dims, [1, S, 272]);
        let max = 0;
        for (let j = 0; j < want.length; j++) max = Math.max(max, Math.abs(got[j]! - want[j]!));
        assert.ok(max <= 1e-4, `${file} text ${i}: max |Δlogit| = ${max}`);
      }
    } finally {
      await loaded.session.release();
      await golden.close();
    }
  });
}
