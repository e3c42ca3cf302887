/**
 * Tokenization with Hugging Face's Rust tokenizers (the `tokenizers` npm package, native, no
 * download) from a model folder's tokenizer.json; BOS/EOS policy and the chat template come from
 * tokenizer_config.json, which the Rust library does not read.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Tokenizer } from 'tokenizers';
import { CheckpointError } from '../core/errors.js';

export class TextTokenizer {
  private constructor(
    private readonly tok: Tokenizer,
    readonly bosId: number | undefined,
    readonly eosIds: number[],
    readonly padId: number | undefined,
    readonly chatTemplate: string | undefined,
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
      const s = typeof v === 'string' ? v : typeof v === 'object' && v !== null && typeof (v as { content?: unknown }).content === 'string' ? (v as { content: string }).content : undefined;
      return s === undefined ? undefined : (tok.tokenToId(s) ?? undefined);
    };
    const eos = new Set<number>();
    const e = id(cfg['eos_token']);
    if (e !== undefined) eos.add(e);
    for (const g of [generationEos].flat()) if (typeof g === 'number') eos.add(g);
    const template = typeof cfg['chat_template'] === 'string' ? (cfg['chat_template'] as string) : undefined;
    return new TextTokenizer(tok, id(cfg['bos_token']), [...eos], id(cfg['pad_token']), template);
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
