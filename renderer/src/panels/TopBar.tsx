/**
 * The top bar: views, the document (name, autosave state), run controls, edit and file actions,
 * theme and help. Every button names its shortcut in its tooltip.
 */
import type { ReactElement } from 'react';
import { shortcutFor } from '../commands';
import { docStore, redo, undo } from '../state/document';
import { exportYaml, newPipeline, loadDemo, open, save } from '../state/files';
import { cancelRun, runPipeline, runStore } from '../state/runs';
import { useStore } from '../state/store';
import { openDialog, setView, toggleTheme, uiStore } from '../state/ui';
import { Icon } from '../ui/icons';
import { basename } from '../util/format';

const tip = (label: string, id: string) => `${label}${shortcutFor(id) ? ` (${shortcutFor(id)})` : ''}`;

export function TopBar(): ReactElement {
  const view = useStore(uiStore, (s) => s.view);
  const theme = useStore(uiStore, (s) => s.theme);
  const name = useStore(docStore, (s) => s.doc.name);
  const filePath = useStore(docStore, (s) => s.filePath);
  const dirty = useStore(docStore, (s) => s.dirty);
  const saveState = useStore(docStore, (s) => s.saveState);
  const canUndo = useStore(docStore, (s) => s.canUndo);
  const canRedo = useStore(docStore, (s) => s.canRedo);
  const active = useStore(runStore, (s) => s.active);
  const connection = useStore(runStore, (s) => s.connection);
  const selected = useStore(uiStore, (s) => s.selectedNodes);
  const selectedType = useStore(docStore, (s) => (selected.length === 1 ? s.doc.nodes.find((n) => n.id === selected[0])?.type : undefined));
  const hasNodes = useStore(docStore, (s) => s.doc.nodes.length > 0);

  return (
    <header className="topbar">
      <div className="brand"><Icon.Logo /> <span>Upcycle Studio</span></div>
      <nav className="tabs" role="tablist">
        <button role="tab" aria-selected={view === 'canvas'} className={view === 'canvas' ? 'on' : ''} onClick={() => setView('canvas')} title={tip('Canvas', 'canvas')} data-testid="tab-canvas"><Icon.Canvas /> Canvas</button>
        <button role="tab" aria-selected={view === 'history'} className={view === 'history' ? 'on' : ''} onClick={() => setView('history')} title={tip('Run history', 'history')} data-testid="tab-history"><Icon.History /> History</button>
      </nav>
      <div className="docinfo" title={filePath ?? 'Not saved to a file; the workbench autosaves it'}>
        <span className="docname" data-testid="doc-name">{name}</span>
        {filePath && <span className="docfile">{basename(filePath)}{dirty ? ' •' : ''}</span>}
        <span className={`savestate ss-${saveState}`} data-testid="save-state">{saveState === 'saved' ? 'autosaved' : saveState === 'error' ? 'autosave failed' : 'saving…'}</span>
      </div>
      <div className="grow" />
      {view === 'canvas' && (
        <div className="toolgroup">
          <button className="icon-btn" disabled={!canUndo} onClick={undo} title={tip('Undo', 'undo')} aria-label="Undo" data-testid="undo"><Icon.Undo /></button>
          <button className="icon-btn" disabled={!canRedo} onClick={redo} title={tip('Redo', 'redo')} aria-label="Redo" data-testid="redo"><Icon.Redo /></button>
          <span className="sep" />
          <button className="icon-btn" onClick={newPipeline} title="New empty pipeline" aria-label="New pipeline"><Icon.Plus /></button>
          <button className="icon-btn" onClick={open} title={tip('Open pipeline…', 'open')} aria-label="Open pipeline" data-testid="open"><Icon.Open /></button>
          <button className="icon-btn" onClick={save} title={tip('Save pipeline', 'save')} aria-label="Save pipeline" data-testid="save"><Icon.Save /></button>
          <button className="icon-btn" onClick={() => openDialog({ kind: 'importYaml' })} title={tip('Import mergekit YAML…', 'importYaml')} aria-label="Import YAML" data-testid="import-yaml"><Icon.Import /></button>
          <button className="icon-btn" disabled={selectedType !== 'merge' && selectedType !== 'moe'} onClick={() => void exportYaml()} title={tip('Export the selected Merge/MoE node as mergekit YAML', 'exportYaml')} aria-label="Export YAML"><Icon.Export /></button>
          <button className="btn btn-ghost btn-small" onClick={() => void loadDemo()} title="Open the bundled demo pipeline">Demo</button>
        </div>
      )}
      <div className="toolgroup run">
        {active ? (
          <button className="btn btn-danger" onClick={() => void cancelRun()} disabled={!active.runId || active.cancelling} title={tip('Cancel the run', 'cancel')} data-testid="cancel-run">
            <Icon.Stop /> {active.cancelling ? 'Cancelling…' : 'Cancel'}
          </button>
        ) : (
          <>
            <button className="btn" disabled={selected.length !== 1} onClick={() => void runPipeline(selected[0])} title={tip('Run the selected node and what it needs', 'runNode')} data-testid="run-selected"><Icon.PlayNode /> Run node</button>
            <button className="btn btn-primary" disabled={!hasNodes} onClick={() => void runPipeline()} title={tip('Run the whole pipeline', 'run')} data-testid="run-pipeline"><Icon.Play /> Run pipeline</button>
          </>
        )}
      </div>
      <div className="toolgroup">
        <span className={`conn conn-${connection}`} title={connection === 'open' ? 'Connected to the engine' : connection === 'unauthorized' ? 'Not authorised: open the address printed by `upcycle serve`' : 'Reconnecting to the engine…'} data-testid="connection" />
        <button className="icon-btn" onClick={toggleTheme} title={tip(theme === 'dark' ? 'Light theme' : 'Dark theme', 'theme')} aria-label="Toggle theme" data-testid="theme-toggle">{theme === 'dark' ? <Icon.Sun /> : <Icon.Moon />}</button>
        <button className="icon-btn" onClick={() => openDialog({ kind: 'help' })} title={tip('Keyboard shortcuts', 'help')} aria-label="Keyboard shortcuts" data-testid="help"><Icon.Keyboard /></button>
      </div>
    </header>
  );
}
