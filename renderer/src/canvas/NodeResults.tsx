/**
 * A node's results after a run, on the node itself: per-task scores with bars (exact match, accuracy,
 * perplexity), expert load per layer as mini-bars for MoE evaluations, sizes and timings for builds.
 */
import type { ReactElement } from 'react';
import { humanBytes, metric } from '../util/format';
import { isRecord, routingLayers, taskScores } from '../util/metrics';

export const EXPERT_COLORS = ['#7c6cf2', '#2bb5a3', '#f29b38', '#e5609a', '#58a6ff', '#b6d35a', '#c084fc', '#f87171'];

export function LoadBars({ load, height = 18 }: { load: number[]; height?: number }): ReactElement {
  const max = Math.max(...load, 1e-9);
  return (
    <span className="loadbars" style={{ height }}>
      {load.map((v, e) => (
        <span key={e} className="loadbar" title={`expert ${e}: ${(v * 100).toFixed(1)}%`} style={{ height: `${Math.max(6, (v / max) * 100)}%`, background: EXPERT_COLORS[e % EXPERT_COLORS.length] }} />
      ))}
    </span>
  );
}

function EvalResults({ metrics }: { metrics: Record<string, unknown> }): ReactElement {
  const scores = taskScores(metrics);
  const layers = routingLayers(metrics);
  return (
    <div className="results" data-testid="node-results">
      {scores.map((s) => (
        <div className="score-row" key={s.task} data-task={s.task}>
          <span className="score-task" title={s.task}>{s.task}</span>
          {s.rate ? <span className="score-bar"><span style={{ width: `${Math.max(0, Math.min(1, s.value)) * 100}%` }} /></span> : <span className="score-bar empty" />}
          <span className="score-val" title={`${s.metric}${s.n ? ` over ${s.n} items` : ''}`} data-testid="score-value">{s.value.toFixed(s.rate ? 2 : 1)}</span>
          <span className="score-metric">{s.short}</span>
        </div>
      ))}
      {layers.length > 0 && (
        <div className="routing-mini" data-testid="routing-mini">
          <div className="routing-mini-title">expert load per layer</div>
          <div className="routing-mini-grid">
            {layers.map((l) => (
              <div className="routing-mini-layer" key={l.layer} title={`layer ${l.layer}: entropy ${l.entropy.toFixed(3)} nats`}>
                <LoadBars load={l.load} />
                <span className="routing-mini-l">L{l.layer}</span>
              </div>
            ))}
          </div>
        </div>
      )}
      {typeof metrics['seconds'] === 'number' && <div className="results-foot">{(metrics['seconds']).toFixed(1)} s · {String(metrics['provider'] ?? '')}</div>}
    </div>
  );
}

function KeyValues({ rows }: { rows: [string, string][] }): ReactElement {
  return (
    <div className="results kv" data-testid="node-results">
      {rows.map(([k, v]) => (
        <div className="kv-row" key={k}><span>{k}</span><b>{v}</b></div>
      ))}
    </div>
  );
}

export function NodeResults({ type, metrics, cached }: { type: string; metrics: Record<string, unknown>; cached?: boolean }): ReactElement | null {
  const body = (() => {
    switch (type) {
      case 'evaluate':
        return <EvalResults metrics={metrics} />;
      case 'merge':
        return <KeyValues rows={[['tensors', metric(metrics['tensors'])], ['written', humanBytes(metrics['bytes'] as number)], ['time', `${metric(metrics['seconds'])} s`]]} />;
      case 'moe': {
        const acc = Array.isArray(metrics['routing_accuracy']) ? (metrics['routing_accuracy'] as number[]) : null;
        const rows: [string, string][] = [['architecture', String(metrics['architecture'] ?? '–')], ['experts', `${metric(metrics['experts'])} · top-${metric(metrics['top_k'])}`]];
        if (acc?.length) rows.push(['routing acc.', (acc.reduce((a, b) => a + b, 0) / acc.length).toFixed(3)]);
        if (typeof metrics['seed_agreement'] === 'number') rows.push(['seed agreement', (metrics['seed_agreement']).toFixed(3)]);
        return <KeyValues rows={rows} />;
      }
      case 'export':
        return <KeyValues rows={[['format', String(metrics['format'] ?? '')], ...(metrics['files'] ? [['files', metric(metrics['files'])] as [string, string]] : [])]} />;
      case 'checkpoint':
      case 'adapter':
      case 'dataset':
        return null; // their facts are on the node already
      default: {
        // Node types added later: their task scores if any, then every scalar metric.
        const rows = Object.entries(metrics).filter(([, v]) => typeof v === 'number' || typeof v === 'string').map(([k, v]): [string, string] => [k.replace(/_/g, ' '), metric(v)]);
        return (
          <>
            {isRecord(metrics['tasks']) && <EvalResults metrics={metrics} />}
            {rows.length > 0 && <KeyValues rows={rows.slice(0, 6)} />}
          </>
        );
      }
    }
  })();
  if (!body) return null;
  return (
    <div className="pnode-results">
      {cached && <div className="results-cached" title="inputs and parameters unchanged: the previous result was reused">reused from cache</div>}
      {body}
    </div>
  );
}
