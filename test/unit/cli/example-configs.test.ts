/**
 * The example configs in resources/demo/configs (documented in docs/CONFIGS.md) must keep working:
 * each parses with its command's parser, every path it names exists inside the demo folder, the docs
 * list each one with the right command, and the cheapest ones run end to end through the CLI.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { test } from 'node:test';
import { parseEvolveYaml } from '../../../app/evolve/evolve.js';
import { parseExpandYaml } from '../../../app/expand/config.js';
import { parseMergeYaml } from '../../../app/merge/config.js';
import { parseMoeYaml } from '../../../app/moe/config.js';
import { parseMoinYaml } from '../../../app/moin/config.js';
import { DEMO, ROOT, tempDir } from '../../helpers/paths.js';

const CONFIGS = join(DEMO, 'configs');

type Kind = 'model' | 'adapter' | 'file';
interface Ref {
  what: string;
  path: string;
  kind: Kind;
}

/** The command that runs an example (by file name prefix) and the paths its parsed recipe references. */
function parseExample(file: string): { command: string; refs: Ref[] } {
  const path = join(CONFIGS, file);
  const text = readFileSync(path, 'utf8');
  if (file.startsWith('merge')) {
    const r = parseMergeYaml(text, path);
    const refs: Ref[] = [];
    for (const m of r.models) {
      refs.push({ what: m.label, path: m.path, kind: 'model' });
      if (m.lora) refs.push({ what: `${m.label} (adapter)`, path: m.lora, kind: 'adapter' });
    }
    return { command: 'merge', refs };
  }
  if (file.startsWith('moe')) {
    const r = parseMoeYaml(text, path);
    const refs: Ref[] = [{ what: 'base_model', path: r.base, kind: 'model' }];
    r.experts.forEach((e, i) => {
      if (e.model) refs.push({ what: `experts[${i}].source_model`, path: e.model, kind: 'model' });
      if (e.adapter) refs.push({ what: `experts[${i}].source_adapter`, path: e.adapter, kind: 'adapter' });
      if (e.seedData) refs.push({ what: `experts[${i}].seed_data`, path: e.seedData, kind: 'file' });
    });
    if (r.sharedExpert.kind === 'model') refs.push({ what: 'shared_experts[0].source_model', path: r.sharedExpert.model, kind: 'model' });
    return { command: 'moe', refs };
  }
  if (file.startsWith('expand')) {
    const r = parseExpandYaml(text, path);
    return {
      command: 'expand',
      refs: [
        { what: 'base_model', path: r.base, kind: 'model' },
        ...r.models.map((m, i): Ref => ({ what: `models[${i}]`, path: m.path, kind: 'model' })),
        ...r.seedData.map((p, i): Ref => ({ what: `seed_data[${i}]`, path: p, kind: 'file' })),
      ],
    };
  }
  if (file.startsWith('moin')) {
    const r = parseMoinYaml(text, path);
    const refs: Ref[] = [{ what: 'base_model', path: r.base, kind: 'model' }];
    r.experts.forEach((e, i) => {
      if (e.model) refs.push({ what: `experts[${i}].source_model`, path: e.model, kind: 'model' });
      if (e.adapter) refs.push({ what: `experts[${i}].source_adapter`, path: e.adapter, kind: 'adapter' });
      if (e.seedData) refs.push({ what: `experts[${i}].seed_data`, path: e.seedData, kind: 'file' });
    });
    if (r.router.method === 'kmeans') refs.push({ what: 'router.corpus', path: r.router.corpus, kind: 'file' });
    return { command: 'moin build', refs };
  }
  if (file.startsWith('evolve')) {
    const r = parseEvolveYaml(text, path);
    return {
      command: 'evolve',
      refs: [
        { what: 'base_model', path: r.base, kind: 'model' },
        ...r.models.map((p, i): Ref => ({ what: `models[${i}]`, path: p, kind: 'model' })),
        ...r.fitness.map((p, i): Ref => ({ what: `fitness[${i}]`, path: p, kind: 'file' })),
      ],
    };
  }
  throw new Error(`${file}: no parser known for this name; name examples merge-*, moe-*, expand*, moin*, evolve* (and add them to this test)`);
}

function examples(): string[] {
  return readdirSync(CONFIGS).filter((f) => /\.ya?ml$/.test(f)).sort();
}

function upcycle(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [join(ROOT, 'bin', 'upcycle.js'), ...args], { encoding: 'utf8', cwd: ROOT });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('every example config parses with its command\'s parser and names only existing demo files', () => {
  const files = examples();
  for (const f of ['merge-ties.yml', 'moe-calibrated.yml', 'moe-lora.yml', 'expand.yml', 'moin.yml', 'evolve.yml']) assert.ok(files.includes(f), `missing example ${f}`);
  for (const file of files) {
    const { refs } = parseExample(file);
    assert.ok(refs.length >= 3, `${file}: expected a base and experts/models, got ${refs.length} paths`);
    for (const r of refs) {
      const where = `${file}: ${r.what} → ${r.path}`;
      // Relative to the YAML and inside the demo, so the examples work from any checkout.
      assert.ok(!relative(DEMO, r.path).startsWith('..') && !relative(DEMO, r.path).startsWith(sep), `${where} is outside resources/demo`);
      assert.ok(existsSync(r.path), `${where} does not exist`);
      if (r.kind === 'model') assert.ok(existsSync(join(r.path, 'config.json')), `${where} is not a model folder (no config.json)`);
      else if (r.kind === 'adapter') assert.ok(existsSync(join(r.path, 'adapter_config.json')), `${where} is not a PEFT adapter folder`);
      else assert.ok(statSync(r.path).isFile() && readFileSync(r.path, 'utf8').trim().length > 0, `${where} is not a non-empty file`);
    }
  }
});

test('the examples are what docs/CONFIGS.md says they are', () => {
  const moe = parseMoeYaml(readFileSync(join(CONFIGS, 'moe-calibrated.yml'), 'utf8'), join(CONFIGS, 'moe-calibrated.yml'));
  assert.equal(moe.gateMode, 'calibrated');
  assert.deepEqual(moe.experts.map((e) => e.label), ['ffn-add', 'ffn-upper', 'ffn-rev', 'ffn-sort']);
  assert.ok(moe.experts.every((e) => e.seedData?.endsWith('.seed.jsonl')));
  const lora = parseMoeYaml(readFileSync(join(CONFIGS, 'moe-lora.yml'), 'utf8'), join(CONFIGS, 'moe-lora.yml'));
  assert.ok(lora.experts.every((e) => e.adapter !== undefined && e.model === undefined));
  const expand = parseExpandYaml(readFileSync(join(CONFIGS, 'expand.yml'), 'utf8'), join(CONFIGS, 'expand.yml'));
  assert.equal(expand.numExperts, 8);
  assert.equal(expand.models.length, 4);
  const evolve = parseEvolveYaml(readFileSync(join(CONFIGS, 'evolve.yml'), 'utf8'), join(CONFIGS, 'evolve.yml'));
  assert.equal(evolve.method, 'ties');
  assert.ok(evolve.budget <= 40, `keep the example's budget small (${evolve.budget})`);
});

test('docs/CONFIGS.md lists every example with the command that runs it', () => {
  const doc = readFileSync(join(ROOT, 'docs', 'CONFIGS.md'), 'utf8');
  for (const file of examples()) {
    const { command } = parseExample(file);
    assert.ok(doc.includes(`(../resources/demo/configs/${file})`), `docs/CONFIGS.md does not link ${file}`);
    assert.ok(doc.includes(`node bin/upcycle.js ${command} resources/demo/configs/${file} `), `docs/CONFIGS.md has no "upcycle ${command}" command line for ${file}`);
  }
  // And every example the docs name exists.
  for (const m of doc.matchAll(/resources\/demo\/configs\/([\w.-]+\.ya?ml)/g)) assert.ok(existsSync(join(CONFIGS, m[1]!)), `docs/CONFIGS.md names ${m[1]}, which does not exist`);
  assert.match(readFileSync(join(ROOT, 'README.md'), 'utf8'), /\(docs\/CONFIGS\.md\)/, 'README.md links docs/CONFIGS.md');
});

test('merge-ties.yml and moe-lora.yml run end to end through the CLI', () => {
  const { dir, cleanup } = tempDir();
  try {
    const merged = join(dir, 'merge-ties');
    const m = upcycle('merge', join(CONFIGS, 'merge-ties.yml'), merged);
    assert.equal(m.code, 0, m.stderr);
    assert.match(m.stdout, /merged 39 tensors/);
    assert.ok(existsSync(join(merged, 'config.json')));
    assert.ok(readdirSync(merged).some((f) => f.endsWith('.safetensors')), `no safetensors in ${readdirSync(merged).join(', ')}`);
    assert.equal(JSON.parse(readFileSync(join(merged, 'config.json'), 'utf8')).architectures[0], 'LlamaForCausalLM');

    const moe = join(dir, 'moe-lora');
    const r = upcycle('moe', join(CONFIGS, 'moe-lora.yml'), moe);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(readdirSync(moe).some((f) => f.endsWith('.safetensors')), `no safetensors in ${readdirSync(moe).join(', ')}`);
    const cfg = JSON.parse(readFileSync(join(moe, 'config.json'), 'utf8'));
    assert.deepEqual([cfg.architectures[0], cfg.num_local_experts, cfg.num_experts_per_tok], ['MixtralForCausalLM', 4, 2]);
  } finally {
    cleanup();
  }
});
