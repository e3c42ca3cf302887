/** `upcycle eval MODEL_DIR --task FILE.jsonl [--task …] [--adapter DIR] [--limit N] [--chat-template] [--json]` */
import { parseArgs } from 'node:util';
import type { EvalReport } from '../eval/evaluate.js';
import { runJob } from '../jobs/run-job.js';
import type { Command } from './main.js';

export const evalCommand: Command = {
  name: 'eval',
  summary: 'Evaluate a model (optionally + a LoRA adapter) locally on JSONL tasks: perplexity, multiple choice, exact match, MoE routing.',
  usage: 'upcycle eval MODEL_DIR --task FILE.jsonl [--task …] [--adapter DIR] [--limit N] [--provider auto|cpu|cuda|dml|coreml|webgpu] [--max-new-tokens N] [--chat-template] [--json]\n\n  --chat-template  render generation prompts and multiple-choice queries as a user turn with the model\'s chat template\n                   (like lm-eval\'s --apply_chat_template: choices scored without leading spaces, exact match on trimmed\n                   answers; perplexity texts stay plain)',
  async run(args) {
    const { values, positionals } = parseArgs({
      args,
      options: {
        task: { type: 'string', multiple: true },
        adapter: { type: 'string' },
        limit: { type: 'string' },
        provider: { type: 'string' },
        'max-new-tokens': { type: 'string' },
        'chat-template': { type: 'boolean' },
        json: { type: 'boolean' },
      },
      allowPositionals: true,
    });
    if (positionals.length !== 1) throw new Error('expected one MODEL_DIR');
    if (!values.task?.length) throw new Error('give at least one --task FILE.jsonl');
    const limit = values.limit !== undefined ? positiveInt(values.limit, '--limit') : undefined;
    const maxNewTokens = values['max-new-tokens'] !== undefined ? positiveInt(values['max-new-tokens'], '--max-new-tokens') : undefined;
    const provider = values.provider ?? 'cpu';
    if (!['auto', 'cpu', 'cuda', 'dml', 'coreml', 'webgpu'].includes(provider)) throw new Error(`unknown --provider "${provider}"`);
    const ac = new AbortController();
    const onSigint = () => {
      process.stderr.write('\ncancelling…\n');
      ac.abort();
    };
    process.once('SIGINT', onSigint);
    const tty = process.stderr.isTTY;
    try {
      const report = await runJob<EvalReport>('eval', { model: positionals[0], tasks: values.task, options: { adapter: values.adapter, limit, provider, maxNewTokens, chatTemplate: values['chat-template'] ?? false } }, {
        signal: ac.signal,
        onProgress: (p) => {
          const { task, done, total } = p as { task: string; done: number; total: number };
          if (tty) process.stderr.write(`\r${task}: ${done}/${total}   `);
        },
      });
      if (tty) process.stderr.write('\r\x1b[K');
      for (const n of report.notices) process.stderr.write(`note: ${n}\n`);
      if (values.json) {
        const tasks = Object.fromEntries(Object.entries(report.tasks));
        console.log(JSON.stringify({ model: report.model, adapter: report.adapter, provider: report.provider, chat_template: report.chatTemplate, tasks, routing: report.routing, seconds: report.seconds }, null, 2));
      } else {
        console.log(formatReport(report));
      }
      return 0;
    } finally {
      process.off('SIGINT', onSigint);
    }
  },
};

function positiveInt(s: string, flag: string): number {
  const n = Number(s);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`${flag} must be a positive integer, got "${s}"`);
  return n;
}

export function formatReport(r: EvalReport): string {
  const lines = [`${r.model}${r.adapter ? ` + ${r.adapter}` : ''}  (${r.provider}${r.chatTemplate ? ', chat template' : ''}, ${r.seconds.toFixed(1)} s)`];
  const w = Math.max(...Object.keys(r.tasks).map((k) => k.length));
  for (const [name, m] of Object.entries(r.tasks)) {
    const parts = Object.entries(m).filter(([k]) => k !== 'n').map(([k, v]) => `${k} ${fmt(v)}`);
    lines.push(`  ${name.padEnd(w)}  ${parts.join('  ')}  (n=${m.n})`);
  }
  if (r.routing) {
    lines.push('  routing (share of top-k slots per expert; entropy in nats):');
    for (const l of r.routing.layers) lines.push(`    layer ${l.layer}: ${l.load.map((x) => x.toFixed(3)).join(' ')}  entropy ${l.entropy.toFixed(3)}`);
  }
  return lines.join('\n');
}

function fmt(v: number): string {
  return Math.abs(v) >= 1000 ? v.toExponential(3) : v.toFixed(4);
}
