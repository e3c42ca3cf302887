/**
 * Expert drift: how far each expert's non-FFN weights moved from the base, per tensor group
 * (relative Frobenius norm ‖W_e − W_base‖ / ‖W_base‖). An MoE keeps ONE copy of attention, norms and
 * embeddings; experts whose attention drifted (fully fine-tuned specialists) lose what their FFNs
 * learned to work with, and the MoE fails. Measured before assembling, so the user is warned before
 * the run and offered the remedies.
 */
import { tensorGroup } from '../core/architectures.js';

export interface ExpertDrift {
  expert: string;
  /** group → relative norm of the difference (0 = identical). */
  groups: Record<string, number>;
  /** Largest relative drift outside the FFN. */
  nonFfnMax: number;
}

export interface DriftReport {
  experts: ExpertDrift[];
  warning: string | null;
}

/** Above this relative drift of attention/norms/embeddings, the base's shared weights no longer fit the expert. */
export const DRIFT_WARN = 0.02;

export class DriftAccumulator {
  private readonly diff = new Map<string, number>();
  private readonly ref = new Map<string, number>();

  add(tensorName: string, base: Float32Array, expert: Float32Array): void {
    const g = tensorGroup(tensorName);
    let d = 0;
    let r = 0;
    for (let i = 0; i < base.length; i++) {
      const x = expert[i]! - base[i]!;
      d += x * x;
      r += base[i]! * base[i]!;
    }
    this.diff.set(g, (this.diff.get(g) ?? 0) + d);
    this.ref.set(g, (this.ref.get(g) ?? 0) + r);
  }

  result(expert: string): ExpertDrift {
    const groups: Record<string, number> = {};
    for (const [g, d] of this.diff) groups[g] = Math.sqrt(d / Math.max(this.ref.get(g)!, 1e-30));
    const nonFfnMax = Math.max(0, ...Object.entries(groups).filter(([g]) => g !== 'mlp').map(([, v]) => v));
    return { expert, groups, nonFfnMax };
  }
}

/**
 * The tensors the drift check reads: every group's tensors in the first, middle and last layers,
 * the final norm, and embeddings/lm_head when they are small (≤ 8M values). Fine-tuning moves all
 * layers' attention together, so three layers tell the story at a fraction of the I/O.
 */
export function driftSample(names: string[], layers: number, numel: (name: string) => number): string[] {
  const keep = new Set([0, Math.floor(layers / 2), layers - 1]);
  return names.filter((n) => {
    const m = /\.layers\.(\d+)\./.exec(n);
    if (m) return keep.has(Number(m[1]));
    return numel(n) <= 8_000_000;
  });
}

export function driftWarning(experts: ExpertDrift[], nonExpert: string): string | null {
  const drifted = experts.filter((e) => e.nonFfnMax > DRIFT_WARN);
  if (drifted.length === 0 || nonExpert !== 'base') return null;
  const list = drifted.map((e) => `${e.expert} (${(100 * e.nonFfnMax).toFixed(1)}%)`).join(', ');
  return `these experts' attention/norms/embeddings moved far from the base: ${list}. With the base's non-expert weights the MoE will likely fail (their FFNs were trained with other attention). Remedies: non_expert_weights: average (Branch-Train-MiX), or experts fine-tuned in their FFNs only.`;
}
