/**
 * The preload: exposes only the typed contract (call + events + native file picking) to the sandboxed
 * renderer through contextBridge. CommonJS because sandboxed preloads cannot be ES modules.
 */
import { contextBridge, ipcRenderer, webUtils, type IpcRendererEvent } from 'electron';

const CALL = 'upcycle:call';
const EVENT = 'upcycle:event';
const PICK = 'upcycle:pick';

contextBridge.exposeInMainWorld('upcycle', {
  desktop: true,
  call: (method: string, args: unknown): Promise<unknown> => ipcRenderer.invoke(CALL, String(method), args),
  onEvent: (fn: (e: unknown) => void): (() => void) => {
    const handler = (_: IpcRendererEvent, e: unknown) => fn(e);
    ipcRenderer.on(EVENT, handler);
    return () => ipcRenderer.removeListener(EVENT, handler);
  },
  pick: (kind: 'folder' | 'file'): Promise<string | null> => ipcRenderer.invoke(PICK, kind === 'file' ? 'file' : 'folder'),
  /** Absolute path of a file or folder dropped from the OS onto the canvas. */
  pathForFile: (file: File): string => webUtils.getPathForFile(file),
});
