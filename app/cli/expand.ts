/** `upcycle expand CONFIG.yml OUT_DIR [--seed N]` — UpIT's genetic expert expansion (see app/expand/run.ts). */
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { parseByteSize } from '../io/safetensors-writer.js';
import type { Command } from './main.js';

export const expandCommand: Command = {
  name: 'expand',
  summary: 'Grow K checkpoints of one base into M > K experts by genetic expansion (UpIT: DARE-merge the most dissimilar pair, keep the most novel child).',
  usage: 'upcycle expand CONFIG.yml OUT_DIR [--seed N] [--workers N] [--shard-size 5GB] [--overwrite] [--json]',
  async run(args) {
    const { values, positionals } = parseArgs({
      args,
      options: { seed: { type: 'string' }, workers: { type: 'string' }, 'shard-size': { type: 'string' }, overwrite: { type: 'boolean' }, json: { type: 'boolean' } },
      allowPositionals: true,
    });
    if (positionals.length !== 2) throw new Error('expected CONFIG.yml and OUT_DIR');
    const [configPath, outDir] = positionals as [string, string];
    const seed = values.seed !== undefined ? Number(values.seed) : undefined;
    if (seed !== undefined && (!Number.isSafeInteger(seed) || seed < 0)) throw new Error('--seed must be a non-negative integer');
    const workers = values.workers !== undefined ? Number(values.workers) : undefined;
    if (workers !== undefined && (!Number.isInteger(workers) || workers < 1)) throw new Error('--workers must be a positive integer');
    const { parseExpandYaml } = await import('../expand/config.js');
    const { runExpansion } = await import('../expand/run.js');
    let text: string;
    try {
      text = await readFile(configPath, 'utf8');
    } catch (e) {
      throw new Error(`${configPath}: cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
    }
    const recipe = parseExpandYaml(text, configPath);
    const ac = new AbortController();
    const onSigint = () => ac.abort(new Error('cancelled by the user'));
    process.once('SIGINT', onSigint);
    const tty = process.stderr.isTTY;
    try {
      const r = await runExpansion(recipe, outDir, {
        seed,
        workers,
        overwrite: values.overwrite,
        shardBytes: values['shard-size'] ? parseByteSize(values['shard-size']) : undefined,
        signal: ac.signal,
        onProgress: (p) => {
          if (tty) process.stderr.write(`\r\x1b[K${(100 * p.fraction).toFixed(0).padStart(3)}%  gen ${p.generation}/${p.generations}  ${p.phase}${p.detail ? `  ${p.detail}` : ''}`);
        },
      });
      if (tty) process.stderr.write('\r\x1b[K');
      if (values.json) {
        console.log(JSON.stringify({ out: r.out, experts: r.experts, seconds: r.seconds, log: r.log }, null, 2));
        return 0;
      }
      const log = r.log;
      const lines = [
        `expanded ${log.config.models.length} checkpoints to ${log.config.num_experts} experts in ${r.out} (${r.seconds.toFixed(1)} s, seed ${log.config.seed})`,
        `  similarity on ${log.sampling.sampled_parameters} of ${log.sampling.total_parameters} parameters; diversity ${log.initial.diversity.toFixed(4)} → ${log.final.diversity.toFixed(4)}`,
      ];
      for (const g of log.generations) {
        lines.push(`  gen ${g.generation}: ${g.parents.names.join(' × ')} (cos ${g.parents.similarity.toFixed(4)}) → ${g.kept.name}, α ${g.kept.alpha.toFixed(3)}, max cos to the pool ${g.kept.max_similarity.toFixed(4)} (candidate ${g.kept.candidate + 1}/${g.candidates.length})`);
      }
      lines.push(`  log: ${r.out}/expansion_log.json`);
      console.log(lines.join('\n'));
      return 0;
    } finally {
      process.off('SIGINT', onSigint);
    }
  },
};
