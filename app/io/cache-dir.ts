/** Where the engine keeps derived files (ONNX graphs beside hard links to weights, etc.). */
import { homedir } from 'node:os';
import { join } from 'node:path';

export function cacheDir(...parts: string[]): string {
  const root = process.env['UPCYCLE_CACHE_DIR'] ?? join(process.env['XDG_CACHE_HOME'] ?? join(homedir(), '.cache'), 'upcycle-studio');
  return join(root, ...parts);
}
