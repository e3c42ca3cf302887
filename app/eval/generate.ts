/**
 * Free text generation from one prompt (the `upcycle generate` command): plain or through the
 * model's chat template, greedy or sampled, streamed as it becomes final, on the Decoder's KV cache.
 */
import { randomInt } from 'node:crypto';
import { promptMessages } from '../runtime/chat-template.js';
import { Decoder } from '../runtime/decoder.js';
import { loadModelSession } from '../runtime/model-session.js';
import type { ProviderRequest } from '../runtime/ort.js';
import { TextTokenizer } from '../runtime/tokenizer.js';
import { stopAt } from './stops.js';

export interface GenerateTextOptions {
  prompt: string;
  /** Render the prompt (and `system`) with the model's chat template, assistant header appended. */
  chat?: boolean;
  system?: string;
  adapter?: string;
  provider?: ProviderRequest;
  /** Default 256, capped by the model's positions. */
  maxTokens?: number;
  /** 0 (default) = greedy. */
  temperature?: number;
  topP?: number;
  topK?: number;
  /** Sampling seed; a random one (reported) when sampling without it. */
  seed?: number;
  /** The text ends before the first of these. */
  stop?: string[];
  signal?: AbortSignal;
  /** Receives the text as it becomes final: never part of a stop string, never half a character. */
  onText?: (delta: string) => void;
}

export interface GenerateTextResult {
  model: string;
  adapter: string | null;
  provider: string;
  chat: boolean;
  /** What was tokenised: the rendered chat, or the prompt as given. */
  prompt: string;
  promptIds: number[];
  /** The continuation, cut before the first stop string. */
  text: string;
  /** Every generated token (EOS excluded): after a stop string, also the tokens of the stop string and past it. */
  completionIds: number[];
  finishReason: 'eos' | 'stop' | 'length';
  /** The seed used when sampling (null when greedy). */
  seed: number | null;
  notices: string[];
  seconds: number;
}

export async function generateText(modelDir: string, opts: GenerateTextOptions): Promise<GenerateTextResult> {
  const t0 = performance.now();
  const loaded = await loadModelSession(modelDir, { adapter: opts.adapter, kvCache: true, session: { provider: opts.provider } });
  try {
    const tok = TextTokenizer.load(modelDir, loaded.config.eosTokenId);
    let prompt = opts.prompt;
    let promptIds: number[];
    if (opts.chat) {
      ({ text: prompt, ids: promptIds } = await tok.applyChatTemplate(promptMessages(opts.prompt, opts.system), { addGenerationPrompt: true }));
    } else {
      promptIds = await tok.encode(prompt, true);
    }
    const notices = [...loaded.notices];
    // The graph's RoPE tables end at the model's positions (decoder-graph.ts uses the same bound).
    const positions = Math.min(loaded.config.maxPositionEmbeddings ?? 4096, 16384);
    if (promptIds.length >= positions) throw new Error(`the prompt is ${promptIds.length} tokens; ${modelDir} handles at most ${positions} positions — shorten it`);
    let maxTokens = opts.maxTokens ?? 256;
    if (promptIds.length + maxTokens > positions) {
      maxTokens = positions - promptIds.length;
      if (opts.maxTokens !== undefined) notices.push(`at most ${maxTokens} new tokens fit after the ${promptIds.length}-token prompt (the model has ${positions} positions)`);
    }
    const sampled = !!opts.temperature && opts.temperature > 0;
    const seed = sampled ? (opts.seed ?? randomInt(2 ** 31)) : null;
    const stops = (opts.stop ?? []).filter((s) => s.length > 0);
    let finishReason: GenerateTextResult['finishReason'] = 'length';
    let text = '';
    let shown = 0;
    let ids: number[] = [];
    const decoder = new Decoder(loaded);
    const out = await decoder.generate([promptIds], {
      maxNewTokens: maxTokens,
      temperature: sampled ? opts.temperature : 0,
      topK: opts.topK,
      topP: opts.topP,
      seed: seed ?? undefined,
      eosIds: tok.eosIds,
      signal: opts.signal,
    }, async (_row, newIds) => {
      ids = [...newIds];
      text = await tok.decode(ids, true);
      const cut = stopAt(text, stops);
      if (cut !== undefined) text = text.slice(0, cut);
      const done = cut !== undefined;
      if (done) finishReason = 'stop';
      const safe = done ? text.length : settled(text, stops);
      if (safe > shown) {
        opts.onText?.(text.slice(shown, safe));
        shown = safe;
      }
      return done;
    });
    // The decoder ends silently at an EOS id, without calling back.
    if (finishReason === 'length' && out[0]!.length < maxTokens) finishReason = 'eos';
    if (text.length > shown) opts.onText?.(text.slice(shown));
    return {
      model: modelDir,
      adapter: opts.adapter ?? null,
      provider: loaded.session.provider,
      chat: !!opts.chat,
      prompt,
      promptIds,
      text,
      completionIds: ids,
      finishReason,
      seed,
      notices,
      seconds: (performance.now() - t0) / 1000,
    };
  } finally {
    await loaded.release();
  }
}

/**
 * How much of `text` is final: all but a tail that could still grow into a stop string, or that
 * ends in U+FFFD (a byte-level token sequence that has not finished its UTF-8 character yet).
 */
export function settled(text: string, stops: string[]): number {
  let end = text.length;
  for (const s of stops) {
    for (let k = Math.min(s.length - 1, text.length); k > 0; k--) {
      if (text.endsWith(s.slice(0, k))) {
        end = Math.min(end, text.length - k);
        break;
      }
    }
  }
  while (end > 0 && text[end - 1] === '\uFFFD') end--;
  return end;
}
