/**
 * What the interop tests share: finding the Python oracle (scripts/python-oracle.sh installs it on
 * first use and prints its python last), a per-run work folder that also isolates our graph cache, and
 * running the oracle without blocking the event loop (our side computes meanwhile).
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import { ROOT } from './paths.js';

export const ORACLE_SCRIPT = join(ROOT, 'scripts', 'python-oracle.sh');

export const tail = (s: string, n = 15) => s.trim().split('\n').slice(-n).join('\n');

/** The oracle's python, or why there is none (environmental failures only: a test skips, naming them). */
export function oraclePython(comparison: string): { python?: string; skip?: string } {
  if (process.platform === 'win32') return { skip: 'the Python oracle script is bash-only' };
  if (!existsSync(ORACLE_SCRIPT)) return { skip: `${ORACLE_SCRIPT} is missing` };
  const r = spawnSync('bash', [ORACLE_SCRIPT], { encoding: 'utf8', timeout: 40 * 60_000, maxBuffer: 64 << 20 });
  const lines = (r.stdout ?? '').trim().split('\n');
  const python = lines[lines.length - 1]?.trim();
  if (r.error || r.status !== 0 || !python || !existsSync(python)) {
    const why = r.error ? r.error.message : `exit ${r.status}${r.signal ? ` (${r.signal})` : ''}`;
    return { skip: `Python oracle unavailable (scripts/python-oracle.sh: ${why}); ${comparison} not run.\n${tail(r.stderr ?? '')}` };
  }
  return { python };
}

/** The environment the oracle scripts run in: offline, quiet. */
export const oracleEnv = (verbosity = 'error'): NodeJS.ProcessEnv => ({ ...process.env, HF_HUB_OFFLINE: '1', TRANSFORMERS_VERBOSITY: verbosity, TQDM_DISABLE: '1' });

/** Runs a command without blocking the event loop; keeps the last 200 kB of its stderr. */
export function runQuiet(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<{ status: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr = (stderr + d).slice(-200_000);
    });
    child.on('error', (e) => resolve({ status: -1, stderr: `${stderr}\n${e.message}` }));
    child.on('close', (status) => resolve({ status, stderr }));
  });
}

/**
 * This run's work folder; graphs built meanwhile go to its cache, not the user's. Removed after the
 * tests unless UPCYCLE_INTEROP_KEEP=1, which keeps it (and says where) for a closer look.
 */
export function interopWorkDir(prefix: string, label: string): string {
  const work = mkdtempSync(join(tmpdir(), prefix));
  process.env['UPCYCLE_CACHE_DIR'] = join(work, 'cache');
  if (process.env['UPCYCLE_INTEROP_KEEP']) console.log(`# ${label}: outputs kept in ${work}`);
  else after(() => rmSync(work, { recursive: true, force: true }));
  return work;
}
