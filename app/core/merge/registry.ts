/**
 * Registry of the merge methods, keyed by mergekit's `merge_method` name.
 *
 * Implemented: linear, slerp, nuslerp, multislerp, karcher, task_arithmetic, ties,
 * dare_ties, dare_linear, breadcrumbs, breadcrumbs_ties, della, della_linear, sce,
 * model_stock, nearswap, passthrough. Not implemented (mergekit has them): arcee_fusion,
 * ram, ramplus_tl.
 */
import { karcher } from './karcher.js';
import { linear } from './linear.js';
import { modelStock } from './model-stock.js';
import { multislerp } from './multislerp.js';
import { nearswap } from './nearswap.js';
import { nuslerp } from './nuslerp.js';
import { passthrough } from './passthrough.js';
import { sce } from './sce.js';
import { slerp } from './slerp.js';
import { GTA_METHODS } from './task-arithmetic.js';
import type { MergeMethodDef, MergeMethodInfo } from './types.js';

const ALL: readonly MergeMethodDef[] = [
  linear,
  slerp,
  nuslerp,
  multislerp,
  karcher,
  ...GTA_METHODS,
  sce,
  modelStock,
  nearswap,
  passthrough,
];

/** All methods by id. */
export const MERGE_METHODS: Readonly<Record<string, MergeMethodDef>> = Object.freeze(
  Object.fromEntries(ALL.map((m) => [m.id, m])),
);

/** Ids in display order. */
export const MERGE_METHOD_IDS: readonly string[] = ALL.map((m) => m.id);

/** Look up a method; throws with the list of known ids when `id` is unknown. */
export function getMergeMethod(id: string): MergeMethodDef {
  const m = MERGE_METHODS[id];
  if (!m) throw new Error(`unknown merge method "${id}" (known: ${MERGE_METHOD_IDS.join(', ')})`);
  return m;
}

/** Method schemas without the maths (plain data, e.g. to build UI forms or send over IPC). */
export function listMergeMethods(): MergeMethodInfo[] {
  return ALL.map((m) => ({
    id: m.id,
    label: m.label,
    paper: m.paper,
    description: m.description,
    requiresBase: m.requiresBase,
    baseUsage: m.baseUsage,
    minModels: m.minModels,
    maxModels: m.maxModels,
    random: m.random,
    perModelParams: m.perModelParams.map((p) => ({ ...p })),
    globalParams: m.globalParams.map((p) => ({ ...p })),
  }));
}
