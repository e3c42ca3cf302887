/**
 * The desktop window's security settings, kept free of runtime Electron imports so a unit test can
 * assert them: context isolation and sandbox on, no Node in the renderer, web security on, no remote
 * content (the UI is served from our own app:// scheme), navigation and new windows refused.
 */
import type { BrowserWindowConstructorOptions } from 'electron';

export const APP_SCHEME = 'app';
export const APP_ORIGIN = `${APP_SCHEME}://ui`;

export const CONTENT_SECURITY_POLICY = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'none'";

export function windowOptions(preload: string): BrowserWindowConstructorOptions {
  return {
    width: 1440,
    height: 900,
    minWidth: 960,
    minHeight: 600,
    title: 'Upcycle Studio',
    backgroundColor: '#111318',
    show: false,
    webPreferences: {
      preload,
      contextIsolation: true,
      sandbox: true,
      nodeIntegration: false,
      nodeIntegrationInWorker: false,
      nodeIntegrationInSubFrames: false,
      webSecurity: true,
      allowRunningInsecureContent: false,
      experimentalFeatures: false,
      webviewTag: false,
      spellcheck: false,
    },
  };
}

/** Only our own UI may be shown; everything else is refused (links open in the system browser). */
export function isAllowedNavigation(url: string): boolean {
  return url.startsWith(`${APP_ORIGIN}/`);
}

/** IPC channel names: the preload exposes exactly these. */
export const CHANNELS = { call: 'upcycle:call', event: 'upcycle:event', pick: 'upcycle:pick' } as const;
