/**
 * For a Merge node: what the chosen method does and its own parameters (listMergeMethods schemas),
 * edited inside the node's `parameters` object. A field left at its default is not written, so the
 * mergekit YAML stays as short as mergekit's own.
 */
import type { ReactElement } from 'react';
import type { PipelineNode } from '../../../app/core/pipeline/document';
import type { ParamDef } from '../../../app/core/merge/types';
import { catalogStore } from '../state/catalog';
import { docStore } from '../state/document';
import { setParam } from '../state/edit';
import { useStore } from '../state/store';
import { Icon } from '../ui/icons';
import { ParamInput, type FieldSpec } from './ParamInput';

function specOf(p: ParamDef): FieldSpec {
  return {
    key: p.name,
    label: p.name,
    kind: p.type === 'enum' ? 'enum' : p.type,
    choices: p.choices,
    help: `${p.description}${p.extension ? ' (Upcycle Studio extension)' : ''}${p.noEffect ? ' (accepted; no effect here)' : ''}`,
    placeholder: p.default === null ? 'required' : `default ${String(p.default)}`,
    required: !!p.required,
  };
}

export function MergeMethodForm({ node }: { node: PipelineNode }): ReactElement | null {
  const methods = useStore(catalogStore, (s) => s.mergeMethods);
  const counts = useStore(docStore, (s) => s.doc.edges.filter((e) => e.target === node.id).map((e) => e.targetPort).sort().join(','));
  const m = methods.find((x) => x.id === node.params['method']);
  if (!m) return methods.length ? <div className="field-help">Unknown method “{String(node.params['method'])}”.</div> : null;
  const parameters = (node.params['parameters'] && typeof node.params['parameters'] === 'object' ? node.params['parameters'] : {}) as Record<string, unknown>;
  const models = counts.split(',').filter((x) => x === 'models').length;
  const hasBase = counts.split(',').includes('base');
  const setGlobal = (name: string, def: ParamDef) => (v: unknown) => {
    const next = { ...parameters };
    if (v === undefined || v === '' || v === def.default) delete next[name];
    else next[name] = v;
    setParam(node.id, 'parameters', next);
  };
  const perModelExtra = m.perModelParams.filter((p) => p.name !== 'weight' && p.name !== 'density');
  return (
    <div className="method-card" data-testid="merge-method">
      <div className="method-head">
        <span className="method-name">{m.label}</span>
        {m.paper && <a className="method-paper" href={m.paper} target="_blank" rel="noreferrer noopener" title={m.paper}><Icon.Link size={13} /> paper</a>}
      </div>
      <div className="method-desc">{m.description}</div>
      <div className="method-tags">
        <span className={`chip${m.requiresBase && !hasBase ? ' chip-warn' : ''}`}>{m.baseUsage === 'required' ? 'needs a base' : m.baseUsage === 'optional' ? 'base optional' : 'base merged as an entry'}</span>
        <span className={`chip${models < m.minModels || (m.maxModels !== null && models > m.maxModels) ? ' chip-warn' : ''}`}>
          {m.maxModels === null ? `≥ ${m.minModels}` : m.minModels === m.maxModels ? `${m.minModels}` : `${m.minModels}–${m.maxModels}`} models (have {models})
        </span>
        {m.random && <span className="chip">random (seeded)</span>}
      </div>
      {m.globalParams.length > 0 && <div className="form-sub">Method parameters</div>}
      {m.globalParams.map((p) => (
        <ParamInput key={p.name} spec={specOf(p)} value={parameters[p.name] ?? (p.type === 'boolean' ? p.default : undefined)} onCommit={setGlobal(p.name, p)} />
      ))}
      {perModelExtra.length > 0 && (
        <div className="field-help">Per-model: {m.perModelParams.map((p) => p.name).join(', ')} — weight and density above apply to every model; set others per model in mergekit YAML.</div>
      )}
    </div>
  );
}
