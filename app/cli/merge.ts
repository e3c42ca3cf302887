/** `upcycle merge CONFIG.yml OUT_DIR [--seed N] [--shard-size 5GB] [--dtype bfloat16]` */
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { parseDTypeName } from '../core/dtypes.js';
import { humanBytes } from '../io/inspect.js';
import { parseByteSize } from '../io/safetensors-writer.js';
import type { Command } from './main.js';

export const mergeCommand: Command = {
  name: 'merge',
  summary: 'Merge models with a mergekit YAML config (linear, ties, dare, slerp, model_stock, della, …), streaming.',
  usage: 'upcycle merge CONFIG.yml OUT_DIR [--seed N] [--shard-size 5GB] [--dtype float32|float16|bfloat16] [--workers N] [--overwrite] [--json]',
  async run(args) {
    const { values, positionals } = parseArgs({
      args,
      options: { seed: { type: 'string' }, 'shard-size': { type: 'string' }, dtype: { type: 'string' }, workers: { type: 'string' }, overwrite: { type: 'boolean' }, json: { type: 'boolean' } },
      allowPositionals: true,
    });
    if (positionals.length !== 2) throw new Error('expected CONFIG.yml and OUT_DIR');
    const [configPath, outDir] = positionals as [string, string];
    const seed = values.seed !== undefined ? Number(values.seed) : undefined;
    if (seed !== undefined && !Number.isInteger(seed)) throw new Error('--seed must be an integer');
    const outDtype = values.dtype ? parseDTypeName(values.dtype) : undefined;
    if (values.dtype && (!outDtype || !['F32', 'F16', 'BF16'].includes(outDtype))) throw new Error(`--dtype ${values.dtype} is not one of float32, float16, bfloat16`);
    const workers = values.workers ? Number(values.workers) : undefined;
    const { parseMergeYaml } = await import('../merge/config.js');
    const { runMerge } = await import('../merge/execute.js');
    let text: string;
    try {
      text = await readFile(configPath, 'utf8');
    } catch (e) {
      throw new Error(`${configPath}: cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
    }
    const recipe = parseMergeYaml(text, configPath);
    const ac = new AbortController();
    const onSigint = () => ac.abort(new Error('cancelled by the user'));
    process.once('SIGINT', onSigint);
    const tty = process.stderr.isTTY;
    try {
      const r = await runMerge(recipe, outDir, {
        seed,
        outDtype,
        workers,
        overwrite: values.overwrite,
        shardBytes: values['shard-size'] ? parseByteSize(values['shard-size']) : undefined,
        signal: ac.signal,
        onProgress: (p) => {
          if (!tty || p.phase !== 'merging') return;
          const pct = p.bytesTotal ? ((100 * p.bytesDone) / p.bytesTotal).toFixed(0) : '0';
          process.stderr.write(`\r\x1b[K${p.phase} ${p.tensorsDone}/${p.tensorsTotal} tensors  ${pct}%  ETA ${p.etaSeconds?.toFixed(0) ?? '?'} s`);
        },
      });
      if (tty) process.stderr.write('\r\x1b[K');
      for (const n of r.notices) process.stderr.write(`note: ${n}\n`);
      if (values.json) console.log(JSON.stringify(r, null, 2));
      else console.log(`merged ${r.tensors} tensors (${humanBytes(r.bytesWritten)}) into ${r.out} in ${r.seconds.toFixed(1)} s\n  files: ${r.files.join(', ')}`);
      return 0;
    } finally {
      process.off('SIGINT', onSigint);
    }
  },
};
