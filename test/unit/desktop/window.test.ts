import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { CONTENT_SECURITY_POLICY, isAllowedNavigation, windowOptions } from '../../../main/window-options.js';
import { ROOT } from '../../helpers/paths.js';

test('the desktop window is locked down: isolation, sandbox, no node, web security, strict CSP, no navigation away', () => {
  const w = windowOptions('/x/preload.cjs').webPreferences!;
  assert.equal(w.contextIsolation, true);
  assert.equal(w.sandbox, true);
  assert.equal(w.nodeIntegration, false);
  assert.equal(w.nodeIntegrationInWorker, false);
  assert.equal(w.webSecurity, true);
  assert.equal(w.allowRunningInsecureContent, false);
  assert.equal(w.webviewTag, false);
  assert.equal(w.preload, '/x/preload.cjs');
  assert.match(CONTENT_SECURITY_POLICY, /default-src 'self'/);
  assert.doesNotMatch(CONTENT_SECURITY_POLICY, /unsafe-eval|\*/);
  assert.equal(isAllowedNavigation('app://ui/index.html'), true);
  for (const bad of ['https://evil.example/', 'file:///etc/passwd', 'app://ui.evil/', 'javascript:alert(1)']) assert.equal(isAllowedNavigation(bad), false, bad);
});

test('Electron end-to-end (Playwright _electron) when the binary exists', async (t) => {
  const require = createRequire(import.meta.url);
  let bin: string | undefined;
  try {
    bin = require('electron') as string;
  } catch {
    bin = undefined;
  }
  if (!bin || !existsSync(bin) || !existsSync(join(ROOT, 'renderer', 'dist', 'index.html'))) {
    t.skip('Electron\'s binary is not installed on this machine (it cannot be downloaded here); the desktop shell is covered by the unit test above and by server-mode browser tests');
    return;
  }
  const { _electron } = await import('playwright-core');
  const app = await _electron.launch({ executablePath: bin, args: [ROOT] });
  try {
    const win = await app.firstWindow();
    await win.waitForLoadState('domcontentloaded');
    // The renderer has no Node, and sees only the contract the preload exposes.
    assert.equal(await win.evaluate('typeof require'), 'undefined');
    assert.equal(await win.evaluate('typeof window.upcycle.call'), 'function');
  } finally {
    await app.close();
  }
});
