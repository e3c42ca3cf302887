/**
 * The streamed executor (stream-task.ts) against the methods applied tensor by tensor, bit for bit:
 * BF16 and F32 inputs, BF16 and F32 outputs, tiny I/O chunks (many chunks and blocks per tensor,
 * odd tails), raw inputs cached whole or re-read for every sweep, one or two workers.
 */
import assert from 'node:assert/strict';
import { copyFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fromFloat32, toFloat32, type DType } from '../../../app/core/dtypes.js';
import { getMergeMethod } from '../../../app/core/merge/index.js';
import { Checkpoint } from '../../../app/io/checkpoint.js';
import { OutputFolder } from '../../../app/io/output-folder.js';
import { writeTensors } from '../../../app/io/safetensors-writer.js';
import { parseMergeConfig } from '../../../app/merge/config.js';
import { runMerge, type MergeOptions } from '../../../app/merge/execute.js';
import { planMerge } from '../../../app/merge/plan.js';
import { taskStream } from '../../../app/merge/stream-task.js';
import { model, tempDir } from '../../helpers/paths.js';

/** A copy of a demo model with every tensor stored as `dtype`. */
async function convert(name: string, dir: string, dtype: DType): Promise<string> {
  const src = model(name);
  const out = join(dir, `${name}-${dtype}`);
  const folder = await OutputFolder.create(out);
  const ck = await Checkpoint.open(src);
  try {
    const tensors = [];
    for (const n of ck.names) tensors.push({ name: n, dtype, shape: ck.info(n).shape, bytes: fromFloat32(await ck.readF32(n), dtype) });
    await writeTensors(folder, tensors);
  } finally {
    await ck.close();
  }
  await folder.commit();
  for (const f of readdirSync(src)) if (f.endsWith('.json')) copyFileSync(join(src, f), join(out, f));
  return out;
}

test('streamed merges equal the methods tensor by tensor: BF16/F32 in and out, tiny chunks, cached or re-read, 1 or 2 workers', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const names = ['base', 'ffn-add', 'ffn-rev'];
    for (const inDtype of ['BF16', 'F32'] as DType[]) {
      const paths = await Promise.all(names.map((n) => convert(n, dir, inDtype)));
      const recipes = {
        ties: { merge_method: 'ties', base_model: paths[0], models: paths.slice(1).map((p, i) => ({ model: p, parameters: { weight: [1, 0.6][i], density: [0.5, 0.3][i] } })), parameters: { normalize: true } },
        linear: { merge_method: 'linear', models: paths.map((p, i) => ({ model: p, parameters: { weight: [1, 2, 0.5][i] } })) },
        task_arithmetic: { merge_method: 'task_arithmetic', base_model: paths[0], models: paths.slice(1).map((p) => ({ model: p, parameters: { weight: 0.7 } })), parameters: { lambda: 0.9 } },
        // DARE: the masks come from (seed 0, tensor name, model label), whichever path runs the tensor.
        dare_linear: { merge_method: 'dare_linear', base_model: paths[0], models: paths.slice(1).map((p, i) => ({ model: p, parameters: { weight: [0.4, 0.6][i], density: [0.9, 0.5][i] } })) },
        dare_ties: { merge_method: 'dare_ties', base_model: paths[0], models: paths.slice(1).map((p, i) => ({ model: p, parameters: { weight: [1, 0.6][i], density: [0.7, 0.3][i] } })), parameters: { rescale_mode: 'inverse_density' } },
      };
      const variants: [string, MergeOptions][] = [
        ['default', {}],
        ['chunks-cached', { chunkElements: 1000, workers: 2 }],
        ['chunks-reread', { chunkElements: 777, memoryBudget: 1, workers: 1 }],
      ];
      for (const [id, doc] of Object.entries(recipes)) {
        const method = getMergeMethod(id);
        const recipe = parseMergeConfig(doc, dir);
        // Both output dtypes for TIES and dare_linear; the input dtype for the others.
        for (const outDtype of (id === 'ties' || id === 'dare_linear' ? ['BF16', 'F32'] : [inDtype]) as DType[]) {
          const cks = await Promise.all(paths.map((p) => Checkpoint.open(p)));
          const outs: string[] = [];
          try {
            for (const [v, opts] of variants) {
              const out = join(dir, `${id}-${inDtype}-${outDtype}-${v}`);
              await runMerge(recipe, out, { ...opts, outDtype });
              outs.push(out);
            }
            const res = await Promise.all(outs.map((o) => Checkpoint.open(o)));
            try {
              for (const name of res[0]!.names) {
                const ts = await Promise.all(cks.map((c) => c.readF32(name)));
                const shape = res[0]!.info(name).shape;
                const inputs = id === 'linear'
                  ? { models: ts.map((t, i) => ({ id: paths[i]!, tensor: t, params: { weight: [1, 2, 0.5][i]! } })) }
                  : { base: { id: paths[0]!, tensor: ts[0]! }, models: ts.slice(1).map((t, i) => ({ id: paths[i + 1]!, tensor: t, params: (doc as { models: { parameters: Record<string, number> }[] }).models[i]!.parameters })) };
                const globals = (doc as { parameters?: Record<string, number | boolean | string> }).parameters;
                const want = Buffer.from(fromFloat32(method.merge({ tensorName: name, shape, globals, ...inputs }), outDtype));
                for (const [i, r] of res.entries()) {
                  assert.ok(want.equals(Buffer.from(await r.readBytes(name))), `${id} ${inDtype}→${outDtype} ${variants[i]![0]} ${name}`);
                }
              }
            } finally {
              await Promise.all(res.map((r) => r.close()));
            }
          } finally {
            await Promise.all(cks.map((c) => c.close()));
          }
        }
      }
      // The BF16 copies really are BF16 (and round-trip to the float32 values the methods saw).
      const ck = await Checkpoint.open(paths[1]!);
      try {
        const n = ck.names[0]!;
        assert.equal(ck.info(n).dtype, inDtype);
        assert.deepEqual(await ck.readF32(n), toFloat32(await ck.readBytes(n), inDtype));
      } finally {
        await ck.close();
      }
    }
  } finally {
    cleanup();
  }
});

test('the planner streams DARE tasks: dare_linear and dare_ties get a stream (L1 rescale: one statistics pass), rank-based methods do not', async () => {
  const paths = ['base', 'ffn-add', 'ffn-rev'].map((n) => model(n));
  const cks = await Promise.all(paths.map((p) => Checkpoint.open(p)));
  try {
    const cases: [string, Record<string, unknown>, boolean | null][] = [
      ['dare_linear', {}, true],
      ['dare_linear', { rescale: false }, false],
      ['dare_ties', {}, true],
      ['dare_ties', { rescale_mode: 'inverse_density' }, false],
      ['breadcrumbs', {}, null],
      ['della_linear', { epsilon: 0.05 }, null],
    ];
    for (const [method, parameters, multiPass] of cases) {
      const recipe = parseMergeConfig({ merge_method: method, base_model: paths[0], models: paths.slice(1).map((p) => ({ model: p, parameters: { weight: 0.5, density: 0.6 } })), parameters }, '/');
      const plan = planMerge(recipe, cks);
      assert.ok(plan.tasks.length > 0);
      for (const task of plan.tasks) {
        const s = taskStream(recipe.method, task, recipe.models, 7);
        if (multiPass === null) assert.equal(s, undefined, `${method} ${task.name}`);
        else assert.equal(s?.wantsPass(0), multiPass, `${method} ${JSON.stringify(parameters)} ${task.name}`);
      }
    }
  } finally {
    await Promise.all(cks.map((c) => c.close()));
  }
});
