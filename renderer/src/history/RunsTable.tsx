/**
 * Every recorded run (SQLite, survives restarts): filter by text and status, tick 2–10 to compare,
 * click one for its detail. Refreshes when a run started here ends.
 */
import { useEffect, useState, type ReactElement } from 'react';
import { api } from '../api/client';
import type { RunRecord, RunStatus } from '../api/types';
import { runStore } from '../state/runs';
import { useStore } from '../state/store';
import { toastError } from '../state/toasts';
import { uiStore } from '../state/ui';
import { Icon } from '../ui/icons';
import { StatusBadge } from '../ui/StatusBadge';
import { dateTime, humanDuration } from '../util/format';
import { headline } from '../util/metrics';

const STATUSES: (RunStatus | '')[] = ['', 'succeeded', 'failed', 'running', 'cancelled', 'interrupted'];

export function RunsTable(): ReactElement {
  const finished = useStore(runStore, (s) => s.finished);
  const selected = useStore(uiStore, (s) => s.historyRun);
  const checked = useStore(uiStore, (s) => s.historyChecked);
  const comparing = useStore(uiStore, (s) => s.comparing);
  const [text, setText] = useState('');
  const [query, setQuery] = useState('');
  const [status, setStatus] = useState<RunStatus | ''>('');
  const [runs, setRuns] = useState<RunRecord[] | null>(null);
  const [tick, setTick] = useState(0);

  useEffect(() => {
    const t = window.setTimeout(() => setQuery(text.trim()), 250);
    return () => window.clearTimeout(t);
  }, [text]);

  useEffect(() => {
    let live = true;
    api.listRuns({ limit: 500, ...(query ? { text: query } : {}), ...(status ? { status } : {}) }).then(
      (r) => {
        if (!live) return;
        setRuns(r);
        if (uiStore.get().historyRun === null && r[0]) uiStore.set({ historyRun: r[0].id });
      },
      (e: unknown) => toastError('Cannot read the run history', e),
    );
    return () => {
      live = false;
    };
  }, [query, status, finished, tick]);

  const toggle = (id: number) => {
    const c = uiStore.get().historyChecked;
    uiStore.set({ historyChecked: c.includes(id) ? c.filter((x) => x !== id) : [...c, id].slice(-10) });
  };
  const canCompare = checked.length >= 2 && checked.length <= 10;

  return (
    <div className="runs" data-testid="runs-table">
      <div className="runs-bar">
        <div className="search">
          <Icon.Search size={14} />
          <input type="search" placeholder="Filter runs by name or parameters" value={text} onChange={(e) => setText(e.target.value)} aria-label="Filter runs" data-testid="runs-filter" />
        </div>
        <select value={status} onChange={(e) => setStatus(e.target.value as RunStatus | '')} aria-label="Status" data-testid="runs-status">
          {STATUSES.map((s) => <option key={s} value={s}>{s || 'any status'}</option>)}
        </select>
        <button className="icon-btn" onClick={() => setTick((t) => t + 1)} title="Refresh" aria-label="Refresh"><Icon.Refresh /></button>
        <button className={`btn ${canCompare ? 'btn-primary' : ''}`} disabled={!canCompare} onClick={() => uiStore.set({ comparing: true })} data-testid="compare-runs" title="Tick 2–10 runs to compare">
          <Icon.Compare /> Compare{checked.length ? ` (${checked.length})` : ''}
        </button>
      </div>
      <div className="runs-scroll">
        <table className="table runs-list">
          <thead>
            <tr><th className="chk" /><th className="num">#</th><th>status</th><th>name</th><th>started</th><th className="num">time</th><th className="num">score</th></tr>
          </thead>
          <tbody>
            {runs?.map((r) => {
              const h = headline(r.metrics ?? {});
              return (
                <tr key={r.id} className={`${selected === r.id && !comparing ? 'sel' : ''}${checked.includes(r.id) ? ' checked' : ''}`} onClick={() => uiStore.set({ historyRun: r.id, comparing: false })} data-run-id={r.id}>
                  <td className="chk" onClick={(e) => e.stopPropagation()}>
                    <input type="checkbox" checked={checked.includes(r.id)} onChange={() => toggle(r.id)} aria-label={`Compare run ${r.id}`} />
                  </td>
                  <td className="num muted">{r.id}</td>
                  <td><StatusBadge status={r.status} /></td>
                  <td className="name-cell"><span>{r.name}</span>{r.kind !== 'pipeline' && <span className="muted"> · {r.kind.replace(/^node:/, 'node ')}</span>}</td>
                  <td className="muted nowrap">{dateTime(r.startedAt)}</td>
                  <td className="num nowrap">{r.finishedAt ? humanDuration(r.finishedAt - r.startedAt) : '…'}</td>
                  <td className="num" title={h ? `mean ${h.label} over tasks` : ''}>{h ? h.value.toFixed(3) : ''}</td>
                </tr>
              );
            })}
          </tbody>
        </table>
        {runs && runs.length === 0 && <div className="fb-empty">{query || status ? 'No run matches the filter' : 'No runs yet — run a pipeline from the canvas (Ctrl+Enter)'}</div>}
      </div>
    </div>
  );
}
