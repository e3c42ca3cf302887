/** `upcycle generate MODEL_DIR --prompt TEXT [--chat] [--system TEXT] [--max-tokens N] [--temperature T] … [--json]` */
import { parseArgs } from 'node:util';
import type { Command } from './main.js';

const PROVIDERS = ['auto', 'cpu', 'cuda', 'dml', 'coreml', 'webgpu'];

export const generateCommand: Command = {
  name: 'generate',
  summary: 'Generate text from a prompt (optionally through the model\'s chat template), streamed, with the KV cache.',
  usage: [
    'upcycle generate MODEL_DIR --prompt TEXT [--chat] [--system TEXT] [--max-tokens N] [--temperature T] [--top-p P] [--top-k K]',
    '                 [--seed S] [--stop STR …] [--adapter DIR] [--provider auto|cpu|cuda|dml|coreml|webgpu] [--json]',
    '',
    '  --chat           render the prompt as a user turn (after --system, if given) with the model\'s chat template',
    '  --max-tokens N   new tokens at most (default 256, capped by the model\'s positions)',
    '  --temperature T  0 = greedy (default); > 0 samples, with --top-p / --top-k, reproducibly for a --seed',
    '  --stop STR       end before this text (repeatable); EOS and the model\'s end-of-turn tokens always end',
    '  --json           print one JSON object at the end instead of streaming: prompt, prompt_ids, text,',
    '                   completion_ids, finish_reason (eos|stop|length), seed, seconds; text is cut before a',
    '                   stop string, completion_ids are every token generated (they include the stop string)',
  ].join('\n'),
  async run(args) {
    const { values, positionals } = parseArgs({
      args,
      options: {
        prompt: { type: 'string' },
        chat: { type: 'boolean' },
        system: { type: 'string' },
        'max-tokens': { type: 'string' },
        temperature: { type: 'string' },
        'top-p': { type: 'string' },
        'top-k': { type: 'string' },
        seed: { type: 'string' },
        stop: { type: 'string', multiple: true },
        adapter: { type: 'string' },
        provider: { type: 'string' },
        json: { type: 'boolean' },
      },
      allowPositionals: true,
    });
    if (positionals.length !== 1) throw new Error('expected one MODEL_DIR');
    if (values.prompt === undefined) throw new Error('give the text to continue with --prompt TEXT');
    if (values.system !== undefined && !values.chat) throw new Error('--system needs --chat (a system message only exists in a chat template)');
    const provider = values.provider ?? 'cpu';
    if (!PROVIDERS.includes(provider)) throw new Error(`unknown --provider "${provider}"`);
    const num = (flag: string, s: string | undefined, ok: (n: number) => boolean, what: string): number | undefined => {
      if (s === undefined) return undefined;
      const n = Number(s);
      if (s.trim() === '' || !Number.isFinite(n) || !ok(n)) throw new Error(`${flag} must be ${what}, got "${s}"`);
      return n;
    };
    const opts = {
      prompt: values.prompt,
      chat: values.chat ?? false,
      system: values.system,
      adapter: values.adapter,
      provider: provider as 'cpu',
      maxTokens: num('--max-tokens', values['max-tokens'], (n) => Number.isInteger(n) && n > 0, 'a positive integer'),
      temperature: num('--temperature', values.temperature, (n) => n >= 0, 'a number ≥ 0'),
      topP: num('--top-p', values['top-p'], (n) => n > 0 && n <= 1, 'a number in (0, 1]'),
      topK: num('--top-k', values['top-k'], (n) => Number.isInteger(n) && n > 0, 'a positive integer'),
      seed: num('--seed', values.seed, (n) => Number.isInteger(n) && n >= 0 && n < 2 ** 32, 'an integer in [0, 2³²)'),
      stop: values.stop,
    };
    const ac = new AbortController();
    const onSigint = () => ac.abort();
    process.once('SIGINT', onSigint);
    try {
      const { generateText } = await import('../eval/generate.js');
      let streamed = '';
      const r = await generateText(positionals[0]!, {
        ...opts,
        signal: ac.signal,
        onText: values.json ? undefined : (t) => {
          streamed += t;
          process.stdout.write(t);
        },
      });
      for (const n of r.notices) process.stderr.write(`note: ${n}\n`);
      if (values.json) {
        console.log(JSON.stringify({
          model: r.model, adapter: r.adapter, provider: r.provider, chat: r.chat, prompt: r.prompt, prompt_tokens: r.promptIds.length, prompt_ids: r.promptIds,
          text: r.text, completion_tokens: r.completionIds.length, completion_ids: r.completionIds, finish_reason: r.finishReason, seed: r.seed, seconds: r.seconds,
        }, null, 2));
      } else if (!streamed.endsWith('\n')) {
        // Ends the line so the shell prompt does not stick to the text.
        process.stdout.write('\n');
      }
      return 0;
    } finally {
      process.off('SIGINT', onSigint);
    }
  },
};
