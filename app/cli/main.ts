/**
 * `upcycle` — the command-line door onto the engine. Commands are loaded lazily so that
 * `upcycle --help` and `upcycle inspect` start without loading onnxruntime or SQLite.
 */
import { isCheckpointError } from '../core/errors.js';

export interface Command {
  name: string;
  summary: string;
  usage: string;
  run(args: string[]): Promise<number>;
}

const COMMANDS: Record<string, () => Promise<Command>> = {
  inspect: async () => (await import('./inspect.js')).inspectCommand,
  check: async () => (await import('./check.js')).checkCommand,
  merge: async () => (await import('./merge.js')).mergeCommand,
  moe: async () => (await import('./moe.js')).moeCommand,
  expand: async () => (await import('./expand.js')).expandCommand,
  moin: async () => (await import('./moin.js')).moinCommand,
  evolve: async () => (await import('./evolve.js')).evolveCommand,
  eval: async () => (await import('./eval.js')).evalCommand,
  generate: async () => (await import('./generate.js')).generateCommand,
  export: async () => (await import('./export.js')).exportCommand,
  run: async () => (await import('./run.js')).runCommand,
  demo: async () => (await import('./run.js')).demoCommand,
  serve: async () => (await import('./serve.js')).serveCommand,
  cache: async () => (await import('./cache.js')).cacheCommand,
};

const SUMMARIES: Record<string, string> = {
  inspect: 'show what a model folder, adapter or .safetensors file is (reads headers only)',
  check: 'check that checkpoints can be merged or upcycled together (names, shapes, vocab, tokenizer)',
  merge: 'merge models with a mergekit YAML config (17 methods), streaming, atomic output',
  moe: 'upcycle dense experts or adapters into a Mixtral / Qwen2-MoE (six router modes incl. seed calibration)',
  expand: 'grow K checkpoints of one base into M > K experts (UpIT genetic expansion: DARE-merge the most dissimilar pair, keep the most novel child)',
  moin: 'sequence-level experts (MoIN): each query routed whole to one adapter/model by nearest centroid; build, eval, route, compare',
  evolve: 'CMA-ES search over merge parameters with a local fitness (Sakana-style, no GPU cluster)',
  eval: 'evaluate a model (or model + adapter) locally: perplexity, multiple choice, exact match, routing',
  generate: 'generate text from a prompt, streamed: greedy or sampled, stop strings, optionally through the chat template',
  export: 'export a model as an ONNX folder (weights stay in its safetensors files)',
  run: 'run a pipeline file headless (whole graph or one node), recorded in the run history',
  demo: 'run the bundled offline demo: MoE of four specialists vs base, specialists and TIES',
  serve: 'serve the workbench in a browser (local server, token-protected)',
  cache: 'show or prune the engine cache (pipeline artefacts, runtime graphs; kept under UPCYCLE_CACHE_MAX_GB)',
};

export function helpText(): string {
  const lines = [
    'Upcycle Studio — turn dense LLM checkpoints into Mixture-of-Experts models.',
    '',
    'Usage: upcycle <command> [options]',
    '',
    'Commands:',
    ...Object.keys(COMMANDS).map((c) => `  ${c.padEnd(10)} ${SUMMARIES[c]}`),
    '',
    'Run `upcycle <command> --help` for a command\'s options.',
  ];
  return lines.join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    console.log(helpText());
    return 0;
  }
  if (name === '--version' || name === '-v') {
    const { createRequire } = await import('node:module');
    const pkg = createRequire(import.meta.url)('../../../package.json') as { version: string };
    console.log(pkg.version);
    return 0;
  }
  const load = COMMANDS[name];
  if (!load) {
    console.error(`upcycle: unknown command "${name}". Run \`upcycle --help\` for the list.`);
    return 2;
  }
  const cmd = await load();
  if (rest.includes('--help') || rest.includes('-h')) {
    console.log(`${cmd.summary}\n\nUsage: ${cmd.usage}`);
    return 0;
  }
  try {
    return await cmd.run(rest);
  } catch (e) {
    console.error(`upcycle ${name}: ${errorLine(e)}`);
    return 1;
  }
}

/** One line for the user: typed errors carry the file and the fix; others their message. */
export function errorLine(e: unknown): string {
  if (isCheckpointError(e)) return e.message;
  if (e instanceof Error) return e.message.split('\n')[0] ?? String(e);
  return String(e);
}
