/**
 * mergekit's `chat_template` key: the merged model's tokenizer gets a chat template that is
 * - `auto`: the template most input models share (plurality; first seen wins a tie; none → unchanged),
 * - a known format's name (`chatml`, `llama3`, `mistral`, `alpaca`), or
 * - a Jinja template given inline.
 * The formats below are written from each format's published prompt layout; they render through the
 * same @huggingface/jinja path as app/runtime/chat-template.ts, so `upcycle generate --chat` uses them.
 */
import { Template } from '@huggingface/jinja';

export const NAMED_CHAT_TEMPLATES: Record<string, string> = {
  // ChatML (OpenAI; Qwen, Hermes): <|im_start|>role\ncontent<|im_end|>\n
  chatml: "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}",
  // Llama 3: header ids around the role, a blank line, content trimmed, <|eot_id|>.
  llama3: "{{ bos_token }}{% for message in messages %}{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}",
  // Mistral instruct v0.1: [INST] user [/INST] assistant</s>, strictly alternating, no system role.
  mistral: "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token }}{% else %}{{ raise_exception('Only user and assistant roles are supported') }}{% endif %}{% endfor %}",
  // Alpaca: ### Instruction: / ### Response: blocks, an optional system preamble.
  alpaca: "{% for message in messages %}{% if message['role'] == 'system' %}{{ message['content'] + '\\n\\n' }}{% elif message['role'] == 'user' %}{{ '### Instruction:\\n' + message['content'] + '\\n\\n' }}{% elif message['role'] == 'assistant' %}{{ '### Response:\\n' + message['content'] + eos_token + '\\n\\n' }}{% endif %}{% endfor %}{% if add_generation_prompt %}{{ '### Response:\\n' }}{% endif %}",
};

export type ChatTemplateChoice = { kind: 'auto' } | { kind: 'template'; template: string; name?: string };

/** Validates the key's value when the recipe is read; the error says what would be accepted. */
export function parseChatTemplateChoice(v: string): ChatTemplateChoice {
  if (v === 'auto') return { kind: 'auto' };
  const named = NAMED_CHAT_TEMPLATES[v];
  if (named !== undefined) return { kind: 'template', template: named, name: v };
  // As mergekit: anything else must look like a template, not a misspelt name.
  if (v.length < 20 || !v.includes('{')) {
    throw new Error(`chat_template "${v}" is neither "auto", a known format (${Object.keys(NAMED_CHAT_TEMPLATES).join(', ')}) nor a Jinja template`);
  }
  try {
    new Template(v);
  } catch (e) {
    throw new Error(`chat_template cannot be parsed as Jinja: ${(e as Error).message}`);
  }
  return { kind: 'template', template: v };
}

/** `auto`: the plurality among the inputs' default templates; undefined when none has one. */
export function pluralityTemplate(templates: (string | undefined)[]): string | undefined {
  const counts = new Map<string, number>();
  for (const t of templates) if (t) counts.set(t, (counts.get(t) ?? 0) + 1);
  let best: string | undefined;
  for (const [t, n] of counts) if (best === undefined || n > counts.get(best)!) best = t;
  return best;
}
