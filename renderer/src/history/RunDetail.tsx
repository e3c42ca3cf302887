/**
 * One recorded run: status, timing and error; its nodes; metrics per task (bars) and every metric
 * (table); expert load per layer (heat grid), router entropy and routing accuracy per layer;
 * per-generation diversity / fitness when the run has them; the log. "Open on canvas" puts the run's
 * exact pipeline back on the canvas with its results.
 */
import { useEffect, useState, type ReactElement } from 'react';
import { api } from '../api/client';
import type { RunDetail as Detail } from '../api/types';
import { loadDoc } from '../state/document';
import { applyRunDetail, runStore } from '../state/runs';
import { useStore } from '../state/store';
import { toast, toastError } from '../state/toasts';
import { setView, uiStore } from '../state/ui';
import { Icon } from '../ui/icons';
import { StatusBadge } from '../ui/StatusBadge';
import { dateTime, errorMessage, humanDuration, metric, timeOfDay } from '../util/format';
import { flattenMetrics, nodeLabel } from '../util/metrics';
import { ExpertLoadGrid } from './charts/ExpertLoadGrid';
import { GroupedBars } from './charts/GroupedBars';
import { SeriesLines } from './charts/SeriesLines';
import { entropyLines, evalMetrics, routingAccuracy, routingByNode, seriesLines, taskBars } from './run-charts';

/** The end of a long path ("…/eval/add.gen.jsonl"), the part that tells outputs apart. */
function shortPath(p: string): string {
  const parts = p.split(/[\\/]/).filter(Boolean);
  return parts.length > 3 ? `…/${parts.slice(-3).join('/')}` : p;
}

export function RunDetail({ id }: { id: number }): ReactElement {
  const finished = useStore(runStore, (s) => s.finished);
  const [d, setD] = useState<Detail | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    let live = true;
    api.getRun({ id }).then(
      (r) => {
        if (!live) return;
        setD(r);
        setError(null);
      },
      (e: unknown) => {
        if (live) setError(errorMessage(e));
      },
    );
    return () => {
      live = false;
    };
  }, [id, finished]);
  if (error) return <div className="detail"><div className="fb-error">{error}</div></div>;
  if (!d || d.run.id !== id) return <div className="detail"><div className="muted pad">Loading run #{id}…</div></div>;

  const run = d.run;
  const doc = run.pipeline;
  const evals = evalMetrics(d);
  const bars = taskBars(doc, evals);
  const routing = routingByNode(d);
  const entropy = entropyLines(doc, routing);
  const acc = routingAccuracy(d);
  const diversity = seriesLines(doc, d.series.diversity ?? [], 'diversity');
  const fitness = seriesLines(doc, d.series.fitness ?? [], 'fitness');
  // Sources' metrics (parameter counts, families) repeat their facts; the table keeps what was computed.
  const sourceIds = new Set(doc?.nodes.filter((n) => ['checkpoint', 'adapter', 'dataset'].includes(n.type)).map((n) => n.id) ?? []);
  const flat = flattenMetrics(doc, Object.fromEntries(Object.entries(run.metrics ?? {}).filter(([id]) => !sourceIds.has(id))));
  const duration = run.finishedAt ? run.finishedAt - run.startedAt : Date.now() - run.startedAt;

  const reopen = () => {
    if (!doc) return toast({ kind: 'warn', title: 'This run has no pipeline recorded' });
    try {
      loadDoc({ ...doc, name: doc.name });
      applyRunDetail(d);
      setView('canvas');
      toast({ kind: 'success', title: `Opened run #${run.id}'s pipeline`, message: 'with its results on the nodes' });
    } catch (e) {
      toastError('Cannot open this pipeline', e);
    }
  };
  const compareWith = () => {
    const checked = uiStore.get().historyChecked;
    uiStore.set({ historyChecked: checked.includes(run.id) ? checked : [...checked, run.id].slice(-10) });
  };

  return (
    <div className="detail" data-testid="run-detail">
      <div className="detail-head">
        <div>
          <div className="detail-title"><span className="muted">#{run.id}</span> {run.name} <StatusBadge status={run.status} /></div>
          <div className="detail-sub">{run.kind === 'pipeline' ? 'whole pipeline' : `node ${run.kind.replace(/^node:/, '')}`} · started {dateTime(run.startedAt)} · {humanDuration(duration)}{run.status === 'running' ? ' so far' : ''}</div>
        </div>
        <div className="detail-actions">
          <button className="btn" onClick={compareWith} title="Tick this run for comparison"><Icon.Compare /> Compare…</button>
          <button className="btn btn-primary" onClick={reopen} data-testid="reopen-run"><Icon.Canvas /> Open on canvas</button>
        </div>
      </div>
      {run.error && run.status !== 'cancelled' && <div className="insp-error detail-error"><b>{run.status === 'interrupted' ? 'Interrupted' : 'Error'}</b> {run.error}</div>}

      {bars.rows.length > 0 && (
        <section className="card">
          <div className="card-title">Scores per task <span className="muted">exact match / accuracy</span></div>
          <GroupedBars rows={bars.rows} series={bars.series} domain={[0, 1]} testId="chart-task-scores" />
        </section>
      )}

      {routing.length > 0 && (
        <section className="card">
          <div className="card-title">Expert load per layer</div>
          {routing.map((r) => <ExpertLoadGrid key={r.nodeId} layers={r.layers} title={routing.length > 1 ? nodeLabel(doc, r.nodeId) : undefined} />)}
        </section>
      )}

      {(entropy.points.length > 0 || acc.points.length > 0) && (
        <div className="card-row">
          {entropy.points.length > 0 && (
            <section className="card">
              <div className="card-title">Router entropy <span className="muted">nats per layer{entropy.uniform ? ` · uniform routing = ${entropy.uniform.toFixed(2)}` : ''}</span></div>
              <SeriesLines points={entropy.points} series={entropy.series} xLabel="L" domain={[0, 'auto']} testId="chart-entropy" />
            </section>
          )}
          {acc.points.length > 0 && (
            <section className="card">
              <div className="card-title">Routing accuracy <span className="muted">per layer</span></div>
              <SeriesLines points={acc.points} series={acc.series} xLabel="L" domain={[0, 1]} testId="chart-routing-accuracy" />
            </section>
          )}
        </div>
      )}

      {(diversity.points.length > 0 || fitness.points.length > 0) && (
        <div className="card-row">
          {diversity.points.length > 0 && (
            <section className="card">
              <div className="card-title">Expert diversity <span className="muted">per generation</span></div>
              <SeriesLines points={diversity.points} series={diversity.series} xLabel="gen" testId="chart-diversity" />
            </section>
          )}
          {fitness.points.length > 0 && (
            <section className="card">
              <div className="card-title">Fitness <span className="muted">per generation</span></div>
              <SeriesLines points={fitness.points} series={fitness.series} xLabel="gen" testId="chart-fitness" />
            </section>
          )}
        </div>
      )}

      {Object.keys(flat).length > 0 && (
        <section className="card">
          <div className="card-title">All metrics</div>
          <table className="table compact" data-testid="run-metrics">
            <tbody>{Object.entries(flat).map(([k, v]) => <tr key={k}><td>{k}</td><td className="num">{metric(v)}</td></tr>)}</tbody>
          </table>
        </section>
      )}

      <section className="card">
        <div className="card-title">Nodes</div>
        <table className="table compact">
          <thead><tr><th>node</th><th>type</th><th>status</th><th className="num">time</th><th>output</th></tr></thead>
          <tbody>
            {d.nodes.map((n) => (
              <tr key={n.nodeId}>
                <td>{nodeLabel(doc, n.nodeId)}</td>
                <td className="muted">{n.type}</td>
                <td><StatusBadge status={n.status} /></td>
                <td className="num">{n.startedAt && n.finishedAt ? humanDuration(n.finishedAt - n.startedAt) : '–'}</td>
                <td className="path-cell" title={n.artefact ?? ''}>{n.artefact ? shortPath(n.artefact) : ''}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </section>

      <section className="card">
        <div className="card-title">Log <span className="muted">{d.logs.length} lines</span></div>
        <div className="detail-log">
          {d.logs.map((l, i) => (
            <div key={i} className={`log-line lv-${l.level}`}>
              <span className="log-time">{timeOfDay(l.at)}</span>
              <span className="log-node">{l.nodeId ? nodeLabel(doc, l.nodeId) : ''}</span>
              <span className="log-msg">{l.message}</span>
            </div>
          ))}
        </div>
      </section>
    </div>
  );
}
