/** `upcycle serve [--port N] [--host 127.0.0.1] [--allow-remote]`: the same UI in a browser, e.g. on a big remote box. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { Command } from './main.js';

export const serveCommand: Command = {
  name: 'serve',
  summary: 'Serve the workbench UI and engine on a local port (token-protected; loopback unless --allow-remote).',
  usage: 'upcycle serve [--port 7860] [--host 127.0.0.1] [--allow-remote] [--db PATH] [--open]',
  async run(args) {
    const { values } = parseArgs({ args, options: { port: { type: 'string' }, host: { type: 'string' }, 'allow-remote': { type: 'boolean' }, db: { type: 'string' }, open: { type: 'boolean' } } });
    const host = values.host ?? '127.0.0.1';
    const loopback = ['127.0.0.1', 'localhost', '::1'].includes(host);
    if (!loopback && !values['allow-remote']) throw new Error(`--host ${host} exposes the engine (it reads and writes files) beyond this machine; add --allow-remote if you mean it`);
    const port = values.port !== undefined ? Number(values.port) : 7860;
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error('--port must be 0–65535');
    const root = fileURLToPath(new URL('../../../', import.meta.url));
    const { Service } = await import('../api/service.js');
    const { startServer } = await import('../server/server.js');
    const { defaultHistoryPath } = await import('../io/data-dir.js');
    const version = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string }).version;
    const service = new Service({ dbPath: values.db ?? defaultHistoryPath(), demoDir: join(root, 'resources', 'demo'), version });
    const s = await startServer({ service, port, host, staticDir: join(root, 'renderer', 'dist') });
    if (!loopback) process.stderr.write(`warning: listening on ${host}: anyone who can reach this port and has the token can read and write files as this user\n`);
    console.log(`Upcycle Studio at ${s.url}`);
    if (values.open) {
      const { openBrowser } = await import('../server/open-browser.js');
      openBrowser(s.url);
    }
    await new Promise<void>((resolveStop) => {
      const stop = () => resolveStop();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
    await s.close();
    service.close();
    return 0;
  },
};
