/** `upcycle moe CONFIG.yml OUT_DIR` — mergekit-moe YAML plus our extensions (see app/moe/config.ts). */
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { parseByteSize } from '../io/safetensors-writer.js';
import type { Command } from './main.js';

export const moeCommand: Command = {
  name: 'moe',
  summary: 'Upcycle dense experts (models or LoRA adapters) into a Mixtral or Qwen2-MoE, with routers from random, uniform, prompts, hidden states or calibrated on seed data.',
  usage: 'upcycle moe CONFIG.yml OUT_DIR [--shard-size 5GB] [--overwrite] [--json]',
  async run(args) {
    const { values, positionals } = parseArgs({ args, options: { 'shard-size': { type: 'string' }, overwrite: { type: 'boolean' }, json: { type: 'boolean' } }, allowPositionals: true });
    if (positionals.length !== 2) throw new Error('expected CONFIG.yml and OUT_DIR');
    const [configPath, outDir] = positionals as [string, string];
    const { parseMoeYaml } = await import('../moe/config.js');
    const { buildMoe } = await import('../moe/assemble.js');
    let text: string;
    try {
      text = await readFile(configPath, 'utf8');
    } catch (e) {
      throw new Error(`${configPath}: cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
    }
    // `routing: sequence` is MoIN's sequence-level routing: one expert per query, its own command.
    const { parse } = await import('yaml');
    let doc: { routing?: unknown } | null = null;
    try {
      doc = parse(text) as { routing?: unknown } | null;
    } catch {
      // parseMoeYaml below reports it, naming the file.
    }
    if (doc && doc.routing === 'sequence') return (await import('./moin.js')).moinCommand.run(['build', ...args]);
    const recipe = parseMoeYaml(text, configPath);
    const ac = new AbortController();
    const onSigint = () => ac.abort(new Error('cancelled by the user'));
    process.once('SIGINT', onSigint);
    const tty = process.stderr.isTTY;
    try {
      const r = await buildMoe(recipe, outDir, {
        overwrite: values.overwrite,
        shardBytes: values['shard-size'] ? parseByteSize(values['shard-size']) : undefined,
        signal: ac.signal,
        onWarning: (m) => process.stderr.write(`${tty ? '\r\x1b[K' : ''}warning: ${m}\n`),
        onProgress: (p) => {
          if (tty) process.stderr.write(`\r\x1b[K${p.phase} ${p.done}/${p.total}${p.detail ? `  ${p.detail}` : ''}`);
        },
      });
      if (tty) process.stderr.write('\r\x1b[K');
      for (const n of r.notices) if (n !== r.drift.warning) process.stderr.write(`note: ${n}\n`);
      if (values.json) console.log(JSON.stringify(r, null, 2));
      else {
        console.log(`built ${r.architecture.arch} with ${r.numExperts} experts (top-${r.topK}) in ${r.out} (${r.seconds.toFixed(1)} s)\n  architecture: ${r.architecture.reason}`);
        if (r.routingAccuracy) console.log(`  routing accuracy on seed data per layer: ${r.routingAccuracy.map((a) => `${(100 * a).toFixed(1)}%`).join(' ')}`);
        for (const d of r.drift.experts) console.log(`  drift ${d.expert}: non-FFN max ${(100 * d.nonFfnMax).toFixed(2)}%`);
      }
      return 0;
    } finally {
      process.off('SIGINT', onSigint);
    }
  },
};
