/**
 * The pipeline canvas (@xyflow/react). The document store is the truth: node drags, connections,
 * deletions and drops become Change objects (one undo step each); React Flow only keeps what it
 * measures and the position of a node while it is being dragged. Edges are checked as they are
 * drawn (locally while dragging, then by the engine's `validateEdge`, which also reads headers), and a
 * refused edge says why.
 */
import {
  Controls, MiniMap, ReactFlow, ReactFlowProvider, applyNodeChanges, useNodesInitialized, useReactFlow, useStore as useFlowStore,
  type ReactFlowState,
  type Connection, type EdgeChange, type FinalConnectionState, type IsValidConnection, type NodeChange, type OnConnectEnd,
} from '@xyflow/react';
import { useCallback, useEffect, useMemo, useRef, useState, type DragEvent, type ReactElement } from 'react';
import { api, client } from '../api/client';
import type { Change } from '../../../app/core/pipeline/changes';
import { edgeProblem } from '../../../app/core/pipeline/node-types';
import { apply, currentDoc, docStore, edgeId } from '../state/document';
import { addNode, addPath } from '../state/edit';
import { runStore } from '../state/runs';
import { useStore } from '../state/store';
import { toast, toastError } from '../state/toasts';
import { openDialog, select, uiStore } from '../state/ui';
import { isAbsolutePath } from '../util/format';
import { CanvasBackground } from './CanvasBackground';
import { ConnectionHint } from './ConnectionHint';
import { connectionProblem, endsFromHandles } from './connection';
import { setCanvasController } from './controller';
import { NODE_MIME, PATH_MIME } from './dnd';
import { freeSpotAmong, resolveOverlaps } from './tidy';
import { syncEdges, syncNodes, type FlowEdge, type FlowNode } from './flow-mapping';
import { PipelineNode } from './PipelineNode';


const nodeTypes = { pipeline: PipelineNode };
const proOptions = { hideAttribution: true };
const fitOptions = { padding: 0.12, maxZoom: 1.2 };
// Rendering only the visible nodes mounts and unmounts nodes (and measures them) on every pan frame;
// with the viewport composited while it moves, keeping every node mounted is cheaper up to a large graph.
const VIRTUALISE_ABOVE = 1000;
// Below this zoom node text is under ~5 px: the canvas shows nodes as coloured boxes (`.far` in canvas.css),
// which also makes every pan frame's repaint and rasterisation of a large graph several times cheaper.
const FAR_ZOOM = 0.4;
const isFar = (s: ReactFlowState): boolean => s.transform[2] < FAR_ZOOM;

/** Moves overlapping nodes apart (one undo step); returns the bounds of the result. */
function tidy(nodes: FlowNode[], why: 'after-load' | 'command'): { x: number; y: number; width: number; height: number } | null {
  const boxes = nodes.map((n) => ({ id: n.id, x: n.position.x, y: n.position.y, w: n.measured?.width ?? 224, h: n.measured?.height ?? 120 }));
  const moved = resolveOverlaps(boxes);
  if (moved.size) apply({ type: 'batch', changes: [...moved].map(([id, position]): Change => ({ type: 'moveNode', id, position })) });
  else if (why === 'command') toast({ kind: 'info', title: 'Nothing overlaps' });
  if (!boxes.length) return null;
  const placed = boxes.map((b) => ({ ...b, ...(moved.get(b.id) ?? {}) }));
  const x = Math.min(...placed.map((b) => b.x));
  const y = Math.min(...placed.map((b) => b.y));
  return { x, y, width: Math.max(...placed.map((b) => b.x + b.w)) - x, height: Math.max(...placed.map((b) => b.y + b.h)) - y };
}

export function Canvas(): ReactElement {
  return (
    <ReactFlowProvider>
      <CanvasInner />
    </ReactFlowProvider>
  );
}

function CanvasInner(): ReactElement {
  const doc = useStore(docStore, (s) => s.doc);
  const generation = useStore(docStore, (s) => s.generation);
  const theme = useStore(uiStore, (s) => s.theme);
  const selNodes = useStore(uiStore, (s) => s.selectedNodes);
  const selEdges = useStore(uiStore, (s) => s.selectedEdges);
  const runningKey = useStore(runStore, (s) => Object.entries(s.nodes).filter(([, n]) => n.status === 'running').map(([id]) => id).join('\n'));
  const rf = useReactFlow<FlowNode, FlowEdge>();
  const far = useFlowStore(isFar);
  const wrapper = useRef<HTMLDivElement>(null);

  // Flow nodes derived from the document (kept in state so drags and measurements can update them).
  const [state, setState] = useState(() => ({ doc, sel: selNodes, nodes: syncNodes([], doc, new Set(selNodes)) }));
  let nodes = state.nodes;
  if (state.doc !== doc || state.sel !== selNodes) {
    nodes = syncNodes(state.nodes, doc, new Set(selNodes));
    setState({ doc, sel: selNodes, nodes });
  }
  const prevEdges = useRef<FlowEdge[]>([]);
  const edges = useMemo(() => (prevEdges.current = syncEdges(prevEdges.current, doc, new Set(selEdges), new Set(runningKey ? runningKey.split('\n') : []))), [doc, selEdges, runningKey]);

  const onNodesChange = useCallback((changes: NodeChange<FlowNode>[]) => {
    const kept = changes.filter((c) => c.type !== 'select' && c.type !== 'remove' && c.type !== 'add' && c.type !== 'replace');
    if (kept.length) setState((s) => ({ ...s, nodes: applyNodeChanges(kept, s.nodes) }));
    const sel = changes.filter((c) => c.type === 'select');
    if (sel.length) {
      const set = new Set(uiStore.get().selectedNodes);
      for (const c of sel) {
        if (c.type !== 'select') continue;
        if (c.selected) set.add(c.id);
        else set.delete(c.id);
      }
      uiStore.set({ selectedNodes: [...set] });
    }
  }, []);

  const onEdgesChange = useCallback((changes: EdgeChange<FlowEdge>[]) => {
    const sel = changes.filter((c) => c.type === 'select');
    if (!sel.length) return;
    const set = new Set(uiStore.get().selectedEdges);
    for (const c of sel) {
      if (c.type !== 'select') continue;
      if (c.selected) set.add(c.id);
      else set.delete(c.id);
    }
    uiStore.set({ selectedEdges: [...set] });
  }, []);

  const onNodeDragStop = useCallback((_e: unknown, _n: FlowNode, dragged: FlowNode[]) => {
    const d = currentDoc();
    const changes: Change[] = [];
    for (const n of dragged) {
      const old = d.nodes.find((x) => x.id === n.id);
      const position = { x: Math.round(n.position.x), y: Math.round(n.position.y) };
      if (old && (old.position.x !== position.x || old.position.y !== position.y)) changes.push({ type: 'moveNode', id: n.id, position });
    }
    if (changes.length) apply(changes.length === 1 ? changes[0]! : { type: 'batch', changes });
  }, []);

  const isValidConnection: IsValidConnection<FlowEdge> = useCallback((c) => {
    if (!c.sourceHandle || !c.targetHandle) return false;
    return edgeProblem(currentDoc(), { source: c.source, sourcePort: c.sourceHandle, target: c.target, targetPort: c.targetHandle }) === null;
  }, []);

  const onConnect = useCallback((c: Connection) => {
    if (!c.sourceHandle || !c.targetHandle) return;
    const ends = { source: c.source, sourcePort: c.sourceHandle, target: c.target, targetPort: c.targetHandle };
    const d = currentDoc();
    api.validateEdge({ doc: d, edge: ends }).then(
      (r) => {
        if (!r.ok) {
          toast({ kind: 'warn', title: 'Connection refused', message: r.reason ?? 'these ports cannot be connected' });
          return;
        }
        // The document may have changed while the engine was reading headers.
        const now = currentDoc();
        const problem = edgeProblem(now, ends);
        if (problem) toast({ kind: 'warn', title: 'Connection refused', message: problem });
        else apply({ type: 'connect', edge: { id: edgeId(ends), ...ends } });
      },
      (e: unknown) => toastError('The connection could not be checked', e),
    );
  }, []);

  const onConnectEnd: OnConnectEnd = useCallback((_e: MouseEvent | TouchEvent, s: FinalConnectionState) => {
    if (s.isValid !== false || !s.fromHandle || !s.toHandle) return;
    const reason = connectionProblem(currentDoc(), s.fromHandle, s.toHandle);
    const ends = endsFromHandles(s.fromHandle, s.toHandle);
    if (reason) toast({ kind: 'warn', title: 'Connection refused', message: reason, ...(ends ? { details: JSON.stringify(ends) } : {}) });
  }, []);

  const onDragOver = useCallback((e: DragEvent) => {
    e.preventDefault();
    e.dataTransfer.dropEffect = 'copy';
  }, []);

  const onDrop = useCallback((e: DragEvent) => {
    e.preventDefault();
    const at = rf.screenToFlowPosition({ x: e.clientX, y: e.clientY });
    const type = e.dataTransfer.getData(NODE_MIME);
    if (type) {
      addNode(type, { x: at.x - 110, y: at.y - 30 });
      return;
    }
    const pathData = e.dataTransfer.getData(PATH_MIME);
    if (pathData) {
      const { path, kind } = JSON.parse(pathData) as { path: string; kind?: string };
      void addPath(path, at, kind);
      return;
    }
    // OS files (Electron gives their paths) or a dropped path as text.
    const paths: string[] = [];
    if (client.pathForFile) for (const f of Array.from(e.dataTransfer.files)) paths.push(client.pathForFile(f));
    if (!paths.length) {
      const text = (e.dataTransfer.getData('text/plain') || e.dataTransfer.getData('text/uri-list')).trim();
      for (const line of text.split(/\r?\n/)) {
        const p = line.trim().replace(/^file:\/\//, '');
        if (p && isAbsolutePath(decodeURI(p))) paths.push(decodeURI(p));
      }
    }
    if (!paths.length) {
      if (e.dataTransfer.files.length) toast({ kind: 'info', title: 'Files cannot be dropped from the browser', message: 'in server mode, add them with the file browser (A), or drop their path as text' });
      return;
    }
    paths.forEach((p, i) => void addPath(p, { x: at.x + i * 30, y: at.y + i * 130 }));
  }, [rf]);

  const onPaneClick = useCallback(() => select([]), []);

  // While the viewport moves, the canvas has the class `.moving` (for styles that should only apply then).
  // Set on the element directly: a React re-render per pan would cost more.
  const onMoveStart = useCallback(() => wrapper.current?.classList.add('moving'), []);
  const onMoveEnd = useCallback(() => wrapper.current?.classList.remove('moving'), []);

  useEffect(() => {
    setCanvasController({
      fitView: () => void rf.fitView(fitOptions),
      center: () => {
        const r = wrapper.current?.getBoundingClientRect();
        return r ? rf.screenToFlowPosition({ x: r.left + r.width / 2, y: r.top + r.height / 2 }) : { x: 0, y: 0 };
      },
      freeSpot: (at) => freeSpotAmong(rf.getNodes().map((n) => ({ id: n.id, x: n.position.x, y: n.position.y, w: n.measured?.width ?? 224, h: n.measured?.height ?? 130 })), at),
      tidy: (silent) => {
        tidy(rf.getNodes(), silent ? 'after-load' : 'command');
      },
      focusNode: (id) => {
        const n = currentDoc().nodes.find((x) => x.id === id);
        if (n) void rf.setCenter(n.position.x + 110, n.position.y + 60, { zoom: Math.max(rf.getZoom(), 0.9), duration: 250 });
      },
    });
    return () => setCanvasController(null);
  }, [rf]);

  // Fit the view whenever another document is loaded, once its nodes are measured.
  const initialized = useNodesInitialized();
  const fittedFor = useRef(-1);
  useEffect(() => {
    if (initialized && fittedFor.current !== generation) {
      fittedFor.current = generation;
      const bounds = tidy(rf.getNodes(), 'after-load');
      if (bounds) void rf.fitBounds(bounds, { padding: fitOptions.padding });
    }
  }, [initialized, generation, rf]);

  // The minimap (of 40 nodes or more; for 300 nodes ~900 more React components and store subscriptions)
  // is mounted once the canvas has been measured and the browser is idle, not in the frame that first
  // shows the nodes.
  const [minimapReady, setMinimapReady] = useState(false);
  useEffect(() => {
    if (minimapReady || !initialized) return;
    if (typeof requestIdleCallback !== 'function') {
      const t = window.setTimeout(() => setMinimapReady(true), 50);
      return () => window.clearTimeout(t);
    }
    const h = requestIdleCallback(() => setMinimapReady(true), { timeout: 500 });
    return () => cancelIdleCallback(h);
  }, [initialized, minimapReady]);

  // An empty document starts at 100 % zoom, so the first nodes added are readable.
  useEffect(() => {
    if (docStore.get().doc.nodes.length === 0) void rf.setViewport({ x: 0, y: 0, zoom: 1 });
  }, [generation, rf]);

  // Results make nodes taller: when a run ends, move apart whatever now overlaps (one undo step).
  const finished = useStore(runStore, (s) => s.finished);
  const seenFinished = useRef(finished);
  useEffect(() => {
    if (finished === seenFinished.current) return;
    seenFinished.current = finished;
    const t = window.setTimeout(() => tidy(rf.getNodes(), 'after-load'), 80);
    return () => window.clearTimeout(t);
  }, [finished, rf]);

  const empty = doc.nodes.length === 0;
  return (
    <div className={`canvas${doc.nodes.length > 150 ? ' big' : ''}${far ? ' far' : ''}`} ref={wrapper} onDragOver={onDragOver} onDrop={onDrop} data-testid="canvas">
      <ReactFlow<FlowNode, FlowEdge>
        nodes={nodes}
        edges={edges}
        nodeTypes={nodeTypes}
        onNodesChange={onNodesChange}
        onEdgesChange={onEdgesChange}
        onNodeDragStop={onNodeDragStop}
        onConnect={onConnect}
        onConnectEnd={onConnectEnd}
        isValidConnection={isValidConnection}
        onPaneClick={onPaneClick}
        onMoveStart={onMoveStart}
        onMoveEnd={onMoveEnd}
        deleteKeyCode={null}
        selectionKeyCode="Shift"
        multiSelectionKeyCode={['Meta', 'Control']}
        colorMode={theme}
        minZoom={0.1}
        maxZoom={2}
        proOptions={proOptions}
        onlyRenderVisibleElements={doc.nodes.length > VIRTUALISE_ABOVE}
        connectionRadius={28}
      >
        <CanvasBackground />
        {doc.nodes.length >= 40 && minimapReady && <MiniMap pannable zoomable className="minimap" style={{ width: 168, height: 112 }} nodeClassName={(n) => `mm-${(n as FlowNode).data.node.type}`} />}
        <Controls showInteractive={false} />
        <ConnectionHint />
      </ReactFlow>
      {empty && (
        <div className="canvas-empty">
          <div className="canvas-empty-title">An empty canvas</div>
          <div>Drag nodes from the left, or press <kbd>A</kbd> to add checkpoints, adapters and datasets.</div>
          <button className="btn" onClick={() => openDialog({ kind: 'files', mode: 'add' })}>Add files…</button>
        </div>
      )}
    </div>
  );
}
