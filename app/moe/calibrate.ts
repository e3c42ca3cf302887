/**
 * Router modes measured in the assembled MoE itself, layer by layer (layer 0 first): the router
 * input of layer l depends on the routing of layers < l, so each layer is fitted with the earlier
 * layers' final routers in place. Routers are graph inputs, so one session serves every layer.
 *
 * - hidden_router_input: mergekit's `hidden` recipe, but measured where the router really reads —
 *   after layer l's attention and post-attention norm (mergekit measures the residual entering the
 *   layer, before attention).
 * - calibrated (UpIT's router pre-optimisation, arXiv 2410.01610 §3.3): every seed sample goes to the
 *   expert with the lowest perplexity on it; each layer's router is then fitted by multinomial
 *   logistic regression of its tokens' router inputs onto their sample's expert (app/core/logreg.ts),
 *   weighing experts equally (class balance). Deterministic.
 */
import { fitSoftmaxRouter, routingAccuracy } from '../core/logreg.js';
import { Decoder } from '../runtime/decoder.js';
import { loadModelSession } from '../runtime/model-session.js';
import type { TextTokenizer } from '../runtime/tokenizer.js';
import type { CalibrationOptions, ExpertSpec } from './config.js';
import { normaliseRows, promptIds, type Routers } from './routers.js';

export interface Sample {
  text: string;
  /** The expert whose seed set the sample came from (for reporting agreement). */
  given: number;
}

export interface Assignment {
  /** Expert index per sample (lowest perplexity). */
  expert: number[];
  /** [sample][expert] perplexity. */
  perplexity: number[][];
  /** Share of samples assigned to the expert whose seed set they came from. */
  agreement: number;
}

/** UpIT: each sample to the expert (as a dense model: its checkpoint, or base + its adapter) with the lowest perplexity. */
export async function assignByPerplexity(baseDir: string, experts: ExpertSpec[], samples: Sample[], tok: TextTokenizer, signal?: AbortSignal): Promise<Assignment> {
  const seqs = await Promise.all(samples.map((s) => tok.encode(s.text, true)));
  const ppl: number[][] = samples.map(() => []);
  for (const ex of experts) {
    signal?.throwIfAborted();
    const loaded = ex.adapter ? await loadModelSession(baseDir, { adapter: ex.adapter, tokenLogprobs: true }) : await loadModelSession(ex.model!, { tokenLogprobs: true });
    try {
      const lps = await new Decoder(loaded).logprobs(seqs, { signal });
      lps.forEach((lp, i) => {
        let s = 0;
        for (const v of lp) s += v;
        ppl[i]!.push(Math.exp(-s / Math.max(1, lp.length)));
      });
    } finally {
      await loaded.session.release();
    }
  }
  const expert = ppl.map((row) => row.indexOf(Math.min(...row)));
  const agreement = expert.filter((e, i) => e === samples[i]!.given).length / Math.max(1, samples.length);
  return { expert, perplexity: ppl, agreement };
}

export interface CalibrationResult {
  routers: Routers;
  /** Per MoE layer: share of seed tokens whose top-1 routed expert is their sample's expert. */
  accuracy: number[];
}

/** A text whose router inputs teach `expert`'s router row (sign −1: a negative prompt). */
export interface CalibrationText {
  text: string;
  expert: number;
  sign: 1 | -1;
}

/**
 * Fits the routers of the assembled MoE in `moeDir` layer by layer. For `calibrated` every token after
 * the first teaches its sample's expert; for `hidden_router_input` each prompt's last token does.
 */
export async function calibrateInAssembled(
  moeDir: string,
  mode: 'calibrated' | 'hidden_router_input',
  samples: CalibrationText[],
  tok: TextTokenizer,
  opts: { calibration: CalibrationOptions; signal?: AbortSignal; onLayer?: (layer: number, accuracy: number) => void },
): Promise<CalibrationResult> {
  const loaded = await loadModelSession(moeDir, { routing: true, routerInputs: true, tokenLogprobs: true });
  try {
    const cfg = loaded.config;
    const E = cfg.moe!.numExperts;
    const H = cfg.hiddenSize;
    const L = cfg.numLayers;
    const dec = new Decoder(loaded);
    const routers: Routers = Array.from({ length: L }, () => new Float32Array(E * H));
    const seqs = mode === 'hidden_router_input' ? await Promise.all(samples.map((s) => promptIds(tok, s.text))) : await Promise.all(samples.map((s) => tok.encode(s.text, true)));
    const accuracy: number[] = [];
    for (let l = 0; l < L; l++) {
      opts.signal?.throwIfAborted();
      dec.extraFeeds = {};
      for (let k = 0; k < L; k++) dec.extraFeeds[`router.${k}`] = { dims: [E, H], data: routers[k]! };
      const rows: Float32Array[] = [];
      const owners: number[] = [];
      await dec.logprobs(seqs, {
        signal: opts.signal,
        onBatch: (r, lengths, width, members) => {
          const x = r.mlpInputs.get(l)!;
          lengths.forEach((len, b) => {
            const pick = mode === 'hidden_router_input' ? [len - 1] : Array.from({ length: len - 1 }, (_, k) => k + 1);
            for (const t of pick) {
              const off = (b * width + t) * H;
              rows.push(x.slice(off, off + H));
              owners.push(members[b]!);
            }
          });
        },
      });
      const N = rows.length;
      const X = new Float32Array(N * H);
      rows.forEach((r, n) => X.set(r, n * H));
      const y = Int32Array.from(owners, (o) => samples[o]!.expert);
      if (mode === 'calibrated') {
        const counts = new Array<number>(E).fill(0);
        for (const c of y) counts[c]!++;
        const weights = opts.calibration.classBalance ? Float64Array.from(y, (c) => 1 / counts[c]!) : undefined;
        routers[l] = fitSoftmaxRouter(X, y, N, H, E, { steps: opts.calibration.steps, lr: opts.calibration.lr, l2: opts.calibration.l2, weights });
      } else {
        // mean over positive prompts − mean over negative prompts, per expert, then unit rows.
        const sums = [new Float64Array(E * H), new Float64Array(E * H)];
        const counts = [new Array<number>(E).fill(0), new Array<number>(E).fill(0)];
        owners.forEach((o, n) => {
          const s = samples[o]!.sign === 1 ? 0 : 1;
          counts[s]![y[n]!]!++;
          for (let h = 0; h < H; h++) sums[s]![y[n]! * H + h]! += X[n * H + h]!;
        });
        const g = new Float32Array(E * H);
        for (let e = 0; e < E; e++) {
          for (let h = 0; h < H; h++) {
            const pos = counts[0]![e]! ? sums[0]![e * H + h]! / counts[0]![e]! : 0;
            const neg = counts[1]![e]! ? sums[1]![e * H + h]! / counts[1]![e]! : 0;
            g[e * H + h] = pos - neg;
          }
        }
        normaliseRows(g, E, H);
        routers[l] = g;
      }
      const keep = owners.map((o) => samples[o]!.sign === 1);
      const accX = new Float32Array(keep.filter(Boolean).length * H);
      const accY: number[] = [];
      let k = 0;
      keep.forEach((ok, n) => {
        if (!ok) return;
        accX.set(X.subarray(n * H, (n + 1) * H), k++ * H);
        accY.push(y[n]!);
      });
      const acc = routingAccuracy(accX, Int32Array.from(accY), accY.length, H, routers[l]!, E);
      accuracy.push(acc);
      opts.onLayer?.(l, acc);
    }
    return { routers, accuracy };
  } finally {
    await loaded.session.release();
  }
}
