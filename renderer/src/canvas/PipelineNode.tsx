/**
 * One canvas node, for every node type: typed ports (coloured by what they carry), the node's key
 * facts (NodeFacts), a progress bar while it runs, its error, and its results after a run (NodeResults).
 * Subscribes only to its own slices of the stores, so streaming progress re-renders one node.
 */
import { Handle, Position, type NodeProps } from '@xyflow/react';
import { memo, type ReactElement } from 'react';
import { catalogStore } from '../state/catalog';
import { runStore } from '../state/runs';
import { useStore } from '../state/store';
import { NODE_ICON } from '../ui/icons';
import { ProgressBar } from '../ui/ProgressBar';
import { StatusBadge } from '../ui/StatusBadge';
import type { FlowNode } from './flow-mapping';
import { NodeFacts } from './NodeFacts';
import { NodeResults } from './NodeResults';

function PipelineNodeView({ data, selected }: NodeProps<FlowNode>): ReactElement {
  const n = data.node;
  const def = useStore(catalogStore, (s) => s.nodeTypes[n.type]);
  const run = useStore(runStore, (s) => s.nodes[n.id]);
  const NodeIcon = NODE_ICON[n.type];
  const category = def?.category ?? 'unknown';
  const status = run?.status;
  const showResults = run?.metrics && (status === 'succeeded' || status === 'cached');
  return (
    <div className={`pnode cat-${category}${selected ? ' selected' : ''}${status ? ` st-${status}` : ''}`} data-testid="pipeline-node" data-node-id={n.id} data-node-type={n.type}>
      <div className="pnode-head">
        {NodeIcon ? <NodeIcon size={14} className="pnode-icon" /> : null}
        <span className="pnode-title" title={n.label ?? n.id}>{n.label ?? def?.label ?? n.type}</span>
        {status && <StatusBadge status={status} />}
      </div>
      {/* One grid of port rows (inputs left, outputs right), handles in the rows' flow: few elements and no
          positioned ones, so a node is cheap to style, lay out, paint and hit-test (see canvas.css). */}
      <div className="pnode-ports">
        {def?.inputs.map((p) => (
          <div className="port port-in" key={`in-${p.name}`} title={`${p.label}: ${p.types.join(' or ')}${p.multiple ? ' (several)' : ''}${p.optional ? ' (optional)' : ''}`}>
            <Handle type="target" position={Position.Left} id={p.name} className={`handle handle-${p.types[0]}`} data-port={p.name} />
            {p.label.replace(/ \(.*\)$/, '')}
            {p.multiple && <span className="port-multi">+</span>}
            {p.optional && <span className="port-opt">opt</span>}
          </div>
        ))}
        {def?.outputs.map((p) => (
          <div className="port port-out" key={`out-${p.name}`} title={`${p.label}: ${p.types.join(' or ')}`}>
            {p.label}
            <Handle type="source" position={Position.Right} id={p.name} className={`handle handle-${p.types[0]}`} data-port={p.name} />
          </div>
        ))}
      </div>
      <div className="pnode-body">
        {/* While running, the progress bar takes the facts' place, so the node does not grow. */}
        {status === 'running' ? <ProgressBar compact phase={run?.phase} fraction={run?.fraction} etaSeconds={run?.eta} detail={run?.detail} /> : <NodeFacts node={n} />}
        {run?.error && <div className="pnode-error" data-testid="node-error" title={run.error}>{run.error}</div>}
        {showResults && <NodeResults type={n.type} metrics={run.metrics!} cached={status === 'cached'} />}
      </div>
    </div>
  );
}

export const PipelineNode = memo(PipelineNodeView);
