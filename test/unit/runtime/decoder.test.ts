/** logits_to_keep: generation's last-position logits equal the full forward's last row. */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { Decoder, RECENT_MAX } from '../../../app/runtime/decoder.js';
import { loadModelSession } from '../../../app/runtime/model-session.js';
import { tempDir } from '../../helpers/paths.js';
import { tinyInputIds, writeTinyModel } from '../../helpers/tiny-models.js';
import { assertClose } from './helpers.js';

const tmp = tempDir('upcycle-decoder-');
process.env['UPCYCLE_CACHE_DIR'] = join(tmp.dir, 'cache');
after(tmp.cleanup);

const V = 64;
const llama = { architectures: ['LlamaForCausalLM'], model_type: 'llama', vocab_size: V, hidden_size: 32, intermediate_size: 48, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, rms_norm_eps: 1e-6, rope_theta: 10000, max_position_embeddings: 64 };

test('logits_to_keep: last rows only, equal to the full forward; 0 (and k ≥ S) keep all; greedy with/without cache agree', async () => {
  const dir = join(tmp.dir, 'llama');
  await writeTinyModel(dir, llama, 5);
  const loaded = await loadModelSession(dir, { kvCache: true });
  try {
    assert.ok(loaded.session.inputs.some((i) => i.name === 'logits_to_keep'), 'cached graphs take logits_to_keep');
    const dec = new Decoder(loaded);
    const ids = tinyInputIds(2, 9, V, 11);
    const full = await dec.forward(ids);
    assert.equal(full.logitsRows, 9);
    assert.equal(full.logits.length, 2 * 9 * V);
    for (const k of [1, 3]) {
      const kept = await dec.forward(ids, 0, undefined, k);
      assert.equal(kept.logitsRows, k);
      for (let b = 0; b < 2; b++) {
        assertClose(kept.logits.subarray(b * k * V, (b + 1) * k * V), full.logits.subarray((b * 9 + 9 - k) * V, (b + 1) * 9 * V), 1e-5, `k=${k} row ${b}`);
      }
      // The KV cache still covers every position.
      assert.deepEqual(kept.present!['present.0.key']!.dims, [2, 2, 9, 8]);
    }
    assert.equal((await dec.forward(ids, 0, undefined, 20)).logitsRows, 9);
    const a = await dec.generate([ids[0]!], { maxNewTokens: 12, cache: true }, () => false);
    const b = await dec.generate([ids[0]!], { maxNewTokens: 12, cache: false }, () => false);
    assert.deepEqual(a, b);
  } finally {
    await loaded.release();
  }
  // Graphs without a cache keep the plain interface (no logits_to_keep input) unless asked.
  const plain = await loadModelSession(dir);
  try {
    assert.ok(!plain.session.inputs.some((i) => i.name === 'logits_to_keep'));
    const r = await new Decoder(plain).forward([[1, 2, 3]], 0, undefined, 1);
    assert.equal(r.logitsRows, 3, 'falls back to every position');
  } finally {
    await plain.release();
  }
});

test('two-part cache (recentPast): step by step over more than RECENT_MAX positions, logits equal the one-part cache; the recent part is fetched until full', async () => {
  const mistral = { ...llama, architectures: ['MistralForCausalLM'], model_type: 'mistral', sliding_window: 8 };
  for (const [name, config] of [['llama', llama], ['mistral-window', mistral]] as const) {
    const dir = join(tmp.dir, `two-part-${name}`);
    await writeTinyModel(dir, config, 9);
    const split = await loadModelSession(dir, { kvCache: true });
    const whole = await loadModelSession(dir, { kvCache: true, recentPast: false });
    try {
      assert.ok(split.session.inputs.some((i) => i.name === 'recent_key_values.0.key'));
      assert.ok(!whole.session.inputs.some((i) => i.name === 'recent_key_values.0.key'));
      const a = new Decoder(split);
      const b = new Decoder(whole);
      const prompt = tinyInputIds(2, 7, V, 3);
      let ra = await a.forward(prompt, 0, undefined, 1);
      let rb = await b.forward(prompt, 0, undefined, 1);
      const steps = RECENT_MAX + 10;
      let sawRecent = 0;
      for (let t = 0; t < steps; t++) {
        assertClose(ra.logits, rb.logits, 1e-5, `${name} step ${t}`);
        const next = [[(t * 7 + 1) % V], [(t * 5 + 2) % V]];
        ra = await a.forward(next, 7 + t, ra.present, 1);
        rb = await b.forward(next, 7 + t, rb.present, 1);
        const total = 7 + t + 1;
        const recent = ra.present!['recent.0.key'];
        const first = ra.present!['present.0.key']!.dims[2]!;
        assert.equal(first + (recent?.dims[2] ?? 0), total, `${name} step ${t}: the two parts cover every position`);
        assert.deepEqual(rb.present!['present.0.key']!.dims, [2, 2, total, 8]);
        if (recent) sawRecent++;
        assert.ok((recent?.dims[2] ?? 0) <= RECENT_MAX);
      }
      assertClose(ra.logits, rb.logits, 1e-5, `${name} last step`);
      assert.ok(sawRecent >= RECENT_MAX, 'most steps fetched only the recent part');
      assert.ok(sawRecent < steps, 'the whole cache was fetched once the recent part was full');
    } finally {
      await split.release();
      await whole.release();
    }
  }
});

test('scoring in the graph (tokenLogprobs): the targets\' log-probabilities equal the log-softmax of the logits, for padded batches; no logits are fetched', async () => {
  const dir = join(tmp.dir, 'scoring');
  await writeTinyModel(dir, llama, 13);
  const inGraph = await loadModelSession(dir, { tokenLogprobs: true });
  const inJs = await loadModelSession(dir);
  try {
    const seqs = [tinyInputIds(1, 5, V, 1)[0]!, tinyInputIds(1, 9, V, 2)[0]!, tinyInputIds(1, 2, V, 3)[0]!, [7]];
    const fetched: number[] = [];
    const a = await new Decoder(inGraph).logprobs(seqs, { maxBatchTokens: 1000, onBatch: (r) => fetched.push(r.logits.length) });
    const b = await new Decoder(inJs).logprobs(seqs, { maxBatchTokens: 1000 });
    assert.deepEqual(a.map((x) => x.length), [4, 8, 1, 0]);
    a.forEach((lp, i) => assertClose(lp, b[i]!, 1e-5, `sequence ${i}`));
    assert.ok(fetched.length > 0 && fetched.every((n) => n === 0), 'only target_logprobs came back');
    await assert.rejects(new Decoder(inGraph).forward([[1, 2, 3]], 0, undefined, 0, [[1, 2]]), /targets must be 1 rows of 3 ids/);
  } finally {
    await inGraph.release();
    await inJs.release();
  }
  // The evaluation graph (KV cache + scoring): scoring fetches neither logits nor the cache; generation is unchanged.
  const both = await loadModelSession(dir, { kvCache: true, tokenLogprobs: true });
  const gen = await loadModelSession(dir, { kvCache: true });
  try {
    const d = new Decoder(both);
    const seq = tinyInputIds(1, 6, V, 4);
    const r = await d.forward(seq, 0, undefined, 0, [[...seq[0]!.slice(1), 0]]);
    assert.equal(r.present, undefined);
    assert.equal(r.targetLogprobs!.length, 6);
    assert.deepEqual(await d.generate(seq, { maxNewTokens: 40 }, () => false), await new Decoder(gen).generate(seq, { maxNewTokens: 40 }, () => false));
  } finally {
    await both.release();
    await gen.release();
  }
});
