/** Edges from handle pairs (either end may be where the drag started), and why one is refused. */
import type { Handle } from '@xyflow/react';
import type { PipelineDoc } from '../api/types';
import { edgeProblem } from '../../../app/core/pipeline/node-types';

export interface EdgeEnds {
  source: string;
  sourcePort: string;
  target: string;
  targetPort: string;
}

export function endsFromHandles(a: Handle, b: Handle): EdgeEnds | null {
  const [s, t] = a.type === 'source' ? [a, b] : [b, a];
  if (s.type !== 'source' || t.type !== 'target') return null;
  return { source: s.nodeId, sourcePort: s.id ?? '', target: t.nodeId, targetPort: t.id ?? '' };
}

export function connectionProblem(doc: PipelineDoc, from: Handle, to: Handle): string | null {
  if (from.type === to.type) return from.type === 'source' ? 'connect an output to an input (this is another output)' : 'connect an output to an input (this is another input)';
  const ends = endsFromHandles(from, to);
  return ends ? edgeProblem(doc, ends) : null;
}
