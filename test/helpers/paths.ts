/** Paths shared by the tests: the repository root and the bundled demo fixtures. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Repository root (tests run from build/test/…). */
export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const DEMO = join(ROOT, 'resources', 'demo');
export const MODELS = join(DEMO, 'models');
export const ADAPTERS = join(DEMO, 'adapters');
export const model = (name: string): string => join(MODELS, name);
export const adapter = (name: string): string => join(ADAPTERS, name);

/** A fresh temporary folder, removed by the returned cleanup. */
export function tempDir(prefix = 'upcycle-test-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}
