/**
 * The renderer's build: React via Vite's built-in JSX transform (automatic runtime, as in
 * tsconfig "jsx": "react-jsx"), relative asset URLs (served by `upcycle serve` and loaded from disk by
 * Electron), no inline scripts (the pages run under `default-src 'self'`).
 */
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const here = fileURLToPath(new URL('.', import.meta.url));

export default defineConfig({
  root: here,
  base: './',
  oxc: { jsx: { runtime: 'automatic', importSource: 'react' } },
  build: {
    // UI_NO_MINIFY=1 keeps names readable in CPU profiles (`npm run bench:ui -- --profile`).
    minify: process.env['UI_NO_MINIFY'] ? false : undefined,
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: true,
    chunkSizeWarningLimit: 1500,
    // Keep every script an external file: the CSP has no 'unsafe-inline' for scripts.
    modulePreload: { polyfill: false },
    assetsInlineLimit: 0,
    rolldownOptions: {
      onwarn(warning, warn) {
        // React Flow marks its entry "use client" (for React Server Components); meaningless here.
        if (warning.code === 'MODULE_LEVEL_DIRECTIVE') return;
        warn(warning);
      },
    },
  },
  server: { fs: { allow: [fileURLToPath(new URL('..', import.meta.url))] } },
});
