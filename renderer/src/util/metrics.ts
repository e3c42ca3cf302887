/**
 * Reading the engine's metrics: each task's headline number (exact match, accuracy or perplexity),
 * routing layers of MoE evaluations, and flat "node · task · metric" rows for tables and comparison.
 */
import type { PipelineDoc } from '../api/types';

export interface LayerRouting {
  layer: number;
  load: number[];
  entropy: number;
  tokens: number;
}

export interface TaskScore {
  task: string;
  metric: string;
  short: string;
  value: number;
  /** In [0, 1] and higher is better (bars); perplexities are not. */
  rate: boolean;
  n?: number;
}

const ORDER: [string, string, boolean][] = [
  ['exact_match', 'EM', true],
  ['acc', 'acc', true],
  ['acc_norm', 'acc_norm', true],
  ['perplexity', 'ppl', false],
  ['word_perplexity', 'word ppl', false],
  ['bits_per_byte', 'bpb', false],
];

export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The headline metric of each task in an Evaluate node's metrics. */
export function taskScores(metrics: unknown): TaskScore[] {
  if (!isRecord(metrics) || !isRecord(metrics['tasks'])) return [];
  const out: TaskScore[] = [];
  for (const [task, m] of Object.entries(metrics['tasks'])) {
    if (!isRecord(m)) continue;
    const hit = ORDER.find(([k]) => typeof m[k] === 'number');
    if (hit) out.push({ task, metric: hit[0], short: hit[1], value: m[hit[0]] as number, rate: hit[2], n: typeof m['n'] === 'number' ? m['n'] : undefined });
  }
  return out;
}

export function routingLayers(metrics: unknown): LayerRouting[] {
  if (!isRecord(metrics) || !isRecord(metrics['routing'])) return [];
  const layers = metrics['routing']['layers'];
  return Array.isArray(layers) ? (layers as LayerRouting[]).filter((l) => Array.isArray(l?.load)) : [];
}

export function isLowerBetter(metricKey: string): boolean {
  return /perplexity|bits_per_byte|seconds|loss/.test(metricKey);
}

export function nodeLabel(doc: PipelineDoc | null | undefined, id: string): string {
  return doc?.nodes.find((n) => n.id === id)?.label ?? id;
}

/**
 * A run's metrics as flat rows: "Evaluate moe · add.gen · exact_match" → 0.9. Routing details are
 * summarised (mean entropy), lists are averaged, strings are kept as strings.
 */
export function flattenMetrics(doc: PipelineDoc | null | undefined, metrics: Record<string, unknown>): Record<string, number | string> {
  const out: Record<string, number | string> = {};
  for (const [nodeId, m] of Object.entries(metrics)) {
    if (!isRecord(m)) continue;
    const label = nodeLabel(doc, nodeId);
    for (const [k, v] of Object.entries(m)) {
      if (k === 'tasks' && isRecord(v)) {
        for (const [task, tm] of Object.entries(v)) {
          if (!isRecord(tm)) continue;
          for (const [mk, mv] of Object.entries(tm)) if (mk !== 'n' && typeof mv === 'number') out[`${label} · ${task} · ${mk}`] = mv;
        }
      } else if (k === 'routing' && isRecord(v)) {
        const layers = routingLayers(m);
        if (layers.length) out[`${label} · router entropy (mean)`] = layers.reduce((a, l) => a + l.entropy, 0) / layers.length;
      } else if (typeof v === 'number') out[`${label} · ${k}`] = v;
      else if (typeof v === 'string') out[`${label} · ${k}`] = v;
      else if (Array.isArray(v) && v.length && v.every((x) => typeof x === 'number')) out[`${label} · ${k} (mean)`] = (v as number[]).reduce((a, b) => a + b, 0) / v.length;
    }
  }
  return out;
}

/** Mean of every rate-type task score of a run (the history table's headline). */
export function headline(metrics: Record<string, unknown>): { value: number; label: string } | null {
  const scores = Object.values(metrics).flatMap((m) => taskScores(m)).filter((s) => s.rate);
  if (!scores.length) return null;
  const label = [...new Set(scores.map((s) => s.short))].join('/');
  return { value: scores.reduce((a, s) => a + s.value, 0) / scores.length, label };
}
