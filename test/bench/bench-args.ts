/**
 * Command-line flags of the bench scripts: `--name value` or `--name=value`, boolean switches, `--help`
 * printing the usage, unknown flags refused — node:util's parseArgs in strict mode, plus the number
 * checks every bench repeats.
 */
import { parseArgs } from 'node:util';

export interface BenchArgs {
  /** String values by flag name (absent when not given). */
  values: Record<string, string | undefined>;
  /** Switches that were given. */
  flags: Set<string>;
  /** A positive number (`integer` for whole numbers), or the default. */
  num(name: string, def: number, opts?: { integer?: boolean }): number;
}

/**
 * Parses argv (without node and the script). `valueFlags` take a value, `switches` do not; `--help` prints
 * `usage` and exits.
 */
export function benchArgs(argv: string[], usage: string, valueFlags: string[], switches: string[] = []): BenchArgs {
  const options: Record<string, { type: 'string' | 'boolean' }> = { help: { type: 'boolean' } };
  for (const f of valueFlags) options[f] = { type: 'string' };
  for (const f of switches) options[f] = { type: 'boolean' };
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({ args: argv, options, strict: true, allowPositionals: false });
  } catch (e) {
    throw new Error(`${(e as Error).message}\n${usage}`);
  }
  if (parsed.values['help']) {
    console.log(usage);
    process.exit(0);
  }
  const values: Record<string, string | undefined> = {};
  const flags = new Set<string>();
  for (const [k, v] of Object.entries(parsed.values)) {
    if (typeof v === 'string') values[k] = v;
    else if (v === true && k !== 'help') flags.add(k);
  }
  return {
    values,
    flags,
    num(name, def, opts = {}) {
      const raw = values[name];
      const n = raw === undefined ? def : Number(raw);
      if (!Number.isFinite(n) || n <= 0 || (opts.integer && !Number.isInteger(n))) throw new Error(`--${name} must be a positive ${opts.integer ? 'integer' : 'number'}, got "${raw}"`);
      return n;
    },
  };
}
