/**
 * Chat templates rendered as transformers renders them. The expected strings are transformers 5.23's
 * `apply_chat_template(..., tokenize=False)` output for the same templates, messages and tokenizer
 * folder (a copy of the fixtures' base tokenizer with the template added to tokenizer_config.json).
 */
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { readChatTemplates, renderChat, type ChatMessage } from '../../../app/runtime/chat-template.js';
import { TextTokenizer } from '../../../app/runtime/tokenizer.js';
import { model, tempDir } from '../../helpers/paths.js';

// Real templates, verbatim from the models' tokenizer_config.json.
const LLAMA3 = '{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = \'<|start_header_id|>\' + message[\'role\'] + \'<|end_header_id|>\n\n\'+ message[\'content\'] | trim + \'<|eot_id|>\' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ \'<|start_header_id|>assistant<|end_header_id|>\n\n\' }}{% endif %}';
const QWEN2 = '{% for message in messages %}{% if loop.first and messages[0][\'role\'] != \'system\' %}{{ \'<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n\' }}{% endif %}{{\'<|im_start|>\' + message[\'role\'] + \'\n\' + message[\'content\'] + \'<|im_end|>\' + \'\n\'}}{% endfor %}{% if add_generation_prompt %}{{ \'<|im_start|>assistant\n\' }}{% endif %}';
const MISTRAL = '{{ bos_token }}{% for message in messages %}{% if (message[\'role\'] == \'user\') != (loop.index0 % 2 == 0) %}{{ raise_exception(\'Conversation roles must alternate user/assistant/user/assistant/...\') }}{% endif %}{% if message[\'role\'] == \'user\' %}{{ \'[INST] \' + message[\'content\'] + \' [/INST]\' }}{% elif message[\'role\'] == \'assistant\' %}{{ message[\'content\'] + eos_token}}{% else %}{{ raise_exception(\'Only user and assistant roles are supported!\') }}{% endif %}{% endfor %}';
// Zephyr's: multi-line, so it only renders right with trim_blocks and lstrip_blocks as transformers sets them.
const ZEPHYR = '{% for message in messages %}\n{% if message[\'role\'] == \'user\' %}\n{{ \'<|user|>\n\' + message[\'content\'] + eos_token }}\n{% elif message[\'role\'] == \'system\' %}\n{{ \'<|system|>\n\' + message[\'content\'] + eos_token }}\n{% elif message[\'role\'] == \'assistant\' %}\n{{ \'<|assistant|>\n\'  + message[\'content\'] + eos_token }}\n{% endif %}\n{% if loop.last and add_generation_prompt %}\n{{ \'<|assistant|>\' }}\n{% endif %}\n{% endfor %}';

const CHAT: ChatMessage[] = [
  { role: 'system', content: 'You are terse.' },
  { role: 'user', content: '  add 2 3 =  ' },
  { role: 'assistant', content: '5' },
  { role: 'user', content: 'rev abc =' },
];
const ALTERNATING: ChatMessage[] = [
  { role: 'user', content: 'add 2 3 =' },
  { role: 'assistant', content: '5' },
  { role: 'user', content: 'sort 3 1 2 =' },
];

const tmp = tempDir('upcycle-chat-');
after(tmp.cleanup);
let n = 0;

/** A tokenizer folder: the fixtures' base tokenizer with tokenizer_config.json changed by `cfg`. */
function folder(cfg: Record<string, unknown>, files: Record<string, string> = {}): string {
  const dir = join(tmp.dir, `m${n++}`);
  mkdirSync(dir);
  for (const f of ['tokenizer.json', 'special_tokens_map.json']) copyFileSync(join(model('base'), f), join(dir, f));
  const base = JSON.parse(readFileSync(join(model('base'), 'tokenizer_config.json'), 'utf8')) as Record<string, unknown>;
  writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify({ ...base, ...cfg }));
  for (const [f, text] of Object.entries(files)) {
    mkdirSync(join(dir, f, '..'), { recursive: true });
    writeFileSync(join(dir, f), text);
  }
  return dir;
}

function templates(dir: string) {
  const t = readChatTemplates(dir, JSON.parse(readFileSync(join(dir, 'tokenizer_config.json'), 'utf8')) as Record<string, unknown>);
  assert.ok(t, `${dir} has a template`);
  return t;
}

test('Llama 3: header tokens, trimmed content, bos_token given as an AddedToken object', () => {
  const t = templates(folder({ chat_template: LLAMA3, bos_token: { __type: 'AddedToken', content: '<s>', lstrip: false, normalized: false, rstrip: false, single_word: false, special: true } }));
  assert.equal(renderChat(t, CHAT, { addGenerationPrompt: true }), '<s><|start_header_id|>system<|end_header_id|>\n\nYou are terse.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nadd 2 3 =<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n5<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nrev abc =<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n');
  assert.equal(renderChat(t, CHAT), '<s><|start_header_id|>system<|end_header_id|>\n\nYou are terse.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nadd 2 3 =<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n5<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nrev abc =<|eot_id|>');
});

test('ChatML (Qwen2): a default system message, and add_generation_prompt', () => {
  const t = templates(folder({ chat_template: QWEN2 }));
  assert.equal(renderChat(t, ALTERNATING, { addGenerationPrompt: true }), '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nadd 2 3 =<|im_end|>\n<|im_start|>assistant\n5<|im_end|>\n<|im_start|>user\nsort 3 1 2 =<|im_end|>\n<|im_start|>assistant\n');
  assert.equal(renderChat(t, CHAT), '<|im_start|>system\nYou are terse.<|im_end|>\n<|im_start|>user\n  add 2 3 =  <|im_end|>\n<|im_start|>assistant\n5<|im_end|>\n<|im_start|>user\nrev abc =<|im_end|>\n');
});

test('Mistral: bos/eos from the config; raise_exception on a bad role order names the file', () => {
  const dir = folder({ chat_template: MISTRAL });
  const t = templates(dir);
  assert.equal(renderChat(t, ALTERNATING), '<s>[INST] add 2 3 = [/INST]5</s>[INST] sort 3 1 2 = [/INST]');
  assert.throws(() => renderChat(t, CHAT), (e: Error) => {
    assert.match(e.message, /Conversation roles must alternate user\/assistant\/user\/assistant\/\.\.\./);
    assert.ok(e.message.includes(join(dir, 'tokenizer_config.json')), e.message);
    return true;
  });
});

test('Zephyr: whitespace control as transformers configures Jinja (trim_blocks, lstrip_blocks)', () => {
  const t = templates(folder({ chat_template: ZEPHYR }));
  assert.equal(renderChat(t, CHAT, { addGenerationPrompt: true }), '<|system|>\nYou are terse.</s>\n<|user|>\n  add 2 3 =  </s>\n<|assistant|>\n5</s>\n<|user|>\nrev abc =</s>\n<|assistant|>\n');
});

test('named templates: "default" unless one is named; errors list the names', () => {
  const dir = folder({ chat_template: [{ name: 'default', template: QWEN2 }, { name: 'plain', template: "{% for m in messages %}{{ m['content'] }}\n{% endfor %}" }] });
  const t = templates(dir);
  assert.equal(renderChat(t, ALTERNATING, { addGenerationPrompt: true }), '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nadd 2 3 =<|im_end|>\n<|im_start|>assistant\n5<|im_end|>\n<|im_start|>user\nsort 3 1 2 =<|im_end|>\n<|im_start|>assistant\n');
  assert.equal(renderChat(t, ALTERNATING, { name: 'plain' }), 'add 2 3 =\n5\nsort 3 1 2 =\n');
  assert.throws(() => renderChat(t, ALTERNATING, { name: 'rag' }), /no chat template named "rag" \(it has default, plain\)/);
  const noDefault = templates(folder({ chat_template: [{ name: 'tool_use', template: QWEN2 }] }));
  assert.throws(() => renderChat(noDefault, ALTERNATING), /several chat templates \(tool_use\) and none is named "default"/);
});

test('chat_template.jinja and additional_chat_templates/ replace the config\'s template; special_tokens_map.json fills tokens', () => {
  // transformers 5.23 renders this folder as 'FILE [<pad>] [] hi' (unk_token unset renders empty).
  const map = JSON.parse(readFileSync(join(model('base'), 'special_tokens_map.json'), 'utf8')) as Record<string, unknown>;
  const dir = folder({ chat_template: 'CONFIG {{ bos_token }}' }, {
    'chat_template.jinja': 'FILE [{{ sep_token }}] [{{ unk_token }}] {{ messages[0].content }}\n',
    'special_tokens_map.json': JSON.stringify({ ...map, sep_token: '<pad>' }),
    'additional_chat_templates/rag.jinja': 'RAG {{ messages[0].content }}',
  });
  const t = templates(dir);
  assert.equal(t.source, join(dir, 'chat_template.jinja'));
  assert.equal(renderChat(t, [{ role: 'user', content: 'hi' }]), 'FILE [<pad>] [] hi');
  assert.equal(renderChat(t, [{ role: 'user', content: 'hi' }], { name: 'rag' }), 'RAG hi');
});

test('tokenised without a second BOS: the ids transformers gives for the rendered Mistral chat', async () => {
  const tok = TextTokenizer.load(folder({ chat_template: MISTRAL }));
  const { text, ids } = await tok.applyChatTemplate(ALTERNATING);
  assert.equal(text, '<s>[INST] add 2 3 = [/INST]5</s>[INST] sort 3 1 2 = [/INST]');
  assert.deepEqual(ids, [1, 94, 76, 81, 86, 87, 96, 35, 100, 103, 103, 35, 53, 35, 54, 35, 64, 35, 94, 50, 76, 81, 86, 87, 96, 56, 2, 94, 76, 81, 86, 87, 96, 35, 118, 114, 117, 119, 35, 54, 35, 52, 35, 53, 35, 64, 35, 94, 50, 76, 81, 86, 87, 96]);
  assert.deepEqual((await tok.encode(text, true)).slice(0, 2), [1, 1], 'encoding with special tokens would have doubled BOS');
});

test('a model without a template, or with a broken one: errors name the folder or file', async () => {
  const plain = folder({});
  const tok = TextTokenizer.load(plain);
  assert.equal(tok.chatTemplates, undefined);
  await assert.rejects(tok.applyChatTemplate([{ role: 'user', content: 'hi' }]), (e: Error) => e.message.startsWith(`${plain}: has no chat template`));
  const broken = folder({ chat_template: '{% for m in messages %}{{ m.content }}' });
  assert.throws(() => renderChat(templates(broken), [{ role: 'user', content: 'hi' }]), (e: Error) => e.message.startsWith(`${join(broken, 'tokenizer_config.json')}: chat template cannot be parsed`));
  const bad = folder({ chat_template: [{ name: 'default' }] });
  assert.throws(() => templates(bad), /chat_template is a list whose entries are not all/);
});
