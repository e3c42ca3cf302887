/**
 * The pipeline document: nodes (checkpoints, adapters, datasets, merges, MoEs, evaluations, exports…)
 * and typed edges between their ports. Versioned, with forward migrations so a pipeline saved by an
 * older build always opens. Pure data and functions: shared by the engine, the CLI and the renderer.
 */
export const PIPELINE_VERSION = 2;

export interface PipelineNode {
  id: string;
  type: string;
  position: { x: number; y: number };
  params: Record<string, unknown>;
  label?: string;
}

export interface PipelineEdge {
  id: string;
  source: string;
  sourcePort: string;
  target: string;
  targetPort: string;
}

export interface PipelineDoc {
  version: number;
  name: string;
  nodes: PipelineNode[];
  edges: PipelineEdge[];
}

export class PipelineFormatError extends Error {
  override readonly name = 'PipelineFormatError';
}

/**
 * Migrations from older versions. v1 (first drafts) had `links: [{from, to}]` with "node.port"
 * strings and node `data` instead of `params`.
 */
export function migratePipeline(raw: unknown): PipelineDoc {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new PipelineFormatError('a pipeline file is a JSON object');
  let doc = raw as Record<string, unknown>;
  const version = typeof doc['version'] === 'number' ? (doc['version'] as number) : 1;
  if (version > PIPELINE_VERSION) throw new PipelineFormatError(`this pipeline is version ${version}, newer than this build understands (${PIPELINE_VERSION}); update Upcycle Studio`);
  if (version < 2) {
    const links = Array.isArray(doc['links']) ? (doc['links'] as { from: string; to: string }[]) : [];
    doc = {
      version: 2,
      name: doc['name'] ?? 'pipeline',
      nodes: ((doc['nodes'] as Record<string, unknown>[]) ?? []).map((n) => ({ id: n['id'], type: n['type'], position: n['position'] ?? { x: 0, y: 0 }, params: n['params'] ?? n['data'] ?? {}, label: n['label'] })),
      edges: links.map((l, i) => {
        const [source, sourcePort] = String(l.from).split('.');
        const [target, targetPort] = String(l.to).split('.');
        return { id: `e${i}`, source, sourcePort: sourcePort ?? 'out', target, targetPort: targetPort ?? 'in' };
      }),
    };
  }
  return validateShape(doc);
}

function validateShape(doc: Record<string, unknown>): PipelineDoc {
  const nodes = doc['nodes'];
  const edges = doc['edges'];
  if (!Array.isArray(nodes) || !Array.isArray(edges)) throw new PipelineFormatError('a pipeline needs "nodes" and "edges" lists');
  const ids = new Set<string>();
  for (const n of nodes as Record<string, unknown>[]) {
    if (typeof n?.['id'] !== 'string' || typeof n['type'] !== 'string') throw new PipelineFormatError('every node needs a string id and type');
    if (ids.has(n['id'] as string)) throw new PipelineFormatError(`node id "${String(n['id'])}" appears twice`);
    ids.add(n['id'] as string);
    const p = n['position'] as { x?: unknown; y?: unknown } | undefined;
    if (!p || typeof p.x !== 'number' || typeof p.y !== 'number') throw new PipelineFormatError(`node ${String(n['id'])} has no position`);
    if (typeof n['params'] !== 'object' || n['params'] === null) throw new PipelineFormatError(`node ${String(n['id'])} has no params object`);
  }
  for (const e of edges as Record<string, unknown>[]) {
    for (const k of ['id', 'source', 'sourcePort', 'target', 'targetPort']) if (typeof e?.[k] !== 'string') throw new PipelineFormatError(`an edge is missing "${k}"`);
    if (!ids.has(e['source'] as string) || !ids.has(e['target'] as string)) throw new PipelineFormatError(`edge ${String(e['id'])} connects a node that does not exist`);
  }
  return { version: PIPELINE_VERSION, name: typeof doc['name'] === 'string' ? doc['name'] : 'pipeline', nodes: nodes as PipelineNode[], edges: edges as PipelineEdge[] };
}

/** Nodes in dependency order (inputs first); throws on a cycle. */
export function topoOrder(doc: PipelineDoc): PipelineNode[] {
  const incoming = new Map(doc.nodes.map((n) => [n.id, 0]));
  for (const e of doc.edges) incoming.set(e.target, (incoming.get(e.target) ?? 0) + 1);
  const queue = doc.nodes.filter((n) => incoming.get(n.id) === 0);
  const out: PipelineNode[] = [];
  const byId = new Map(doc.nodes.map((n) => [n.id, n]));
  while (queue.length) {
    const n = queue.shift()!;
    out.push(n);
    for (const e of doc.edges.filter((x) => x.source === n.id)) {
      const left = incoming.get(e.target)! - 1;
      incoming.set(e.target, left);
      if (left === 0) queue.push(byId.get(e.target)!);
    }
  }
  if (out.length !== doc.nodes.length) throw new PipelineFormatError('the pipeline has a cycle');
  return out;
}

/** Would adding source→target create a cycle? */
export function createsCycle(doc: PipelineDoc, source: string, target: string): boolean {
  if (source === target) return true;
  const stack = [target];
  const seen = new Set<string>();
  while (stack.length) {
    const id = stack.pop()!;
    if (id === source) return true;
    if (seen.has(id)) continue;
    seen.add(id);
    for (const e of doc.edges) if (e.source === id) stack.push(e.target);
  }
  return false;
}

/** Upstream nodes of `id` (inclusive), for running one node. */
export function upstream(doc: PipelineDoc, id: string): Set<string> {
  const out = new Set<string>();
  const stack = [id];
  while (stack.length) {
    const n = stack.pop()!;
    if (out.has(n)) continue;
    out.add(n);
    for (const e of doc.edges) if (e.target === n) stack.push(e.source);
  }
  return out;
}
