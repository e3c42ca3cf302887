import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { ROOT, adapter, model, tempDir } from '../../helpers/paths.js';

function upcycle(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [join(ROOT, 'bin', 'upcycle.js'), ...args], { encoding: 'utf8', cwd: ROOT });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('upcycle --help lists the commands', () => {
  const r = upcycle('--help');
  assert.equal(r.code, 0);
  assert.match(r.stdout, /inspect/);
  assert.match(r.stdout, /check/);
});

test('inspect --json prints one object with the documented keys', () => {
  const r = upcycle('inspect', model('base-sharded'), '--json');
  assert.equal(r.code, 0, r.stderr);
  const j = JSON.parse(r.stdout);
  for (const k of ['kind', 'architecture', 'model_type', 'num_parameters', 'dtypes', 'num_layers', 'hidden_size', 'vocab_size', 'num_tensors', 'total_bytes', 'tokenizer_sha256', 'problems']) {
    assert.ok(k in j, `missing key ${k}`);
  }
  assert.deepEqual([j.kind, j.architecture, j.model_type, j.num_parameters, j.num_layers, j.hidden_size, j.vocab_size, j.num_tensors], ['model', 'LlamaForCausalLM', 'llama', 458_592, 4, 96, 272, 39]);
  assert.deepEqual(j.dtypes, { F32: 39 });
  assert.equal(j.num_files, 2);
  assert.ok(j.bytes_read < 20_000, `headers only, read ${j.bytes_read}`);
  assert.deepEqual(j.problems, []);
});

test('inspect prints a readable summary for models, adapters and bare files', () => {
  const m = upcycle('inspect', model('moe-4x'));
  assert.equal(m.code, 0);
  assert.match(m.stdout, /MixtralForCausalLM/);
  assert.match(m.stdout, /experts\s+4/);
  const a = upcycle('inspect', adapter('lora-sort'));
  assert.match(a.stdout, /r=16 alpha=32 scaling=2/);
  const f = upcycle('inspect', join(model('base'), 'model.safetensors'), '--json');
  assert.equal(JSON.parse(f.stdout).kind, 'safetensors');
});

test('failures exit non-zero with one line naming the file', () => {
  const { dir, cleanup } = tempDir();
  try {
    const bad = join(dir, 'broken.safetensors');
    writeFileSync(bad, Buffer.from([1, 2, 3]));
    for (const p of [bad, join(dir, 'missing')]) {
      const r = upcycle('inspect', p);
      assert.equal(r.code, 1);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      assert.ok(r.stderr.includes(p), r.stderr);
    }
    assert.equal(upcycle('frobnicate').code, 2);
  } finally {
    cleanup();
  }
});

test('check exits 0 for compatible checkpoints and 3 when they are not', () => {
  assert.equal(upcycle('check', model('base'), model('ffn-add'), adapter('lora-add')).code, 0);
  const r = upcycle('check', model('base'), model('moe-4x'));
  assert.equal(r.code, 3);
  assert.match(r.stdout, /tensor names differ/);
});
