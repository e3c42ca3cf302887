/**
 * Chat templates rendered the way transformers' `apply_chat_template` renders them, with
 * @huggingface/jinja (which, like transformers' Jinja environment, trims blocks and strips leading
 * block whitespace, and has `raise_exception`).
 *
 * Where the templates come from follows `PreTrainedTokenizerBase.from_pretrained`: `chat_template.jinja`
 * (named "default") and `additional_chat_templates/NAME.jinja`, when any exists, replace the
 * `chat_template` of tokenizer_config.json, which is a string or a list of `{name, template}`.
 * The template sees `messages`, `add_generation_prompt`, `tools`/`documents` (none) and the
 * tokenizer's named special tokens as strings (`bos_token`, `eos_token`, …).
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Template } from '@huggingface/jinja';
import { CheckpointError } from '../core/errors.js';

export interface ChatMessage {
  role: string;
  content: string;
}

export interface ChatTemplates {
  /** The model folder, for error messages. */
  dir: string;
  /** The file the templates were read from. */
  source: string;
  /** One template, or several by name ("default", "tool_use", …). */
  templates: string | Record<string, string>;
  /** Variables the template sees besides the messages: bos_token, eos_token, … */
  specialTokens: Record<string, string>;
}

export interface RenderOptions {
  /** End with the header that starts the assistant's turn (transformers' `add_generation_prompt`). */
  addGenerationPrompt?: boolean;
  /** A template's name when the model has several; "default" otherwise. */
  name?: string;
}

/** transformers' SPECIAL_TOKENS_ATTRIBUTES: the named special tokens passed to templates. */
const SPECIAL_TOKEN_KEYS = ['bos_token', 'eos_token', 'unk_token', 'sep_token', 'pad_token', 'cls_token', 'mask_token'];

/** A special token as written in tokenizer_config.json: a string or an AddedToken `{content: …}`. */
export function tokenContent(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (typeof v === 'object' && v !== null && typeof (v as { content?: unknown }).content === 'string') return (v as { content: string }).content;
  return undefined;
}

/**
 * The chat templates of a model folder, or undefined when it has none. `cfg` is its parsed
 * tokenizer_config.json (already read by the tokenizer).
 */
export function readChatTemplates(dir: string, cfg: Record<string, unknown>): ChatTemplates | undefined {
  const specialTokens = specialTokensOf(dir, cfg);
  const files: Record<string, string> = {};
  const main = join(dir, 'chat_template.jinja');
  if (existsSync(main)) files['default'] = readFileSync(main, 'utf8');
  const extra = join(dir, 'additional_chat_templates');
  if (existsSync(extra)) {
    for (const f of readdirSync(extra).sort()) if (f.endsWith('.jinja')) files[f.slice(0, -'.jinja'.length)] = readFileSync(join(extra, f), 'utf8');
  }
  const names = Object.keys(files);
  if (names.length > 0) {
    const source = names.includes('default') ? main : extra;
    return { dir, source, templates: names.length === 1 && names[0] === 'default' ? files['default']! : files, specialTokens };
  }
  const raw = cfg['chat_template'];
  const source = join(dir, 'tokenizer_config.json');
  if (typeof raw === 'string') return { dir, source, templates: raw, specialTokens };
  if (Array.isArray(raw)) {
    const named: Record<string, string> = {};
    for (const t of raw as unknown[]) {
      const { name, template } = (t ?? {}) as { name?: unknown; template?: unknown };
      if (typeof name !== 'string' || typeof template !== 'string') {
        throw new CheckpointError('INVALID_CONFIG', source, 'chat_template is a list whose entries are not all {"name", "template"} strings', 'fix chat_template, or replace it with the base model\'s');
      }
      named[name] = template;
    }
    return { dir, source, templates: named, specialTokens };
  }
  return undefined;
}

/**
 * transformers reads special_tokens_map.json only when tokenizer_config.json has no
 * `added_tokens_decoder` (the legacy layout), and then lets it override the config.
 */
function specialTokensOf(dir: string, cfg: Record<string, unknown>): Record<string, string> {
  let merged: Record<string, unknown> = { ...cfg };
  const mapFile = join(dir, 'special_tokens_map.json');
  if (cfg['added_tokens_decoder'] === undefined && existsSync(mapFile)) {
    try {
      merged = { ...merged, ...(JSON.parse(readFileSync(mapFile, 'utf8')) as Record<string, unknown>) };
    } catch {
      // An unreadable legacy map is ignored, as the tokenizer itself does not need it.
    }
  }
  const out: Record<string, string> = {};
  for (const k of SPECIAL_TOKEN_KEYS) {
    const s = tokenContent(merged[k]);
    if (s !== undefined) out[k] = s;
  }
  // Model-specific named tokens (e.g. Gemma 3's `boi_token`) become template variables too.
  const extra = merged['extra_special_tokens'];
  if (typeof extra === 'object' && extra !== null && !Array.isArray(extra)) {
    for (const [k, v] of Object.entries(extra)) {
      const s = tokenContent(v);
      if (s !== undefined) out[k] = s;
    }
  }
  return out;
}

/** The template to render, picked as `get_chat_template` picks it. */
export function selectTemplate(t: ChatTemplates, name?: string): string {
  if (typeof t.templates === 'string') {
    if (name !== undefined && name !== 'default') throw new CheckpointError('NOT_FOUND', t.source, `has one chat template, not one named "${name}"`, 'leave the template name out');
    return t.templates;
  }
  const names = Object.keys(t.templates).sort();
  const wanted = name ?? 'default';
  const found = t.templates[wanted];
  if (found !== undefined) return found;
  if (name === undefined) throw new CheckpointError('NOT_FOUND', t.source, `has several chat templates (${names.join(', ')}) and none is named "default"`, 'name the template to use');
  throw new CheckpointError('NOT_FOUND', t.source, `has no chat template named "${name}" (it has ${names.join(', ')})`, 'use one of those names');
}

const compiled = new Map<string, Template>();

/** Renders a conversation to the text the model expects. Errors name the template's file. */
export function renderChat(t: ChatTemplates, messages: ChatMessage[], opts: RenderOptions = {}): string {
  if (messages.length === 0) throw new Error('cannot apply a chat template to an empty conversation');
  const source = selectTemplate(t, opts.name);
  let tpl = compiled.get(source);
  if (!tpl) {
    try {
      tpl = new Template(source);
    } catch (e) {
      throw new CheckpointError('UNSUPPORTED', t.source, `chat template cannot be parsed: ${(e as Error).message}`, 'fix the template, or evaluate without the chat template');
    }
    compiled.set(source, tpl);
  }
  // transformers drops keys whose value is None before rendering.
  const msgs = messages.map((m) => Object.fromEntries(Object.entries(m).filter(([, v]) => v !== undefined && v !== null)));
  try {
    return tpl.render({ ...t.specialTokens, messages: msgs, add_generation_prompt: !!opts.addGenerationPrompt, tools: null, documents: null });
  } catch (e) {
    // raise_exception(...) in the template lands here with the template's own message.
    throw new CheckpointError('INVALID_CONFIG', t.source, `chat template failed to render: ${(e as Error).message}`, 'check the messages\' roles and order against what the template accepts, or run without the chat template');
  }
}

/** The conversation for a single prompt: an optional system message, then the user's turn. */
export function promptMessages(prompt: string, system?: string): ChatMessage[] {
  return system !== undefined ? [{ role: 'system', content: system }, { role: 'user', content: prompt }] : [{ role: 'user', content: prompt }];
}
