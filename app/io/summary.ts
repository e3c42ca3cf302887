/** Header-only summaries of opened checkpoints, for the compatibility check and the UI. */
import { basename } from 'node:path';
import type { CheckpointSummary, TensorSummary } from '../core/compat.js';
import type { Checkpoint } from './checkpoint.js';

export function summarize(ck: Checkpoint): CheckpointSummary {
  const tensors = new Map<string, TensorSummary>();
  for (const n of ck.names) {
    const t = ck.info(n);
    tensors.set(n, { dtype: t.dtype, shape: t.shape });
  }
  if (ck.kind === 'adapter' && ck.adapterMap) {
    // Adapter tensors keyed by their own names; modules name the base tensors they change.
    return { label: basename(ck.path), kind: ck.kind, tensors, tokenizerSha256: ck.tokenizerSha256, loraModules: ck.adapterMap.modules };
  }
  return { label: basename(ck.path), kind: ck.kind, config: ck.config, tensors, tokenizerSha256: ck.tokenizerSha256 };
}
