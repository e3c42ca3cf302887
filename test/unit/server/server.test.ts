import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { test } from 'node:test';
import { WebSocket } from 'ws';
import { Service } from '../../../app/api/service.js';
import { startServer, type RunningServer } from '../../../app/server/server.js';
import { DEMO, model, tempDir } from '../../helpers/paths.js';

async function withServer(fn: (s: RunningServer, dir: string) => Promise<void>): Promise<void> {
  const { dir, cleanup } = tempDir();
  const ui = join(dir, 'ui');
  mkdirSync(ui);
  writeFileSync(join(ui, 'index.html'), '<!doctype html><title>Upcycle Studio</title>');
  const service = new Service({ dbPath: join(dir, 'h.sqlite'), demoDir: DEMO, version: 'test' });
  const s = await startServer({ service, port: 0, staticDir: ui });
  try {
    await fn(s, dir);
  } finally {
    await s.close();
    service.close();
    cleanup();
  }
}

function http(port: number, path: string, opts: { method?: string; token?: string; body?: string | Buffer; host?: string } = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method: opts.method ?? 'GET', headers: { ...(opts.token ? { authorization: `Bearer ${opts.token}` } : {}), ...(opts.host ? { host: opts.host } : {}), 'content-type': 'application/json' } }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode!, body }));
    });
    req.on('error', reject);
    if (opts.body) req.write(opts.body);
    req.end();
  });
}

const call = (s: RunningServer, method: string, args: unknown, token = s.token) => http(s.port, `/api/call/${method}`, { method: 'POST', token, body: JSON.stringify(args) });

test('the URL line and health: 200 with the token, 401 without or with a wrong one', async () => {
  await withServer(async (s) => {
    assert.match(s.url, /^http:\/\/127\.0\.0\.1:\d+\/\?token=[\w-]{20,}$/);
    assert.equal((await http(s.port, '/api/health', { token: s.token })).status, 200);
    assert.equal((await http(s.port, '/api/health')).status, 401);
    assert.equal((await http(s.port, '/api/health', { token: 'nope' })).status, 401);
    assert.equal((await call(s, 'health', {}, 'x'.repeat(s.token.length))).status, 401);
    // Static UI files alone are public.
    const ui = await http(s.port, '/');
    assert.equal(ui.status, 200);
    assert.match(ui.body, /Upcycle Studio/);
    assert.equal((await http(s.port, '/../../etc/passwd')).body.includes('root:'), false);
    // DNS rebinding: a foreign Host header is refused.
    assert.equal((await http(s.port, '/api/health', { token: s.token, host: 'evil.example:80' })).status, 403);
  });
});

test('calls are validated where they arrive: unknown methods, relative or NUL paths, oversize or malformed bodies', async () => {
  await withServer(async (s) => {
    const ok = await call(s, 'inspect', { path: model('base') });
    assert.equal(ok.status, 200);
    assert.equal(JSON.parse(ok.body).result.num_parameters, 458592);
    const rel = await call(s, 'inspect', { path: 'models/base' });
    assert.equal(rel.status, 400);
    assert.match(JSON.parse(rel.body).error.message, /path must be absolute/);
    assert.match(JSON.parse((await call(s, 'inspect', { path: '/a\0b' })).body).error.message, /NUL/);
    assert.match(JSON.parse((await call(s, 'frobnicate', {})).body).error.message, /unknown method/);
    const big = await http(s.port, '/api/call/autosave', { method: 'POST', token: s.token, body: Buffer.alloc(9 * 1024 * 1024, 32) });
    assert.equal(big.status, 413);
    const bad = await http(s.port, '/api/call/health', { method: 'POST', token: s.token, body: '{not json' });
    assert.equal(bad.status, 400);
    const missing = JSON.parse((await call(s, 'inspect', { path: '/nonexistent/model' })).body);
    assert.equal(missing.ok, false);
    assert.equal(missing.error.code, 'NOT_FOUND');
  });
});

test('the WebSocket needs the token, and streams a run\'s events; history survives a restart', async () => {
  const { dir, cleanup } = tempDir();
  const ui = join(dir, 'ui');
  mkdirSync(ui);
  writeFileSync(join(ui, 'index.html'), 'x');
  try {
    const db = join(dir, 'h.sqlite');
    let service = new Service({ dbPath: db, demoDir: DEMO, version: 'test' });
    let s = await startServer({ service, port: 0, staticDir: ui });
    const refused = new WebSocket(`ws://127.0.0.1:${s.port}/api/events`);
    await new Promise<void>((resolve) => refused.on('error', () => resolve()));
    const ws = new WebSocket(`ws://127.0.0.1:${s.port}/api/events?token=${s.token}`);
    await new Promise<void>((resolve) => ws.on('open', () => resolve()));
    const events: { type: string; status?: string }[] = [];
    const done = new Promise<void>((resolve) => ws.on('message', (m: Buffer) => {
      const e = JSON.parse(m.toString()) as { type: string; status?: string };
      events.push(e);
      if (e.type === 'run' && e.status !== 'running') resolve();
    }));
    const doc = { version: 2, name: 'inspect only', nodes: [{ id: 'a', type: 'checkpoint', position: { x: 0, y: 0 }, params: { path: model('base') } }], edges: [] };
    const started = JSON.parse((await call(s, 'runPipeline', { doc })).body);
    assert.equal(started.ok, true);
    await done;
    assert.ok(events.some((e) => e.type === 'node' && e.status === 'succeeded'));
    ws.close();
    await s.close();
    service.close();
    service = new Service({ dbPath: db, demoDir: DEMO, version: 'test' });
    s = await startServer({ service, port: 0, staticDir: ui });
    const runs = JSON.parse((await call(s, 'listRuns', {})).body).result as { id: number; status: string }[];
    assert.equal(runs[0]!.id, started.result.runId);
    assert.equal(runs[0]!.status, 'succeeded');
    await s.close();
    service.close();
  } finally {
    cleanup();
  }
});

test('mergekit YAML imports as a pipeline and exports back', async () => {
  await withServer(async (s) => {
    const yaml = `merge_method: ties\nbase_model: ${model('base')}\nmodels:\n  - model: ${model('ffn-add')}\n    parameters: {weight: 1, density: 0.5}\n  - model: ${model('ffn-rev')}\n    parameters: {weight: 1, density: 0.5}\nparameters: {normalize: true}\n`;
    const doc = JSON.parse((await call(s, 'importYaml', { text: yaml })).body).result;
    assert.deepEqual(doc.nodes.map((n: { type: string }) => n.type).sort(), ['checkpoint', 'checkpoint', 'checkpoint', 'merge']);
    const out = JSON.parse((await call(s, 'exportYaml', { doc, nodeId: 'merge' })).body).result.text as string;
    assert.match(out, /merge_method: ties/);
    assert.match(out, /density: 0.5/);
    const edge = JSON.parse((await call(s, 'validateEdge', { doc, edge: { source: 'base', sourcePort: 'model', target: 'merge', targetPort: 'models' } })).body).result;
    assert.equal(edge.ok, true);
    const moeDoc = { ...doc, nodes: [...doc.nodes, { id: 'x', type: 'checkpoint', position: { x: 0, y: 0 }, params: { path: model('moe-4x') } }] };
    const refused = JSON.parse((await call(s, 'validateEdge', { doc: moeDoc, edge: { source: 'x', sourcePort: 'model', target: 'merge', targetPort: 'models' } })).body).result;
    assert.equal(refused.ok, false);
    assert.match(refused.reason, /tensor names differ|Mixtral/);
  });
});
