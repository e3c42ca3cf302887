/**
 * Running a loaded decoder: batched scoring (log-probabilities of every token given its prefix)
 * and generation with a KV cache (greedy or sampled, stop strings, max tokens).
 *
 * Batching without an attention mask is exact in two cases, which is how we batch:
 * - scoring: sequences right-padded to the batch's longest — causal attention never lets a real
 *   token see the padding after it, so padded positions are simply ignored;
 * - generation: prompts of equal token length step together, so no padding exists at all.
 */
import type { ModelConfig } from '../core/hf-config.js';
import type { HostTensor } from './host-tensor.js';
import type { LoadedSession } from './model-session.js';

/**
 * Positions the recent part of the cache may hold before the whole cache is fetched again: one whole
 * copy per RECENT_MAX steps instead of one per step (bench:runtime, 100M llama: a decode step at a past
 * of 2000 34.7 → 21.0 ms, of 128 13.3 → 12.3 ms), while each step fetches at most this many positions back.
 */
export const RECENT_MAX = 32;

export interface ForwardResult {
  /** [B, logitsRows, V]: every position, or the last `logitsToKeep` when the graph can keep fewer. */
  logits: Float32Array;
  logitsRows: number;
  /** [B, logitsRows] log-probabilities of the targets, when `forward` was given them (then `logits` is empty). */
  targetLogprobs?: Float32Array;
  /**
   * The cache to pass as `past` to the next call: `present.{i}.key|value`, the whole cache or, with a
   * recentPast graph, its first part followed by `recent.{i}.key|value`.
   */
  present?: Record<string, HostTensor>;
  /** Per MoE layer: router logits [B·S, E]. */
  routerLogits: Map<number, Float32Array>;
  /** Per layer (when the graph outputs them): [B, S, H]. */
  mlpInputs: Map<number, Float32Array>;
  hiddenStates: Map<number, Float32Array>;
}

export interface GenerateOptions {
  maxNewTokens: number;
  /**
   * Token ids that end a sequence (not included in the result). Default: config.json's eos_token_id; the
   * tokenizer's list (TextTokenizer.eosIds) adds generation_config.json's, e.g. a chat model's end of turn.
   */
  eosIds?: readonly number[];
  /** 0 or undefined = greedy. */
  temperature?: number;
  topK?: number;
  topP?: number;
  seed?: number;
  /** Decode with a KV cache (default) or recompute the whole prefix each step (reference path). */
  cache?: boolean;
  signal?: AbortSignal;
  /** Sees the prompt pass (for routing statistics of the prompts). */
  onPrefill?: (r: ForwardResult) => void;
}

export class Decoder {
  readonly config: ModelConfig;
  readonly vocab: number;
  private readonly hasCache: boolean;
  private readonly hasKeep: boolean;
  private readonly hasRecent: boolean;
  private readonly hasTargets: boolean;
  /** Fetch lists: everything with the whole cache, or with only its recent part (recentPast graphs). */
  private readonly fetchFull: string[];
  private readonly fetchRecent: string[];

  constructor(readonly loaded: LoadedSession) {
    this.config = loaded.config;
    this.vocab = loaded.config.vocabSize;
    this.hasCache = loaded.outputs.some((o) => o.startsWith('present.'));
    this.hasKeep = loaded.session.inputs.some((i) => i.name === 'logits_to_keep');
    this.hasRecent = loaded.outputs.some((o) => o.startsWith('present_recent.'));
    this.hasTargets = loaded.session.inputs.some((i) => i.name === 'target_ids');
    const plain = loaded.outputs.filter((o) => o !== 'target_logprobs');
    this.fetchFull = plain.filter((o) => !o.startsWith('present_recent.'));
    this.fetchRecent = plain.filter((o) => !o.startsWith('present.'));
  }

  /** Extra graph inputs fed on every call (e.g. `router.{i}` weights during calibration). */
  extraFeeds: Record<string, HostTensor> = {};

  /**
   * One forward pass over rectangular ids [B][S] starting at position `start` after `past`.
   * `logitsToKeep` > 0 asks for the logits of the last positions only (all when the graph has no
   * `logits_to_keep` input; `logitsRows` says which).
   */
  async forward(ids: number[][], start = 0, past?: Record<string, HostTensor>, logitsToKeep = 0, targets?: number[][]): Promise<ForwardResult> {
    const B = ids.length;
    const S = ids[0]!.length;
    const inputIds = new BigInt64Array(B * S);
    const pos = new BigInt64Array(B * S);
    for (let b = 0; b < B; b++) {
      const row = ids[b]!;
      if (row.length !== S) throw new Error('forward() needs rectangular input');
      for (let s = 0; s < S; s++) {
        inputIds[b * S + s] = BigInt(row[s]!);
        pos[b * S + s] = BigInt(start + s);
      }
    }
    const feeds: Record<string, HostTensor> = { ...this.extraFeeds, input_ids: { dims: [B, S], data: inputIds }, position_ids: { dims: [B, S], data: pos } };
    const keep = this.hasKeep && logitsToKeep > 0 && logitsToKeep < S ? logitsToKeep : 0;
    if (this.hasKeep) feeds['logits_to_keep'] = { dims: [], data: BigInt64Array.of(BigInt(keep)) };
    const cfg = this.config;
    const empty = (): HostTensor => ({ dims: [B, cfg.numKvHeads, 0, cfg.headDim], data: new Float32Array(0) });
    // recentPast graphs: the cache is `present.*` (long, fed back as is) + `recent.*` (the positions since).
    // Until the recent part holds RECENT_MAX positions only it is fetched back; then the whole cache once.
    const recentLen = past?.['recent.0.key']?.dims[2] ?? 0;
    const fetchRecent = this.hasRecent && past !== undefined && recentLen + S <= RECENT_MAX;
    if (this.hasCache) {
      for (let i = 0; i < cfg.numLayers; i++) {
        for (const kv of ['key', 'value']) {
          feeds[`past_key_values.${i}.${kv}`] = past?.[`present.${i}.${kv}`] ?? empty();
          if (this.hasRecent) feeds[`recent_key_values.${i}.${kv}`] = past?.[`recent.${i}.${kv}`] ?? empty();
        }
      }
    }
    const rows = keep || S;
    let fetch = fetchRecent ? this.fetchRecent : this.fetchFull;
    if (this.hasTargets) {
      // Scoring: the targets' log-probabilities instead of the logits (and no KV cache: nothing continues
      // from a scoring pass). Otherwise any ids (the output is not fetched).
      const t = new BigInt64Array(B * rows);
      if (targets) {
        if (targets.length !== B || targets.some((row) => row.length !== rows)) throw new Error(`forward(): targets must be ${B} rows of ${rows} ids, one per logits row`);
        targets.forEach((row, b) => row.forEach((v, r) => (t[b * rows + r] = BigInt(v))));
        fetch = [...fetch.filter((o) => o !== 'logits' && !o.startsWith('present')), 'target_logprobs'];
      }
      feeds['target_ids'] = { dims: [B, rows], data: t };
    } else if (targets) {
      throw new Error('forward(): this graph has no target_ids input');
    }
    const out = await this.loaded.session.run(feeds, fetch);
    const res: ForwardResult = { logits: (out['logits']?.data as Float32Array | undefined) ?? new Float32Array(0), logitsRows: rows, routerLogits: new Map(), mlpInputs: new Map(), hiddenStates: new Map() };
    if (out['target_logprobs']) res.targetLogprobs = out['target_logprobs'].data as Float32Array;
    if (this.hasCache && !targets) {
      res.present = {};
      for (const [k, v] of Object.entries(out)) {
        if (k.startsWith('present.')) res.present[k] = v;
        else if (k.startsWith('present_recent.')) res.present[k.replace('present_recent.', 'recent.')] = v;
      }
      if (fetchRecent) for (let i = 0; i < cfg.numLayers; i++) for (const kv of ['key', 'value']) res.present[`present.${i}.${kv}`] = past[`present.${i}.${kv}`] ?? empty();
    }
    for (const [k, v] of Object.entries(out)) {
      const m = /^(router_logits|mlp_input|hidden_states)\.(\d+)$/.exec(k);
      if (!m) continue;
      const map = m[1] === 'router_logits' ? res.routerLogits : m[1] === 'mlp_input' ? res.mlpInputs : res.hiddenStates;
      map.set(Number(m[2]), v.data as Float32Array);
    }
    return res;
  }

  /**
   * log p(seq[t] | seq[<t]) for t = 1…len-1 of each sequence (t = 0 is context only).
   * `onBatch` sees each batch's forward result and the real lengths (for routing statistics).
   */
  async logprobs(seqs: number[][], opts: { maxBatchTokens?: number; signal?: AbortSignal; onBatch?: (r: ForwardResult, lengths: number[], width: number, members: number[]) => void } = {}): Promise<Float32Array[]> {
    const order = seqs.map((s, i) => i).sort((a, b) => seqs[a]!.length - seqs[b]!.length);
    const result: Float32Array[] = new Array(seqs.length);
    const budget = opts.maxBatchTokens ?? Math.max(256, Math.floor(32_000_000 / this.vocab));
    let i = 0;
    while (i < order.length) {
      opts.signal?.throwIfAborted();
      let j = i;
      // Sorted ascending, so the last member sets the width: grow while the padded batch fits.
      while (j < order.length && (j - i + 1) * seqs[order[j]!]!.length <= budget) j++;
      if (j === i) j = i + 1;
      const members = order.slice(i, j);
      const W = seqs[members[members.length - 1]!]!.length;
      const pad = this.config.bosTokenId ?? 0;
      const batch = members.map((m) => [...seqs[m]!, ...new Array<number>(W - seqs[m]!.length).fill(pad)]);
      // Row t predicts token t + 1: the targets are the batch shifted left (the last row's is unused).
      const targets = this.hasTargets ? batch.map((row) => [...row.slice(1), pad]) : undefined;
      const r = await this.forward(batch, 0, undefined, 0, targets);
      opts.onBatch?.(r, members.map((m) => seqs[m]!.length), W, members);
      const V = this.vocab;
      members.forEach((m, b) => {
        const s = seqs[m]!;
        const lp = new Float32Array(Math.max(0, s.length - 1));
        if (r.targetLogprobs) lp.set(r.targetLogprobs.subarray(b * W, b * W + lp.length));
        else for (let t = 1; t < s.length; t++) lp[t - 1] = logSoftmaxAt(r.logits, (b * W + t - 1) * V, V, s[t]!);
        result[m] = lp;
      });
      i = j;
    }
    return result;
  }

  /**
   * Generates from prompts of equal length (the caller groups them). Returns the new token ids of
   * each prompt, cut at EOS (never calling `isDone` for it); stop strings are applied by the caller on
   * decoded text through `isDone`.
   */
  async generate(prompts: number[][], opts: GenerateOptions, isDone: (row: number, newIds: number[]) => Promise<boolean> | boolean): Promise<number[][]> {
    const B = prompts.length;
    const S = prompts[0]!.length;
    const V = this.vocab;
    const eos = new Set(opts.eosIds ?? this.eosIds());
    const out: number[][] = prompts.map(() => []);
    const done = new Array<boolean>(B).fill(false);
    const rng = mulberry32(opts.seed ?? 0);
    const useCache = (opts.cache ?? true) && this.hasCache;
    let past: Record<string, HostTensor> | undefined;
    let input = prompts;
    let start = 0;
    for (let step = 0; step < opts.maxNewTokens; step++) {
      opts.signal?.throwIfAborted();
      // Only the last position's logits pick the next token.
      const r = await this.forward(input, start, useCache ? past : undefined, 1);
      if (step === 0) opts.onPrefill?.(r);
      const rows = r.logitsRows;
      const next: number[] = [];
      for (let b = 0; b < B; b++) {
        const off = (b * rows + rows - 1) * V;
        const tok = pick(r.logits, off, V, opts, rng);
        next.push(tok);
        if (done[b]) continue;
        if (eos.has(tok)) {
          done[b] = true;
          continue;
        }
        out[b]!.push(tok);
        if (await isDone(b, out[b]!)) done[b] = true;
      }
      if (done.every(Boolean)) break;
      if (useCache) {
        past = r.present;
        start = S + step;
        input = next.map((t) => [t]);
      } else {
        input = input.map((row, b) => [...row, next[b]!]);
      }
    }
    return out;
  }

  eosIds(): number[] {
    const e = this.config.eosTokenId;
    return e === undefined ? [] : Array.isArray(e) ? e : [e];
  }
}

/** log softmax(logits[off…off+V))[target], computed stably. */
export function logSoftmaxAt(logits: Float32Array, off: number, V: number, target: number): number {
  let max = -Infinity;
  for (let v = 0; v < V; v++) if (logits[off + v]! > max) max = logits[off + v]!;
  let sum = 0;
  for (let v = 0; v < V; v++) sum += Math.exp(logits[off + v]! - max);
  return logits[off + target]! - max - Math.log(sum);
}

function pick(logits: Float32Array, off: number, V: number, opts: GenerateOptions, rng: () => number): number {
  if (!opts.temperature) {
    // Greedy: first maximum, as torch.argmax.
    let best = 0;
    for (let v = 1; v < V; v++) if (logits[off + v]! > logits[off + best]!) best = v;
    return best;
  }
  const scaled = Array.from({ length: V }, (_, v) => ({ v, l: logits[off + v]! / opts.temperature! }));
  scaled.sort((a, b) => b.l - a.l);
  let cand = opts.topK ? scaled.slice(0, opts.topK) : scaled;
  const max = cand[0]!.l;
  let probs = cand.map((c) => Math.exp(c.l - max));
  let total = probs.reduce((a, b) => a + b, 0);
  if (opts.topP !== undefined && opts.topP < 1) {
    let acc = 0;
    let k = 0;
    while (k < probs.length && acc < opts.topP * total) acc += probs[k++]!;
    cand = cand.slice(0, Math.max(1, k));
    probs = probs.slice(0, cand.length);
    total = probs.reduce((a, b) => a + b, 0);
  }
  let u = rng() * total;
  for (let k = 0; k < cand.length; k++) {
    u -= probs[k]!;
    if (u <= 0) return cand[k]!.v;
  }
  return cand[cand.length - 1]!.v;
}

/** Small seeded PRNG for sampling (Mulberry32). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
