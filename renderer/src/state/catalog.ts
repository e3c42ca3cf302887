/**
 * The node types and merge methods the engine offers. NODE_TYPES is pure data shared with the engine,
 * so the canvas works before the engine answers; the merge methods' parameter schemas come from
 * `nodeTypes()` (listMergeMethods).
 */
import { api } from '../api/client';
import type { MergeMethodInfo, NodeTypeDef, ProviderInfo } from '../api/types';
import { NODE_TYPES } from '../../../app/core/pipeline/node-types';
import { Store } from './store';
import { toastError } from './toasts';

export const catalogStore = new Store<{ nodeTypes: Record<string, NodeTypeDef>; mergeMethods: MergeMethodInfo[]; providers: ProviderInfo[] }>({ nodeTypes: NODE_TYPES, mergeMethods: [], providers: [] });

export async function loadCatalog(): Promise<void> {
  try {
    const r = await api.nodeTypes({});
    catalogStore.set({ nodeTypes: r.nodeTypes, mergeMethods: r.mergeMethods });
  } catch (e) {
    toastError('Could not load the node catalogue', e);
  }
  // Which onnxruntime execution providers this machine has (for the Evaluate node's runtime field).
  api.providers({}).then((providers) => catalogStore.set({ providers }), () => undefined);
}

export function nodeDef(type: string): NodeTypeDef | undefined {
  return catalogStore.get().nodeTypes[type];
}

export function mergeMethod(id: unknown): MergeMethodInfo | undefined {
  return catalogStore.get().mergeMethods.find((m) => m.id === id);
}

export const CATEGORY_LABEL: Record<NodeTypeDef['category'], string> = {
  sources: 'Sources',
  build: 'Build',
  evaluate: 'Evaluate',
  output: 'Output',
};
