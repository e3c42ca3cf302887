/**
 * Multinomial logistic regression without bias, fitted full-batch with Adam (Kingma & Ba 2014,
 * arXiv 1412.6980) from a zero start: deterministic for the same data. Used to fit an MoE router
 * W ∈ ℝ^{E×H} (router logits z = W·x, exactly as Mixtral/Qwen2-MoE compute them) so that each token's
 * router input x routes to the expert its sequence was assigned to (UpIT's router pre-optimisation,
 * arXiv 2410.01610, with a softmax cross-entropy over experts in place of per-expert sigmoids, so the
 * fitted vectors compete the way the transformers router does).
 */
export interface LogRegOptions {
  steps: number;
  lr: number;
  /** L2 penalty λ·‖W‖²/2. */
  l2: number;
  /** Per-sample weights (e.g. inverse class frequency); default 1. */
  weights?: Float64Array;
}

/** X: [N, H] row-major; y: class per row in 0…E-1. Returns W [E, H] (float32). */
export function fitSoftmaxRouter(X: Float32Array, y: Int32Array, N: number, H: number, E: number, opts: LogRegOptions): Float32Array {
  const W = new Float64Array(E * H);
  const m = new Float64Array(E * H);
  const v = new Float64Array(E * H);
  const g = new Float64Array(E * H);
  const z = new Float64Array(E);
  const b1 = 0.9;
  const b2 = 0.999;
  const eps = 1e-8;
  let wsum = 0;
  for (let n = 0; n < N; n++) wsum += opts.weights ? opts.weights[n]! : 1;
  for (let step = 1; step <= opts.steps; step++) {
    g.fill(0);
    for (let n = 0; n < N; n++) {
      const xo = n * H;
      let max = -Infinity;
      for (let e = 0; e < E; e++) {
        let s = 0;
        const wo = e * H;
        for (let h = 0; h < H; h++) s += W[wo + h]! * X[xo + h]!;
        z[e] = s;
        if (s > max) max = s;
      }
      let sum = 0;
      for (let e = 0; e < E; e++) sum += z[e] = Math.exp(z[e]! - max);
      const w = (opts.weights ? opts.weights[n]! : 1) / wsum;
      for (let e = 0; e < E; e++) {
        // ∂(−log p_y)/∂z_e = p_e − [e = y]
        const d = w * (z[e]! / sum - (e === y[n] ? 1 : 0));
        if (d === 0) continue;
        const go = e * H;
        for (let h = 0; h < H; h++) g[go + h]! += d * X[xo + h]!;
      }
    }
    const c1 = 1 - b1 ** step;
    const c2 = 1 - b2 ** step;
    for (let i = 0; i < E * H; i++) {
      const gi = g[i]! + opts.l2 * W[i]!;
      m[i] = b1 * m[i]! + (1 - b1) * gi;
      v[i] = b2 * v[i]! + (1 - b2) * gi * gi;
      W[i]! -= (opts.lr * (m[i]! / c1)) / (Math.sqrt(v[i]! / c2) + eps);
    }
  }
  return Float32Array.from(W);
}

/** Fraction of rows whose arg-max routing logit is their class. */
export function routingAccuracy(X: Float32Array, y: Int32Array, N: number, H: number, W: Float32Array, E: number): number {
  let hit = 0;
  for (let n = 0; n < N; n++) {
    let best = 0;
    let bestZ = -Infinity;
    for (let e = 0; e < E; e++) {
      let s = 0;
      for (let h = 0; h < H; h++) s += W[e * H + h]! * X[n * H + h]!;
      if (s > bestZ) {
        bestZ = s;
        best = e;
      }
    }
    if (best === y[n]) hit++;
  }
  return N ? hit / N : 0;
}
