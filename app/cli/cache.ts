/**
 * `upcycle cache [prune|clear] [--max-gb N] [--json]`: what the engine's cache holds (pipeline
 * artefacts, runtime graph folders) and pruning it. Runs prune it to UPCYCLE_CACHE_MAX_GB by themselves.
 */
import { parseArgs } from 'node:util';
import { cacheDir } from '../io/cache-dir.js';
import { cacheBudget, cacheSize as size, CACHE_AREAS, scanCache, pruneCache, type CacheEntry, type PruneResult } from '../io/cache-prune.js';
import type { Command } from './main.js';

const GIB = 1024 ** 3;

function summary(entries: CacheEntry[]) {
  return Object.fromEntries(CACHE_AREAS.map((area) => {
    const mine = entries.filter((e) => e.area === area);
    return [area, {
      entries: mine.length,
      bytes: mine.reduce((n, e) => n + e.bytes, 0),
      linked_bytes: mine.reduce((n, e) => n + e.linkedBytes, 0),
      stale: mine.filter((e) => e.stale).length,
    }];
  }));
}

export const cacheCommand: Command = {
  name: 'cache',
  summary: 'Show or prune the engine cache (pipeline artefacts, runtime graphs).',
  usage: [
    'upcycle cache [--json]            what the cache holds, per area',
    '       upcycle cache prune [--max-gb N]  remove stale graphs, then least recently used entries, down to N GiB',
    '                                         (default UPCYCLE_CACHE_MAX_GB, else 40); entries used in the last 10 minutes stay',
    '       upcycle cache clear               remove every entry not used in the last minute',
    '',
    'Sizes count the bytes only the cache holds: graph folders hard-link the evaluated model\'s weights, which',
    'cost nothing while the model exists ("linked"). Location: UPCYCLE_CACHE_DIR, else $XDG_CACHE_HOME/upcycle-studio.',
  ].join('\n'),
  async run(args) {
    const { values, positionals } = parseArgs({ args, options: { json: { type: 'boolean' }, 'max-gb': { type: 'string' } }, allowPositionals: true });
    const action = positionals[0] ?? 'show';
    if (!['show', 'prune', 'clear'].includes(action) || positionals.length > 1) throw new Error(`unknown cache action "${positionals.join(' ')}": use prune or clear, or nothing to show the cache`);
    let result: PruneResult | undefined;
    let budget = cacheBudget();
    if (values['max-gb'] !== undefined) {
      if (action !== 'prune') throw new Error('--max-gb goes with `upcycle cache prune`');
      const gb = Number(values['max-gb']);
      if (!Number.isFinite(gb) || gb < 0) throw new Error(`--max-gb must be a number of GiB ≥ 0, not "${values['max-gb']}"`);
      budget = gb * GIB;
    }
    if (action === 'prune') result = await pruneCache({ maxBytes: budget });
    if (action === 'clear') result = await pruneCache({ maxBytes: 0, minAgeMs: 60_000 });
    const { entries, heldBytes } = result ? { entries: result.kept, heldBytes: result.remainingBytes } : await scanCache();
    const areas = summary(entries);
    if (values.json) {
      console.log(JSON.stringify({
        dir: cacheDir(), budget_bytes: budget, held_bytes: heldBytes, areas,
        ...(result ? { removed: result.removed.map((e) => ({ area: e.area, path: e.path, bytes: e.bytes, stale: e.stale })), freed_bytes: result.freedBytes } : {}),
      }, null, 2));
      return 0;
    }
    if (result) console.log(`removed ${result.removed.length} entr${result.removed.length === 1 ? 'y' : 'ies'}, freed ${size(result.freedBytes)}`);
    console.log(`cache ${cacheDir()}: ${size(heldBytes)} held only by the cache (budget ${size(budget)})`);
    for (const [area, a] of Object.entries(areas)) {
      console.log(`  ${area.padEnd(10)} ${String(a.entries).padStart(5)} entries  ${size(a.bytes).padStart(11)} own${a.linked_bytes ? `  + ${size(a.linked_bytes)} linked` : ''}${a.stale ? `  (${a.stale} stale)` : ''}`);
    }
    return 0;
  },
};
