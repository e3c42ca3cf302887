/**
 * Files on the machine running the engine (`listDir`), which in server mode is how checkpoints,
 * adapters and datasets reach the canvas. One dialog, several purposes: add to the canvas, pick a
 * node's path, open or save a pipeline file. Folders are recognised as models or adapters; recently
 * inspected checkpoints are one click away.
 */
import { useCallback, useEffect, useMemo, useRef, useState, type ReactElement } from 'react';
import { api } from '../api/client';
import type { DirEntry, DirListing } from '../api/types';
import { canvas } from '../canvas/controller';
import { docStore } from '../state/document';
import { addPath, setParam } from '../state/edit';
import { openPipelineFile, savePipelineFile } from '../state/files';
import { useStore } from '../state/store';
import { closeDialog, rememberDir, uiStore, type FileDialogMode } from '../state/ui';
import { Dialog } from '../ui/Dialog';
import { Icon } from '../ui/icons';
import { basename, dirname, errorMessage, humanBytes, isAbsolutePath, joinPath } from '../util/format';

const KIND_ICON: Record<DirEntry['kind'], (p: { size?: number }) => ReactElement> = {
  dir: Icon.Folder, model: Icon.Model, adapter: Icon.Adapter, dataset: Icon.Dataset, safetensors: Icon.Model, file: Icon.File,
};
const KIND_LABEL: Record<DirEntry['kind'], string> = { dir: '', model: 'model', adapter: 'LoRA adapter', dataset: 'dataset', safetensors: 'safetensors', file: '' };

function slug(name: string): string {
  return name.toLowerCase().replace(/[^a-z0-9._-]+/g, '-').replace(/^-+|-+$/g, '') || 'pipeline';
}

export function FileBrowser({ dlg }: { dlg: FileDialogMode }): ReactElement {
  const lastDir = useStore(uiStore, (s) => s.lastDir);
  const docName = useStore(docStore, (s) => s.doc.name);
  const filePath = useStore(docStore, (s) => s.filePath);
  const pickValue = useStore(docStore, (s) => (dlg.mode === 'pick' ? s.doc.nodes.find((n) => n.id === dlg.nodeId)?.params[dlg.field.key] : undefined));
  const start = dlg.mode === 'pick' && typeof pickValue === 'string' && pickValue ? dirname(pickValue) : filePath ? dirname(filePath) : lastDir ?? undefined;

  const [listing, setListing] = useState<DirListing | null>(null);
  const [location, setLocation] = useState(start ?? '');
  const [error, setError] = useState<string | null>(null);
  const [chosen, setChosen] = useState<DirEntry | null>(null);
  const [fileName, setFileName] = useState(filePath ? basename(filePath) : `${slug(docName)}.json`);
  const [recent, setRecent] = useState<string[]>([]);
  const [busy, setBusy] = useState(false);
  const [loading, setLoading] = useState(true);

  const request = useRef(0);
  const edited = useRef(false);
  const go = useCallback(async (path?: string) => {
    const mine = ++request.current; // only the latest navigation may update the view
    edited.current = false;
    setError(null);
    setLoading(true);
    try {
      const l = await api.listDir(path ? { path } : {});
      if (mine !== request.current) return;
      setListing(l);
      if (!edited.current) setLocation(l.path); // never overwrite what is being typed
      setChosen(null);
      rememberDir(l.path);
    } catch (e) {
      if (mine === request.current) setError(errorMessage(e));
    } finally {
      if (mine === request.current) setLoading(false);
    }
  }, []);

  useEffect(() => {
    void go(start).catch(() => undefined);
    api.recent({}).then(setRecent, () => setRecent([]));
  }, []);

  const wantFolder = dlg.mode === 'pick' && dlg.field.pick === 'folder';
  const selectable = (e: DirEntry): boolean => {
    switch (dlg.mode) {
      case 'add': return e.kind === 'model' || e.kind === 'adapter' || e.kind === 'dataset' || e.kind === 'safetensors';
      case 'pick': return wantFolder ? e.kind === 'dir' || e.kind === 'model' || e.kind === 'adapter' : e.kind !== 'dir' && e.kind !== 'model' && e.kind !== 'adapter';
      case 'open': return e.kind === 'file' && /\.json$/i.test(e.name);
      case 'save': return e.kind === 'file' && /\.json$/i.test(e.name);
    }
  };
  const entries = useMemo(() => listing?.entries.filter((e) => dlg.mode !== 'open' && dlg.mode !== 'save' ? true : e.kind !== 'file' || /\.json$/i.test(e.name)) ?? [], [listing, dlg.mode]);

  const finish = async (entry: DirEntry | null) => {
    setBusy(true);
    try {
      switch (dlg.mode) {
        case 'add': {
          if (!entry) return;
          const at = dlg.at ?? canvas()?.center() ?? { x: 0, y: 0 };
          const id = await addPath(entry.path, { x: at.x - 110, y: at.y - 60 }, entry.kind);
          if (id) closeDialog();
          return;
        }
        case 'pick': {
          const path = entry?.path ?? (wantFolder ? listing?.path : undefined);
          if (!path) return;
          setParam(dlg.nodeId, dlg.field.key, path);
          closeDialog();
          return;
        }
        case 'open':
          if (entry && (await openPipelineFile(entry.path))) closeDialog();
          return;
        case 'save': {
          if (!listing || !fileName.trim()) return;
          const target = isAbsolutePath(fileName) ? fileName : joinPath(listing.path, fileName.trim());
          if (await savePipelineFile(target)) closeDialog();
          return;
        }
      }
    } finally {
      setBusy(false);
    }
  };

  const open = (e: DirEntry) => {
    if (e.kind === 'dir' || ((e.kind === 'model' || e.kind === 'adapter') && !selectable(e))) return void go(e.path);
    if (selectable(e)) void finish(e);
    else if (e.kind === 'model' || e.kind === 'adapter') void go(e.path);
  };

  const title = { add: 'Add checkpoints, adapters and datasets', pick: `Choose ${dlg.mode === 'pick' ? dlg.field.label.toLowerCase() : ''}`, open: 'Open pipeline', save: 'Save pipeline' }[dlg.mode];
  const primary = { add: 'Add to canvas', pick: chosen ? 'Choose' : wantFolder ? 'Use this folder' : 'Choose', open: 'Open', save: 'Save' }[dlg.mode];
  const primaryDisabled = busy || loading || (dlg.mode === 'save' ? !fileName.trim() || !listing : dlg.mode === 'pick' && wantFolder ? !listing : !chosen);

  return (
    <Dialog
      title={title}
      onClose={closeDialog}
      wide
      testId="file-browser"
      footer={
        <>
          {dlg.mode === 'save' ? (
            <input className="grow" type="text" value={fileName} onChange={(e) => setFileName(e.target.value)} onKeyDown={(e) => e.key === 'Enter' && void finish(null)} aria-label="File name" data-testid="save-name" data-autofocus />
          ) : (
            <div className="grow chosen" title={chosen?.path}>{chosen ? chosen.path : dlg.mode === 'add' ? 'Select a model folder, adapter folder or .jsonl dataset (double-click adds it)' : ''}</div>
          )}
          <button className="btn" onClick={closeDialog}>Cancel</button>
          <button className="btn btn-primary" disabled={primaryDisabled} onClick={() => void finish(chosen)} data-testid="file-browser-ok">{primary}</button>
        </>
      }
    >
      <div className="fb">
        <div className="fb-side">
          <div className="side-title">Places</div>
          <button className="fb-place" onClick={() => void go()}><Icon.Folder size={14} /> Home</button>
          {lastDir && <button className="fb-place" onClick={() => void go(lastDir)} title={lastDir}><Icon.History size={14} /> {basename(lastDir)}</button>}
          {recent.length > 0 && <div className="side-title">Recent</div>}
          {recent.slice(0, 10).map((p) => (
            <button key={p} className="fb-place" title={p} onClick={() => { void go(dirname(p)).then(() => setChosen({ name: basename(p), path: p, kind: 'model' })); }}>
              <Icon.Model size={14} /> {basename(p)}
            </button>
          ))}
        </div>
        <div className="fb-main">
          <div className="fb-bar">
            <button className="icon-btn" disabled={!listing?.parent} onClick={() => listing?.parent && void go(listing.parent)} title="Up one folder" aria-label="Up one folder"><Icon.Up /></button>
            <input className="fb-location" type="text" value={location} spellCheck={false} onChange={(e) => { edited.current = true; setLocation(e.target.value); }} onKeyDown={(e) => e.key === 'Enter' && void go(location.trim())} aria-label="Folder" data-testid="fb-location" />
            <button className="btn btn-small" onClick={() => void go(location.trim())} data-testid="fb-go">Go</button>
          </div>
          {error && <div className="fb-error">{error}</div>}
          <div className="fb-list" role="listbox" data-testid="fb-list" data-path={loading ? '' : listing?.path}>
            {entries.length === 0 && !error && <div className="fb-empty">{listing ? 'Nothing here the workbench can use' : 'Loading…'}</div>}
            {entries.map((e) => {
              const I = KIND_ICON[e.kind];
              const ok = selectable(e);
              return (
                <div
                  key={e.path}
                  className={`fb-row kind-${e.kind}${chosen?.path === e.path ? ' chosen' : ''}${ok ? '' : ' dim'}`}
                  role="option"
                  aria-selected={chosen?.path === e.path}
                  data-name={e.name}
                  onClick={() => (ok ? setChosen(e) : e.kind === 'dir' ? void go(e.path) : undefined)}
                  onDoubleClick={() => open(e)}
                >
                  <span className="fb-icon"><I size={15} /></span>
                  <span className="fb-name">{e.name}</span>
                  {KIND_LABEL[e.kind] && <span className={`fb-kind k-${e.kind}`}>{KIND_LABEL[e.kind]}</span>}
                  <span className="fb-size">{e.size !== undefined ? humanBytes(e.size) : ''}</span>
                  {(e.kind === 'dir' || e.kind === 'model' || e.kind === 'adapter') && <button className="icon-btn fb-enter" title="Open folder" aria-label={`Open ${e.name}`} onClick={(ev) => { ev.stopPropagation(); void go(e.path); }}><Icon.ChevronRight size={14} /></button>}
                </div>
              );
            })}
          </div>
        </div>
      </div>
    </Dialog>
  );
}
