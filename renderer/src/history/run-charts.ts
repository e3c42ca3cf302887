/** Chart data from a recorded run: task scores, routing per layer, per-generation series. */
import type { PipelineDoc, RunDetail, SeriesPoint } from '../api/types';
import { isRecord, nodeLabel, routingLayers, taskScores, type LayerRouting } from '../util/metrics';
import type { BarRow } from './charts/GroupedBars';
import type { LinePoint } from './charts/SeriesLines';

/** Evaluate nodes' metrics by node id (from the run record, else from the node records). */
export function evalMetrics(d: RunDetail): [string, Record<string, unknown>][] {
  const fromRun = Object.entries(d.run.metrics ?? {}).filter(([, m]) => isRecord(m) && isRecord(m['tasks']));
  if (fromRun.length) return fromRun;
  return d.nodes.filter((n) => isRecord(n.metrics['tasks'])).map((n) => [n.nodeId, n.metrics]);
}

/** Rate-type task scores: one row per task, one series per Evaluate node. */
export function taskBars(doc: PipelineDoc | null, evals: [string, Record<string, unknown>][]): { rows: BarRow[]; series: string[] } {
  const series: string[] = [];
  const rows = new Map<string, BarRow>();
  for (const [id, m] of evals) {
    const s = nodeLabel(doc, id);
    series.push(s);
    for (const t of taskScores(m).filter((x) => x.rate)) {
      const row = rows.get(t.task) ?? { category: t.task };
      row[s] = t.value;
      rows.set(t.task, row);
    }
  }
  return { rows: [...rows.values()], series };
}

/** Routing layers per Evaluate node: the expert_load series when recorded, else the node's metrics. */
export function routingByNode(d: RunDetail): { nodeId: string; layers: LayerRouting[] }[] {
  const out = new Map<string, LayerRouting[]>();
  for (const p of d.series.expert_load ?? []) {
    if (!isRecord(p.value) || !Array.isArray(p.value['load'])) continue;
    const id = p.nodeId ?? 'model';
    const list = out.get(id) ?? [];
    list.push({ layer: p.step, load: p.value['load'] as number[], entropy: Number(p.value['entropy'] ?? 0), tokens: Number(p.value['tokens'] ?? 0) });
    out.set(id, list);
  }
  if (!out.size) for (const [id, m] of evalMetrics(d)) { const l = routingLayers(m); if (l.length) out.set(id, l); }
  return [...out.entries()].map(([nodeId, layers]) => ({ nodeId, layers: layers.sort((a, b) => a.layer - b.layer) }));
}

export function entropyLines(doc: PipelineDoc | null, routing: { nodeId: string; layers: LayerRouting[] }[]): { points: LinePoint[]; series: string[]; uniform: number | null } {
  const series = routing.map((r) => nodeLabel(doc, r.nodeId));
  const steps = [...new Set(routing.flatMap((r) => r.layers.map((l) => l.layer)))].sort((a, b) => a - b);
  const points = steps.map((step) => {
    const p: LinePoint = { step };
    routing.forEach((r, i) => { p[series[i]!] = r.layers.find((l) => l.layer === step)?.entropy ?? null; });
    return p;
  });
  const E = Math.max(0, ...routing.flatMap((r) => r.layers.map((l) => l.load.length)));
  return { points, series, uniform: E > 1 ? Math.log(E) : null };
}

/** Series values as numbers: a number, or the numeric fields of an object (e.g. {best, mean}). */
function numericFields(v: unknown): Record<string, number> {
  if (typeof v === 'number') return { value: v };
  if (!isRecord(v)) return {};
  // Step sizes and mixing weights (sigma, alpha) live on another scale than the series itself.
  return Object.fromEntries(Object.entries(v).filter(([k, x]) => typeof x === 'number' && !SIDE_FIELDS.has(k))) as Record<string, number>;
}

const SIDE_FIELDS = new Set(['sigma', 'alpha', 'step', 'generation', 'tokens']);

export function seriesLines(doc: PipelineDoc | null, points: SeriesPoint[], name: string): { points: LinePoint[]; series: string[] } {
  const byStep = new Map<number, LinePoint>();
  const series = new Set<string>();
  const nodes = new Set(points.map((p) => p.nodeId));
  for (const p of points) {
    const row = byStep.get(p.step) ?? { step: p.step };
    for (const [k, v] of Object.entries(numericFields(p.value))) {
      const s = [nodes.size > 1 ? nodeLabel(doc, p.nodeId ?? '') : '', k === 'value' ? name : k].filter(Boolean).join(' · ');
      series.add(s);
      row[s] = v;
    }
    byStep.set(p.step, row);
  }
  return { points: [...byStep.values()].sort((a, b) => a.step - b.step), series: [...series] };
}

/** Routing accuracy per layer: the recorded series, else MoE nodes' `routing_accuracy` lists. */
export function routingAccuracy(d: RunDetail): { points: LinePoint[]; series: string[] } {
  const doc = d.run.pipeline;
  if (d.series.routing_accuracy?.length) return seriesLines(doc, d.series.routing_accuracy, 'routing accuracy');
  const lists = Object.entries(d.run.metrics ?? {}).filter(([, m]) => isRecord(m) && Array.isArray(m['routing_accuracy']));
  const series = lists.map(([id]) => nodeLabel(doc, id));
  const len = Math.max(0, ...lists.map(([, m]) => (m['routing_accuracy'] as number[]).length));
  const points = Array.from({ length: len }, (_, step) => {
    const p: LinePoint = { step };
    lists.forEach(([, m], i) => { p[series[i]!] = (m['routing_accuracy'] as number[])[step] ?? null; });
    return p;
  });
  return { points, series };
}
