/**
 * Routing statistics of MoE layers from router logits: expert load (share of top-k slots each expert
 * receives), and router entropy (mean over tokens of the entropy, in nats, of softmax(router logits)).
 */
export interface LayerRouting {
  layer: number;
  /** Share of routed token-slots per expert (sums to 1). */
  load: number[];
  /** Mean entropy of the routing distribution, nats; ln(E) is uniform. */
  entropy: number;
  tokens: number;
}

export class RoutingAccumulator {
  private readonly counts = new Map<number, { slots: Float64Array; entropy: number; tokens: number }>();

  constructor(readonly numExperts: number, readonly topK: number) {}

  /** Adds the rows of `logits` ([rows, E]) for which `keep(row)` is true. */
  add(layer: number, logits: Float32Array, keep: (row: number) => boolean = () => true): void {
    const E = this.numExperts;
    let c = this.counts.get(layer);
    if (!c) {
      c = { slots: new Float64Array(E), entropy: 0, tokens: 0 };
      this.counts.set(layer, c);
    }
    const rows = logits.length / E;
    const p = new Float64Array(E);
    for (let r = 0; r < rows; r++) {
      if (!keep(r)) continue;
      let max = -Infinity;
      for (let e = 0; e < E; e++) max = Math.max(max, logits[r * E + e]!);
      let sum = 0;
      for (let e = 0; e < E; e++) sum += p[e] = Math.exp(logits[r * E + e]! - max);
      let h = 0;
      for (let e = 0; e < E; e++) {
        p[e]! /= sum;
        if (p[e]! > 0) h -= p[e]! * Math.log(p[e]!);
      }
      c.entropy += h;
      c.tokens++;
      // Top-k by probability, lower index first on ties (as TopK/torch.topk do).
      const idx = Array.from({ length: E }, (_, e) => e).sort((a, b) => p[b]! - p[a]! || a - b);
      for (let k = 0; k < this.topK; k++) c.slots[idx[k]!]! += 1;
    }
  }

  merge(other: RoutingAccumulator): void {
    for (const [layer, o] of other.counts) {
      let c = this.counts.get(layer);
      if (!c) {
        c = { slots: new Float64Array(this.numExperts), entropy: 0, tokens: 0 };
        this.counts.set(layer, c);
      }
      for (let e = 0; e < this.numExperts; e++) c.slots[e]! += o.slots[e]!;
      c.entropy += o.entropy;
      c.tokens += o.tokens;
    }
  }

  result(): LayerRouting[] {
    return [...this.counts.entries()].sort(([a], [b]) => a - b).map(([layer, c]) => {
      const total = c.slots.reduce((a, b) => a + b, 0) || 1;
      return { layer, load: Array.from(c.slots, (s) => s / total), entropy: c.tokens ? c.entropy / c.tokens : 0, tokens: c.tokens };
    });
  }
}
