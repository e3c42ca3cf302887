/**
 * 2–10 runs side by side (W&B's run comparer): which parameters differ, which nodes only some runs
 * had, every metric in one table with the best value marked (a "differences only" toggle), scores
 * per task as grouped bars, and router entropy per layer for MoE evaluations.
 */
import { useEffect, useMemo, useState, type ReactElement } from 'react';
import { api } from '../api/client';
import type { CompareResult, RunRecord } from '../api/types';
import { useStore } from '../state/store';
import { uiStore } from '../state/ui';
import { runStore } from '../state/runs';
import { Icon } from '../ui/icons';
import { StatusBadge } from '../ui/StatusBadge';
import { errorMessage, metric } from '../util/format';
import { flattenMetrics, isLowerBetter, nodeLabel, routingLayers, taskScores } from '../util/metrics';
import { SERIES } from './charts/chart-theme';
import { GroupedBars, type BarRow } from './charts/GroupedBars';
import { SeriesLines, type LinePoint } from './charts/SeriesLines';

const runName = (r: RunRecord) => `#${r.id} ${r.name}`;

/** Series names: "#12", plus the run's name when the runs have different names. */
function seriesNames(runs: RunRecord[]): string[] {
  const distinct = new Set(runs.map((r) => r.name)).size > 1;
  return runs.map((r) => (distinct ? `#${r.id} ${r.name.slice(0, 28)}` : `#${r.id}${r.kind !== 'pipeline' ? ` (${r.kind.replace(/^node:/, '')})` : ''}`));
}

function show(v: unknown): string {
  if (v === null || v === undefined) return '—';
  return typeof v === 'object' ? JSON.stringify(v) : metric(v);
}

export function CompareView({ ids }: { ids: number[] }): ReactElement {
  const finished = useStore(runStore, (s) => s.finished);
  const [res, setRes] = useState<CompareResult | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [diffOnly, setDiffOnly] = useState(true);
  const key = ids.join(',');
  useEffect(() => {
    let live = true;
    api.compareRuns({ ids: key.split(',').map(Number) }).then(
      (r) => {
        if (live) setRes(r);
      },
      (e: unknown) => {
        if (live) setError(errorMessage(e));
      },
    );
    return () => {
      live = false;
    };
  }, [key, finished]);

  const data = useMemo(() => (res ? derive(res) : null), [res]);
  if (error) return <div className="detail"><div className="fb-error">{error}</div></div>;
  if (!res || !data) return <div className="detail"><div className="muted pad">Comparing {ids.length} runs…</div></div>;
  const { runs } = res;
  const rows = data.metricRows.filter((r) => !diffOnly || r.differs);

  return (
    <div className="detail compare" data-testid="compare-view">
      <div className="detail-head">
        <div>
          <div className="detail-title"><Icon.Compare /> Comparing {runs.length} runs</div>
          <div className="compare-runs">
            {runs.map((r, i) => (
              <span key={r.id} className="compare-chip"><span className="dot" style={{ background: SERIES[i % SERIES.length] }} />{runName(r)} <StatusBadge status={r.status} /></span>
            ))}
          </div>
        </div>
        <div className="detail-actions">
          <button className="btn" onClick={() => uiStore.set({ comparing: false })}><Icon.Close /> Close</button>
        </div>
      </div>

      <section className="card">
        <div className="card-title">Parameters that differ <span className="muted">{res.diff.length}</span></div>
        {res.diff.length === 0 && data.onlyIn.length === 0 ? (
          <div className="muted">Same pipeline parameters in every run.</div>
        ) : (
          <table className="table compact compare-table" data-testid="param-diff">
            <thead><tr><th>parameter</th>{runs.map((r, i) => <th key={r.id}><span className="dot" style={{ background: SERIES[i % SERIES.length] }} />#{r.id}</th>)}</tr></thead>
            <tbody>
              {res.diff.map((d) => (
                <tr key={d.key}><td>{d.key}</td>{d.values.map((v, i) => <td key={i} className="num changed">{show(v)}</td>)}</tr>
              ))}
              {data.onlyIn.map((o) => (
                <tr key={`node:${o.node}`}><td>node {o.node}</td>{runs.map((r) => <td key={r.id} className="num changed">{o.runs.includes(r.id) ? 'present' : '—'}</td>)}</tr>
              ))}
            </tbody>
          </table>
        )}
      </section>

      {data.bars.rows.length > 0 && (
        <section className="card">
          <div className="card-title">Scores per task <span className="muted">exact match / accuracy</span></div>
          <GroupedBars rows={data.bars.rows} series={data.bars.series} domain={[0, 1]} testId="chart-compare-scores" />
        </section>
      )}

      {data.entropy.points.length > 0 && (
        <section className="card">
          <div className="card-title">Router entropy per layer <span className="muted">first MoE evaluation of each run</span></div>
          <SeriesLines points={data.entropy.points} series={data.entropy.series} xLabel="L" testId="chart-compare-entropy" />
        </section>
      )}

      <section className="card">
        <div className="card-title">
          Metrics side by side
          <label className="toggle"><input type="checkbox" checked={diffOnly} onChange={(e) => setDiffOnly(e.target.checked)} /> differences only</label>
        </div>
        {rows.length === 0 ? <div className="muted">{data.metricRows.length ? 'Every metric is the same in these runs.' : 'These runs recorded no metrics.'}</div> : (
          <table className="table compact compare-table" data-testid="metric-compare">
            <thead><tr><th>metric</th>{runs.map((r, i) => <th key={r.id} className="num"><span className="dot" style={{ background: SERIES[i % SERIES.length] }} />#{r.id}</th>)}</tr></thead>
            <tbody>
              {rows.map((row) => (
                <tr key={row.key}>
                  <td>{row.key}</td>
                  {row.values.map((v, i) => <td key={i} className={`num${row.best === i ? ' best' : ''}`}>{show(v)}</td>)}
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </section>
    </div>
  );
}

interface MetricRow {
  key: string;
  values: (number | string | undefined)[];
  best: number | null;
  differs: boolean;
}

function derive(res: CompareResult) {
  const { runs } = res;
  const flats = runs.map((r) => flattenMetrics(r.pipeline, r.metrics ?? {}));
  const keys = [...new Set(flats.flatMap((f) => Object.keys(f)))];
  const metricRows: MetricRow[] = keys.map((key) => {
    const values = flats.map((f) => f[key]);
    const nums = values.map((v) => (typeof v === 'number' ? v : null));
    let best: number | null = null;
    if (nums.filter((v) => v !== null).length > 1 && !/seconds|bytes|tensors|parameters/.test(key)) {
      const lower = isLowerBetter(key);
      nums.forEach((v, i) => {
        if (v === null) return;
        const b = best === null ? null : nums[best]!;
        if (b === null || (lower ? v < b : v > b)) best = i;
      });
      if (best !== null && nums.every((v) => v === null || v === nums[best!])) best = null;
    }
    return { key, values, best, differs: new Set(values.map((v) => JSON.stringify(v ?? null))).size > 1 };
  });

  // Task scores: one category per (evaluate node, task), one bar per run.
  const series = seriesNames(runs);
  const cats = new Map<string, BarRow>();
  runs.forEach((r, i) => {
    const evalIds = Object.keys(r.metrics ?? {});
    for (const id of evalIds) {
      for (const t of taskScores(r.metrics[id]).filter((x) => x.rate)) {
        const cat = `${nodeLabel(r.pipeline, id)} · ${t.task}`;
        const row = cats.get(cat) ?? { category: cat };
        row[series[i]!] = t.value;
        cats.set(cat, row);
      }
    }
  });
  // Short categories when every run has a single evaluation node.
  const evalsPerRun = runs.map((r) => Object.values(r.metrics ?? {}).filter((m) => taskScores(m).length).length);
  let barRows = [...cats.values()];
  if (evalsPerRun.every((n) => n <= 1)) barRows = barRows.map((r) => ({ ...r, category: String(r.category).split(' · ').pop()! }));
  const merged = new Map<string, BarRow>();
  for (const r of barRows) merged.set(String(r.category), { ...(merged.get(String(r.category)) ?? {}), ...r });

  // Entropy per layer: the first evaluation with routing in each run.
  const entropySeries: string[] = [];
  const byLayer = new Map<number, LinePoint>();
  runs.forEach((r, i) => {
    const m = Object.values(r.metrics ?? {}).find((x) => routingLayers(x).length);
    if (!m) return;
    entropySeries.push(series[i]!);
    for (const l of routingLayers(m)) {
      const p = byLayer.get(l.layer) ?? { step: l.layer };
      p[series[i]!] = l.entropy;
      byLayer.set(l.layer, p);
    }
  });

  // Nodes only some runs had.
  const nodeSets = runs.map((r) => new Set(r.pipeline?.nodes.map((n) => n.label ?? n.id) ?? []));
  const allNodes = [...new Set(nodeSets.flatMap((s) => [...s]))];
  const onlyIn = allNodes.filter((n) => nodeSets.some((s) => !s.has(n))).map((n) => ({ node: n, runs: runs.filter((_, i) => nodeSets[i]!.has(n)).map((r) => r.id) }));

  return {
    metricRows,
    bars: { rows: [...merged.values()], series },
    entropy: { points: [...byLayer.values()].sort((a, b) => a.step - b.step), series: entropySeries },
    onlyIn,
  };
}
