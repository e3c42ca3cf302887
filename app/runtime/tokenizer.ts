/**
 * Tokenization with Hugging Face's Rust tokenizers (the `tokenizers` npm package, native, no
 * download) from a model folder's tokenizer.json; BOS/EOS policy and the chat template come from
 * tokenizer_config.json (and chat_template.jinja), which the Rust library does not read.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Tokenizer } from 'tokenizers';
import { CheckpointError } from '../core/errors.js';
import { readChatTemplates, renderChat, tokenContent, type ChatMessage, type ChatTemplates, type RenderOptions } from './chat-template.js';

export class TextTokenizer {
  private chat: ChatTemplates | null | undefined;

  private constructor(
    private readonly tok: Tokenizer,
    readonly dir: string,
    readonly bosId: number | undefined,
    readonly eosIds: number[],
    readonly padId: number | undefined,
    private readonly cfg: Record<string, unknown>,
  ) {}

  static load(dir: string, generationEos?: number | number[]): TextTokenizer {
    const file = join(dir, 'tokenizer.json');
    if (!existsSync(file)) throw new CheckpointError('NOT_FOUND', file, 'is missing', 'a model needs tokenizer.json to be evaluated; copy it from the base model');
    let tok: Tokenizer;
    try {
      tok = Tokenizer.fromFile(file);
    } catch (e) {
      throw new CheckpointError('INVALID_CONFIG', file, `cannot be loaded: ${(e as Error).message}`, 'replace tokenizer.json with the base model\'s');
    }
    let cfg: Record<string, unknown> = {};
    const cfgPath = join(dir, 'tokenizer_config.json');
    if (existsSync(cfgPath)) {
      try {
        cfg = JSON.parse(readFileSync(cfgPath, 'utf8')) as Record<string, unknown>;
      } catch {
        cfg = {};
      }
    }
    const id = (v: unknown): number | undefined => {
      const s = tokenContent(v);
      return s === undefined ? undefined : (tok.tokenToId(s) ?? undefined);
    };
    const eos = new Set<number>();
    const e = id(cfg['eos_token']);
    if (e !== undefined) eos.add(e);
    for (const g of [generationEos, generationConfigEos(dir)].flat()) if (typeof g === 'number') eos.add(g);
    return new TextTokenizer(tok, dir, id(cfg['bos_token']), [...eos], id(cfg['pad_token']), cfg);
  }

  /** The folder's chat templates (read on first use, so a broken template never blocks plain use). */
  get chatTemplates(): ChatTemplates | undefined {
    if (this.chat === undefined) this.chat = readChatTemplates(this.dir, this.cfg) ?? null;
    return this.chat ?? undefined;
  }

  /**
   * Renders a conversation with the model's chat template and tokenises it without adding special
   * tokens: the template writes BOS itself, and transformers passes add_special_tokens=False too.
   */
  async applyChatTemplate(messages: ChatMessage[], opts: RenderOptions = {}): Promise<{ text: string; ids: number[] }> {
    const t = this.chatTemplates;
    if (!t) {
      throw new CheckpointError('NOT_FOUND', this.dir, 'has no chat template (no chat_template.jinja, no chat_template in tokenizer_config.json)', 'drop --chat / --chat-template (or the Evaluate node\'s chat template switch), or copy chat_template.jinja or tokenizer_config.json\'s chat_template from the chat model it was fine-tuned from');
    }
    const text = renderChat(t, messages, opts);
    return { text, ids: await this.encode(text, false) };
  }

  /** Token ids; `special` adds what the tokenizer's post-processor adds (e.g. `<s>`). */
  async encode(text: string, special = true): Promise<number[]> {
    const enc = await this.tok.encode(text, null, { addSpecialTokens: special });
    return enc.getIds();
  }

  async encodeBatch(texts: string[], special = true): Promise<number[][]> {
    const encs = await this.tok.encodeBatch(texts, { addSpecialTokens: special });
    return encs.map((e) => e.getIds());
  }

  decode(ids: number[], skipSpecial = true): Promise<string> {
    return this.tok.decode(ids, skipSpecial);
  }

  get vocabSize(): number {
    return this.tok.getVocabSize(true);
  }
}

/**
 * generation_config.json's eos_token_id: what transformers' generate() stops at (chat models list
 * their end-of-turn token there, e.g. Llama 3's <|eot_id|>).
 */
function generationConfigEos(dir: string): number[] {
  const file = join(dir, 'generation_config.json');
  if (!existsSync(file)) return [];
  try {
    const e = (JSON.parse(readFileSync(file, 'utf8')) as { eos_token_id?: unknown }).eos_token_id;
    return [e].flat().filter((x): x is number => typeof x === 'number');
  } catch {
    return [];
  }
}
