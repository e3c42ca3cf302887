import assert from 'node:assert/strict';
import { cpSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { NAMED_CHAT_TEMPLATES, pluralityTemplate } from '../../../app/merge/chat-template.js';
import { parseMergeConfig } from '../../../app/merge/config.js';
import { runMerge } from '../../../app/merge/execute.js';
import { TextTokenizer } from '../../../app/runtime/tokenizer.js';
import { MODELS, model, tempDir } from '../../helpers/paths.js';

const linear = (models: string[], chat: string, dir = MODELS) => parseMergeConfig({ merge_method: 'linear', models: models.map((m) => ({ model: m, parameters: { weight: 1 } })), chat_template: chat }, dir);

test('chat_template by name is written into the merged tokenizer and renders as its format', async () => {
  const { dir, cleanup } = tempDir();
  try {
    await runMerge(linear(['ffn-add', 'ffn-rev'], 'chatml'), join(dir, 'chatml'));
    const cfg = JSON.parse(readFileSync(join(dir, 'chatml', 'tokenizer_config.json'), 'utf8'));
    assert.equal(cfg.chat_template, NAMED_CHAT_TEMPLATES['chatml']);
    const tok = TextTokenizer.load(join(dir, 'chatml'));
    const r = await tok.applyChatTemplate([{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'add 2 3 =' }], { addGenerationPrompt: true });
    assert.equal(r.text, '<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nadd 2 3 =<|im_end|>\n<|im_start|>assistant\n');
    await runMerge(linear(['ffn-add', 'ffn-rev'], 'llama3'), join(dir, 'llama3'));
    const l3 = await TextTokenizer.load(join(dir, 'llama3')).applyChatTemplate([{ role: 'user', content: ' hi ' }], { addGenerationPrompt: true });
    const bosCfg = JSON.parse(readFileSync(join(dir, 'llama3', 'tokenizer_config.json'), 'utf8')).bos_token as string | { content: string } | undefined;
    const bos = typeof bosCfg === 'string' ? bosCfg : (bosCfg?.content ?? '');
    assert.equal(l3.text, `${bos}<|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n`);
    await runMerge(linear(['ffn-add', 'ffn-rev'], 'mistral'), join(dir, 'mistral'));
    await assert.rejects(TextTokenizer.load(join(dir, 'mistral')).applyChatTemplate([{ role: 'assistant', content: 'x' }]), /roles must alternate/);
  } finally {
    cleanup();
  }
});

test('chat_template: auto takes the template most inputs share; none shared leaves the tokenizer as it was', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const T1 = "{% for m in messages %}{{ 'ONE ' + m['content'] }}{% endfor %}";
    const T2 = "{% for m in messages %}{{ 'TWO ' + m['content'] }}{% endfor %}";
    const copy = (src: string, name: string, tpl?: string) => {
      cpSync(model(src), join(dir, name), { recursive: true });
      if (tpl) {
        const f = join(dir, name, 'tokenizer_config.json');
        writeFileSync(f, JSON.stringify({ ...JSON.parse(readFileSync(f, 'utf8')), chat_template: tpl }));
      }
    };
    copy('ffn-add', 'a', T1);
    copy('ffn-rev', 'b', T2);
    copy('ffn-sort', 'c', T2);
    await runMerge(linear(['a', 'b', 'c'], 'auto', dir), join(dir, 'out'));
    assert.equal(JSON.parse(readFileSync(join(dir, 'out', 'tokenizer_config.json'), 'utf8')).chat_template, T2);
    assert.equal(pluralityTemplate([T1, T2, undefined]), T1, 'a tie goes to the first seen');
    await runMerge(linear(['ffn-add', 'ffn-rev'], 'auto'), join(dir, 'none'));
    assert.equal(JSON.parse(readFileSync(join(dir, 'none', 'tokenizer_config.json'), 'utf8')).chat_template, undefined);
    assert.equal(existsSync(join(dir, 'none', 'chat_template.jinja')), false);
  } finally {
    cleanup();
  }
});

test('a chat_template that is neither auto, a format nor Jinja is refused when the recipe is read', () => {
  assert.throws(() => linear(['ffn-add', 'ffn-rev'], 'chatmll'), /chat_template "chatmll" is neither "auto", a known format \(chatml, llama3, mistral, alpaca\)/);
  assert.throws(() => linear(['ffn-add', 'ffn-rev'], '{% for m in messages %}{{ m.content }'), /cannot be parsed as Jinja/);
  const inline = '{{ bos_token }}{% for m in messages %}{{ m.content }}{% endfor %}';
  assert.deepEqual(linear(['ffn-add', 'ffn-rev'], inline).chatTemplate, { kind: 'template', template: inline });
});
