/** Where the app keeps its own state (history database, autosaves): per user, outside any repository. */
import { homedir } from 'node:os';
import { join } from 'node:path';

export function dataDir(...parts: string[]): string {
  const root = process.env['UPCYCLE_DATA_DIR'] ?? join(process.env['XDG_DATA_HOME'] ?? join(homedir(), '.local', 'share'), 'upcycle-studio');
  return join(root, ...parts);
}

export function defaultHistoryPath(): string {
  return dataDir('history.sqlite');
}
