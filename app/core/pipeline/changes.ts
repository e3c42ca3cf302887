/**
 * Graph edits as data. `applyChange` is pure and returns the new document and the inverse change, so
 * the same change log drives undo/redo, autosave and collaboration-free replay.
 */
import type { PipelineDoc, PipelineEdge, PipelineNode } from './document.js';

export type Change =
  | { type: 'addNode'; node: PipelineNode; index?: number }
  | { type: 'removeNode'; id: string }
  | { type: 'moveNode'; id: string; position: { x: number; y: number } }
  | { type: 'setParam'; id: string; key: string; value: unknown }
  | { type: 'setLabel'; id: string; label: string | undefined }
  | { type: 'connect'; edge: PipelineEdge; index?: number }
  | { type: 'disconnect'; id: string }
  | { type: 'rename'; name: string }
  | { type: 'batch'; changes: Change[] };

export interface Applied {
  doc: PipelineDoc;
  inverse: Change;
}

export function applyChange(doc: PipelineDoc, c: Change): Applied {
  switch (c.type) {
    case 'addNode':
      if (doc.nodes.some((n) => n.id === c.node.id)) throw new Error(`node ${c.node.id} already exists`);
      return { doc: { ...doc, nodes: insertAt(doc.nodes, c.node, c.index) }, inverse: { type: 'removeNode', id: c.node.id } };
    case 'removeNode': {
      const node = doc.nodes.find((n) => n.id === c.id);
      if (!node) throw new Error(`no node ${c.id}`);
      const edges = doc.edges.map((e, index) => ({ edge: e, index })).filter(({ edge: e }) => e.source === c.id || e.target === c.id);
      // Removing a node removes its edges; the inverse restores both at their places.
      return {
        doc: { ...doc, nodes: doc.nodes.filter((n) => n.id !== c.id), edges: doc.edges.filter((e) => !edges.some((x) => x.edge === e)) },
        inverse: { type: 'batch', changes: [{ type: 'addNode', node, index: doc.nodes.indexOf(node) }, ...edges.map(({ edge, index }) => ({ type: 'connect' as const, edge, index }))] },
      };
    }
    case 'moveNode': {
      const node = find(doc, c.id);
      return { doc: replace(doc, { ...node, position: c.position }), inverse: { type: 'moveNode', id: c.id, position: node.position } };
    }
    case 'setParam': {
      const node = find(doc, c.id);
      const params = { ...node.params };
      const had = Object.prototype.hasOwnProperty.call(params, c.key);
      const old = params[c.key];
      if (c.value === undefined) delete params[c.key];
      else params[c.key] = c.value;
      return { doc: replace(doc, { ...node, params }), inverse: { type: 'setParam', id: c.id, key: c.key, value: had ? old : undefined } };
    }
    case 'setLabel': {
      const node = find(doc, c.id);
      return { doc: replace(doc, { ...node, label: c.label }), inverse: { type: 'setLabel', id: c.id, label: node.label } };
    }
    case 'connect':
      if (doc.edges.some((e) => e.id === c.edge.id)) throw new Error(`edge ${c.edge.id} already exists`);
      return { doc: { ...doc, edges: insertAt(doc.edges, c.edge, c.index) }, inverse: { type: 'disconnect', id: c.edge.id } };
    case 'disconnect': {
      const edge = doc.edges.find((e) => e.id === c.id);
      if (!edge) throw new Error(`no edge ${c.id}`);
      return { doc: { ...doc, edges: doc.edges.filter((e) => e.id !== c.id) }, inverse: { type: 'connect', edge, index: doc.edges.indexOf(edge) } };
    }
    case 'rename':
      return { doc: { ...doc, name: c.name }, inverse: { type: 'rename', name: doc.name } };
    case 'batch': {
      let d = doc;
      const inverses: Change[] = [];
      for (const ch of c.changes) {
        const r = applyChange(d, ch);
        d = r.doc;
        inverses.unshift(r.inverse);
      }
      return { doc: d, inverse: { type: 'batch', changes: inverses } };
    }
  }
}

function insertAt<T>(xs: T[], x: T, index: number | undefined): T[] {
  if (index === undefined || index >= xs.length) return [...xs, x];
  return [...xs.slice(0, index), x, ...xs.slice(index)];
}

function find(doc: PipelineDoc, id: string): PipelineNode {
  const n = doc.nodes.find((x) => x.id === id);
  if (!n) throw new Error(`no node ${id}`);
  return n;
}

function replace(doc: PipelineDoc, node: PipelineNode): PipelineDoc {
  return { ...doc, nodes: doc.nodes.map((n) => (n.id === node.id ? node : n)) };
}

/** Undo/redo stacks over changes. */
export class History {
  private undoStack: Change[] = [];
  private redoStack: Change[] = [];

  constructor(public doc: PipelineDoc, private readonly limit = 500) {}

  apply(c: Change): PipelineDoc {
    const r = applyChange(this.doc, c);
    this.doc = r.doc;
    this.undoStack.push(r.inverse);
    if (this.undoStack.length > this.limit) this.undoStack.shift();
    this.redoStack = [];
    return this.doc;
  }

  undo(): PipelineDoc {
    const c = this.undoStack.pop();
    if (!c) return this.doc;
    const r = applyChange(this.doc, c);
    this.doc = r.doc;
    this.redoStack.push(r.inverse);
    return this.doc;
  }

  redo(): PipelineDoc {
    const c = this.redoStack.pop();
    if (!c) return this.doc;
    const r = applyChange(this.doc, c);
    this.doc = r.doc;
    this.undoStack.push(r.inverse);
    return this.doc;
  }

  get canUndo(): boolean {
    return this.undoStack.length > 0;
  }

  get canRedo(): boolean {
    return this.redoStack.length > 0;
  }
}
