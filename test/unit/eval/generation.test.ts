import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { evaluateModel } from '../../../app/eval/evaluate.js';
import { stopAt } from '../../../app/eval/stops.js';
import { detectKind, loadTask } from '../../../app/eval/tasks.js';
import { Decoder } from '../../../app/runtime/decoder.js';
import { loadModelSession } from '../../../app/runtime/model-session.js';
import { TextTokenizer } from '../../../app/runtime/tokenizer.js';
import { DEMO, model, tempDir } from '../../helpers/paths.js';

test('cached and uncached greedy decoding give identical tokens', async () => {
  const loaded = await loadModelSession(model('sft-step1000'), { kvCache: true });
  try {
    const dec = new Decoder(loaded);
    const tok = TextTokenizer.load(model('sft-step1000'), 2);
    const prompts = await tok.encodeBatch(['rev hello =', 'sort 9 3 5 =', 'up cat dog =', 'add 12 34 ='], true);
    for (const p of prompts) {
      const a = await dec.generate([p], { maxNewTokens: 24, cache: true }, () => false);
      const b = await dec.generate([p], { maxNewTokens: 24, cache: false }, () => false);
      assert.deepEqual(a, b);
      assert.ok(a[0]!.length > 0);
    }
    const text = await tok.decode((await dec.generate([prompts[0]!], { maxNewTokens: 8 }, () => false))[0]!);
    assert.ok(text.startsWith(' olleh'), text);
    // Sampling is seeded.
    const s1 = await dec.generate([prompts[1]!], { maxNewTokens: 12, temperature: 1, topP: 0.9, seed: 7 }, () => false);
    const s2 = await dec.generate([prompts[1]!], { maxNewTokens: 12, temperature: 1, topP: 0.9, seed: 7 }, () => false);
    assert.deepEqual(s1, s2);
  } finally {
    await loaded.session.release();
  }
});

test('task formats are recognised by their fields; bad files name the line', async () => {
  assert.equal(detectKind({ text: 'x' }), 'perplexity');
  assert.equal(detectKind({ query: 'q', choices: ['a'], gold: 0 }), 'multiple_choice');
  assert.equal(detectKind({ prompt: 'p', answer: 'a' }), 'generation');
  assert.equal(detectKind({ foo: 1 }), undefined);
  const t = await loadTask(join(DEMO, 'eval', 'add.mc.jsonl'), 5);
  assert.equal(t.kind, 'multiple_choice');
  assert.equal(t.items.length, 5);
  const { dir, cleanup } = tempDir();
  try {
    const bad = join(dir, 'bad.jsonl');
    writeFileSync(bad, '{"text": "a"}\n{"prompt": "x", "answer": "y"}\n');
    await assert.rejects(loadTask(bad), /line 2 does not have the fields of a perplexity task/);
    writeFileSync(bad, '{"query": "q", "choices": ["a"], "gold": 3}\n');
    await assert.rejects(loadTask(bad), /gold an index/);
    writeFileSync(bad, 'not json\n');
    await assert.rejects(loadTask(bad), /line 1 is not a JSON object/);
  } finally {
    cleanup();
  }
});

test('evaluation reports progress and can be cancelled', async () => {
  const seen: number[] = [];
  const r = await evaluateModel(model('ffn-rev'), [join(DEMO, 'eval', 'rev.gen.jsonl')], { limit: 20, onProgress: (p) => seen.push(p.done) });
  assert.equal(r.tasks['rev.gen']!.n, 20);
  assert.equal(seen[0], 0);
  assert.equal(seen[seen.length - 1], 20);
  const ac = new AbortController();
  ac.abort();
  await assert.rejects(evaluateModel(model('base'), [join(DEMO, 'eval', 'add.text.jsonl')], { signal: ac.signal }), /abort/i);
});

test('exact match stops at the first stop string; with a chat template a reply\'s leading newline is not a stop', () => {
  assert.equal(stopAt('42\nmore', ['\n'], false), 2);
  assert.equal(stopAt('42 END x\n', ['\n', 'END'], false), 3, 'the earliest of several stops');
  assert.equal(stopAt('\n42\nmore', ['\n'], false), 0, 'plain prompts: a leading newline ends the answer (lm-evaluation-harness)');
  assert.equal(stopAt('\n42\nmore', ['\n'], true), 3, 'chat: the reply after its leading newline');
  assert.equal(stopAt('\n \n', ['\n'], true), undefined, 'chat: only whitespace so far, keep generating');
  assert.equal(stopAt('42', ['\n'], true), undefined);
});
