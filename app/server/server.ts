/**
 * Server mode: the service contract over HTTP (POST /api/call/<method>) and a WebSocket of run events
 * (/api/events), serving the renderer's build. Loopback by default; every API request and WebSocket
 * needs the per-launch token (Authorization: Bearer, or ?token= for the WebSocket, which browsers
 * cannot give headers) — no cookies, so no CSRF. Only the static UI files are public. The Host header
 * must name this server (defeats DNS rebinding). Bodies over 8 MB are refused.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { extname, join, normalize, resolve, sep } from 'node:path';
import { WebSocketServer, type WebSocket } from 'ws';
import { MAX_REQUEST_BYTES } from '../api/contract.js';
import type { Service } from '../api/service.js';

export interface ServerOptions {
  service: Service;
  port?: number;
  host?: string;
  /** Folder of the renderer build (index.html + assets). */
  staticDir: string;
  token?: string;
}

export interface RunningServer {
  url: string;
  token: string;
  port: number;
  server: Server;
  close: () => Promise<void>;
}

const TYPES: Record<string, string> = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.css': 'text/css', '.svg': 'image/svg+xml', '.png': 'image/png', '.json': 'application/json', '.woff2': 'font/woff2', '.ico': 'image/x-icon' };

export async function startServer(opts: ServerOptions): Promise<RunningServer> {
  const token = opts.token ?? randomBytes(24).toString('base64url');
  const host = opts.host ?? '127.0.0.1';
  const staticRoot = resolve(opts.staticDir);
  const authorized = (req: IncomingMessage, url: URL): boolean => {
    const h = req.headers.authorization;
    const given = h?.startsWith('Bearer ') ? h.slice(7) : url.searchParams.get('token') ?? '';
    const a = Buffer.from(given);
    const b = Buffer.from(token);
    return a.length === b.length && timingSafeEqual(a, b);
  };
  let port = opts.port ?? 0;
  const hostOk = (req: IncomingMessage): boolean => {
    const h = (req.headers.host ?? '').toLowerCase();
    if (host !== '127.0.0.1' && host !== 'localhost' && host !== '::1') return true; // bound elsewhere on purpose
    return [`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`].includes(h);
  };
  const send = (res: ServerResponse, status: number, body: unknown, type = 'application/json') => {
    const data = typeof body === 'string' || body instanceof Buffer ? body : JSON.stringify(body);
    res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store', 'x-content-type-options': 'nosniff', 'referrer-policy': 'no-referrer' });
    res.end(data);
  };

  const server = createServer((req, res) => {
    void (async () => {
      const url = new URL(req.url ?? '/', 'http://localhost');
      if (!hostOk(req)) return send(res, 403, { ok: false, error: { message: 'unexpected Host header' } });
      if (url.pathname.startsWith('/api/')) {
        if (!authorized(req, url)) return send(res, 401, { ok: false, error: { message: 'missing or wrong token: use the URL printed when the server started' } });
        if (url.pathname === '/api/health' && req.method === 'GET') return send(res, 200, await opts.service.call('health', {}));
        const m = /^\/api\/call\/([A-Za-z]+)$/.exec(url.pathname);
        if (!m || req.method !== 'POST') return send(res, 404, { ok: false, error: { message: 'no such endpoint' } });
        let body: unknown;
        try {
          body = await readBody(req);
        } catch (e) {
          // Drain (bounded) what the client is still sending so it reads our answer instead of a reset.
          let drained = 0;
          req.on('data', (c: Buffer) => {
            drained += c.length;
            if (drained > 4 * MAX_REQUEST_BYTES) req.destroy();
          });
          req.resume();
          return send(res, (e as { status?: number }).status ?? 400, { ok: false, error: { message: (e as Error).message } });
        }
        const r = await opts.service.call(m[1]!, body);
        return send(res, r.ok ? 200 : 400, r);
      }
      if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, 'method not allowed', 'text/plain');
      // Static UI: a path inside the build folder, else index.html (client-side routes).
      const rel = normalize(decodeURIComponent(url.pathname)).replace(/^([/\\])+/, '');
      let file = resolve(staticRoot, rel);
      if (!file.startsWith(staticRoot + sep) && file !== staticRoot) return send(res, 403, 'forbidden', 'text/plain');
      const st = await stat(file).catch(() => undefined);
      if (!st?.isFile()) file = join(staticRoot, 'index.html');
      const data = await readFile(file).catch(() => undefined);
      if (!data) return send(res, 404, 'the UI is not built: run `npm run build:ui`', 'text/plain');
      res.writeHead(200, {
        'content-type': TYPES[extname(file)] ?? 'application/octet-stream',
        'x-content-type-options': 'nosniff',
        'content-security-policy': "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; style-src 'self' 'unsafe-inline'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
      });
      res.end(req.method === 'HEAD' ? undefined : data);
    })().catch((e: unknown) => send(res, 500, { ok: false, error: { message: e instanceof Error ? e.message : String(e) } }));
  });

  const wss = new WebSocketServer({ noServer: true, maxPayload: 64 * 1024 });
  const clients = new Set<WebSocket>();
  server.on('upgrade', (req, socket, head) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (url.pathname !== '/api/events' || !hostOk(req) || !authorized(req, url)) {
      socket.write('HTTP/1.1 401 Unauthorized\r\nConnection: close\r\n\r\n');
      socket.destroy();
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      clients.add(ws);
      ws.on('close', () => clients.delete(ws));
      ws.on('message', () => undefined); // events flow one way; requests go over HTTP
    });
  });
  const off = opts.service.onEvent((e) => {
    const data = JSON.stringify(e);
    for (const c of clients) if (c.readyState === c.OPEN) c.send(data);
  });

  await new Promise<void>((res, rej) => {
    server.once('error', rej);
    server.listen(port, host, () => res());
  });
  port = (server.address() as { port: number }).port;
  const shownHost = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;
  return {
    url: `http://${shownHost}:${port}/?token=${token}`,
    token,
    port,
    server,
    close: async () => {
      off();
      for (const c of clients) c.terminate();
      await new Promise<void>((r) => wss.close(() => r()));
      const closed = new Promise<void>((r) => server.close(() => r()));
      server.closeAllConnections(); // idle keep-alive connections would hold close() for a minute
      await closed;
    },
  };
}

async function readBody(req: IncomingMessage): Promise<unknown> {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > MAX_REQUEST_BYTES) throw Object.assign(new Error(`request body over ${MAX_REQUEST_BYTES} bytes`), { status: 413 });
  const chunks: Buffer[] = [];
  let size = 0;
  await new Promise<void>((resolve, reject) => {
    const onData = (c: Buffer) => {
      size += c.length;
      if (size > MAX_REQUEST_BYTES) {
        req.off('data', onData);
        reject(Object.assign(new Error(`request body over ${MAX_REQUEST_BYTES} bytes`), { status: 413 }));
        return;
      }
      chunks.push(c);
    };
    req.on('data', onData);
    req.once('end', () => resolve());
    req.once('error', reject);
  });
  if (size === 0) return {};
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw Object.assign(new Error('the request body is not valid JSON'), { status: 400 });
  }
}
