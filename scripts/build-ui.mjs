#!/usr/bin/env node
// Builds the renderer (renderer/ → renderer/dist, served by `upcycle serve` and loaded by Electron):
// `npm run build:ui`. Type-check it separately with `npm run typecheck:ui`.
import { fileURLToPath } from 'node:url';
import { build } from 'vite';

const configFile = fileURLToPath(new URL('../renderer/vite.config.ts', import.meta.url));
await build({ configFile, logLevel: process.argv.includes('--quiet') ? 'warn' : 'info' });
