import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import { DEMO, ROOT, adapter, model } from '../../helpers/paths.js';

function upcycle(...args: string[]) {
  return spawnSync(process.execPath, [join(ROOT, 'bin', 'upcycle.js'), ...args], { encoding: 'utf8', cwd: ROOT });
}

test('upcycle eval --json prints the documented shape, with routing for an MoE', () => {
  const r = upcycle('eval', model('moe-4x'), '--task', join(DEMO, 'eval', 'sort.gen.jsonl'), '--task', join(DEMO, 'eval', 'add.mc.jsonl'), '--task', join(DEMO, 'eval', 'rev.text.jsonl'), '--limit', '10', '--json');
  assert.equal(r.status, 0, r.stderr);
  const j = JSON.parse(r.stdout);
  assert.deepEqual(Object.keys(j.tasks).sort(), ['add.mc', 'rev.text', 'sort.gen']);
  assert.equal(j.tasks['sort.gen'].n, 10);
  assert.equal(typeof j.tasks['sort.gen'].exact_match, 'number');
  assert.equal(typeof j.tasks['add.mc'].acc_norm, 'number');
  assert.equal(typeof j.tasks['rev.text'].perplexity, 'number');
  assert.equal(typeof j.tasks['rev.text'].bits_per_byte, 'number');
  assert.equal(j.routing.layers.length, 4);
  assert.equal(j.routing.layers[0].load.length, 4);
});

test('upcycle eval with an adapter, and a visible CPU fallback for an unavailable provider', () => {
  const r = upcycle('eval', model('base'), '--adapter', adapter('lora-sort'), '--task', join(DEMO, 'eval', 'sort.gen.jsonl'), '--limit', '10', '--provider', 'dml', '--json');
  assert.equal(r.status, 0, r.stderr);
  assert.equal(JSON.parse(r.stdout).tasks['sort.gen'].exact_match, 1);
  assert.match(r.stderr, /dml could not be used .*running on CPU/);
});

test('upcycle eval errors name the file', () => {
  const r = upcycle('eval', model('base'), '--task', join(DEMO, 'eval', 'missing.jsonl'));
  assert.equal(r.status, 1);
  assert.match(r.stderr, /missing\.jsonl/);
  const r2 = upcycle('eval', model('base'), '--adapter', join(DEMO, 'models', 'spec-add'), '--task', join(DEMO, 'eval', 'add.gen.jsonl'));
  assert.equal(r2.status, 1);
  assert.match(r2.stderr, /not a PEFT LoRA adapter/);
});
