/**
 * End to end: the real server (startServer + Service on a temporary history database) and the built
 * renderer (renderer/dist) in headless Chromium. Builds a pipeline by dragging from the palette and
 * wiring ports, sees a refused edge and its reason, runs it, watches progress, reads the metrics on the
 * nodes, opens the history, compares two runs, undoes and redoes, copies and pastes, saves and reopens,
 * imports a mergekit YAML, sees a corrupt checkpoint turn into an error toast, and finds the history
 * intact after a server restart. Screenshots of each main view go to test-artifacts/screenshots/.
 *
 * Needs `npm run build:ui` and Chromium (/usr/bin/chromium, or CHROMIUM_PATH); skipped otherwise.
 */
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { Service } from '../../app/api/service.js';
import { startServer, type RunningServer } from '../../app/server/server.js';
import { DEMO, ROOT, tempDir } from '../helpers/paths.js';

const DIST = join(ROOT, 'renderer', 'dist');
const CHROMIUM = process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium';
const SHOTS = join(ROOT, 'test-artifacts', 'screenshots');
const skip = !existsSync(join(DIST, 'index.html'))
  ? 'renderer/dist is not built: run `npm run build:ui` first'
  : !existsSync(CHROMIUM)
    ? `no Chromium at ${CHROMIUM} (apt install chromium, or set CHROMIUM_PATH)`
    : false;

const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];

async function shot(page: Page, name: string): Promise<void> {
  mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: join(SHOTS, `${name}.png`) });
}

const node = (id: string) => `[data-testid="pipeline-node"][data-node-id="${id}"]`;

async function nodeCount(page: Page): Promise<number> {
  return page.locator('[data-testid="pipeline-node"]').count();
}

async function edgeCount(page: Page): Promise<number> {
  return page.locator('.react-flow__edge').count();
}

async function until(fn: () => Promise<boolean>, what: string, timeout = 15000): Promise<void> {
  const end = Date.now() + timeout;
  while (Date.now() < end) {
    if (await fn()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** Shows `dir` in the open file browser (and waits until it is listed). */
async function goTo(page: Page, dir: string): Promise<void> {
  await page.fill('[data-testid="fb-location"]', dir);
  await page.click('[data-testid="fb-go"]');
  await page.waitForSelector(`[data-testid="fb-list"][data-path="${dir}"]`);
}

/** Adds a file or folder through the server-side file browser. */
async function addViaBrowser(page: Page, dir: string, name: string): Promise<void> {
  await page.click('[data-testid="add-files"]');
  await goTo(page, dir);
  await page.click(`[data-testid="fb-list"] [data-name="${name}"]`);
  await page.click('[data-testid="file-browser-ok"]');
  await page.waitForSelector('[data-testid="file-browser"]', { state: 'detached' });
}

/** Drags from an output port to an input port. `whileHeld` runs with the mouse still down over the target. */
async function drawEdge(page: Page, from: [string, string], to: [string, string], whileHeld?: () => Promise<void>): Promise<void> {
  const src = page.locator(`.react-flow__handle.source[data-nodeid="${from[0]}"][data-handleid="${from[1]}"]`);
  const dst = page.locator(`.react-flow__handle.target[data-nodeid="${to[0]}"][data-handleid="${to[1]}"]`);
  const a = (await src.boundingBox())!;
  const b = (await dst.boundingBox())!;
  await page.mouse.move(a.x + a.width / 2, a.y + a.height / 2);
  await page.mouse.down();
  await page.mouse.move((a.x + b.x) / 2, (a.y + b.y) / 2, { steps: 8 });
  await page.mouse.move(b.x + b.width / 2, b.y + b.height / 2, { steps: 8 });
  if (whileHeld) await whileHeld();
  await page.mouse.up();
}

async function nodeIds(page: Page): Promise<string[]> {
  const all = await page.locator('[data-testid="pipeline-node"]').all();
  return Promise.all(all.map(async (l) => (await l.getAttribute('data-node-id')) ?? ''));
}

async function selectNode(page: Page, id: string): Promise<void> {
  await page.click(`${node(id)} .pnode-head`);
}

/**
 * Stops the server now. server.close() alone waits for the browser's idle keep-alive (and
 * pre-connected) sockets, up to Node's 60 s headersTimeout; those are closed here.
 */
async function stopServer(s: RunningServer): Promise<void> {
  const closing = s.close();
  const sweep = setInterval(() => s.server.closeAllConnections(), 25);
  try {
    await closing;
  } finally {
    clearInterval(sweep);
  }
}

/** Waits until a toast with this title has been shown (it may already have faded). */
async function waitToast(page: Page, title: string, timeout = 20_000): Promise<void> {
  await until(async () => ((await page.evaluate('window.__toastLog')) as string[]).includes(title), `the toast "${title}"`, timeout);
}

async function runCount(page: Page): Promise<number> {
  await page.waitForSelector('[data-testid="runs-table"] tbody tr');
  return page.locator('[data-testid="runs-table"] tbody tr').count();
}

test('the workbench in a browser, end to end', { skip, timeout: 600_000 }, async (t) => {
  const tmp = tempDir('upcycle-e2e-');
  process.env['UPCYCLE_DATA_DIR'] = join(tmp.dir, 'data');
  process.env['UPCYCLE_CACHE_DIR'] = join(tmp.dir, 'cache');
  const dbPath = join(tmp.dir, 'history.sqlite');
  let service = new Service({ dbPath, demoDir: DEMO, version: 'e2e' });
  let server: RunningServer = await startServer({ service, port: 0, staticDir: DIST });
  let browser: Browser | undefined;
  const pageErrors: string[] = [];
  try {
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    const context = await browser.newContext({ viewport: { width: 1440, height: 900 }, colorScheme: 'dark' });
    const page = await context.newPage();
    page.on('pageerror', (e) => pageErrors.push(e.message));
    page.setDefaultTimeout(20_000);
    // Every toast title ever shown, and whether a progress bar ever appeared (both can come and go
    // between two polls of the test).
    await page.addInitScript(`
      window.__toastLog = []; window.__progressSeen = false;
      new MutationObserver(() => {
        for (const el of document.querySelectorAll('.toast-title')) if (!el.__seen) { el.__seen = true; window.__toastLog.push(el.textContent); }
        if (document.querySelector('[data-testid=node-progress]')) window.__progressSeen = true;
      }).observe(document, { subtree: true, childList: true });
    `);
    // Each step leaves a screenshot when it fails.
    const step = (name: string, fn: () => Promise<void>) => t.test(name, async () => {
      try {
        await fn();
      } catch (e) {
        await shot(page, `FAILED-${name.replace(/[^a-z0-9]+/gi, '-').slice(0, 40)}`).catch(() => undefined);
        throw e;
      }
    });

    await step('first launch opens the demo pipeline', async () => {
      await page.goto(server.url);
      await page.waitForSelector(node('moe'));
      assert.equal(await nodeCount(page), 23);
      assert.ok(!page.url().includes('token='), 'the token is removed from the address bar');
      await page.waitForSelector(`${node('base')} [data-testid="node-facts"]`);
      await shot(page, 'canvas-demo');
    });

    await step('build a pipeline: file browser, drag from the palette, connect ports', async () => {
      await page.click('button[aria-label="New pipeline"]');
      await until(async () => (await nodeCount(page)) === 0, 'an empty canvas');
      await addViaBrowser(page, join(DEMO, 'models'), 'moe-4x');
      await page.waitForSelector(`${node('moe-4x')} [data-testid="node-facts"]`);
      const facts = await page.locator(`${node('moe-4x')} .pnode-body`).innerText();
      assert.match(facts, /mixtral/);
      assert.match(facts, /4 experts/);
      assert.match(facts, /F32/);
      await addViaBrowser(page, join(DEMO, 'eval'), 'add.gen.jsonl');
      await addViaBrowser(page, join(DEMO, 'eval'), 'rev.gen.jsonl');
      await page.dragAndDrop('[data-testid="palette-evaluate"]', '[data-testid="canvas"]', { targetPosition: { x: 700, y: 200 } });
      await page.waitForSelector(node('evaluate'));
      assert.equal(await nodeCount(page), 4);
      await selectNode(page, 'evaluate');
      await page.fill('#f-limit', '10');
      await page.press('#f-limit', 'Enter');
      await page.click('.react-flow__pane', { position: { x: 20, y: 20 } });

      await drawEdge(page, ['moe-4x', 'model'], ['evaluate', 'model']);
      await until(async () => (await edgeCount(page)) === 1, 'the first edge');
      await drawEdge(page, ['add.gen.jsonl', 'data'], ['evaluate', 'tasks']);
      await until(async () => (await edgeCount(page)) === 2, 'the second edge');
      await drawEdge(page, ['rev.gen.jsonl', 'data'], ['evaluate', 'tasks']);
      await until(async () => (await edgeCount(page)) === 3, 'the third edge');
      await page.keyboard.press('f');
      await page.waitForTimeout(300);
      await shot(page, 'canvas-built');
    });

    await step('an invalid edge is refused with its reason', async () => {
      await drawEdge(page, ['add.gen.jsonl', 'data'], ['evaluate', 'model'], async () => {
        await page.waitForSelector('[data-testid="connection-hint"]');
        await shot(page, 'invalid-edge');
      });
      const toastText = await page.locator('[data-testid="toast-warn"]').last().innerText();
      assert.match(toastText, /Connection refused/);
      assert.match(toastText, /takes model/);
      assert.equal(await edgeCount(page), 3, 'no edge was added');
    });

    await step('run it, watch progress, read metrics on the nodes', async () => {
      await page.evaluate('window.__progressSeen = false');
      await page.click('[data-testid="run-pipeline"]');
      const first = await page.waitForSelector(`[data-testid="node-progress"], ${node('evaluate')} [data-testid="node-results"]`, { timeout: 180_000 });
      if ((await first.getAttribute('data-testid')) === 'node-progress') await shot(page, 'running');
      await page.waitForSelector(`${node('evaluate')} [data-testid="node-results"]`, { timeout: 180_000 });
      assert.equal(await page.evaluate('window.__progressSeen'), true, 'a progress bar was shown while the node ran');
      const scores = (await page.locator(`${node('evaluate')} [data-testid="score-value"]`).allInnerTexts()).map(Number);
      assert.equal(scores.length, 2, 'one score per task');
      for (const s of scores) assert.ok(s >= 0 && s <= 1, `exact match ${s} is a rate`);
      const tasks = await page.locator(`${node('evaluate')} .score-task`).allInnerTexts();
      assert.deepEqual(tasks.sort(), ['add.gen', 'rev.gen']);
      assert.ok(await page.locator(`${node('evaluate')} [data-testid="routing-mini"] .loadbar`).count() >= 4, 'routing load bars per layer');
      await waitToast(page, 'Run #1 finished');
      await shot(page, 'results');
    });

    await step('a second run with another limit, then compare both in the history', async () => {
      await selectNode(page, 'evaluate');
      await page.fill('#f-limit', '5');
      await page.press('#f-limit', 'Enter');
      await page.click('[data-testid="run-pipeline"]');
      await waitToast(page, 'Run #2 finished', 180_000);
      await page.click('[data-testid="tab-history"]');
      await page.waitForSelector('[data-testid="run-detail"]');
      assert.equal(await runCount(page), 2);
      await page.waitForSelector('[data-testid="chart-task-scores"] .recharts-bar-rectangle');
      await page.waitForSelector('[data-testid="expert-load-grid"]');
      await shot(page, 'history');
      const boxes = page.locator('[data-testid="runs-table"] tbody input[type="checkbox"]');
      await boxes.nth(0).check();
      await boxes.nth(1).check();
      await page.click('[data-testid="compare-runs"]');
      await page.waitForSelector('[data-testid="compare-view"]');
      const diff = await page.locator('[data-testid="param-diff"]').innerText();
      assert.match(diff, /limit/);
      assert.match(diff, /10/);
      assert.match(diff, /5/);
      await page.waitForSelector('[data-testid="metric-compare"]');
      await page.waitForSelector('[data-testid="chart-compare-scores"] .recharts-bar-rectangle');
      await shot(page, 'compare');
      await page.click('[data-testid="tab-canvas"]');
    });

    await step('undo and redo, copy and paste', async () => {
      await page.click('.react-flow__pane', { position: { x: 20, y: 20 } });
      const nodes = await nodeCount(page);
      const edges = await edgeCount(page);
      await selectNode(page, 'rev.gen.jsonl');
      await page.keyboard.press('Delete');
      await until(async () => (await nodeCount(page)) === nodes - 1, 'the node to be deleted');
      assert.equal(await edgeCount(page), edges - 1, 'its edge went with it');
      await page.keyboard.press('Control+z');
      await until(async () => (await nodeCount(page)) === nodes && (await edgeCount(page)) === edges, 'undo to restore the node and its edge');
      await page.keyboard.press('Control+Shift+z');
      await until(async () => (await nodeCount(page)) === nodes - 1, 'redo to delete it again');
      await page.click('[data-testid="undo"]');
      await until(async () => (await nodeCount(page)) === nodes, 'the undo button');
      await selectNode(page, 'evaluate');
      await page.keyboard.press('Control+c');
      await page.keyboard.press('Control+v');
      await until(async () => (await nodeCount(page)) === nodes + 1, 'the pasted node');
      assert.equal(await page.locator(node('evaluate-2')).count(), 1, 'the copy has a fresh id');
      await page.keyboard.press('Control+z');
      await until(async () => (await nodeCount(page)) === nodes, 'undo of the paste');
    });

    await step('save, then reopen the pipeline file', async () => {
      const ids = (await nodeIds(page)).sort();
      await page.click('.react-flow__pane', { position: { x: 20, y: 20 } });
      await page.keyboard.press('Control+s');
      await page.waitForSelector('[data-testid="file-browser"]');
      await goTo(page, tmp.dir);
      await page.fill('[data-testid="save-name"]', 'e2e-pipeline.json');
      await page.click('[data-testid="file-browser-ok"]');
      await page.waitForSelector('[data-testid="file-browser"]', { state: 'detached' });
      const file = join(tmp.dir, 'e2e-pipeline.json');
      await until(async () => existsSync(file), 'the saved file');
      const saved = JSON.parse(readFileSync(file, 'utf8')) as { nodes: unknown[]; edges: unknown[] };
      assert.equal(saved.nodes.length, ids.length);
      await page.click('button[aria-label="New pipeline"]');
      await until(async () => (await nodeCount(page)) === 0, 'an empty canvas');
      await page.keyboard.press('Control+o');
      await page.waitForSelector(`[data-testid="fb-list"][data-path="${tmp.dir}"]`);
      await page.click('[data-testid="fb-list"] [data-name="e2e-pipeline.json"]');
      await page.click('[data-testid="file-browser-ok"]');
      await until(async () => (await nodeCount(page)) === ids.length, 'the reopened pipeline');
      const again = (await nodeIds(page)).sort();
      assert.deepEqual(again, ids);
      await until(async () => (await edgeCount(page)) === saved.edges.length, 'the reopened edges');
      assert.match(await page.locator('[data-testid="doc-name"]').innerText(), /.+/);
    });

    await step('import a mergekit YAML, export it back', async () => {
      const before = await nodeCount(page);
      await page.click('[data-testid="import-yaml"]');
      await page.fill('[data-testid="yaml-text"]', 'merge_method: linear\nmodels:\n  - model: models/ffn-add\n    parameters: {weight: 0.5}\n  - model: models/ffn-rev\n    parameters: {weight: 0.5}\ndtype: float32\n');
      await page.fill('[data-testid="yaml-base"]', DEMO);
      await shot(page, 'yaml-import');
      await page.click('[data-testid="yaml-import-ok"]');
      await page.waitForSelector('[data-testid="yaml-import"]', { state: 'detached' });
      await until(async () => (await nodeCount(page)) === before + 3, 'the imported merge and its two models');
      await page.waitForSelector(`${node('merge')} [data-testid="node-facts"]`);
      assert.match(await page.locator(`${node('merge')} [data-testid="node-facts"]`).innerText(), /linear/i);
      await page.waitForTimeout(300);
      await page.click('.react-flow__pane', { position: { x: 20, y: 20 } }); // the import left its nodes selected
      await selectNode(page, 'merge');
      await page.click('[data-testid="export-yaml"]');
      const yaml = await page.locator('[data-testid="yaml-export-text"]').innerText();
      assert.match(yaml, /merge_method: linear/);
      assert.match(yaml, /ffn-add/);
      await page.keyboard.press('Escape');
    });

    await step('a corrupt checkpoint produces an actionable error toast', async () => {
      const broken = join(tmp.dir, 'models', 'broken-model');
      mkdirSync(broken, { recursive: true });
      copyFileSync(join(DEMO, 'models', 'base', 'config.json'), join(broken, 'config.json'));
      const junk = Buffer.alloc(64, 0x7f); // header length of ~9e18 bytes: not a safetensors file
      writeFileSync(join(broken, 'model.safetensors'), junk);
      await addViaBrowser(page, join(tmp.dir, 'models'), 'broken-model');
      const toastEl = page.locator('[data-testid="toast-error"]').filter({ hasText: 'broken-model' });
      await toastEl.waitFor();
      const text = await toastEl.innerText();
      assert.match(text, /Cannot read broken-model/);
      assert.match(text, /corrupt/);
      assert.match(text, /Copy details/);
      await page.waitForSelector(`${node('broken-model')} [data-testid="node-inspect-error"]`);
      await shot(page, 'error-toast');
    });

    await step('dark and light themes, help overlay', async () => {
      await page.click('[data-testid="tab-canvas"]');
      await page.click('.react-flow__pane', { position: { x: 20, y: 20 } });
      await page.keyboard.press('f');
      const theme = await page.evaluate('document.documentElement.dataset.theme');
      await page.waitForTimeout(300);
      await shot(page, `canvas-${String(theme)}`);
      await page.click('[data-testid="theme-toggle"]');
      const other = await page.evaluate('document.documentElement.dataset.theme');
      assert.notEqual(other, theme);
      await page.waitForTimeout(200);
      await shot(page, `canvas-${String(other)}`);
      await page.reload();
      await page.waitForSelector('[data-testid="pipeline-node"]');
      assert.equal(await page.evaluate('document.documentElement.dataset.theme'), other, 'the theme is remembered');
      await page.keyboard.press('Shift+?');
      await page.waitForSelector('[data-testid="help-overlay"]');
      assert.match(await page.locator('[data-testid="help-overlay"]').innerText(), /Undo/);
      await shot(page, 'help');
      await page.keyboard.press('Escape');
    });

    await step('the history survives a server restart', async () => {
      await page.click('[data-testid="tab-history"]');
      const before = await runCount(page);
      await stopServer(server);
      service.close();
      service = new Service({ dbPath, demoDir: DEMO, version: 'e2e' });
      server = await startServer({ service, port: 0, staticDir: DIST });
      await page.goto(server.url);
      await page.click('[data-testid="tab-history"]');
      await page.waitForSelector('[data-testid="run-detail"]');
      assert.equal(await runCount(page), before);
      const names = await page.locator('[data-testid="runs-table"] tbody tr').allInnerTexts();
      assert.ok(names.every((n) => /done/i.test(n)), 'both runs are still recorded as succeeded');
      await page.click('[data-testid="reopen-run"]');
      await page.waitForSelector(`${node('evaluate')} [data-testid="node-results"]`);
      await shot(page, 'reopened-run');
    });

    assert.deepEqual(pageErrors, [], 'no uncaught errors in the page');
  } finally {
    await browser?.close();
    await stopServer(server).catch(() => undefined);
    service.close();
    tmp.cleanup();
  }
});
