/**
 * The key facts of a node before it runs: for checkpoints and adapters what their headers say
 * (family, parameters, dtype, size — `inspect`, never the weights); for merges and MoEs their method
 * or router mode; for evaluations what they will measure.
 */
import { useMemo, type ReactElement, type ReactNode } from 'react';
import type { PipelineEdge, PipelineNode } from '../../../app/core/pipeline/document';
import { mergeMethod, catalogStore } from '../state/catalog';
import { docStore } from '../state/document';
import { useInspection } from '../state/inspections';
import { useStore } from '../state/store';
import { basename, humanBytes, humanCount } from '../util/format';

function Chip({ children, tone, title }: { children: ReactNode; tone?: string; title?: string }): ReactElement {
  return <span className={`chip${tone ? ` chip-${tone}` : ''}`} title={title}>{children}</span>;
}

/** The last two segments of a path ("models/base"): enough to tell folders apart. */
function shortPath(p: string): string {
  const parts = p.replace(/[\\/]+$/, '').split(/[\\/]/).filter(Boolean);
  return parts.slice(-2).join('/');
}

/** Per node, "port:count,…" of the edges arriving at it, built once per edge list (not once per node). */
const countKeys = new WeakMap<readonly PipelineEdge[], Map<string, string>>();
function inputCountKey(edges: readonly PipelineEdge[], id: string): string {
  let m = countKeys.get(edges);
  if (!m) {
    const c = new Map<string, Record<string, number>>();
    for (const e of edges) {
      const r = c.get(e.target) ?? {};
      r[e.targetPort] = (r[e.targetPort] ?? 0) + 1;
      c.set(e.target, r);
    }
    m = new Map([...c].map(([t, r]) => [t, Object.entries(r).sort().map(([k, v]) => `${k}:${v}`).join(',')]));
    countKeys.set(edges, m);
  }
  return m.get(id) ?? '';
}

/** How many edges arrive at each input port (selected as a stable string: re-renders only when it changes). */
function useInputCounts(id: string): Record<string, number> {
  const key = useStore(docStore, (s) => inputCountKey(s.doc.edges, id));
  return useMemo(() => Object.fromEntries(key ? key.split(',').map((kv) => { const [k, v] = kv.split(':'); return [k!, Number(v)]; }) : []), [key]);
}

function PathFacts({ node }: { node: PipelineNode }): ReactElement {
  const path = typeof node.params['path'] === 'string' ? node.params['path'] : '';
  const st = useInspection(path || undefined);
  if (!path) return <div className="pnode-warn">No folder chosen — select the node and pick one</div>;
  const loc = <div className="pnode-path" title={path}>{shortPath(path)}</div>;
  if (!st || st.status === 'loading') return <>{loc}<div className="facts"><span className="skeleton" /><span className="skeleton short" /></div><div className="facts-sub"><span>reading headers…</span></div></>;
  if (st.status === 'error') {
    // The path is on the node already: start the message at the file's own name.
    const msg = st.message.startsWith(path) ? st.message.slice(path.length).replace(/^[\\/]/, '') : st.message;
    return <>{loc}<div className="pnode-error" data-testid="node-inspect-error" title={st.message}>{msg}</div></>;
  }
  const d = st.data;
  const dtypes = Object.keys(d.dtypes);
  if (node.type === 'adapter' || d.adapter) {
    const a = d.adapter;
    return (
      <>
        {loc}
        <div className="facts" data-testid="node-facts">
          <Chip tone="accent">LoRA</Chip>
          {a && <Chip>r {a.r} · α {a.lora_alpha}</Chip>}
          {a && <Chip title={a.target_modules.join(', ')}>{a.target_modules.length} targets</Chip>}
          <Chip>{humanBytes(d.total_bytes)}</Chip>
          {a?.base_model && <Chip tone={a.base_found ? 'ok' : 'warn'} title={a.base_model}>base {a.base_found ? '✓' : 'not local'}</Chip>}
        </div>
      </>
    );
  }
  return (
    <>
      {loc}
      <div className="facts" data-testid="node-facts">
        <Chip tone="accent" title={d.architecture ?? undefined}>{d.family ?? d.model_type ?? 'unknown'}</Chip>
        <Chip title={Object.entries(d.dtypes).map(([k, v]) => `${k} ×${v}`).join(', ')}>{dtypes.join('/') || '–'}</Chip>
        <Chip title={`${d.num_files} file(s)`}>{humanBytes(d.total_bytes)}</Chip>
        {d.num_experts !== null && <Chip tone="accent">{d.num_experts} experts</Chip>}
      </div>
      <div className="facts-sub">
        <span title={`${d.num_parameters.toLocaleString()} parameters`}>{humanCount(d.num_parameters)} params</span>
        {d.num_layers !== null && <span>{d.num_layers} layers</span>}
        {d.hidden_size !== null && <span>hidden {d.hidden_size}</span>}
      </div>
      {d.problems.length > 0 && <div className="pnode-warn" title={d.problems.join('\n')}>{d.problems[0]}</div>}
    </>
  );
}

function DatasetFacts({ node }: { node: PipelineNode }): ReactElement {
  const path = typeof node.params['path'] === 'string' ? node.params['path'] : '';
  if (!path) return <div className="pnode-warn">No file chosen — select the node and pick one</div>;
  const name = basename(path);
  const kind = /\.gen\.jsonl$/.test(name) ? 'exact match' : /\.mc\.jsonl$/.test(name) ? 'multiple choice' : /\.text\.jsonl$/.test(name) ? 'perplexity' : /\.seed\.jsonl$/.test(name) ? 'seed set' : 'jsonl';
  return (
    <>
      <div className="pnode-path" title={path}>{name}</div>
      <div className="facts"><Chip>{kind}</Chip></div>
    </>
  );
}

function MergeFacts({ node, counts }: { node: PipelineNode; counts: Record<string, number> }): ReactElement {
  useStore(catalogStore, (s) => s.mergeMethods); // re-render when method schemas arrive
  const m = mergeMethod(node.params['method']);
  const method = String(node.params['method'] ?? 'ties');
  const usesDensity = /ties|dare|della|breadcrumbs/.test(method);
  return (
    <>
      <div className="facts" data-testid="node-facts">
        <Chip tone="accent" title={m?.description}>{m?.label ?? method}</Chip>
        <Chip>{String(node.params['dtype'] ?? 'float32')}</Chip>
      </div>
      <div className="facts-sub">
        <span>{counts['models'] ?? 0} model{counts['models'] === 1 ? '' : 's'}{counts['base'] ? ' + base' : ''}</span>
        <span>w {String(node.params['weight'] ?? 1)}</span>
        {usesDensity && <span>density {String(node.params['density'] ?? 0.5)}</span>}
      </div>
      {m?.requiresBase && !counts['base'] && <div className="pnode-warn">{m.label} needs a base model</div>}
    </>
  );
}

function MoeFacts({ node, counts }: { node: PipelineNode; counts: Record<string, number> }): ReactElement {
  return (
    <>
      <div className="facts" data-testid="node-facts">
        <Chip tone="accent" title="router initialisation (gate mode)">{String(node.params['gate_mode'] ?? 'calibrated')}</Chip>
        <Chip>top-{String(node.params['experts_per_token'] ?? 2)}</Chip>
        <Chip>{String(node.params['architecture'] ?? 'auto')}</Chip>
      </div>
      <div className="facts-sub">
        <span className="em">{counts['experts'] ?? 0} experts</span>
        {counts['seed'] ? <span>{counts['seed']} seed sets</span> : null}
        {node.params['shared_expert'] ? <span>shared expert</span> : null}
      </div>
    </>
  );
}

function EvalFacts({ node, counts }: { node: PipelineNode; counts: Record<string, number> }): ReactElement {
  const limit = Number(node.params['limit'] ?? 0);
  return (
    <div className="facts" data-testid="node-facts">
      <Chip>{counts['tasks'] ?? 0} task{counts['tasks'] === 1 ? '' : 's'}</Chip>
      <Chip>{limit ? `${limit} items each` : 'all items'}</Chip>
      <Chip>{String(node.params['provider'] ?? 'cpu')}</Chip>
      {counts['adapter'] ? <Chip tone="accent">+ adapter</Chip> : null}
    </div>
  );
}

function ExportFacts({ node }: { node: PipelineNode }): ReactElement {
  const path = typeof node.params['path'] === 'string' ? node.params['path'] : '';
  return (
    <>
      <div className="facts"><Chip tone="accent">{String(node.params['format'] ?? 'hf') === 'onnx' ? 'ONNX' : 'HF safetensors'}</Chip></div>
      {path ? <div className="pnode-path" title={path}>→ {basename(path)}</div> : <div className="pnode-warn">Choose an output folder</div>}
    </>
  );
}

/** Node types without a dedicated view: their first few scalar parameters and connected inputs. */
function GenericFacts({ node, counts }: { node: PipelineNode; counts: Record<string, number> }): ReactElement | null {
  const def = catalogStore.get().nodeTypes[node.type];
  const params = (def?.params ?? []).filter((p) => p.kind !== 'path' && p.kind !== 'json').slice(0, 4);
  const inputs = Object.entries(counts).filter(([, n]) => n > 1);
  if (!params.length && !inputs.length) return null;
  return (
    <>
      <div className="facts" data-testid="node-facts">
        {params.map((p, i) => <Chip key={p.key} tone={i === 0 ? 'accent' : undefined} title={p.label}>{p.kind === 'enum' ? String(node.params[p.key] ?? p.default ?? '') : `${p.label.split(' ')[0]!.toLowerCase()} ${String(node.params[p.key] ?? p.default ?? '–')}`}</Chip>)}
      </div>
      {inputs.length > 0 && <div className="facts-sub">{inputs.map(([k, n]) => <span key={k}>{n} {k}</span>)}</div>}
    </>
  );
}

export function NodeFacts({ node }: { node: PipelineNode }): ReactElement | null {
  const counts = useInputCounts(node.id);
  switch (node.type) {
    case 'checkpoint':
    case 'adapter':
      return <PathFacts node={node} />;
    case 'dataset':
      return <DatasetFacts node={node} />;
    case 'merge':
      return <MergeFacts node={node} counts={counts} />;
    case 'moe':
      return <MoeFacts node={node} counts={counts} />;
    case 'evaluate':
      return <EvalFacts node={node} counts={counts} />;
    case 'export':
      return <ExportFacts node={node} />;
    default:
      return <GenericFacts node={node} counts={counts} />;
  }
}
