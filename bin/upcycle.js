#!/usr/bin/env node
// The `upcycle` command. The engine is TypeScript compiled to build/ by `npm ci` (the prepare script).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const entry = new URL('../build/app/cli/main.js', import.meta.url);
if (!existsSync(fileURLToPath(entry))) {
  console.error('upcycle: the engine is not built yet — run `npm run build` in the repository (npm ci does it too).');
  process.exit(2);
}
const { main } = await import(entry.href);
process.exitCode = await main(process.argv.slice(2));
