/**
 * Session leases and idle release (SessionCache), and loadModelSession taking its session from a
 * cache: loads of the same graph share one session, a load's release() ends only its lease.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { loadModelSession } from '../../../app/runtime/model-session.js';
import type { OrtSession } from '../../../app/runtime/ort.js';
import { SessionCache } from '../../../app/runtime/session-cache.js';
import { tempDir } from '../../helpers/paths.js';
import { writeTinyModel } from '../../helpers/tiny-models.js';

const tmp = tempDir('upcycle-session-cache-');
process.env['UPCYCLE_CACHE_DIR'] = join(tmp.dir, 'cache');
after(tmp.cleanup);

/** Stand-ins for ORT sessions: the cache only looks at `released` and calls `release()`. */
function fakeCreate(): { create: (p: string) => Promise<OrtSession>; made: { released: boolean }[] } {
  const made: { released: boolean }[] = [];
  const create = async () => {
    const s = { released: false, release: async () => { s.released = true; } };
    made.push(s);
    return s as unknown as OrtSession;
  };
  return { create, made };
}

test('leases keep a session from the idle sweep; the last lease ending makes it collectable', async () => {
  const { create, made } = fakeCreate();
  const cache = new SessionCache({ create });
  const a = await cache.acquire('/m/model.onnx');
  const b = await cache.acquire('/m/model.onnx');
  assert.equal(a.session, b.session);
  assert.equal(made.length, 1);
  assert.equal(await cache.releaseIdle(0), 0, 'held by two leases');
  a.release();
  a.release(); // idempotent: must not end b's hold
  assert.equal(await cache.releaseIdle(0), 0, 'still held by b');
  b.release();
  assert.equal(await cache.releaseIdle(60_000), 0, 'idle, but not for a minute yet');
  assert.equal(await cache.releaseIdle(0), 1);
  assert.equal(made[0]!.released, true);
  assert.equal(cache.size, 0);
  // A new acquire creates a new session.
  const c = await cache.acquire('/m/model.onnx');
  assert.notEqual(c.session, a.session);
  // An explicit release frees even a held session.
  assert.equal(await cache.release('/m/model.onnx'), 1);
  assert.equal(made[1]!.released, true);
  c.release();
});

test('an idle sweep during a session\'s creation does not release the session an acquire is waiting for', async () => {
  let finish!: () => void;
  const made: { released: boolean }[] = [];
  const create = () => new Promise<OrtSession>((resolve) => {
    const s = { released: false, release: async () => { s.released = true; } };
    made.push(s);
    finish = () => resolve(s as unknown as OrtSession);
  });
  const cache = new SessionCache({ create });
  const pending = cache.acquire('/m/slow.onnx');
  assert.equal(await Promise.race([cache.releaseIdle(0), new Promise((r) => setTimeout(() => r('sweep waits'), 20))]), 0, 'the leased entry is skipped');
  finish();
  const lease = await pending;
  assert.equal(lease.session.released, false);
  assert.equal(made.length, 1);
  lease.release();
  assert.equal(await cache.releaseIdle(0), 1);
});

test('with idleMs, a session no lease holds is released by the timer', async () => {
  const { create, made } = fakeCreate();
  const cache = new SessionCache({ create, idleMs: 5 });
  const held = await cache.acquire('/m/held.onnx');
  (await cache.acquire('/m/idle.onnx')).release();
  for (let i = 0; i < 500 && cache.size > 1; i++) await new Promise((r) => setTimeout(r, 10));
  assert.equal(cache.size, 1, 'the idle session was released by the timer');
  assert.deepEqual(made.map((s) => s.released), [false, true]);
  held.release();
  for (let i = 0; i < 500 && cache.size > 0; i++) await new Promise((r) => setTimeout(r, 10));
  assert.equal(cache.size, 0);
  assert.equal(made[0]!.released, true);
});

test('loadModelSession with a cache shares one ORT session between loads; release() ends the lease only', async () => {
  const dir = join(tmp.dir, 'llama');
  await writeTinyModel(dir, { architectures: ['LlamaForCausalLM'], model_type: 'llama', vocab_size: 64, hidden_size: 32, intermediate_size: 48, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, rms_norm_eps: 1e-6, rope_theta: 10000, max_position_embeddings: 64 }, 3);
  const cache = new SessionCache();
  const a = await loadModelSession(dir, { kvCache: true, cache });
  const b = await loadModelSession(dir, { kvCache: true, cache });
  assert.equal(a.session, b.session, 'the same graph and options share a session');
  const other = await loadModelSession(dir, { kvCache: false, cache });
  assert.notEqual(other.session, a.session, 'another graph gets its own');
  assert.equal(cache.size, 2);
  await a.release();
  assert.equal(a.session.released, false, 'b still holds it');
  await b.release();
  await other.release();
  assert.equal(a.session.released, false, 'cached until swept or released');
  assert.equal(await cache.releaseIdle(0), 2);
  assert.equal(a.session.released, true);
  assert.equal(other.session.released, true);
  // Without a cache, release() frees the private session.
  const own = await loadModelSession(dir, { kvCache: true });
  await own.release();
  assert.equal(own.session.released, true);
});
