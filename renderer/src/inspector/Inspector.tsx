/**
 * The right panel: the selected node's form (generated from NODE_TYPES params, plus the merge
 * method's own parameters), its inputs, facts and results, and actions (run this node, export YAML,
 * delete). With nothing selected: the pipeline itself — name, size, and what still needs connecting.
 */
import { useMemo, useState, type ReactElement } from 'react';
import type { PipelineNode } from '../../../app/core/pipeline/document';
import { missingInputs, NODE_TYPES } from '../../../app/core/pipeline/node-types';
import type { PipelineDoc } from '../api/types';
import { canvas } from '../canvas/controller';
import { NodeResults } from '../canvas/NodeResults';
import { catalogStore } from '../state/catalog';
import { docStore } from '../state/document';
import { deleteSelection, duplicateSelection, renameDoc, setLabel, setParam } from '../state/edit';
import { exportYaml } from '../state/files';
import { useInspection } from '../state/inspections';
import { runPipeline, runStore } from '../state/runs';
import { useStore } from '../state/store';
import { openDialog, select, uiStore } from '../state/ui';
import { Icon, NODE_ICON } from '../ui/icons';
import { StatusBadge } from '../ui/StatusBadge';
import { humanBytes, humanDuration, metric } from '../util/format';
import { MergeMethodForm } from './MergeMethodForm';
import { ParamInput, type FieldSpec } from './ParamInput';

export function Inspector(): ReactElement {
  const selNodes = useStore(uiStore, (s) => s.selectedNodes);
  const selEdges = useStore(uiStore, (s) => s.selectedEdges);
  const node = useStore(docStore, (s) => (selNodes.length === 1 ? s.doc.nodes.find((n) => n.id === selNodes[0]) : undefined));
  let body: ReactElement;
  if (node) body = <NodeInspector key={node.id} node={node} />;
  else if (selNodes.length > 1) body = <MultiInspector count={selNodes.length} />;
  else if (selEdges.length) body = <EdgeInspector ids={selEdges} />;
  else body = <PipelineInspector />;
  return <aside className="sidebar inspector" data-testid="inspector">{body}</aside>;
}

function NodeInspector({ node }: { node: PipelineNode }): ReactElement {
  const def = useStore(catalogStore, (s) => s.nodeTypes[node.type]);
  const run = useStore(runStore, (s) => s.nodes[node.id]);
  const active = useStore(runStore, (s) => !!s.active);
  const missing = useStore(docStore, (s) => missingInputs(s.doc, node.id).join(', '));
  const [label, setLabelText] = useState(node.label ?? '');
  const [shownLabel, setShownLabel] = useState(node.label);
  if (shownLabel !== node.label) {
    // Undo, redo or another edit changed the name: show it.
    setShownLabel(node.label);
    setLabelText(node.label ?? '');
  }
  const I = NODE_ICON[node.type] ?? Icon.Model;
  const providers = useStore(catalogStore, (s) => s.providers);
  const runtimeHelp = providers.length ? `available here: ${providers.filter((p) => p.available).map((p) => p.name).join(', ')}` : undefined;
  const fields: FieldSpec[] = (def?.params ?? []).map((p) => ({
    key: p.key, label: p.label, kind: p.kind, choices: p.choices,
    help: p.key === 'provider' && runtimeHelp ? [p.help, runtimeHelp].filter(Boolean).join(' · ') : p.help,
    placeholder: p.default !== undefined ? `default ${JSON.stringify(p.default)}` : undefined,
  }));
  return (
    <div className="insp" data-testid="node-inspector">
      <div className={`insp-head cat-${def?.category ?? 'x'}`}>
        <span className="insp-icon"><I /></span>
        <div className="insp-titles">
          <div className="insp-type">{def?.label ?? node.type}</div>
          <div className="insp-desc">{def?.description}</div>
        </div>
      </div>
      <div className="field">
        <label className="field-label" htmlFor="node-label">Name</label>
        <input id="node-label" type="text" value={label} placeholder={node.id} onChange={(e) => setLabelText(e.target.value)} onBlur={() => setLabel(node.id, label)} onKeyDown={(e) => e.key === 'Enter' && setLabel(node.id, label)} />
      </div>
      {missing && <div className="insp-warn"><Icon.Alert size={14} /> Connect its {missing} input{missing.includes(',') ? 's' : ''}</div>}
      <div className="form-sub">Parameters</div>
      {fields.map((f) => {
        const field = def!.params.find((p) => p.key === f.key)!;
        return (
          <ParamInput
            key={f.key}
            spec={f}
            value={node.params[f.key] ?? field.default}
            onCommit={(v) => setParam(node.id, f.key, v === undefined ? field.default : v)}
            onBrowse={f.kind === 'path' ? () => openDialog({ kind: 'files', mode: 'pick', nodeId: node.id, field }) : undefined}
          />
        );
      })}
      {node.type === 'merge' && <MergeMethodForm node={node} />}
      {(node.type === 'checkpoint' || node.type === 'adapter') && <InspectionDetails path={typeof node.params['path'] === 'string' ? node.params['path'] : ''} />}
      {run && (
        <div className="insp-run">
          <div className="form-sub">Last run <StatusBadge status={run.status} /> {run.runId > 0 && <span className="muted">#{run.runId}</span>}</div>
          {run.startedAt && run.finishedAt && <div className="muted">{humanDuration(run.finishedAt - run.startedAt)}</div>}
          {run.error && <div className="insp-error">{run.error}</div>}
          {run.metrics && <NodeResults type={node.type} metrics={run.metrics} />}
          {run.metrics && node.type !== 'evaluate' && <MetricsTable metrics={run.metrics} />}
        </div>
      )}
      <div className="insp-actions">
        <button className="btn btn-primary" disabled={active} onClick={() => void runPipeline(node.id)} data-testid="run-node" title="Run this node and what it depends on (Ctrl+Shift+Enter)">
          <Icon.PlayNode /> Run node
        </button>
        {(node.type === 'merge' || node.type === 'moe') && (
          <button className="btn" onClick={() => void exportYaml(node.id)} data-testid="export-yaml"><Icon.Yaml /> mergekit YAML</button>
        )}
        <button className="btn btn-ghost" onClick={() => canvas()?.focusNode(node.id)} title="Centre the canvas on this node">Focus</button>
        <button className="btn btn-ghost" onClick={duplicateSelection} title="Duplicate (Ctrl+D)"><Icon.Copy /></button>
        <button className="btn btn-ghost btn-danger" onClick={deleteSelection} title="Delete (Del)" data-testid="delete-node"><Icon.Trash /></button>
      </div>
    </div>
  );
}

function MetricsTable({ metrics }: { metrics: Record<string, unknown> }): ReactElement | null {
  const rows = Object.entries(metrics).filter(([, v]) => v !== null && typeof v !== 'object');
  if (!rows.length) return null;
  return (
    <table className="kv-table">
      <tbody>{rows.map(([k, v]) => <tr key={k}><td>{k}</td><td>{metric(v)}</td></tr>)}</tbody>
    </table>
  );
}

function InspectionDetails({ path }: { path: string }): ReactElement | null {
  const st = useInspection(path || undefined);
  if (!st || st.status === 'loading') return null;
  if (st.status === 'error') {
    return (
      <div className="insp-error" data-testid="inspect-error">
        <b>Cannot read this folder</b>
        <div>{st.message}</div>
        {st.hint && <div className="muted">→ {st.hint}</div>}
      </div>
    );
  }
  const d = st.data;
  const a = d.adapter;
  const rows: [string, string][] = a ? [
    ['rank (r)', String(a.r)],
    ['alpha', String(a.lora_alpha)],
    ['scaling', `${a.scaling}${a.use_rslora ? ' (rsLoRA)' : ''}`],
    ['modules', String(a.num_modules)],
    ['targets', a.target_modules.join(', ')],
    ['base model', a.base_model ? `${a.base_model}${a.base_found ? '' : ' (not found locally)'}` : '–'],
    ['parameters', d.num_parameters.toLocaleString()],
    ['dtypes', Object.entries(d.dtypes).map(([k, v]) => `${k} ×${v}`).join(', ')],
    ['on disk', `${humanBytes(d.total_bytes)} (${humanBytes(d.bytes_read)} read)`],
  ] : [
    ['architecture', d.architecture ?? '–'],
    ['parameters', d.num_parameters.toLocaleString()],
    ['dtypes', Object.entries(d.dtypes).map(([k, v]) => `${k} ×${v}`).join(', ')],
    ['layers', metric(d.num_layers)],
    ['hidden size', metric(d.hidden_size)],
    ['vocab', metric(d.vocab_size)],
    ...(d.num_experts !== null ? [['experts', String(d.num_experts)] as [string, string]] : []),
    ['tensors', `${d.num_tensors} in ${d.num_files} file${d.num_files === 1 ? '' : 's'}`],
    ['on disk', `${humanBytes(d.total_bytes)} (${humanBytes(d.bytes_read)} read)`],
    ['tokenizer', d.tokenizer_sha256 ? d.tokenizer_sha256.slice(0, 12) + '…' : 'none'],
  ];
  return (
    <>
      <div className="form-sub">From the headers</div>
      <table className="kv-table" data-testid="inspection-table"><tbody>{rows.map(([k, v]) => <tr key={k}><td>{k}</td><td>{v}</td></tr>)}</tbody></table>
      {d.problems.map((p) => <div key={p} className="insp-warn"><Icon.Alert size={14} /> {p}</div>)}
    </>
  );
}

function MultiInspector({ count }: { count: number }): ReactElement {
  return (
    <div className="insp">
      <div className="insp-empty-title">{count} nodes selected</div>
      <div className="insp-actions">
        <button className="btn" onClick={duplicateSelection}><Icon.Copy /> Duplicate</button>
        <button className="btn btn-danger" onClick={deleteSelection}><Icon.Trash /> Delete</button>
      </div>
      <div className="muted">Ctrl+C / Ctrl+V copies them with the connections between them.</div>
    </div>
  );
}

function EdgeInspector({ ids }: { ids: string[] }): ReactElement {
  const doc = useStore(docStore, (s) => s.doc);
  const edges = doc.edges.filter((e) => ids.includes(e.id));
  const name = (id: string) => doc.nodes.find((n) => n.id === id)?.label ?? id;
  return (
    <div className="insp">
      <div className="insp-empty-title">{edges.length === 1 ? 'Connection' : `${edges.length} connections`}</div>
      {edges.map((e) => (
        <div key={e.id} className="edge-row"><b>{name(e.source)}</b>.{e.sourcePort} → <b>{name(e.target)}</b>.{e.targetPort}</div>
      ))}
      <div className="insp-actions"><button className="btn btn-danger" onClick={deleteSelection}><Icon.Trash /> Remove</button></div>
    </div>
  );
}

/** Nodes with required inputs unconnected (missingInputs for every node, with one pass over the edges). */
function blockedNodes(doc: PipelineDoc): { n: PipelineDoc['nodes'][number]; missing: string[] }[] {
  const fed = new Set(doc.edges.map((e) => `${e.target}\n${e.targetPort}`));
  return doc.nodes
    .map((n) => ({ n, missing: (NODE_TYPES[n.type]?.inputs ?? []).filter((p) => !p.optional && !fed.has(`${n.id}\n${p.name}`)).map((p) => p.label) }))
    .filter((x) => x.missing.length);
}

function PipelineInspector(): ReactElement {
  const doc = useStore(docStore, (s) => s.doc);
  const filePath = useStore(docStore, (s) => s.filePath);
  const [name, setName] = useState(doc.name);
  const [shownName, setShownName] = useState(doc.name);
  if (shownName !== doc.name) {
    setShownName(doc.name);
    setName(doc.name);
  }
  const blocked = useMemo(() => blockedNodes(doc), [doc]);
  const byType = useMemo(() => {
    const c = new Map<string, number>();
    for (const n of doc.nodes) c.set(n.type, (c.get(n.type) ?? 0) + 1);
    return [...c];
  }, [doc]);
  return (
    <div className="insp" data-testid="pipeline-inspector">
      <div className="insp-head">
        <span className="insp-icon"><Icon.Canvas /></span>
        <div className="insp-titles"><div className="insp-type">Pipeline</div><div className="insp-desc">{filePath ?? 'not saved to a file yet (autosaved)'}</div></div>
      </div>
      <div className="field">
        <label className="field-label" htmlFor="doc-name">Name</label>
        <input id="doc-name" type="text" value={name} onChange={(e) => setName(e.target.value)} onBlur={() => renameDoc(name)} onKeyDown={(e) => e.key === 'Enter' && renameDoc(name)} />
      </div>
      <div className="stat-grid">
        <div><b>{doc.nodes.length}</b><span>nodes</span></div>
        <div><b>{doc.edges.length}</b><span>connections</span></div>
      </div>
      <div className="type-counts">{byType.map(([t, c]) => <span key={t} className="chip">{c} {t}</span>)}</div>
      {blocked.length > 0 ? (
        <>
          <div className="form-sub">Needs connecting</div>
          {blocked.slice(0, 12).map(({ n, missing }) => (
            <button key={n.id} className="problem-row" onClick={() => { select([n.id]); canvas()?.focusNode(n.id); }}>
              <Icon.Alert size={13} /> <b>{n.label ?? n.id}</b> <span>{missing.join(', ')}</span>
            </button>
          ))}
        </>
      ) : doc.nodes.length > 0 ? <div className="insp-ok"><Icon.Check size={14} /> Every node has its inputs</div> : null}
      <div className="form-sub">Tips</div>
      <ul className="tips">
        <li>Drag from an output port to an input port to connect; refused connections say why.</li>
        <li>Select a node to edit it; <kbd>Ctrl</kbd>+<kbd>Enter</kbd> runs the pipeline.</li>
        <li>Press <kbd>?</kbd> for every shortcut.</li>
      </ul>
    </div>
  );
}
