/**
 * The pipeline document as React Flow nodes and edges. Change objects keep the identity of nodes they
 * did not touch, so an edit re-creates only the flow nodes and edges that changed; everything React Flow
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

/**
 * Flow edges for the document, re-using the previous object of every edge whose document edge, selection
 * and animation did not change: React Flow re-renders an edge when its object changes, so an edit
 * re-renders only the edges it touched (not all of them).
 */
export function syncEdges(prev: readonly FlowEdge[], doc: PipelineDoc, selected: ReadonlySet<string>, running: ReadonlySet<string>): FlowEdge[] {
  const old = new Map(prev.map((e) => [e.id, e]));
  const typeOf = new Map(doc.nodes.map((n) => [n.id, n.type]));
  return doc.edges.map((e) => {
    const sel = selected.has(e.id);
    const animated = running.has(e.target);
    const p = old.get(e.id);
    if (p && sourceOf.get(p) === e && p.selected === sel && p.animated === animated) return p;
    const kind = NODE_TYPES[typeOf.get(e.source) ?? '']?.outputs.find((o) => o.name === e.sourcePort)?.types[0] ?? 'model';
    const f: FlowEdge = { id: e.id, source: e.source, target: e.target, sourceHandle: e.sourcePort, targetHandle: e.targetPort, selected: sel, animated, className: `edge-${kind}` };
    sourceOf.set(f, e);
    return f;
  });
}

/** The document edge each flow edge was made from. */
const sourceOf = new WeakMap<FlowEdge, PipelineDoc['edges'][number]>();
