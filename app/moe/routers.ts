/**
 * Router initialisation modes that need only the base model (the assembled-model modes are in
 * calibrate.ts). Each returns one [E, H] matrix per layer; router logit z_e = ⟨g_e, x⟩.
 *
 * - random ("noisy MoE", IBM toolkit arXiv 2408.17280): g ~ N(0, 1/H), seeded. mergekit draws N(0, 1),
 *   which makes logits ~√H times the router input's RMS and routing nearly one-hot per token; 1/H
 *   keeps logits at the scale of one unit of the (RMS-normalised) router input, so routing is soft.
 * - uniform (gate-less MoE, same paper): all zeros, and every expert active (top-k = E): the output is
 *   exactly (1/E)·Σ_e expert_e(x) in stock transformers. mergekit's `uniform_random` (U(±1/√H)) is kept
 *   under its own name.
 * - cheap_embed (mergekit): Σ of the token embeddings of the expert's prompts (bos + prompt), minus the
 *   negative prompts', L2-normalised; the same vector in every layer.
 * - hidden / hidden_last / hidden_avg (mergekit): the base model's hidden state entering each layer, at
 *   the prompt's last token (or averaged over its tokens), averaged over prompts, minus the negative
 *   prompts' mean, L2-normalised per layer (g = v / max(‖v‖, 1e-8)).
 */
import { createRng } from '../core/merge/index.js';
import { Decoder } from '../runtime/decoder.js';
import { loadModelSession } from '../runtime/model-session.js';
import type { TextTokenizer } from '../runtime/tokenizer.js';
import type { ExpertSpec } from './config.js';

export type Routers = Float32Array[];

export function randomRouters(L: number, E: number, H: number, seed: number, scale = 1 / Math.sqrt(H)): Routers {
  const rng = createRng(seed).fork('router-random');
  return Array.from({ length: L }, () => {
    const g = new Float32Array(E * H);
    for (let i = 0; i < g.length; i += 2) {
      // Box–Muller: two independent N(0,1) from two uniforms in (0, 1].
      const u1 = 1 - rng.nextFloat();
      const u2 = rng.nextFloat();
      const r = Math.sqrt(-2 * Math.log(u1));
      g[i] = r * Math.cos(2 * Math.PI * u2) * scale;
      if (i + 1 < g.length) g[i + 1] = r * Math.sin(2 * Math.PI * u2) * scale;
    }
    return g;
  });
}

export function uniformRandomRouters(L: number, E: number, H: number, seed: number): Routers {
  const rng = createRng(seed).fork('router-uniform-random');
  const b = 1 / Math.sqrt(H);
  return Array.from({ length: L }, () => Float32Array.from({ length: E * H }, () => (rng.nextFloat() * 2 - 1) * b));
}

export function zeroRouters(L: number, E: number, H: number): Routers {
  return Array.from({ length: L }, () => new Float32Array(E * H));
}

/** Token ids as mergekit-moe feeds prompts: bos + prompt, no other special tokens. */
export async function promptIds(tok: TextTokenizer, prompt: string): Promise<number[]> {
  const ids = await tok.encode(prompt, false);
  return tok.bosId !== undefined ? [tok.bosId, ...ids] : ids;
}

export function normaliseRows(g: Float32Array, E: number, H: number): void {
  for (let e = 0; e < E; e++) {
    let n = 0;
    for (let h = 0; h < H; h++) n += g[e * H + h]! ** 2;
    const s = 1 / Math.max(Math.sqrt(n), 1e-8);
    for (let h = 0; h < H; h++) g[e * H + h]! *= s;
  }
}

export async function cheapEmbedRouters(experts: ExpertSpec[], tok: TextTokenizer, embed: Float32Array, H: number, L: number): Promise<Routers> {
  const E = experts.length;
  const g = new Float32Array(E * H);
  for (const [e, ex] of experts.entries()) {
    const sum = async (prompts: string[]) => {
      const v = new Float64Array(H);
      for (const p of prompts) for (const id of await promptIds(tok, p)) for (let h = 0; h < H; h++) v[h]! += embed[id * H + h]!;
      return v;
    };
    const pos = await sum(ex.positivePrompts);
    const neg = await sum(ex.negativePrompts);
    for (let h = 0; h < H; h++) g[e * H + h] = pos[h]! - neg[h]!;
  }
  normaliseRows(g, E, H);
  return Array.from({ length: L }, () => g.slice());
}

/**
 * mergekit's hidden gates from the base model. Prompts run one at a time (no padding), which equals
 * mergekit's left-padded batches: RoPE attention depends only on relative positions.
 */
export async function hiddenRouters(baseDir: string, experts: ExpertSpec[], tok: TextTokenizer, mode: 'last' | 'avg', signal?: AbortSignal): Promise<Routers> {
  const loaded = await loadModelSession(baseDir, { hiddenStates: true });
  try {
    const dec = new Decoder(loaded);
    const { numLayers: L, hiddenSize: H } = loaded.config;
    const E = experts.length;
    const meanOver = async (prompts: string[]): Promise<Float64Array[]> => {
      const acc = Array.from({ length: L }, () => new Float64Array(H));
      for (const p of prompts) {
        signal?.throwIfAborted();
        const ids = await promptIds(tok, p);
        const r = await dec.forward([ids]);
        for (let l = 0; l < L; l++) {
          const hs = r.hiddenStates.get(l)!; // [1, S, H]: the residual stream entering layer l
          const S = ids.length;
          if (mode === 'last') for (let h = 0; h < H; h++) acc[l]![h]! += hs[(S - 1) * H + h]! / prompts.length;
          else for (let s = 0; s < S; s++) for (let h = 0; h < H; h++) acc[l]![h]! += hs[s * H + h]! / (S * prompts.length);
        }
      }
      return acc;
    };
    const routers = Array.from({ length: L }, () => new Float32Array(E * H));
    for (const [e, ex] of experts.entries()) {
      const pos = await meanOver(ex.positivePrompts);
      const neg = ex.negativePrompts.length ? await meanOver(ex.negativePrompts) : undefined;
      for (let l = 0; l < L; l++) for (let h = 0; h < H; h++) routers[l]![e * H + h] = pos[l]![h]! - (neg ? neg[l]![h]! : 0);
    }
    for (const g of routers) normaliseRows(g, E, H);
    return routers;
  } finally {
    await loaded.session.release();
  }
}

/** mergekit's degenerate-gate warning: a layer's gate matrix is near rank-deficient (cond > 5 by its rule of thumb). */
export function degenerateLayers(routers: Routers, E: number, H: number): number[] {
  const out: number[] = [];
  routers.forEach((g, l) => {
    // Gram matrix of the (unit) rows; a small min eigenvalue proxy: max |cos| between two experts.
    let worst = 0;
    for (let a = 0; a < E; a++) {
      for (let b = a + 1; b < E; b++) {
        let d = 0;
        let na = 0;
        let nb = 0;
        for (let h = 0; h < H; h++) {
          d += g[a * H + h]! * g[b * H + h]!;
          na += g[a * H + h]! ** 2;
          nb += g[b * H + h]! ** 2;
        }
        if (na > 0 && nb > 0) worst = Math.max(worst, Math.abs(d) / Math.sqrt(na * nb));
      }
    }
    if (worst > 0.98) out.push(l);
  });
  return out;
}
