/** Opens checkpoints (headers only) and runs the compatibility check of app/core/compat.ts. */
import { checkAdapterAgainstBase, compareCheckpoints, type Difference } from '../core/compat.js';
import { Checkpoint } from './checkpoint.js';
import { summarize } from './summary.js';

export interface CompatReport {
  ok: boolean;
  pairs: { base: string; other: string; differences: Difference[] }[];
}

export async function checkCompatibility(basePath: string, others: string[]): Promise<CompatReport> {
  const opened: Checkpoint[] = [];
  try {
    const base = await Checkpoint.open(basePath);
    opened.push(base);
    const b = summarize(base);
    const pairs: CompatReport['pairs'] = [];
    for (const p of others) {
      const ck = await Checkpoint.open(p);
      opened.push(ck);
      const s = summarize(ck);
      const differences = ck.kind === 'adapter' ? checkAdapterAgainstBase(s, b) : compareCheckpoints(b, s);
      pairs.push({ base: base.path, other: ck.path, differences });
    }
    return { ok: pairs.every((p) => p.differences.every((d) => d.severity !== 'error')), pairs };
  } finally {
    await Promise.all(opened.map((c) => c.close()));
  }
}
