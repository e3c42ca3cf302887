/**
 * Electron main: one window, menus, native dialogs, and the engine's service contract on IPC. The UI
 * is served from the app:// scheme with a strict CSP; every IPC message is validated by the contract
 * (zod) where it arrives and must come from our own UI. Heavy work runs in worker threads (the
 * service runs pipelines off this thread), so the window never stalls.
 */
import { app, BrowserWindow, dialog, ipcMain, Menu, net, protocol, shell } from 'electron';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { MAX_REQUEST_BYTES } from '../app/api/contract.js';
import { Service } from '../app/api/service.js';
import { defaultHistoryPath } from '../app/io/data-dir.js';
import { APP_ORIGIN, APP_SCHEME, CHANNELS, CONTENT_SECURITY_POLICY, isAllowedNavigation, windowOptions } from './window-options.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const uiDir = join(root, 'renderer', 'dist');
const version = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string }).version;

protocol.registerSchemesAsPrivileged([{ scheme: APP_SCHEME, privileges: { standard: true, secure: true, supportFetchAPI: true } }]);

let service: Service | undefined;

function createWindow(): BrowserWindow {
  const win = new BrowserWindow(windowOptions(join(root, 'build', 'main', 'preload.cjs')));
  win.webContents.on('will-navigate', (e, url) => {
    if (!isAllowedNavigation(url)) e.preventDefault();
  });
  win.webContents.setWindowOpenHandler(({ url }) => {
    if (/^https?:\/\//.test(url)) void shell.openExternal(url);
    return { action: 'deny' };
  });
  win.once('ready-to-show', () => win.show());
  void win.loadURL(`${APP_ORIGIN}/index.html`);
  const off = service!.onEvent((e) => {
    if (!win.isDestroyed()) win.webContents.send(CHANNELS.event, e);
  });
  win.on('closed', off);
  return win;
}

function fromOurUi(frameUrl: string | undefined): boolean {
  return !!frameUrl && isAllowedNavigation(frameUrl);
}

void app.whenReady().then(() => {
  service = new Service({ dbPath: defaultHistoryPath(), demoDir: join(root, 'resources', 'demo'), version });
  protocol.handle(APP_SCHEME, async (req) => {
    const url = new URL(req.url);
    const rel = decodeURIComponent(url.pathname).replace(/^\/+/, '') || 'index.html';
    const file = join(uiDir, rel);
    if (!file.startsWith(uiDir)) return new Response('forbidden', { status: 403 });
    const res = await net.fetch(pathToFileURL(file).toString());
    const headers = new Headers(res.headers);
    headers.set('Content-Security-Policy', CONTENT_SECURITY_POLICY);
    return new Response(res.body, { status: res.status, headers });
  });
  ipcMain.handle(CHANNELS.call, async (event, method: unknown, args: unknown) => {
    if (!fromOurUi(event.senderFrame?.url)) return { ok: false, error: { message: 'refused: not from the app window' } };
    if (typeof method !== 'string') return { ok: false, error: { message: 'method must be a string' } };
    if (JSON.stringify(args ?? {}).length > MAX_REQUEST_BYTES) return { ok: false, error: { message: 'message too large' } };
    return service!.call(method, args);
  });
  ipcMain.handle(CHANNELS.pick, async (event, kind: unknown) => {
    if (!fromOurUi(event.senderFrame?.url)) return null;
    const r = await dialog.showOpenDialog({ properties: [kind === 'file' ? 'openFile' : 'openDirectory'] });
    return r.canceled ? null : (r.filePaths[0] ?? null);
  });
  Menu.setApplicationMenu(Menu.buildFromTemplate([
    ...(process.platform === 'darwin' ? [{ role: 'appMenu' as const }] : []),
    { role: 'fileMenu' },
    { role: 'editMenu' },
    { role: 'viewMenu' },
    { role: 'windowMenu' },
    { role: 'help', submenu: [{ label: 'Upcycle Studio on the web', click: () => void shell.openExternal('https://github.com/') }] },
  ]));
  createWindow();
  app.on('activate', () => {
    if (BrowserWindow.getAllWindows().length === 0) createWindow();
  });
});

app.on('window-all-closed', () => {
  service?.close();
  if (process.platform !== 'darwin') app.quit();
});
