// `upcycle generate` and `upcycle eval --chat-template` on a copy of a fixture model given a chat template.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { Decoder } from '../../../app/runtime/decoder.js';
import { loadModelSession, type LoadedSession } from '../../../app/runtime/model-session.js';
import { TextTokenizer } from '../../../app/runtime/tokenizer.js';
import { DEMO, ROOT, model, tempDir } from '../../helpers/paths.js';

function upcycle(...args: string[]) {
  return spawnSync(process.execPath, [join(ROOT, 'bin', 'upcycle.js'), ...args], { encoding: 'utf8', cwd: ROOT });
}

function json(r: ReturnType<typeof upcycle>) {
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as { prompt: string; prompt_tokens: number; prompt_ids: number[]; text: string; completion_ids: number[]; finish_reason: string; seed: number | null; chat: boolean };
}

// A system line, then the user's words, after BOS: renders "<s>add 37 48 =", which spec-add answers.
const TEMPLATE = "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'system' %}{{ message['content'] + '\\n' }}{% elif message['role'] == 'user' %}{{ message['content'] }}{% else %}{{ raise_exception('only system and user messages, got ' + message['role']) }}{% endif %}{% endfor %}";

const tmp = tempDir('upcycle-generate-');
const dir = join(tmp.dir, 'spec-add-chat');
// The copied model's graphs (hard links to its weights) and reports stay in the temp folder; the CLI inherits this.
process.env['UPCYCLE_CACHE_DIR'] = join(tmp.dir, 'cache');
let loaded: LoadedSession;
let tok: TextTokenizer;

before(async () => {
  cpSync(model('spec-add'), dir, { recursive: true });
  const cfgPath = join(dir, 'tokenizer_config.json');
  writeFileSync(cfgPath, JSON.stringify({ ...JSON.parse(readFileSync(cfgPath, 'utf8')), chat_template: TEMPLATE }, null, 2));
  loaded = await loadModelSession(dir, { kvCache: true });
  tok = TextTokenizer.load(dir, loaded.config.eosTokenId);
});
after(async () => {
  await loaded?.session.release();
  tmp.cleanup();
});

/** The reference: Decoder generation on given ids, cut at the first stop string. */
async function reference(ids: number[], opts: { maxNewTokens: number; stop?: string; temperature?: number; topK?: number; seed?: number }): Promise<string> {
  const { stop, ...gen } = opts;
  const [out] = await new Decoder(loaded).generate([ids], gen, async (_row, newIds) => stop !== undefined && (await tok.decode(newIds, true)).includes(stop));
  const text = await tok.decode(out!, true);
  return stop !== undefined && text.includes(stop) ? text.slice(0, text.indexOf(stop)) : text;
}

test('generate --chat: the rendered prompt, tokenised with one BOS, answers as the plain Decoder does on it', async () => {
  const chat = json(upcycle('generate', dir, '--chat', '--prompt', 'add 37 48 =', '--stop', '\n', '--max-tokens', '12', '--json'));
  assert.equal(chat.chat, true);
  assert.equal(chat.prompt, '<s>add 37 48 =');
  const ids = await tok.encode(chat.prompt, false);
  assert.deepEqual(chat.prompt_ids, ids);
  assert.equal(chat.prompt_tokens, ids.length);
  assert.deepEqual(chat.prompt_ids.slice(0, 2).map((i) => i === tok.bosId), [true, false], 'exactly one BOS');
  assert.equal(chat.text, await reference(ids, { maxNewTokens: 12, stop: '\n' }));
  assert.equal(chat.text, ' 85');
  assert.equal(chat.finish_reason, 'stop');
  // Without --chat the prompt gets the tokenizer's BOS: the same ids here.
  const plain = json(upcycle('generate', dir, '--prompt', 'add 37 48 =', '--stop', '\n', '--json'));
  assert.equal(plain.chat, false);
  assert.deepEqual(plain.prompt_ids, chat.prompt_ids);
  assert.equal(plain.text, ' 85');
});

test('generate streams the same text it reports; --system goes through the template', async () => {
  const args = [dir, '--chat', '--system', 'be exact', '--prompt', 'add 12 30 =', '--max-tokens', '20'];
  const j = json(upcycle('generate', ...args, '--json'));
  assert.equal(j.prompt, '<s>be exact\nadd 12 30 =');
  assert.equal(j.text, await reference(await tok.encode(j.prompt, false), { maxNewTokens: 20 }));
  const streamed = upcycle('generate', ...args);
  assert.equal(streamed.status, 0, streamed.stderr);
  assert.equal(streamed.stdout, j.text.endsWith('\n') ? j.text : `${j.text}\n`);
  // A stop string that spans tokens: its first characters are held back, never printed.
  const cut = json(upcycle('generate', ...args, '--stop', '\nadd', '--json'));
  assert.equal(cut.finish_reason, 'stop');
  assert.equal(cut.text, j.text.slice(0, j.text.indexOf('\nadd')));
  assert.equal(upcycle('generate', ...args, '--stop', '\nadd').stdout, `${cut.text}\n`);
});

test('generate samples reproducibly for a seed, with the decoder\'s sampler', async () => {
  const args = [dir, '--prompt', 'add 37 48 =', '--temperature', '1.5', '--seed', '7', '--max-tokens', '24', '--json'];
  const a = json(upcycle('generate', ...args));
  const b = json(upcycle('generate', ...args));
  assert.equal(a.seed, 7);
  assert.equal(a.text, b.text);
  assert.equal(a.text, await reference(a.prompt_ids, { maxNewTokens: 24, temperature: 1.5, seed: 7 }));
  // top-k 1 leaves one candidate: sampling then equals greedy.
  const k1 = json(upcycle('generate', dir, '--prompt', 'add 37 48 =', '--temperature', '1.5', '--top-k', '1', '--max-tokens', '24', '--json'));
  assert.equal(k1.text, await reference(a.prompt_ids, { maxNewTokens: 24 }));
  assert.equal(typeof k1.seed, 'number', 'a sampled run reports the seed it drew');
});

test('generate errors are one line naming the folder or the flag', () => {
  const none = upcycle('generate', model('spec-add'), '--chat', '--prompt', 'hi');
  assert.equal(none.status, 1);
  assert.match(none.stderr, /spec-add: has no chat template/);
  const sys = upcycle('generate', dir, '--system', 'x', '--prompt', 'hi');
  assert.equal(sys.status, 1);
  assert.match(sys.stderr, /--system needs --chat/);
  const t = upcycle('generate', dir, '--prompt', 'hi', '--temperature=-1');
  assert.equal(t.status, 1);
  assert.match(t.stderr, /--temperature must be a number ≥ 0/);
});

test('eval --chat-template renders prompts and queries with the template; perplexity stays plain', () => {
  const r = upcycle('eval', dir, '--chat-template', '--task', join(DEMO, 'eval', 'add.gen.jsonl'), '--task', join(DEMO, 'eval', 'add.mc.jsonl'), '--task', join(DEMO, 'eval', 'add.text.jsonl'), '--limit', '10', '--json');
  assert.equal(r.status, 0, r.stderr);
  const j = JSON.parse(r.stdout);
  assert.equal(j.chat_template, true);
  // This template renders "<s>" + prompt: the same tokens as plain evaluation, so spec-add still scores 1.
  assert.equal(j.tasks['add.gen'].exact_match, 1);
  assert.equal(typeof j.tasks['add.mc'].acc, 'number');
  assert.match(r.stderr, /does not apply to perplexity tasks \(add\.text\)/);
  const none = upcycle('eval', model('spec-add'), '--chat-template', '--task', join(DEMO, 'eval', 'add.gen.jsonl'), '--limit', '2');
  assert.equal(none.status, 1);
  assert.match(none.stderr, /spec-add: has no chat template/);
});

test('the Evaluate node\'s chat_template switch reaches evaluation (upcycle run)', () => {
  const pipeline = (modelDir: string, name: string) => {
    const file = join(tmp.dir, `${name}.json`);
    writeFileSync(file, JSON.stringify({
      version: 2, name,
      nodes: [
        { id: 'm', type: 'checkpoint', position: { x: 0, y: 0 }, params: { path: modelDir } },
        { id: 'd', type: 'dataset', position: { x: 0, y: 0 }, params: { path: join(DEMO, 'eval', 'add.gen.jsonl') } },
        { id: 'e', type: 'evaluate', position: { x: 0, y: 0 }, params: { limit: 5, chat_template: true } },
      ],
      edges: [{ id: 'e1', source: 'm', sourcePort: 'model', target: 'e', targetPort: 'model' }, { id: 'e2', source: 'd', sourcePort: 'data', target: 'e', targetPort: 'tasks' }],
    }));
    return upcycle('run', file, '--db', join(tmp.dir, `${name}.sqlite`), '--json');
  };
  const ok = pipeline(dir, 'with-template');
  assert.equal(ok.status, 0, ok.stderr);
  // `run --json`: stdout is the JSON document alone, the summary line goes to stderr.
  const result = JSON.parse(ok.stdout);
  assert.match(ok.stderr, /run #\d+ succeeded/);
  const report = JSON.parse(readFileSync(result.results.e.artefact, 'utf8'));
  assert.equal(report.chatTemplate, true);
  assert.equal(report.tasks['add.gen'].exact_match, 1);
  const none = pipeline(model('spec-add'), 'without-template');
  assert.notEqual(none.status, 0);
  assert.match(none.stderr, /spec-add: has no chat template/);
});
