/** Run history: the runs table on the left, one run's detail or a comparison on the right. */
import type { ReactElement } from 'react';
import { useStore } from '../state/store';
import { uiStore } from '../state/ui';
import { CompareView } from './CompareView';
import { RunDetail } from './RunDetail';
import { RunsTable } from './RunsTable';

export function HistoryView(): ReactElement {
  const run = useStore(uiStore, (s) => s.historyRun);
  const comparing = useStore(uiStore, (s) => s.comparing);
  const checked = useStore(uiStore, (s) => s.historyChecked);
  return (
    <div className="history" data-testid="history-view">
      <RunsTable />
      <div className="history-main">
        {comparing && checked.length >= 2 ? <CompareView ids={checked} /> : run !== null ? <RunDetail id={run} /> : <div className="muted pad">Select a run.</div>}
      </div>
    </div>
  );
}
