/**
 * The ONNX graph of a decoder LLM, built from its config: llama, mistral, qwen2 (q/k/v bias), qwen3
 * (per-head q/k RMSNorm before RoPE), mixtral and qwen2_moe (sparse blocks routed as transformers does).
 *
 * Layout choices (why):
 * - Activations stay 2D [T=B·S, H] so every projection is `Gemm(x, W, transB=1)` straight on the
 *   checkpoint's [out, in] weights: no transposed copies of the weights, which stay external data
 *   pointing into the .safetensors files. They become 3D only around attention.
 * - Opset 23 `RMSNormalization`, `RotaryEmbedding` (non-interleaved = HF rotate_half) and `Attention`
 *   (GQA, bottom-right causal with a past, as HF) — all verified on ORT 1.30 CPU (research §4.2).
 * - MoE blocks use standard ops (Softmax → TopK → renormalise → scatter into a dense [T, E] weight)
 *   and evaluate every expert on every token: exact to transformers, portable to every EP, and
 *   each layer's router logits are an output for the routing statistics. E× the FFN FLOPs is fine
 *   at evaluation sizes; the fused com.microsoft MoE op is the faster path for large models.
 * - RoPE cos/sin tables are initializers, except dynamic-NTK RoPE, whose base depends on the run's
 *   length and is computed in-graph per run (as transformers recomputes it).
 * - Sliding-window layers (Mistral, Qwen with use_sliding_window) get a boolean window mask built
 *   from position_ids; all other layers use Attention's is_causal.
 * - Non-f32 weights (bf16/f16/f8) are Cast to f32 in-graph: ORT CPU has no bf16 kernels (research §0.4).
 * - LoRA adapters run unmerged: y += scaling · (x·Aᵀ)·Bᵀ beside the base projection.
 */
import type { DType } from '../core/dtypes.js';
import { isSparseLayer, slidingWindowFor, type ModelConfig } from '../core/hf-config.js';
import { dynamicRopeParams, ropeTables } from '../core/rope.js';
import { GraphBuilder, type InitializerData } from './graph-builder.js';
import { attr, type DataTypeName } from './onnx-proto.js';

export interface WeightRef {
  dtype: DType;
  shape: number[];
  data: InitializerData;
}

export interface LoraRef {
  a: WeightRef;
  b: WeightRef;
  scaling: number;
}

export interface DecoderGraphOptions {
  /** past_key_values.* inputs and present.* outputs for incremental decoding. */
  kvCache?: boolean;
  /** Outputs hidden_states.0…L: the input of each layer, and the final normed state (HF's convention). */
  hiddenStates?: boolean;
  /** Outputs mlp_input.i (each layer's post-attention-norm output = its router input) and router_logits.i of MoE layers. */
  routing?: boolean;
  /**
   * Rows of the RoPE cos/sin tables (the longest sequence the graph accepts). Ignored by dynamic
   * RoPE, whose tables are computed per run for the current length (no limit).
   */
  maxPositions?: number;
  /**
   * MoE router weights as graph inputs `router.{i}` [E, H] instead of initializers: router
   * calibration re-runs one session with new routers instead of rebuilding the graph per layer.
   */
  routerInputs?: boolean;
  /**
   * Input `logits_to_keep` (int64 scalar, transformers' argument of that name): 0 = logits of every
   * position, k > 0 = of the last k only. Generation needs only the last row, and the lm_head of a
   * 512-token prompt over a 32k vocabulary is ~40% of a 100M model's prefill FLOPs (2·S·H·V of
   * 2·S·(params)): keeping one row skips it, and the [S, V] float logits (65 MB) with it.
   */
  logitsToKeep?: boolean;
  /**
   * With kvCache: the past also comes as a second, short part `recent_key_values.*` (appended after
   * `past_key_values.*`), and outputs `present_recent.*` return only the positions after the first part.
   * onnxruntime-node copies every fetched output into a new JS buffer: fetching the whole growing cache
   * each decode step was 12.6 of 34 ms per step at a past of 2000 (100M llama, 8 layers). Fetching the
   * short part, and the whole cache only when the short part is full (Decoder.forward), leaves ORT's own
   * concatenation. The attention sees the same past either way. In-place alternatives (TensorScatter
   * into a pre-allocated static cache, research §4.7) were slower here: the binding still copies the
   * pre-allocated output back, at the cache's full capacity.
   */
  recentPast?: boolean;
  /**
   * Input `target_ids` [B, rows] and output `target_logprobs` [B, rows] = log softmax(logits)[target] of
   * each logits row: scoring (perplexity, multiple choice, seed fitness) then fetches B·rows floats
   * instead of the [B, rows, V] logits, and does not run a log-softmax over the vocabulary in JS.
   */
  tokenLogprobs?: boolean;
}

export const OPSET = 23;

const ONNX_TYPE: Partial<Record<DType, DataTypeName>> = {
  F32: 'FLOAT', F16: 'FLOAT16', BF16: 'BFLOAT16', F64: 'DOUBLE', F8_E4M3: 'FLOAT8E4M3FN', F8_E5M2: 'FLOAT8E5M2',
};

export function graphOutputs(cfg: ModelConfig, opts: DecoderGraphOptions): string[] {
  const out = ['logits'];
  for (let i = 0; i < cfg.numLayers && opts.kvCache; i++) out.push(`present.${i}.key`, `present.${i}.value`);
  for (let i = 0; i < cfg.numLayers && opts.kvCache && opts.recentPast; i++) out.push(`present_recent.${i}.key`, `present_recent.${i}.value`);
  if (opts.tokenLogprobs) out.push('target_logprobs');
  if (opts.hiddenStates) for (let i = 0; i <= cfg.numLayers; i++) out.push(`hidden_states.${i}`);
  if (opts.routing) {
    for (let i = 0; i < cfg.numLayers; i++) {
      out.push(`mlp_input.${i}`);
      if (isSparseLayer(cfg, i)) out.push(`router_logits.${i}`);
    }
  }
  return out;
}

export function buildDecoderGraph(
  cfg: ModelConfig,
  weight: (name: string) => WeightRef,
  lora: (baseTensor: string) => LoraRef | undefined,
  opts: DecoderGraphOptions = {},
): Uint8Array {
  if (!cfg.family) throw new Error(`${cfg.architecture} (${cfg.modelType}) cannot be run: ${cfg.notes.join('; ')}`);
  const g = new GraphBuilder('decoder');
  const H = cfg.hiddenSize;
  const D = cfg.headDim;
  const NH = cfg.numHeads;
  const KV = cfg.numKvHeads;
  const maxPos = opts.maxPositions ?? Math.min(cfg.maxPositionEmbeddings ?? 4096, 16384);

  const floatWeights = new Map<string, string>();
  /** A weight as a float32 value name (Cast in-graph from other float dtypes). */
  const w = (name: string): string => {
    const done = floatWeights.get(name);
    if (done) return done;
    const ref = weight(name);
    const t = ONNX_TYPE[ref.dtype];
    if (!t) throw new Error(`${name}: dtype ${ref.dtype} cannot be a weight`);
    const init = g.initializer(name, t, ref.shape, ref.data);
    let out = init;
    if (t !== 'FLOAT') [out] = g.node('Cast', [init], [`${name}.f32`], { to: 1 });
    floatWeights.set(name, out!);
    return out!;
  };
  let loraCount = 0;
  const loraWeight = (prefix: string, ref: WeightRef): string => {
    const t = ONNX_TYPE[ref.dtype]!;
    const init = g.initializer(prefix, t, ref.shape, ref.data);
    return t === 'FLOAT' ? init : g.node('Cast', [init], [`${prefix}.f32`], { to: 1 })[0]!;
  };
  /** x[T,in] · Wᵀ (+ bias) (+ LoRA) → [T,out]. */
  const linear = (x: string, prefix: string, out: string, bias = false): string => {
    const inputs = [x, w(`${prefix}.weight`)];
    if (bias) inputs.push(w(`${prefix}.bias`));
    const l = lora(`${prefix}.weight`);
    const [y] = g.node('Gemm', inputs, [l ? `${out}.base` : out], { transB: 1 });
    if (!l) return y!;
    const k = loraCount++;
    const a = loraWeight(`lora.${k}.A`, l.a);
    const b = loraWeight(`lora.${k}.B`, l.b);
    const [xa] = g.node('Gemm', [x, a], [`${out}.lora_a`], { transB: 1 });
    const [xab] = g.node('Gemm', [xa!, b], [`${out}.lora_ab`], { transB: 1, alpha: attr.float(l.scaling) });
    return g.node('Add', [y!, xab!], [out])[0]!;
  };
  const rmsnorm = (x: string, weightName: string, out: string): string =>
    g.node('RMSNormalization', [x, w(weightName)], [out], { axis: -1, epsilon: attr.float(cfg.rmsNormEps) })[0]!;
  const int64 = (name: string, values: number[]): string => g.initializer(name, 'INT64', [values.length], BigInt64Array.from(values.map(BigInt)));

  // Inputs.
  g.input('input_ids', 'INT64', ['batch', 'seq']);
  g.input('position_ids', 'INT64', ['batch', 'seq']);
  if (opts.routerInputs && cfg.moe) {
    for (let i = 0; i < cfg.numLayers; i++) if (isSparseLayer(cfg, i)) g.input(`router.${i}`, 'FLOAT', [cfg.moe.numExperts, H]);
  }
  if (opts.kvCache) {
    for (let i = 0; i < cfg.numLayers; i++) {
      g.input(`past_key_values.${i}.key`, 'FLOAT', ['batch', KV, 'past', D]);
      g.input(`past_key_values.${i}.value`, 'FLOAT', ['batch', KV, 'past', D]);
      if (opts.recentPast) {
        g.input(`recent_key_values.${i}.key`, 'FLOAT', ['batch', KV, 'recent', D]);
        g.input(`recent_key_values.${i}.value`, 'FLOAT', ['batch', KV, 'recent', D]);
      }
    }
  }
  const recent = !!(opts.kvCache && opts.recentPast);
  // Where present_recent starts: after the first part of the past.
  const oldLen = recent ? g.node('Shape', ['past_key_values.0.key'], ['past.old_len'], { start: 2, end: 3 })[0]! : '';
  if (recent) {
    g.initializer('past.slice_end', 'INT64', [1], BigInt64Array.of(2n ** 62n));
    g.initializer('past.slice_axis', 'INT64', [1], BigInt64Array.of(2n));
  }
  /** The layer's past as Attention takes it: one tensor (the two parts concatenated). */
  const pastOf = (i: number, kv: 'key' | 'value'): string =>
    recent ? g.node('Concat', [`past_key_values.${i}.${kv}`, `recent_key_values.${i}.${kv}`], [`past.${i}.${kv}`], { axis: 2 })[0]! : `past_key_values.${i}.${kv}`;
  // Shapes: [B, S] of the input, [B, S, -1] for 3D views, [-1, H] for 2D.
  const [bs] = g.node('Shape', ['input_ids'], ['shape.bs']);
  const [shape3] = g.node('Concat', [bs!, int64('const.minus1', [-1])], ['shape.bs_1'], { axis: 0 });
  const shape2 = int64('const.shape2', [-1, H]);
  const attnShape2 = NH * D === H ? shape2 : int64('const.attn_shape2', [-1, NH * D]);
  const to3d = (x: string, out: string) => g.node('Reshape', [x, shape3!], [out])[0]!;
  const to2d = (x: string, out: string) => g.node('Reshape', [x, shape2], [out])[0]!;

  const { cos, sin, rotaryDim } = cfg.rope.type === 'dynamic' ? dynamicRope() : staticRope();
  const ropeAttrs = { num_heads: 0, interleaved: 0, ...(rotaryDim !== D ? { rotary_embedding_dim: rotaryDim } : {}) };
  const masks = new Map<number, string>();

  const [emb] = g.node('Gather', [w('model.embed_tokens.weight'), 'input_ids'], ['embeds'], { axis: 0 });
  let x = to2d(emb!, 'h.0');
  const hiddenOut = (i: number, v: string) => {
    if (opts.hiddenStates) g.node('Reshape', [v, shape3!], [`hidden_states.${i}`]);
  };

  for (let i = 0; i < cfg.numLayers; i++) {
    const p = `model.layers.${i}`;
    hiddenOut(i, x);
    const h = rmsnorm(x, `${p}.input_layernorm.weight`, `${p}.ln1`);
    const bias = cfg.attentionBias;
    let q = to3d(linear(h, `${p}.self_attn.q_proj`, `${p}.q2`, bias), `${p}.q`);
    let k = to3d(linear(h, `${p}.self_attn.k_proj`, `${p}.k2`, bias), `${p}.k`);
    const v = to3d(linear(h, `${p}.self_attn.v_proj`, `${p}.v2`, bias), `${p}.v`);
    if (cfg.qkNorm) {
      // Qwen3: RMSNorm over head_dim of each head, before RoPE.
      const heads = (t: string, n: number, out: string) => g.node('Reshape', [t, g.node('Concat', [bs!, int64(`${out}.shape`, [n, D])], [`${out}.dims`], { axis: 0 })[0]!], [out])[0]!;
      q = to3d(rmsnorm(heads(q, NH, `${p}.q4`), `${p}.self_attn.q_norm.weight`, `${p}.qn`), `${p}.qn3`);
      k = to3d(rmsnorm(heads(k, KV, `${p}.k4`), `${p}.self_attn.k_norm.weight`, `${p}.kn`), `${p}.kn3`);
    }
    const [qr] = g.node('RotaryEmbedding', [q, cos, sin, 'position_ids'], [`${p}.q_rot`], { ...ropeAttrs, num_heads: NH });
    const [kr] = g.node('RotaryEmbedding', [k, cos, sin, 'position_ids'], [`${p}.k_rot`], { ...ropeAttrs, num_heads: KV });
    // Sliding-window layers get an explicit mask (causal and within the window); the rest is_causal.
    const window = slidingWindowFor(cfg, i);
    const mask = window === undefined ? '' : slidingMask(window);
    const attnIn = [qr!, kr!, v, mask, ...(opts.kvCache ? [pastOf(i, 'key'), pastOf(i, 'value')] : [])];
    const attnOut = [`${p}.attn`, ...(opts.kvCache ? [`present.${i}.key`, `present.${i}.value`] : [])];
    const attnAttrs: Record<string, number> = { is_causal: mask ? 0 : 1, q_num_heads: NH, kv_num_heads: KV };
    g.node('Attention', attnIn, attnOut, attnAttrs);
    if (recent) {
      for (const kv of ['key', 'value']) {
        g.node('Slice', [`present.${i}.${kv}`, oldLen, 'past.slice_end', 'past.slice_axis'], [`present_recent.${i}.${kv}`]);
      }
    }
    // The attention output is [.., NH·D], which differs from H when head_dim is explicit (Qwen3, Mistral-Nemo).
    const [attn2] = g.node('Reshape', [`${p}.attn`, attnShape2], [`${p}.attn2`]);
    const o = linear(attn2!, `${p}.self_attn.o_proj`, `${p}.o`, bias && cfg.family !== 'qwen2' && cfg.family !== 'qwen2_moe');
    const [x1] = g.node('Add', [x, o], [`${p}.res1`]);
    const h2 = rmsnorm(x1!, `${p}.post_attention_layernorm.weight`, `${p}.ln2`);
    if (opts.routing) g.node('Reshape', [h2, shape3!], [`mlp_input.${i}`]);
    const ffn = isSparseLayer(cfg, i) ? moeBlock(h2, i) : mlp(h2, `${p}.mlp`, `${p}.mlp`);
    [x] = g.node('Add', [x1!, ffn], [`h.${i + 1}`]) as [string];
  }
  const [xn] = g.node('RMSNormalization', [x, w('model.norm.weight')], ['final_norm'], { axis: -1, epsilon: attr.float(cfg.rmsNormEps) });
  hiddenOut(cfg.numLayers, xn!);
  const lmHead = cfg.tieWordEmbeddings && !hasWeight('lm_head.weight') ? 'model.embed_tokens.weight' : 'lm_head';
  let head = xn!;
  let logitsShape = shape3!;
  if (opts.logitsToKeep) {
    // rows [S − k, S) of each sequence; k = 0 gives −0 = 0, i.e. all of them (as x[:, -k:] in transformers).
    g.input('logits_to_keep', 'INT64', []);
    const [negK] = g.node('Neg', ['logits_to_keep'], ['keep.neg']);
    const [starts] = g.node('Unsqueeze', [negK!, int64('keep.axis0', [0])], ['keep.starts']);
    const [kept] = g.node('Slice', [to3d(xn!, 'keep.x3'), starts!, int64('keep.end', [Number.MAX_SAFE_INTEGER]), int64('keep.axis1', [1])], ['keep.x']);
    const [keptShape] = g.node('Shape', [kept!], ['keep.shape'], { start: 0, end: 2 });
    [logitsShape] = g.node('Concat', [keptShape!, 'const.minus1'], ['keep.logits_shape'], { axis: 0 }) as [string];
    head = to2d(kept!, 'keep.x2');
  }
  const [logits2] = lmHead === 'lm_head'
    ? [linear(head, 'lm_head', 'logits2')]
    : g.node('Gemm', [head, w('model.embed_tokens.weight')], ['logits2'], { transB: 1 });
  g.node('Reshape', [logits2!, logitsShape], ['logits']);
  if (opts.tokenLogprobs) {
    // log p(target) = logit[target] − logsumexp(logits), on the 2D [rows, V] logits. The sum over the
    // vocabulary runs in double: in float32 it came out low by ~5e-5 nats per token at a 32k vocabulary and
    // ~3e-4 at 152k (perplexity 0.04 % low); the JS log-softmax it replaces summed in double too.
    g.input('target_ids', 'INT64', ['batch', 'rows']);
    const [wide] = g.node('Cast', [logits2!], ['lp.logits64'], { to: 11 });
    const [lse] = g.node('ReduceLogSumExp', [wide!, int64('lp.axis', [1])], ['lp.lse'], { keepdims: 1 });
    const [col] = g.node('Reshape', ['target_ids', int64('lp.col', [-1, 1])], ['lp.targets']);
    const [picked] = g.node('GatherElements', [wide!, col!], ['lp.picked'], { axis: 1 });
    const [diff] = g.node('Sub', [picked!, lse!], ['lp.diff64']);
    const [narrow] = g.node('Cast', [diff!], ['lp.diff'], { to: 1 });
    const [targetShape] = g.node('Shape', ['target_ids'], ['lp.shape']);
    g.node('Reshape', [narrow!, targetShape!], ['target_logprobs']);
  }

  for (const name of graphOutputs(cfg, opts)) g.output(name, 'FLOAT');
  return g.toModelBytes({ opset: OPSET, producerName: 'upcycle-studio', metadata: { architecture: cfg.architecture } });

  /** RoPE cos/sin tables [maxPos, rotaryDim/2] as initializers. */
  function staticRope(): { cos: string; sin: string; rotaryDim: number } {
    const rope = ropeTables(cfg, maxPos);
    return {
      cos: g.initializer('rope.cos', 'FLOAT', [rope.positions, rope.rotaryDim / 2], rope.cos),
      sin: g.initializer('rope.sin', 'FLOAT', [rope.positions, rope.rotaryDim / 2], rope.sin),
      rotaryDim: rope.rotaryDim,
    };
  }

  /**
   * Dynamic-NTK RoPE tables computed in-graph for this run's length L = max(position_ids) + 1, as
   * transformers recomputes inv_freq from the current length (all float32, like torch): rows
   * 0…L-1 of cos/sin(pos · inv_freq). A fixed table cannot do this: its base would be that of one
   * length, wrong for every other (research §2 RoPE).
   */
  function dynamicRope(): { cos: string; sin: string; rotaryDim: number } {
    const r = dynamicRopeParams(cfg);
    const f32 = (name: string, v: number) => g.initializer(name, 'FLOAT', [], Float32Array.of(v));
    const [maxPosId] = g.node('ReduceMax', ['position_ids'], ['rope.max_pos_id'], { keepdims: 0 });
    const [len] = g.node('Add', [maxPosId!, g.initializer('rope.one', 'INT64', [], BigInt64Array.of(1n))], ['rope.len']);
    const [lenF] = g.node('Cast', [len!], ['rope.len_f'], { to: 1 });
    const [seq] = g.node('Max', [lenF!, f32('rope.trained_len', r.maxPos)], ['rope.seq']);
    const [a] = g.node('Mul', [seq!, f32('rope.factor', r.factor)], ['rope.a']);
    const [b] = g.node('Div', [a!, f32('rope.trained_len2', r.maxPos)], ['rope.b']);
    const [c] = g.node('Sub', [b!, f32('rope.factor_m1', r.factor - 1)], ['rope.c']);
    const [d] = g.node('Pow', [c!, f32('rope.power', r.power)], ['rope.d']);
    const [base] = g.node('Mul', [f32('rope.theta', r.theta), d!], ['rope.base']);
    const [den] = g.node('Pow', [base!, g.initializer('rope.exponents', 'FLOAT', [r.exponents.length], r.exponents)], ['rope.den']);
    const [inv] = g.node('Reciprocal', [den!], ['rope.inv_freq']);
    const [rows] = g.node('Range', [g.initializer('rope.zero', 'INT64', [], BigInt64Array.of(0n)), len!, 'rope.one'], ['rope.rows']);
    const [rowsF] = g.node('Cast', [rows!], ['rope.rows_f'], { to: 1 });
    const [col] = g.node('Unsqueeze', [rowsF!, int64('rope.axis1', [1])], ['rope.pos_col']);
    const [freqs] = g.node('Mul', [col!, inv!], ['rope.freqs']);
    const [cosT] = g.node('Cos', [freqs!], ['rope.cos']);
    const [sinT] = g.node('Sin', [freqs!], ['rope.sin']);
    return { cos: cosT!, sin: sinT!, rotaryDim: r.rotaryDim };
  }

  /**
   * Boolean attention mask [B, 1, S, past+S] for a sliding window of `window` tokens (transformers:
   * key j visible to query at position q iff j ≤ q and q − j < window). Keys sit at their positions
   * (the cache is contiguous from 0), queries at position_ids. One mask per distinct window.
   */
  function slidingMask(window: number): string {
    const done = masks.get(window);
    if (done) return done;
    const m = `mask.w${window}`;
    let total = g.node('Shape', ['input_ids'], [`${m}.seq`], { start: 1, end: 2 })[0]!;
    if (opts.kvCache) {
      const [past] = g.node('Shape', ['past_key_values.0.key'], [`${m}.past`], { start: 2, end: 3 });
      total = g.node('Add', [total, past!], [`${m}.total`])[0]!;
      if (recent) {
        const [more] = g.node('Shape', ['recent_key_values.0.key'], [`${m}.recent`], { start: 2, end: 3 });
        total = g.node('Add', [total, more!], [`${m}.total2`])[0]!;
      }
    }
    const [total0] = g.node('Squeeze', [total, int64(`${m}.ax0`, [0])], [`${m}.total0`]);
    const [keys] = g.node('Range', [g.initializer(`${m}.zero`, 'INT64', [], BigInt64Array.of(0n)), total0!, g.initializer(`${m}.one`, 'INT64', [], BigInt64Array.of(1n))], [`${m}.keys`]);
    const [q] = g.node('Unsqueeze', ['position_ids', int64(`${m}.ax13`, [1, 3])], [`${m}.q`]);
    const [dist] = g.node('Sub', [q!, keys!], [`${m}.dist`]);
    const [causal] = g.node('GreaterOrEqual', [dist!, `${m}.zero`], [`${m}.causal`]);
    const [inWindow] = g.node('Less', [dist!, g.initializer(`${m}.window`, 'INT64', [], BigInt64Array.of(BigInt(window)))], [`${m}.in_window`]);
    const [mask] = g.node('And', [causal!, inWindow!], [m]);
    masks.set(window, mask!);
    return mask!;
  }

  function hasWeight(name: string): boolean {
    try {
      weight(name);
      return true;
    } catch {
      return false;
    }
  }

  /** SwiGLU FFN: down(silu(gate(x)) · up(x)). */
  function mlp(x: string, prefix: string, out: string, names = { gate: 'gate_proj', up: 'up_proj', down: 'down_proj' }): string {
    const b = cfg.mlpBias && !prefix.includes('experts') && !prefix.includes('shared_expert');
    const gate = linear(x, `${prefix}.${names.gate}`, `${out}.gate`, b);
    const up = linear(x, `${prefix}.${names.up}`, `${out}.up`, b);
    const [sig] = g.node('Sigmoid', [gate], [`${out}.sig`]);
    const [act] = g.node('Mul', [gate, sig!], [`${out}.silu`]);
    const [prod] = g.node('Mul', [act!, up], [`${out}.prod`]);
    return linear(prod!, `${prefix}.${names.down}`, `${out}.down`, b);
  }

  /**
   * transformers' sparse block: softmax over all experts (fp32), top-k, renormalise (Mixtral always;
   * Qwen2-MoE when norm_topk_prob), weighted sum of the chosen experts; Qwen2-MoE adds
   * sigmoid(shared_expert_gate(x)) · shared_expert(x).
   */
  function moeBlock(x: string, i: number): string {
    const moe = cfg.moe!;
    const mixtral = cfg.family === 'mixtral';
    const p = mixtral ? `model.layers.${i}.block_sparse_moe` : `model.layers.${i}.mlp`;
    const logits = opts.routing ? `router_logits.${i}` : `${p}.router_logits`;
    g.node('Gemm', [x, opts.routerInputs ? `router.${i}` : w(`${p}.gate.weight`)], [logits], { transB: 1 });
    const [probs] = g.node('Softmax', [logits], [`${p}.probs`], { axis: -1 });
    const [vals, idx] = g.node('TopK', [probs!, int64(`${p}.k`, [moe.topK])], [`${p}.topv`, `${p}.topi`], { axis: -1, largest: 1, sorted: 1 });
    let weights = vals!;
    if (moe.normTopkProb) {
      const [sum] = g.node('ReduceSum', [vals!, int64(`${p}.axes`, [-1])], [`${p}.topsum`], { keepdims: 1 });
      [weights] = g.node('Div', [vals!, sum!], [`${p}.topw`]) as [string];
    }
    const [zeros] = g.node('Mul', [logits, g.initializer(`${p}.zero`, 'FLOAT', [], Float32Array.of(0))], [`${p}.zeros`]);
    const [dense] = g.node('ScatterElements', [zeros!, idx!, weights], [`${p}.route`], { axis: 1 });
    let acc: string | undefined;
    for (let e = 0; e < moe.numExperts; e++) {
      const ep = `${p}.experts.${e}`;
      const y = mixtral ? mlp(x, ep, ep, { gate: 'w1', up: 'w3', down: 'w2' }) : mlp(x, ep, ep);
      const [we] = g.node('Slice', [dense!, int64(`${ep}.s`, [e]), int64(`${ep}.t`, [e + 1]), int64(`${ep}.ax`, [1])], [`${ep}.w`]);
      const [wy] = g.node('Mul', [y, we!], [`${ep}.wy`]);
      acc = acc ? g.node('Add', [acc, wy!], [`${ep}.acc`])[0]! : wy!;
    }
    if (!mixtral && moe.sharedExpertIntermediateSize > 0) {
      const s = mlp(x, `${p}.shared_expert`, `${p}.shared_expert`);
      const [sg] = g.node('Gemm', [x, w(`${p}.shared_expert_gate.weight`)], [`${p}.sg`], { transB: 1 });
      const [sgs] = g.node('Sigmoid', [sg!], [`${p}.sgs`]);
      const [ws] = g.node('Mul', [s, sgs!], [`${p}.ws`]);
      acc = g.node('Add', [acc!, ws!], [`${p}.out`])[0]!;
    }
    return acc!;
  }
}
