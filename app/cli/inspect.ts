/** `upcycle inspect PATH [--json]`: what a checkpoint is, from its configs and headers only. */
import { parseArgs } from 'node:util';
import { inspectCheckpoint, formatInspection } from '../io/inspect.js';
import type { Command } from './main.js';

export const inspectCommand: Command = {
  name: 'inspect',
  summary: 'Show what a model folder, PEFT adapter or .safetensors file is. Reads configs and headers only.',
  usage: 'upcycle inspect PATH [--json]',
  async run(args) {
    const { values, positionals } = parseArgs({ args, options: { json: { type: 'boolean' } }, allowPositionals: true });
    if (positionals.length !== 1) throw new Error('expected one PATH (a model folder, an adapter folder or a .safetensors file)');
    const report = await inspectCheckpoint(positionals[0]!);
    console.log(values.json ? JSON.stringify(report, null, 2) : formatInspection(report));
    return 0;
  },
};
