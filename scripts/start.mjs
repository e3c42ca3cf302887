#!/usr/bin/env node
// `npm start`: the desktop app when Electron's binary is installed, else the same UI in the browser
// (server mode), saying why. Electron's binary cannot be downloaded on restricted machines.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const require = createRequire(import.meta.url);
let electron;
let reason = '';
try {
  electron = require('electron'); // the binary's path, or throws when it was never downloaded
  if (typeof electron !== 'string' || !existsSync(electron)) {
    reason = `Electron's binary is missing (${electron})`;
    electron = undefined;
  }
} catch (e) {
  reason = `Electron's binary is not installed (${String(e.message).split('\n')[0]})`;
}
if (!existsSync(`${root}/renderer/dist/index.html`)) {
  console.error('The UI is not built yet: run `npm run build:ui` first.');
  process.exit(1);
}
if (electron) {
  const child = spawn(electron, [root], { stdio: 'inherit' });
  child.on('exit', (code) => process.exit(code ?? 0));
} else {
  console.log(`${reason}: starting the browser UI instead (install Electron's binary with \`npx install-electron\` for the desktop app).`);
  const child = spawn(process.execPath, [`${root}/bin/upcycle.js`, 'serve', '--open', ...process.argv.slice(2)], { stdio: 'inherit' });
  child.on('exit', (code) => process.exit(code ?? 0));
  process.on('SIGINT', () => child.kill('SIGINT'));
}
