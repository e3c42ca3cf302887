/** The workbench: top bar, then either the canvas (palette · canvas · inspector, log below) or the run history. */
import { lazy, Suspense, useEffect, type ReactElement } from 'react';
import { Canvas } from './canvas/Canvas';
import { Palette } from './canvas/Palette';
import { handleKey } from './commands';
import { Dialogs } from './dialogs/Dialogs';
import { Inspector } from './inspector/Inspector';
import { LogPanel } from './panels/LogPanel';
import { TopBar } from './panels/TopBar';
import { runStore } from './state/runs';
import { useStore } from './state/store';
import { uiStore } from './state/ui';
import { Toasts } from './ui/Toasts';

// The history view brings the charting library; load it when first opened.
const HistoryView = lazy(() => import('./history/HistoryView').then((m) => ({ default: m.HistoryView })));

export function App(): ReactElement {
  const view = useStore(uiStore, (s) => s.view);
  const connection = useStore(runStore, (s) => s.connection);
  useEffect(() => {
    window.addEventListener('keydown', handleKey);
    return () => window.removeEventListener('keydown', handleKey);
  }, []);
  return (
    <div className="app" data-view={view}>
      <TopBar />
      {connection === 'unauthorized' && (
        <div className="banner banner-error" role="alert">
          This page has no valid access token. Open the address printed by <code>upcycle serve</code> (it ends in <code>?token=…</code>).
        </div>
      )}
      <main className="main">
        <div className="workspace" hidden={view !== 'canvas'}>
          <Palette />
          <div className="center">
            <Canvas />
            <LogPanel />
          </div>
          <Inspector />
        </div>
        {view === 'history' && (
          <Suspense fallback={<div className="muted pad">Loading the run history…</div>}>
            <HistoryView />
          </Suspense>
        )}
      </main>
      <Dialogs />
      <Toasts />
    </div>
  );
}
