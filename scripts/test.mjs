#!/usr/bin/env node
// The whole test suite, as the README and CI run it: lint (with the layering rules), typecheck
// (which also builds), then every test file under build/test with node's test runner. Ends with one
// plain line "N passed, N failed, N skipped" totalled over all suites, which CI reads.
//   node scripts/test.mjs [--only unit|interop|e2e] [filter substring…]
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { tmpdir } from 'node:os';

const root = new URL('..', import.meta.url).pathname;
const args = process.argv.slice(2);
const filters = args.filter((a) => !a.startsWith('--'));
let passed = 0;
let failed = 0;
let skipped = 0;

function step(name, cmd, cmdArgs) {
  console.log(`\n▶ ${name}: ${cmd} ${cmdArgs.join(' ')}`);
  const r = spawnSync(cmd, cmdArgs, { cwd: root, stdio: 'inherit' });
  if (r.status === 0) passed++;
  else {
    failed++;
    console.log(`✖ ${name} failed (exit ${r.status})`);
  }
  return r.status === 0;
}

function findTests(dir) {
  const out = [];
  for (const e of readdirSync(dir)) {
    const p = join(dir, e);
    if (statSync(p).isDirectory()) out.push(...findTests(p));
    else if (e.endsWith('.test.js')) out.push(p);
  }
  return out.sort();
}

const bin = (name) => join(root, 'node_modules', '.bin', name);
step('lint', bin('eslint'), ['--max-warnings=0', '.']);
const built = step('typecheck', bin('tsc'), ['-b', '--pretty']);
step('typecheck ui', bin('tsc'), ['-p', 'renderer/tsconfig.json']);
// The browser tests serve the real UI build.
step('build ui', process.execPath, [join(root, 'scripts', 'build-ui.mjs'), '--quiet']);

if (built) {
  let files = findTests(join(root, 'build', 'test'));
  if (filters.length) files = files.filter((f) => filters.some((s) => f.includes(s)));
  const counts = join(tmpdir(), `upcycle-test-counts-${process.pid}.json`);
  console.log(`\n▶ node --test (${files.length} files)`);
  const r = spawnSync(process.execPath, [
    '--test', '--test-timeout=900000',
    '--test-reporter=spec', '--test-reporter-destination=stdout',
    `--test-reporter=${join(root, 'scripts', 'count-reporter.mjs')}`, `--test-reporter-destination=${counts}`,
    ...files.map((f) => relative(root, f)),
  ], { cwd: root, stdio: 'inherit', env: { ...process.env, UPCYCLE_TEST: '1' } });
  try {
    const c = JSON.parse(readFileSync(counts, 'utf8'));
    passed += c.passed;
    failed += c.failed;
    skipped += c.skipped;
    rmSync(counts, { force: true });
  } catch {
    failed++;
    console.log(`✖ node --test produced no counts (exit ${r.status})`);
  }
  if (r.status !== 0 && failed === 0) failed++;
}

console.log(`\n${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(failed === 0 ? 0 : 1);
