/**
 * Rotary position embeddings (RoFormer, Su et al. 2021, arXiv 2104.09864) as transformers computes
 * them (`modeling_rope_utils.py`): inverse frequencies per scaling type and the attention factor that
 * multiplies cos and sin. The runtime feeds cos/sin caches of shape [positions, rotaryDim/2] to
 * ONNX RotaryEmbedding (non-interleaved = HF rotate_half).
 */
import type { ModelConfig } from './hf-config.js';

export interface RopeTables {
  /** [positions, rotaryDim/2], row-major. */
  cos: Float32Array;
  sin: Float32Array;
  positions: number;
  rotaryDim: number;
}

/**
 * inv_freq and attention factor for the config's rope type (default, linear, dynamic, llama3, yarn).
 * `dynamic` depends on the current sequence length (`seqLen`, the largest position + 1), so the
 * decoder graph computes its tables in-graph per run instead (see `dynamicRopeParams`).
 */
export function ropeInvFreq(cfg: ModelConfig, seqLen?: number): { invFreq: Float64Array; attentionFactor: number } {
  const p = cfg.rope.params;
  const partial = typeof p['partial_rotary_factor'] === 'number' ? (p['partial_rotary_factor'] as number)
    : typeof cfg.raw['partial_rotary_factor'] === 'number' ? (cfg.raw['partial_rotary_factor'] as number) : 1;
  const dim = Math.floor(cfg.headDim * partial);
  const half = dim / 2;
  let base = cfg.rope.theta;
  const maxPos = cfg.maxPositionEmbeddings ?? 2048;
  const type = cfg.rope.type;
  // transformers (standardize_rope_params): a top-level original_max_position_embeddings (Phi-3
  // style) wins over the one in rope_scaling, which defaults to max_position_embeddings.
  const origMax = Number(cfg.raw['original_max_position_embeddings'] ?? p['original_max_position_embeddings'] ?? maxPos);
  // YaRN without a factor: the ratio of the context lengths (DeepSeek-style configs).
  const factor = cfg.rope.factor ?? (type === 'yarn' ? maxPos / origMax : 1);
  if (type === 'dynamic' && seqLen !== undefined && seqLen > maxPos) {
    // NTK-aware dynamic scaling: grow the base once the sequence passes the trained length.
    base = base * ((factor * seqLen) / maxPos - (factor - 1)) ** (dim / (dim - 2));
  }
  const inv = new Float64Array(half);
  for (let i = 0; i < half; i++) inv[i] = 1 / base ** ((2 * i) / dim);
  let attentionFactor = 1;
  if (type === 'linear') {
    for (let i = 0; i < half; i++) inv[i]! /= factor;
  } else if (type === 'llama3') {
    const low = Number(p['low_freq_factor'] ?? 1);
    const high = Number(p['high_freq_factor'] ?? 4);
    const old = origMax;
    const lowWav = old / low;
    const highWav = old / high;
    for (let i = 0; i < half; i++) {
      const wav = (2 * Math.PI) / inv[i]!;
      if (wav > lowWav) inv[i] = inv[i]! / factor;
      else if (wav >= highWav) {
        const s = (old / wav - low) / (high - low);
        inv[i] = (1 - s) * (inv[i]! / factor) + s * inv[i]!;
      }
    }
  } else if (type === 'yarn') {
    const orig = origMax;
    const betaFast = Number(p['beta_fast'] ?? 32);
    const betaSlow = Number(p['beta_slow'] ?? 1);
    const mscale = (s: number, m = 1) => (s <= 1 ? 1 : 0.1 * m * Math.log(s) + 1);
    if (typeof p['attention_factor'] === 'number') attentionFactor = p['attention_factor'] as number;
    else if (typeof p['mscale'] === 'number' && typeof p['mscale_all_dim'] === 'number') attentionFactor = mscale(factor, p['mscale'] as number) / mscale(factor, p['mscale_all_dim'] as number);
    else attentionFactor = mscale(factor);
    const corrDim = (r: number) => (dim * Math.log(orig / (r * 2 * Math.PI))) / (2 * Math.log(base));
    const truncate = p['truncate'] !== false;
    let lo = corrDim(betaFast);
    let hi = corrDim(betaSlow);
    if (truncate) {
      lo = Math.floor(lo);
      hi = Math.ceil(hi);
    }
    lo = Math.max(lo, 0);
    hi = Math.min(hi, dim - 1);
    if (lo === hi) hi += 0.001; // transformers' guard against a zero-width ramp
    for (let i = 0; i < half; i++) {
      const posFreq = base ** ((2 * i) / dim);
      const extrap = 1 / posFreq;
      const interp = 1 / (factor * posFreq);
      const ramp = Math.min(1, Math.max(0, (i - lo) / (hi - lo)));
      const extrapFactor = 1 - ramp;
      inv[i] = interp * (1 - extrapFactor) + extrap * extrapFactor;
    }
  }
  return { invFreq: inv, attentionFactor };
}

/** cos/sin tables for positions 0..positions-1 (computed in float64 like torch's float32 outer product, then rounded). */
export function ropeTables(cfg: ModelConfig, positions: number): RopeTables {
  const { invFreq, attentionFactor } = ropeInvFreq(cfg, positions);
  const half = invFreq.length;
  const cos = new Float32Array(positions * half);
  const sin = new Float32Array(positions * half);
  for (let p = 0; p < positions; p++) {
    for (let i = 0; i < half; i++) {
      // transformers computes freqs = pos · inv_freq in float32; match that rounding.
      const f = Math.fround(Math.fround(p) * Math.fround(invFreq[i]!));
      cos[p * half + i] = Math.cos(f) * attentionFactor;
      sin[p * half + i] = Math.sin(f) * attentionFactor;
    }
  }
  return { cos, sin, positions, rotaryDim: half * 2 };
}

/**
 * What the decoder graph needs to compute dynamic-NTK RoPE per run, as transformers does
 * (`dynamic_rope_update` + `_compute_dynamic_ntk_parameters`): with L = max(position_ids) + 1,
 *   base' = theta · (factor · max(L, maxPos) / maxPos − (factor − 1)) ^ (dim / (dim − 2))
 *   inv_freq_i = 1 / base' ^ exponents_i,  exponents_i = float32(2i) / dim (float32, like torch)
 * so sequences up to max_position_embeddings use the unscaled frequencies and longer ones are
 * rotated with the base of their own length.
 */
export function dynamicRopeParams(cfg: ModelConfig): { theta: number; factor: number; maxPos: number; power: number; exponents: Float32Array; rotaryDim: number } {
  const p = cfg.rope.params;
  const partial = typeof p['partial_rotary_factor'] === 'number' ? (p['partial_rotary_factor'] as number)
    : typeof cfg.raw['partial_rotary_factor'] === 'number' ? (cfg.raw['partial_rotary_factor'] as number) : 1;
  const dim = Math.floor(cfg.headDim * partial);
  const exponents = new Float32Array(dim / 2);
  for (let i = 0; i < dim / 2; i++) exponents[i] = Math.fround((2 * i) / dim);
  return { theta: cfg.rope.theta, factor: cfg.rope.factor ?? 1, maxPos: cfg.maxPositionEmbeddings ?? 2048, power: dim / (dim - 2), exponents, rotaryDim: dim };
}
