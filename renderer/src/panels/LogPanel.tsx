/** The live log of runs started here: level filter, follow-the-tail, node names, clear. */
import { useEffect, useLayoutEffect, useRef, useState, type ReactElement } from 'react';
import { docStore } from '../state/document';
import { clearLogs, runStore } from '../state/runs';
import { useStore } from '../state/store';
import { select, uiStore } from '../state/ui';
import { Icon } from '../ui/icons';
import { ProgressBar } from '../ui/ProgressBar';
import { timeOfDay } from '../util/format';

type Level = 'all' | 'warn' | 'error';

export function LogPanel(): ReactElement {
  const open = useStore(uiStore, (s) => s.logOpen);
  const logs = useStore(runStore, (s) => s.logs);
  const active = useStore(runStore, (s) => s.active);
  const nodes = useStore(runStore, (s) => s.nodes);
  const doc = useStore(docStore, (s) => s.doc);
  const [level, setLevel] = useState<Level>('all');
  const list = useRef<HTMLDivElement>(null);
  const follow = useRef(true);
  const shown = logs.filter((l) => level === 'all' || l.level === 'error' || (level === 'warn' && l.level === 'warn'));
  const counts = { warn: logs.filter((l) => l.level === 'warn').length, error: logs.filter((l) => l.level === 'error').length };
  const label = (id?: string) => (id ? doc.nodes.find((n) => n.id === id)?.label ?? id : '');

  useLayoutEffect(() => {
    const el = list.current;
    // Reading scrollHeight forces a layout of the whole page; skip it while there is nothing to follow.
    if (el && follow.current && shown.length) el.scrollTop = el.scrollHeight;
  }, [shown.length, open]);
  useEffect(() => {
    const el = list.current;
    if (!el) return;
    const onScroll = () => {
      follow.current = el.scrollHeight - el.scrollTop - el.clientHeight < 24;
    };
    el.addEventListener('scroll', onScroll);
    return () => el.removeEventListener('scroll', onScroll);
  }, [open]);

  // The overall progress of the active run: nodes finished / involved.
  const total = active?.nodeIds.length ?? 0;
  const done = active ? active.nodeIds.filter((id) => ['succeeded', 'cached', 'failed', 'skipped'].includes(nodes[id]?.status ?? '')).length : 0;
  const current = active ? active.nodeIds.find((id) => nodes[id]?.status === 'running') : undefined;
  const cur = current ? nodes[current] : undefined;

  return (
    <section className={`logpanel${open ? '' : ' closed'}`} data-testid="log-panel">
      <div className="logpanel-head">
        <button className="logpanel-toggle" onClick={() => uiStore.set({ logOpen: !open })} aria-expanded={open}>
          {open ? <Icon.ChevronDown size={14} /> : <Icon.ChevronRight size={14} />}
          <Icon.Terminal size={14} /> Log
          <span className="muted">{logs.length}</span>
          {counts.warn > 0 && <span className="count count-warn">{counts.warn}</span>}
          {counts.error > 0 && <span className="count count-error">{counts.error}</span>}
        </button>
        {active && (
          <div className="logpanel-progress" data-testid="run-progress">
            <span className="muted">{active.runId ? `run #${active.runId}` : 'starting…'} · {done}/{total} nodes</span>
            {cur && <span className="logpanel-cur">{label(current)}</span>}
            {cur && <ProgressBar compact phase={cur.phase} fraction={cur.fraction} etaSeconds={cur.eta} />}
          </div>
        )}
        <div className="grow" />
        {open && (
          <>
            <div className="seg" role="group" aria-label="Level">
              {(['all', 'warn', 'error'] as Level[]).map((l) => <button key={l} className={level === l ? 'on' : ''} onClick={() => setLevel(l)}>{l === 'all' ? 'All' : l === 'warn' ? 'Warnings' : 'Errors'}</button>)}
            </div>
            <button className="btn btn-small btn-ghost" onClick={clearLogs}>Clear</button>
          </>
        )}
      </div>
      {open && (
        <div className="logpanel-list" ref={list} data-testid="log-lines">
          {shown.length === 0 && <div className="log-empty">Run the pipeline (Ctrl+Enter) to see what each node does.</div>}
          {shown.map((l) => (
            <div key={l.id} className={`log-line lv-${l.level}`}>
              <span className="log-time">{timeOfDay(l.at)}</span>
              <span className="log-run">#{l.runId}</span>
              {l.nodeId ? <button className="log-node" onClick={() => select([l.nodeId!])}>{label(l.nodeId)}</button> : <span className="log-node" />}
              <span className="log-msg">{l.message}</span>
            </div>
          ))}
        </div>
      )}
    </section>
  );
}
