/**
 * The pipeline document as React Flow nodes and edges. Change objects keep the identity of nodes they
 * did not touch, so an edit re-creates only the flow nodes that changed; everything React Flow
 * measured about the others (size, internals) is kept.
 */
import type { Edge, Node } from '@xyflow/react';
import type { PipelineDoc } from '../api/types';
import type { PipelineNode } from '../../../app/core/pipeline/document';
import { NODE_TYPES } from '../../../app/core/pipeline/node-types';

export type FlowNodeData = { node: PipelineNode };
export type FlowNode = Node<FlowNodeData, 'pipeline'>;
export type FlowEdge = Edge;

export function syncNodes(prev: FlowNode[], doc: PipelineDoc, selected: ReadonlySet<string>): FlowNode[] {
  const byId = new Map(prev.map((n) => [n.id, n]));
  let same = prev.length === doc.nodes.length;
  const out = doc.nodes.map((dn, i) => {
    const p = byId.get(dn.id);
    const sel = selected.has(dn.id);
    if (p && p.data.node === dn && !!p.selected === sel) {
      if (prev[i] !== p) same = false;
      return p;
    }
    same = false;
    // Untouched node whose selection changed: keep a position it may be being dragged to.
    const position = p && p.data.node === dn ? p.position : dn.position;
    return { ...(p ?? {}), id: dn.id, type: 'pipeline' as const, position, data: { node: dn }, selected: sel };
  });
  return same ? prev : out;
}

export function toFlowEdges(doc: PipelineDoc, selected: ReadonlySet<string>, running: ReadonlySet<string>): FlowEdge[] {
  const typeOf = new Map(doc.nodes.map((n) => [n.id, n.type]));
  return doc.edges.map((e) => {
    const kind = NODE_TYPES[typeOf.get(e.source) ?? '']?.outputs.find((o) => o.name === e.sourcePort)?.types[0] ?? 'model';
    return {
      id: e.id,
      source: e.source,
      target: e.target,
      sourceHandle: e.sourcePort,
      targetHandle: e.targetPort,
      selected: selected.has(e.id),
      animated: running.has(e.target),
      className: `edge-${kind}`,
    };
  });
}
