/**
 * Canvas node types as data: ports (typed), parameters (with defaults and a form description) and
 * what each node produces. One literal, shared by the runner, the edge validator and the renderer's
 * forms. Port types: model, adapter, dataset, report.
 */
import { createsCycle, type PipelineDoc } from './document.js';

export type PortType = 'model' | 'adapter' | 'dataset' | 'report';

export interface PortDef {
  name: string;
  label: string;
  types: PortType[];
  multiple?: boolean;
  optional?: boolean;
}

export interface ParamField {
  key: string;
  label: string;
  kind: 'path' | 'text' | 'number' | 'integer' | 'boolean' | 'enum' | 'json';
  default?: unknown;
  choices?: string[];
  help?: string;
  /** Folder or file, for path pickers. */
  pick?: 'folder' | 'file';
}

export interface NodeTypeDef {
  type: string;
  label: string;
  category: 'sources' | 'build' | 'evaluate' | 'output';
  description: string;
  inputs: PortDef[];
  outputs: PortDef[];
  params: ParamField[];
}

const GATE_MODES = ['calibrated', 'hidden_router_input', 'hidden', 'cheap_embed', 'random', 'uniform'];

export const NODE_TYPES: Record<string, NodeTypeDef> = {
  checkpoint: {
    type: 'checkpoint', label: 'Checkpoint', category: 'sources', description: 'A Hugging Face model folder (safetensors).',
    inputs: [], outputs: [{ name: 'model', label: 'model', types: ['model'] }],
    params: [{ key: 'path', label: 'Folder', kind: 'path', pick: 'folder' }],
  },
  adapter: {
    type: 'adapter', label: 'Adapter', category: 'sources', description: 'A PEFT LoRA adapter folder.',
    inputs: [], outputs: [{ name: 'adapter', label: 'adapter', types: ['adapter'] }],
    params: [{ key: 'path', label: 'Folder', kind: 'path', pick: 'folder' }],
  },
  dataset: {
    type: 'dataset', label: 'Dataset', category: 'sources', description: 'A JSONL file: {text}, {query,choices,gold} or {prompt,answer}.',
    inputs: [], outputs: [{ name: 'data', label: 'data', types: ['dataset'] }],
    params: [{ key: 'path', label: 'File', kind: 'path', pick: 'file' }],
  },
  merge: {
    type: 'merge', label: 'Merge', category: 'build', description: 'Parameter merging with any of mergekit\'s methods.',
    inputs: [{ name: 'base', label: 'base', types: ['model'], optional: true }, { name: 'models', label: 'models', types: ['model'], multiple: true }],
    outputs: [{ name: 'model', label: 'model', types: ['model'] }],
    params: [
      { key: 'method', label: 'Method', kind: 'enum', default: 'ties', choices: ['linear', 'task_arithmetic', 'ties', 'dare_linear', 'dare_ties', 'breadcrumbs', 'breadcrumbs_ties', 'della', 'della_linear', 'slerp', 'nuslerp', 'multislerp', 'karcher', 'model_stock', 'sce', 'nearswap', 'passthrough'] },
      { key: 'weight', label: 'Weight (each model)', kind: 'number', default: 1 },
      { key: 'density', label: 'Density (each model)', kind: 'number', default: 0.5, help: 'TIES/DARE/DELLA/breadcrumbs: share of each task vector kept' },
      { key: 'parameters', label: 'Global parameters', kind: 'json', default: {}, help: 'e.g. {"normalize": true, "t": 0.5}' },
      { key: 'dtype', label: 'Output dtype', kind: 'enum', default: 'float32', choices: ['float32', 'bfloat16', 'float16'] },
      { key: 'seed', label: 'Random seed', kind: 'integer', default: 0 },
    ],
  },
  moe: {
    type: 'moe', label: 'MoE', category: 'build', description: 'Upcycle dense experts (models or adapters) into a Mixtral / Qwen2-MoE.',
    inputs: [
      { name: 'base', label: 'base', types: ['model'] },
      { name: 'experts', label: 'experts', types: ['model', 'adapter'], multiple: true },
      { name: 'seed', label: 'seed data (per expert, in order)', types: ['dataset'], multiple: true, optional: true },
    ],
    outputs: [{ name: 'model', label: 'model', types: ['model'] }],
    params: [
      { key: 'gate_mode', label: 'Routers', kind: 'enum', default: 'calibrated', choices: GATE_MODES },
      { key: 'experts_per_token', label: 'Experts per token', kind: 'integer', default: 2 },
      { key: 'architecture', label: 'Architecture', kind: 'enum', default: 'auto', choices: ['auto', 'mixtral', 'qwen'] },
      { key: 'shared_expert', label: 'Base FFN as shared expert', kind: 'boolean', default: false },
      { key: 'non_expert_weights', label: 'Non-expert weights', kind: 'enum', default: 'base', choices: ['base', 'average'] },
      { key: 'prompts', label: 'Prompts per expert', kind: 'json', default: [], help: 'for hidden/cheap_embed: [["prompt", …], …] in expert order' },
      { key: 'dtype', label: 'Output dtype', kind: 'enum', default: 'float32', choices: ['float32', 'bfloat16', 'float16'] },
      { key: 'seed', label: 'Random seed', kind: 'integer', default: 0 },
    ],
  },
  expand: {
    type: 'expand', label: 'Expand', category: 'build', description: 'UpIT: grow K checkpoints of one base into M experts by DARE-merging the most dissimilar pair, keeping the most novel child.',
    inputs: [{ name: 'base', label: 'base', types: ['model'] }, { name: 'models', label: 'checkpoints', types: ['model'], multiple: true }, { name: 'seed', label: 'seed data (optional)', types: ['dataset'], multiple: true, optional: true }],
    outputs: [{ name: 'experts', label: 'experts', types: ['model'] }],
    params: [
      { key: 'num_experts', label: 'Experts (M)', kind: 'integer', default: 8 },
      { key: 'candidates', label: 'Candidates per generation', kind: 'integer', default: 4 },
      { key: 'density', label: 'DARE density', kind: 'number', default: 0.9 },
      { key: 'seed', label: 'Random seed', kind: 'integer', default: 0 },
    ],
  },
  sequence_router: {
    type: 'sequence_router', label: 'Sequence router', category: 'build', description: 'MoIN: each query routed whole to one expert (adapter or model) by the nearest centroid of its seed data; evaluated on the tasks.',
    inputs: [
      { name: 'base', label: 'base', types: ['model'] },
      { name: 'experts', label: 'experts', types: ['adapter', 'model'], multiple: true },
      { name: 'seed', label: 'seed data (per expert, in order)', types: ['dataset'], multiple: true },
      { name: 'tasks', label: 'evaluate on', types: ['dataset'], multiple: true, optional: true },
    ],
    outputs: [{ name: 'router', label: 'router', types: ['report'] }],
    params: [
      { key: 'query_delimiter', label: 'Query ends at', kind: 'text', default: '=', help: 'seed lines are cut after this, so centroids embed what queries look like (empty: embed whole lines)' },
      { key: 'limit', label: 'Items per task (0 = all)', kind: 'integer', default: 0 },
    ],
  },
  evolve: {
    type: 'evolve', label: 'Evolve', category: 'build', description: 'CMA-ES over merge weights and densities per layer group, fitness = mean log-likelihood of seed answers.',
    inputs: [{ name: 'base', label: 'base', types: ['model'] }, { name: 'models', label: 'models', types: ['model'], multiple: true }, { name: 'fitness', label: 'fitness data', types: ['dataset'], multiple: true }],
    outputs: [{ name: 'model', label: 'best model', types: ['model'] }],
    params: [
      { key: 'method', label: 'Method', kind: 'enum', default: 'ties', choices: ['ties', 'dare_ties', 'task_arithmetic', 'linear'] },
      { key: 'layer_groups', label: 'Layer groups', kind: 'integer', default: 2 },
      { key: 'normalize', label: 'Normalise TIES weights (mergekit-evolve)', kind: 'boolean', default: false },
      { key: 'budget', label: 'Evaluations', kind: 'integer', default: 40 },
      { key: 'seed', label: 'Random seed', kind: 'integer', default: 0 },
      { key: 'limit', label: 'Fitness items per file (0 = all)', kind: 'integer', default: 0 },
    ],
  },
  evaluate: {
    type: 'evaluate', label: 'Evaluate', category: 'evaluate', description: 'Perplexity, multiple choice, exact match and routing, locally.',
    inputs: [{ name: 'model', label: 'model', types: ['model'] }, { name: 'adapter', label: 'adapter', types: ['adapter'], optional: true }, { name: 'tasks', label: 'tasks', types: ['dataset'], multiple: true }],
    outputs: [{ name: 'report', label: 'report', types: ['report'] }],
    params: [
      { key: 'limit', label: 'Items per task (0 = all)', kind: 'integer', default: 0 },
      { key: 'provider', label: 'Runtime', kind: 'enum', default: 'cpu', choices: ['auto', 'cpu', 'cuda', 'dml', 'coreml', 'webgpu'] },
      { key: 'chat_template', label: 'Chat template', kind: 'boolean', default: false, help: 'generation prompts and multiple-choice queries go through the model\'s chat template as a user turn (like lm-eval\'s --apply_chat_template); perplexity texts stay plain' },
    ],
  },
  export: {
    type: 'export', label: 'Export', category: 'output', description: 'Write the model as a Hugging Face folder or an ONNX folder.',
    inputs: [{ name: 'model', label: 'model', types: ['model'] }],
    outputs: [],
    params: [{ key: 'format', label: 'Format', kind: 'enum', default: 'hf', choices: ['hf', 'onnx'] }, { key: 'path', label: 'Output folder', kind: 'path', pick: 'folder' }, { key: 'overwrite', label: 'Replace if it exists', kind: 'boolean', default: true }],
  },
};

export function paramDefaults(type: string): Record<string, unknown> {
  const def = NODE_TYPES[type];
  return Object.fromEntries((def?.params ?? []).filter((p) => p.default !== undefined).map((p) => [p.key, p.default]));
}

/** Why an edge cannot be drawn (port types, arity, cycles), or null when it can. Header-level checks live in the service. */
export function edgeProblem(doc: PipelineDoc, e: { source: string; sourcePort: string; target: string; targetPort: string }): string | null {
  const s = doc.nodes.find((n) => n.id === e.source);
  const t = doc.nodes.find((n) => n.id === e.target);
  if (!s || !t) return 'one end of the connection does not exist';
  const out = NODE_TYPES[s.type]?.outputs.find((p) => p.name === e.sourcePort);
  const inp = NODE_TYPES[t.type]?.inputs.find((p) => p.name === e.targetPort);
  if (!out) return `${s.type} has no output "${e.sourcePort}"`;
  if (!inp) return `${t.type} has no input "${e.targetPort}"`;
  if (!out.types.some((x) => inp.types.includes(x))) return `${t.type}'s "${inp.label}" takes ${inp.types.join(' or ')}, not ${out.types.join('/')}`;
  if (!inp.multiple && doc.edges.some((x) => x.target === e.target && x.targetPort === e.targetPort)) return `"${inp.label}" already has an input; remove it first`;
  if (doc.edges.some((x) => x.source === e.source && x.sourcePort === e.sourcePort && x.target === e.target && x.targetPort === e.targetPort)) return 'these ports are already connected';
  if (createsCycle(doc, e.source, e.target)) return 'this connection would create a cycle';
  return null;
}

/** Inputs a node still needs before it can run. */
export function missingInputs(doc: PipelineDoc, id: string): string[] {
  const n = doc.nodes.find((x) => x.id === id);
  if (!n) return [];
  return (NODE_TYPES[n.type]?.inputs ?? []).filter((p) => !p.optional && !doc.edges.some((e) => e.target === id && e.targetPort === p.name)).map((p) => p.label);
}
