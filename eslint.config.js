// Lint + the layering rules that keep the architecture true (docs/ARCHITECTURE.md):
// - app/core is pure: no node: built-ins, no native or desktop modules (it runs in workers, the renderer, anywhere);
// - only main/ may import electron;
// - only app/runtime/ort.ts may import onnxruntime-node, only app/store may import better-sqlite3.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const NODE_BUILTINS = ['assert', 'buffer', 'child_process', 'cluster', 'crypto', 'dgram', 'dns', 'events', 'fs', 'fs/promises', 'http', 'https', 'net', 'os', 'path', 'process', 'readline', 'stream', 'tls', 'url', 'util', 'v8', 'vm', 'worker_threads', 'zlib', 'module', 'perf_hooks'];
const electron = { name: 'electron', message: 'Only main/ may import electron: the engine runs headless and in the browser too.' };
const ort = { name: 'onnxruntime-node', message: 'Only app/runtime/ort.ts may import onnxruntime-node.' };
const sqlite = { name: 'better-sqlite3', message: 'Only app/store may import better-sqlite3.' };

export default tseslint.config(
  { ignores: ['build/**', 'dist/**', 'node_modules/**', 'resources/**', 'renderer/dist/**', '.cache/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts', '**/*.tsx'],
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-non-null-assertion': 'off',
      'no-restricted-imports': ['error', { paths: [electron, ort, sqlite] }],
    },
  },
  {
    files: ['app/core/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', {
        paths: [electron, ort, sqlite, ...NODE_BUILTINS.map((name) => ({ name, message: 'app/core is pure TypeScript: no Node built-ins.' }))],
        patterns: [{ group: ['node:*'], message: 'app/core is pure TypeScript: no Node built-ins (move I/O to app/io).' }, { group: ['**/io/*', '**/runtime/*', '**/store/*', '**/cli/*'], message: 'app/core may not depend on the layers above it.' }],
      }],
    },
  },
  { files: ['app/runtime/ort.ts'], rules: { 'no-restricted-imports': ['error', { paths: [electron, sqlite] }] } },
  { files: ['app/store/**/*.ts'], rules: { 'no-restricted-imports': ['error', { paths: [electron, ort] }] } },
  { files: ['main/**/*.ts'], rules: { 'no-restricted-imports': ['error', { paths: [ort, sqlite] }] } },
  {
    files: ['**/*.js', '**/*.mjs'],
    languageOptions: { globals: { console: 'readonly', process: 'readonly', URL: 'readonly', Buffer: 'readonly', setTimeout: 'readonly' } },
  },
);
