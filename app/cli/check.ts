/** `upcycle check BASE OTHER…`: every difference that would make a merge or MoE meaningless. */
import { parseArgs } from 'node:util';
import { checkCompatibility } from '../io/compat-check.js';
import type { Command } from './main.js';

export const checkCommand: Command = {
  name: 'check',
  summary: 'Check that checkpoints (models or adapters) fit together: family, tensor names and shapes, vocab, tokenizer.',
  usage: 'upcycle check BASE OTHER [OTHER…] [--json]',
  async run(args) {
    const { values, positionals } = parseArgs({ args, options: { json: { type: 'boolean' } }, allowPositionals: true });
    if (positionals.length < 2) throw new Error('expected a base checkpoint and at least one other');
    const report = await checkCompatibility(positionals[0]!, positionals.slice(1));
    if (values.json) console.log(JSON.stringify(report, null, 2));
    else {
      for (const r of report.pairs) {
        console.log(`${r.base} ↔ ${r.other}: ${r.differences.length === 0 ? 'compatible' : ''}`);
        for (const d of r.differences) console.log(`  ${d.severity.padEnd(7)} ${d.message}\n          ${d.meaning}`);
      }
    }
    return report.ok ? 0 : 3;
  },
};
