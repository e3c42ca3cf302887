/**
 * Runtime benchmark (`npm run bench:runtime`): our onnxruntime decoder against transformers
 * (PyTorch, CPU) on the same ~100M-parameter Llama with random F32 weights.
 *
 * The checkpoint (hidden 768, 8 layers, 12 heads / 4 KV heads, FFN 2048, vocab 32000 ≈ 99.5M
 * parameters, 398 MB of F32) is generated once under ~/.cache/upcycle-bench/runtime-100m and reused
 * while its marker checks out. Each engine runs in its own child process, so RSS is its own:
 *   ort          loadModelSession({kvCache}) exactly as the app loads models: no pre-packing (weights
 *                stay file-backed, research §0.5) and no CPU memory arena;
 *   ort-prepack  the same with ORT's own defaults (pre-packed anonymous weight copy, CPU arena);
 *   torch        LlamaForCausalLM.from_pretrained(float32, attn_implementation eager by default),
 *                torch.set_num_threads(THREADS), eager mode (no torch.compile), via the
 *                Python oracle (scripts/python-oracle.sh; skipped with a note when unavailable).
 * Measured in each, generation phases first: session creation (cold = graph build + session; warm =
 * cached graph); prefill tokens/s of batch 1 × 512 (best of --repeats after a warm-up) as generation
 * runs it (logits of the last position only: logits_to_keep=1 in both engines); greedy decode
 * tokens/s of --new tokens after a 128-token prompt with the KV cache and without it (recomputing the
 * prefix each step; rate = 1 / median step time, robust to load from other processes; the first
 * step, the prompt's prefill, is excluded); the peak RSS so far ("gen"); one cached step after pasts
 * of 128/1024/2000 (ORT only; each step returns the whole KV cache to JS); then the full-logits
 * prefill (every position's logits, as scoring and perplexity need) and the peak RSS of the whole
 * run ("all"). RSS is reported against the F32
 * weight bytes, net of the process's RSS before the model was loaded (the Node or Python runtime).
 * Goals: ours ≥ 1.5× PyTorch for prefill and cached decode; net peak RSS ≤ 1.3× the weight bytes.
 *
 *   node build/test/bench/runtime.bench.js [--dir PATH] [--repeats 3] [--rounds 2] [--new 64] [--threads 2]
 *       [--torch-attn eager|sdpa] [--no-torch] [--check]
 * Prints a table, then one line of JSON. --check exits 1 when a goal is missed.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { Checkpoint } from '../../app/io/checkpoint.js';
import { OutputFolder } from '../../app/io/output-folder.js';
import { SafetensorsWriter, type TensorPlan } from '../../app/io/safetensors-writer.js';
import { Decoder } from '../../app/runtime/decoder.js';
import type { HostTensor } from '../../app/runtime/host-tensor.js';
import { loadModelSession } from '../../app/runtime/model-session.js';
import type { SessionConfig } from '../../app/runtime/ort.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const SHAPE = { hidden: 768, intermediate: 2048, layers: 8, heads: 12, kvHeads: 4, vocab: 32000 };
const MARKER = 'upcycle-bench.json';
const MARKER_VERSION = 1;
const PREFILL_TOKENS = 512;
const PROMPT_TOKENS = 128;
const GOAL_SPEEDUP = 1.5;
const GOAL_RSS = 1.3;
const KV_PASTS = [128, 1024, 2000];

// ───────────────────────────── arguments ─────────────────────────────

interface Args {
  dir: string;
  repeats: number;
  rounds: number;
  newTokens: number;
  threads: number;
  torchAttn: string;
  torch: boolean;
  check: boolean;
  child?: string;
  out?: string;
}

function parseArgs(argv: string[]): Args {
  const values = new Map<string, string>();
  const flags = new Set<string>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith('--')) throw new Error(`unexpected argument "${a}"`);
    const eq = a.indexOf('=');
    if (eq > 0) values.set(a.slice(2, eq), a.slice(eq + 1));
    else if (['--check', '--help', '--no-torch'].includes(a)) flags.add(a.slice(2));
    else {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      values.set(a.slice(2), v);
    }
  }
  if (flags.has('help')) {
    console.log('usage: node build/test/bench/runtime.bench.js [--dir PATH] [--repeats 3] [--rounds 2] [--new 64] [--threads 2] [--torch-attn eager|sdpa] [--no-torch] [--check]');
    process.exit(0);
  }
  for (const k of values.keys()) if (!['dir', 'repeats', 'rounds', 'new', 'threads', 'torch-attn', 'child', 'out'].includes(k)) throw new Error(`unknown flag --${k}`);
  const int = (k: string, d: number, min: number) => {
    const v = Number(values.get(k) ?? d);
    if (!Number.isInteger(v) || v < min) throw new Error(`--${k} must be an integer ≥ ${min}, got "${values.get(k)}"`);
    return v;
  };
  const torchAttn = values.get('torch-attn') ?? 'eager';
  if (!['sdpa', 'eager'].includes(torchAttn)) throw new Error(`--torch-attn must be sdpa or eager, got "${torchAttn}"`);
  return {
    dir: path.resolve(values.get('dir') ?? path.join(os.homedir(), '.cache', 'upcycle-bench', 'runtime-100m')),
    repeats: int('repeats', 3, 1),
    rounds: int('rounds', 2, 1),
    newTokens: int('new', 64, 2),
    threads: int('threads', 2, 1),
    torchAttn,
    torch: !flags.has('no-torch'),
    check: flags.has('check'),
    child: values.get('child'),
    out: values.get('out'),
  };
}

// ───────────────────────────── the checkpoint ─────────────────────────────

function plan(): TensorPlan[] {
  const { hidden: H, intermediate: I, layers, heads, kvHeads, vocab } = SHAPE;
  const kv = kvHeads * (H / heads);
  const t = (name: string, shape: number[]): TensorPlan => ({ name, dtype: 'F32', shape });
  const out = [t('model.embed_tokens.weight', [vocab, H])];
  for (let l = 0; l < layers; l++) {
    const p = `model.layers.${l}.`;
    out.push(
      t(`${p}input_layernorm.weight`, [H]), t(`${p}self_attn.q_proj.weight`, [H, H]), t(`${p}self_attn.k_proj.weight`, [kv, H]),
      t(`${p}self_attn.v_proj.weight`, [kv, H]), t(`${p}self_attn.o_proj.weight`, [H, H]), t(`${p}post_attention_layernorm.weight`, [H]),
      t(`${p}mlp.gate_proj.weight`, [I, H]), t(`${p}mlp.up_proj.weight`, [I, H]), t(`${p}mlp.down_proj.weight`, [H, I]),
    );
  }
  out.push(t('model.norm.weight', [H]), t('lm_head.weight', [vocab, H]));
  return out;
}

const numel = (s: number[]) => s.reduce((a, d) => a * d, 1);

function config(): Record<string, unknown> {
  const s = SHAPE;
  return {
    architectures: ['LlamaForCausalLM'], model_type: 'llama', vocab_size: s.vocab, hidden_size: s.hidden, intermediate_size: s.intermediate,
    num_hidden_layers: s.layers, num_attention_heads: s.heads, num_key_value_heads: s.kvHeads, hidden_act: 'silu', max_position_embeddings: 2048,
    rms_norm_eps: 1e-5, rope_theta: 10000.0, tie_word_embeddings: false, attention_bias: false, mlp_bias: false, bos_token_id: 1, torch_dtype: 'float32',
  };
}

/** Uniform random weights with std 1/√fan_in (embeddings std 1, norms 1): activations stay O(1). */
function fill(t: TensorPlan, seed: number): Float32Array {
  const v = new Float32Array(numel(t.shape));
  if (t.name.endsWith('norm.weight')) return v.fill(1);
  const half = t.name.includes('embed_tokens') ? Math.sqrt(3) : Math.sqrt(3 / t.shape[t.shape.length - 1]!);
  let x = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < v.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    v[i] = ((x >>> 0) / 4294967296 * 2 - 1) * half;
  }
  return v;
}

async function cacheValid(dir: string, p: TensorPlan[]): Promise<boolean> {
  try {
    const m = JSON.parse(fs.readFileSync(path.join(dir, MARKER), 'utf8')) as Record<string, unknown>;
    if (m['version'] !== MARKER_VERSION || JSON.stringify(m['shape']) !== JSON.stringify(SHAPE)) return false;
    const ck = await Checkpoint.open(dir);
    try {
      const bytes = ck.files.reduce((a, f) => a + (f.size - f.header.dataStart), 0);
      return ck.names.length === p.length && bytes === p.reduce((a, t) => a + numel(t.shape) * 4, 0) && !ck.problems.some((x) => x.severity === 'error');
    } finally {
      await ck.close();
    }
  } catch {
    return false;
  }
}

/** Generates the checkpoint unless a valid one is cached; returns the seconds spent (0 = cached). */
async function ensureModel(dir: string): Promise<number> {
  const p = plan();
  if (await cacheValid(dir, p)) return 0;
  if (fs.existsSync(dir) && !fs.existsSync(path.join(dir, MARKER))) throw new Error(`${dir} exists and is not a benchmark checkpoint; refusing to overwrite it (pass another --dir)`);
  const t0 = performance.now();
  const out = await OutputFolder.create(dir, { overwrite: true });
  try {
    const w = await SafetensorsWriter.create(out, p);
    try {
      for (const [i, t] of p.entries()) {
        const v = fill(t, i + 1);
        await w.write(t.name, new Uint8Array(v.buffer, v.byteOffset, v.byteLength));
      }
      await w.finish();
    } catch (e) {
      await w.close();
      throw e;
    }
    await out.writeFile('config.json', JSON.stringify(config(), null, 2) + '\n');
    await out.writeFile(MARKER, JSON.stringify({ version: MARKER_VERSION, shape: SHAPE }) + '\n');
    await out.commit();
  } catch (e) {
    await out.abort();
    throw e;
  }
  if (!(await cacheValid(dir, p))) throw new Error(`${dir}: the generated checkpoint does not validate`);
  return (performance.now() - t0) / 1000;
}

// ───────────────────────────── measurements ─────────────────────────────

/** Deterministic token ids (the same for every engine). */
function tokens(n: number, seed: number): number[] {
  let x = seed >>> 0;
  return Array.from({ length: n }, () => {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    return 3 + (x % (SHAPE.vocab - 3));
  });
}

interface DecodeRun {
  /** The first step: the prompt's prefill and first token. */
  first_s: number;
  /** The remaining steps. */
  rest_s: number;
  /** Seconds of each remaining step. */
  step_s: number[];
  steps: number;
  tokens: number[];
}

interface EngineResult {
  engine: string;
  version?: string;
  create_cold_s?: number;
  create_warm_s?: number;
  load_s?: number;
  /** A full forward of the prefill tokens with the logits of every position (scoring, perplexity). */
  prefill_s: number[];
  /** The same forward as generation runs it: logits of the last position only (logits_to_keep=1). */
  prefill_gen_s: number[];
  decode_cache: DecodeRun;
  decode_nocache: DecodeRun;
  rss_before: number;
  rss_loaded: number;
  rss_peak: number;
  /** Peak after the generation phases only (before the long-past probes and the full-logits forwards). */
  rss_peak_gen: number;
  /** Median seconds of one cached decode step after a past of each length (ORT only). */
  kv_step_s?: Record<string, number>;
  /** Best seconds of Decoder.logprobs over the prefill tokens: log-softmax in JS over fetched logits, or in the graph (ORT only). */
  score_js_s?: number;
  score_graph_s?: number;
}

const rssNow = () => process.memoryUsage().rss;
const peakRss = () => process.resourceUsage().maxRSS * 1024;

/** Session options of each ORT engine: the app's default, and ORT's own default (prepacked weights, CPU arena). */
const ORT_ENGINES: Record<string, (threads: number) => SessionConfig> = {
  'ort': (threads) => ({ intraOpThreads: threads }),
  'ort-prepack': (threads) => ({ intraOpThreads: threads, disablePrepacking: false, cpuMemArena: true }),
};

/**
 * One ORT configuration, measured in this (child) process. The generation phases run first and
 * their peak RSS is read before the full-logits forwards, whose [512, vocab] logits would hide it.
 */
async function ortChild(args: Args, engine: string): Promise<EngineResult> {
  const cache = fs.mkdtempSync(path.join(os.tmpdir(), 'upcycle-bench-graphs-'));
  process.env['UPCYCLE_CACHE_DIR'] = cache;
  try {
    const rssBefore = rssNow();
    const session = ORT_ENGINES[engine]!(args.threads);
    let t = performance.now();
    const loaded = await loadModelSession(args.dir, { kvCache: true, session });
    const createCold = (performance.now() - t) / 1000;
    const rssLoaded = rssNow();
    const dec = new Decoder(loaded);
    const prefillIds = tokens(PREFILL_TOKENS, 11);
    const timedForward = async (keep: number): Promise<number[]> => {
      await dec.forward([prefillIds], 0, undefined, keep); // warm-up
      const times: number[] = [];
      for (let r = 0; r < args.repeats; r++) {
        t = performance.now();
        await dec.forward([prefillIds], 0, undefined, keep);
        times.push((performance.now() - t) / 1000);
      }
      return times;
    };
    const prefillGen = await timedForward(1);
    // Step boundaries: each session.run starts a step (Decoder.generate runs one per token).
    const starts: number[] = [];
    const run = loaded.session.run.bind(loaded.session);
    loaded.session.run = (feeds, outputs) => {
      starts.push(performance.now());
      return run(feeds, outputs);
    };
    const generate = async (cache: boolean): Promise<DecodeRun> => {
      starts.length = 0;
      const [out] = await dec.generate([tokens(PROMPT_TOKENS, 23)], { maxNewTokens: args.newTokens, cache }, () => false);
      starts.push(performance.now());
      const step = starts.slice(1).map((t, i) => (t - starts[i]!) / 1000);
      return { first_s: step[0]!, rest_s: (starts[starts.length - 1]! - starts[1]!) / 1000, step_s: step.slice(1), steps: out!.length, tokens: out! };
    };
    await generate(true); // warm-up of the single-token path
    const cached = await generate(true);
    const uncached = await generate(false);
    loaded.session.run = run;
    const rssPeakGen = peakRss();
    // What the growing KV cache costs per step (concatenated into present and returned to JS each
    // step, research §4.7): one decode step after a past of KV_PASTS lengths.
    const kvStep: Record<string, number> = {};
    const cfg = loaded.config;
    for (const P of KV_PASTS) {
      const past: Record<string, HostTensor> = {};
      for (let i = 0; i < cfg.numLayers; i++) {
        for (const kv of ['key', 'value']) past[`present.${i}.${kv}`] = { dims: [1, cfg.numKvHeads, P, cfg.headDim], data: new Float32Array(cfg.numKvHeads * P * cfg.headDim).fill(0.01) };
      }
      const times: number[] = [];
      for (let r = 0; r < 9; r++) {
        const t0 = performance.now();
        await dec.forward([[5]], P, past, 1);
        times.push((performance.now() - t0) / 1000);
      }
      kvStep[P] = median(times.slice(1));
    }
    const prefill = await timedForward(0);
    const rssPeak = peakRss();
    // Scoring (perplexity, multiple choice, fitness): log p of each next token, from fetched logits with a
    // log-softmax in JS, or computed in the graph (tokenLogprobs: only [1, 512] floats come back).
    const timedScore = async (d: Decoder): Promise<number> => {
      await d.logprobs([prefillIds]);
      let best = Infinity;
      for (let r = 0; r < args.repeats; r++) {
        const t0 = performance.now();
        await d.logprobs([prefillIds]);
        best = Math.min(best, (performance.now() - t0) / 1000);
      }
      return best;
    };
    const scoreJs = await timedScore(dec);
    const scorer = await loadModelSession(args.dir, { tokenLogprobs: true, session });
    const scoreGraph = await timedScore(new Decoder(scorer));
    await scorer.session.release();
    await loaded.session.release();
    t = performance.now();
    const again = await loadModelSession(args.dir, { kvCache: true, session });
    const createWarm = (performance.now() - t) / 1000;
    await again.session.release();
    return {
      engine, create_cold_s: createCold, create_warm_s: createWarm, prefill_s: prefill, prefill_gen_s: prefillGen,
      decode_cache: cached, decode_nocache: uncached, rss_before: rssBefore, rss_loaded: rssLoaded, rss_peak: rssPeak, rss_peak_gen: rssPeakGen, kv_step_s: kvStep,
      score_js_s: scoreJs, score_graph_s: scoreGraph,
    };
  } finally {
    fs.rmSync(cache, { recursive: true, force: true });
  }
}

function runChild(args: Args, mode: string): EngineResult {
  const out = path.join(os.tmpdir(), `upcycle-bench-runtime-${process.pid}-${mode}.json`);
  const r = spawnSync(process.execPath, [fileURLToPath(import.meta.url), '--child', mode, '--out', out, '--dir', args.dir, '--repeats', String(args.repeats), '--new', String(args.newTokens), '--threads', String(args.threads)], { stdio: ['ignore', 'inherit', 'inherit'] });
  if (r.status !== 0) throw new Error(`benchmark child "${mode}" failed (exit ${r.status})`);
  const res = JSON.parse(fs.readFileSync(out, 'utf8')) as EngineResult;
  fs.rmSync(out, { force: true });
  return res;
}

function torchRun(args: Args): EngineResult | string {
  const oracle = spawnSync('bash', [path.join(ROOT, 'scripts', 'python-oracle.sh')], { encoding: 'utf8', timeout: 40 * 60_000 });
  const python = (oracle.stdout ?? '').trim().split('\n').pop()?.trim();
  if (oracle.status !== 0 || !python || !fs.existsSync(python)) {
    return `PyTorch not measured: scripts/python-oracle.sh failed (exit ${oracle.status}): ${(oracle.stderr ?? '').trim().split('\n').slice(-3).join(' | ')}`;
  }
  const job = path.join(os.tmpdir(), `upcycle-bench-runtime-${process.pid}-torch.json`);
  fs.writeFileSync(job, JSON.stringify({ dir: args.dir, threads: args.threads, attn: args.torchAttn, prefill_ids: tokens(PREFILL_TOKENS, 11), prompt_ids: tokens(PROMPT_TOKENS, 23), new_tokens: args.newTokens, repeats: args.repeats }));
  const r = spawnSync(python, [path.join(ROOT, 'test', 'bench', 'torch_runtime.py'), job], { encoding: 'utf8', env: { ...process.env, HF_HUB_OFFLINE: '1', TRANSFORMERS_VERBOSITY: 'error' }, maxBuffer: 16 << 20 });
  fs.rmSync(job, { force: true });
  if (r.status !== 0) throw new Error(`torch_runtime.py failed (exit ${r.status}):\n${(r.stderr ?? '').trim().split('\n').slice(-20).join('\n')}`);
  const j = JSON.parse(r.stdout.trim().split('\n').pop()!) as Record<string, unknown>;
  return {
    engine: `torch-${args.torchAttn}`, version: String(j['torch']), load_s: j['load_s'] as number, prefill_s: j['prefill_s'] as number[],
    prefill_gen_s: j['prefill_gen_s'] as number[], decode_cache: j['decode_cache'] as DecodeRun, decode_nocache: j['decode_nocache'] as DecodeRun,
    rss_before: j['rss_import'] as number, rss_loaded: j['rss_loaded'] as number, rss_peak: j['rss_peak'] as number, rss_peak_gen: j['rss_peak_gen'] as number,
  };
}

// ───────────────────────────── report ─────────────────────────────

/** The best of several rounds of one engine: fastest times and rates, smallest RSS. */
function bestOf(rs: EngineResult[]): EngineResult {
  const minOf = (f: (e: EngineResult) => number | undefined) => {
    const v = rs.map(f).filter((x): x is number => x !== undefined);
    return v.length ? Math.min(...v) : undefined;
  };
  const fastest = (f: (e: EngineResult) => DecodeRun) => rs.map(f).reduce((a, b) => (decodeTps(b) > decodeTps(a) ? b : a));
  const peakIdx = rs.reduce((bi, e, i) => (e.rss_peak_gen - e.rss_before < rs[bi]!.rss_peak_gen - rs[bi]!.rss_before ? i : bi), 0);
  const kv = rs[0]!.kv_step_s ? Object.fromEntries(Object.keys(rs[0]!.kv_step_s).map((P) => [P, Math.min(...rs.map((e) => e.kv_step_s![P]!))])) : undefined;
  return {
    ...rs[peakIdx]!,
    create_cold_s: minOf((e) => e.create_cold_s), create_warm_s: minOf((e) => e.create_warm_s), load_s: minOf((e) => e.load_s),
    prefill_s: rs.flatMap((e) => e.prefill_s),
    prefill_gen_s: rs.flatMap((e) => e.prefill_gen_s),
    decode_cache: fastest((e) => e.decode_cache),
    decode_nocache: fastest((e) => e.decode_nocache),
    ...(kv ? { kv_step_s: kv } : {}),
    ...(rs[0]!.score_js_s !== undefined ? { score_js_s: minOf((e) => e.score_js_s!), score_graph_s: minOf((e) => e.score_graph_s!) } : {}),
  };
}

const best = (xs: number[]) => Math.min(...xs);
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const prefillTps = (e: EngineResult) => PREFILL_TOKENS / best(e.prefill_s);
const prefillGenTps = (e: EngineResult) => PREFILL_TOKENS / best(e.prefill_gen_s);
/** Tokens/s from the median step (robust to other processes' load); `decodeMeanTps` from the total. */
const decodeTps = (d: DecodeRun) => 1 / median(d.step_s);
const decodeMeanTps = (d: DecodeRun) => (d.steps - 1) / d.rest_s;
/** Tokens/s of the fastest step: the uncontended speed when other processes load the machine. */
const decodeBestTps = (d: DecodeRun) => 1 / best(d.step_s);
const mb = (b: number) => `${(b / 1e6).toFixed(0)} MB`;
const fmt = (x: number | undefined, digits = 1) => (x === undefined || !Number.isFinite(x) ? '–' : x.toFixed(digits));

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  if (args.child) {
    const res = await ortChild(args, args.child);
    fs.writeFileSync(args.out!, JSON.stringify(res));
    return;
  }
  const genS = await ensureModel(args.dir);
  const weightBytes = plan().reduce((a, t) => a + numel(t.shape) * 4, 0);
  /** Net peak RSS over the F32 weight bytes: of the generation phases, or of the whole run (+ full-logits forwards). */
  const netGen = (e: EngineResult) => (e.rss_peak_gen - e.rss_before) / weightBytes;
  const netRatio = (e: EngineResult) => (e.rss_peak - e.rss_before) / weightBytes;
  const params = weightBytes / 4;
  console.log(`model: ${args.dir} — Llama ${SHAPE.layers} layers, hidden ${SHAPE.hidden}, ${SHAPE.heads}/${SHAPE.kvHeads} heads, FFN ${SHAPE.intermediate}, vocab ${SHAPE.vocab}: ${(params / 1e6).toFixed(1)}M parameters, ${mb(weightBytes)} F32${genS ? ` (generated in ${genS.toFixed(1)} s)` : ' (cached)'}`);
  console.log(`load average ${os.loadavg().map((x) => x.toFixed(1)).join(' ')} on ${os.availableParallelism()} CPUs (other processes skew timings: each figure is the best of ${args.rounds} rounds; prefill best of N, decode the median step)`);
  console.log(`threads ${args.threads}, prefill 1×${PREFILL_TOKENS} best of ${args.repeats} (for generation: logits of the last position only; full: of all ${PREFILL_TOKENS}), decode ${args.newTokens} greedy tokens after a ${PROMPT_TOKENS}-token prompt (first step excluded from the rate)\n`);

  // Rounds alternate the engines, so a burst of load from other processes hits each of them; every
  // figure is then the best over the rounds.
  const engines = Object.keys(ORT_ENGINES);
  const rounds: EngineResult[][] = [...engines, 'torch'].map(() => []);
  let torchNote: string | undefined = args.torch ? undefined : 'PyTorch not measured (--no-torch)';
  for (let r = 0; r < args.rounds; r++) {
    process.stderr.write(`round ${r + 1}/${args.rounds}…\n`);
    engines.forEach((name, i) => rounds[i]!.push(runChild(args, name)));
    if (args.torch && torchNote === undefined) {
      const t = torchRun(args);
      if (typeof t === 'string') torchNote = t;
      else rounds[engines.length]!.push(t);
    }
  }
  const results = rounds.filter((rs) => rs.length > 0).map(bestOf);

  const header = ['engine', 'create cold s', 'create warm s', 'prefill (gen) tok/s', 'prefill (full) tok/s', 'decode+KV tok/s', '(best step)', 'decode no-KV tok/s', 'RSS before', 'RSS loaded', 'peak gen', 'peak all', 'net gen/W', 'net all/W'];
  const rows = results.map((e) => [
    e.engine, fmt(e.create_cold_s ?? e.load_s, 2), fmt(e.create_warm_s, 2), fmt(prefillGenTps(e)), fmt(prefillTps(e)), fmt(decodeTps(e.decode_cache)), fmt(decodeBestTps(e.decode_cache)), fmt(decodeTps(e.decode_nocache), 2),
    mb(e.rss_before), mb(e.rss_loaded), mb(e.rss_peak_gen), mb(e.rss_peak), `${fmt(netGen(e), 2)}×`, `${fmt(netRatio(e), 2)}×`,
  ]);
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c]!.length)));
  for (const r of [header, ...rows]) console.log(r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('  '));
  console.log('');

  console.log('(torch "create cold" = from_pretrained; W = F32 weight bytes; net = peak − RSS before loading the model; "gen" = after the generation phases, "all" = also after full-logits forwards)\n');
  const ort = results[0]!;
  const torch = results.find((e) => e.engine.startsWith('torch'));
  const ratiosOf = (e: EngineResult, t: EngineResult) => ({
    prefill_gen: prefillGenTps(e) / prefillGenTps(t),
    prefill_full: prefillTps(e) / prefillTps(t),
    decode_cache: decodeTps(e.decode_cache) / decodeTps(t.decode_cache),
    decode_cache_best_step: decodeBestTps(e.decode_cache) / decodeBestTps(t.decode_cache),
    decode_nocache: decodeTps(e.decode_nocache) / decodeTps(t.decode_nocache),
  });
  const ratios = torch ? Object.fromEntries(results.filter((e) => e !== torch).map((e) => [e.engine, ratiosOf(e, torch)])) : undefined;
  if (ratios) {
    for (const [name, r] of Object.entries(ratios)) {
      console.log(`${name} / PyTorch (${torch!.engine} ${torch!.version}): prefill for generation ${fmt(r.prefill_gen, 2)}×, full-logits prefill ${fmt(r.prefill_full, 2)}×, decode with KV ${fmt(r.decode_cache, 2)}× (best steps ${fmt(r.decode_cache_best_step, 2)}×), decode without KV ${fmt(r.decode_nocache, 2)}× (goal ≥ ${GOAL_SPEEDUP}×)`);
    }
    const same = (a: number[], b: number[]) => a.length === b.length && a.every((x, i) => x === b[i]);
    console.log(`greedy tokens: ours with vs without KV ${same(ort.decode_cache.tokens, ort.decode_nocache.tokens) ? 'identical' : 'DIFFER'}; ours vs PyTorch ${same(ort.decode_cache.tokens, torch!.decode_cache.tokens) ? 'identical' : 'differ (near-ties in random logits)'}`);
  } else console.log(torchNote);
  for (const e of results.filter((x) => x.kv_step_s)) {
    const k = e.kv_step_s!;
    const bytes = (P: number) => 2 * SHAPE.layers * SHAPE.kvHeads * P * (SHAPE.hidden / SHAPE.heads) * 4;
    console.log(`${e.engine}: cached decode step after a past of ${KV_PASTS.map((P) => `${P}: ${fmt(k[P]! * 1000)} ms`).join(', ')} — the KV cache (${mb(bytes(KV_PASTS[KV_PASTS.length - 1]!))} at ${KV_PASTS[KV_PASTS.length - 1]}) adds ${fmt(((k[KV_PASTS[KV_PASTS.length - 1]!]! - k[KV_PASTS[0]!]!) / k[KV_PASTS[0]!]!) * 100, 0)}% per step`);
  }
  for (const e of results.filter((x) => x.score_js_s !== undefined)) {
    console.log(`${e.engine}: scoring ${PREFILL_TOKENS} tokens (log p of each next token): log-softmax in JS over the fetched logits ${fmt(e.score_js_s! * 1000)} ms, in the graph ${fmt(e.score_graph_s! * 1000)} ms (${fmt(e.score_js_s! / e.score_graph_s!, 2)}×)`);
  }
  console.log(`net peak RSS / F32 weight bytes (generation; whole run): ${results.map((e) => `${e.engine} ${fmt(netGen(e), 2)}×; ${fmt(netRatio(e), 2)}×`).join(', ')} (goal ≤ ${GOAL_RSS}×)`);
  console.log('');

  const engine = (e: EngineResult) => ({
    create_cold_s: e.create_cold_s, create_warm_s: e.create_warm_s, load_s: e.load_s, prefill_gen_tok_s: prefillGenTps(e), prefill_tok_s: prefillTps(e), decode_kv_tok_s: decodeTps(e.decode_cache),
    decode_nokv_tok_s: decodeTps(e.decode_nocache), decode_kv_mean_tok_s: decodeMeanTps(e.decode_cache), decode_kv_best_step_tok_s: decodeBestTps(e.decode_cache), decode_nokv_mean_tok_s: decodeMeanTps(e.decode_nocache),
    rss_before: e.rss_before, rss_loaded: e.rss_loaded, rss_peak_gen: e.rss_peak_gen, rss_peak: e.rss_peak, rss_peak_ratio: e.rss_peak / weightBytes, rss_net_peak_gen_ratio: netGen(e), rss_net_peak_ratio: netRatio(e),
    ...(e.kv_step_s ? { kv_step_ms: Object.fromEntries(Object.entries(e.kv_step_s).map(([P, v]) => [P, v * 1000])) } : {}),
    ...(e.score_js_s !== undefined ? { score_js_ms: e.score_js_s * 1000, score_graph_ms: e.score_graph_s! * 1000 } : {}),
  });
  // Goals on the app's default session (the first engine).
  const r0 = ratios?.[ort.engine];
  const goals = {
    prefill_gen: r0 ? r0.prefill_gen >= GOAL_SPEEDUP : null,
    prefill_full: r0 ? r0.prefill_full >= GOAL_SPEEDUP : null,
    decode: r0 ? r0.decode_cache >= GOAL_SPEEDUP : null,
    rss_gen: netGen(ort) <= GOAL_RSS,
    rss_all: netRatio(ort) <= GOAL_RSS,
  };
  const summary = {
    bench: 'runtime', loadavg_1m: os.loadavg()[0], params, weight_bytes: weightBytes, threads: args.threads, prefill_tokens: PREFILL_TOKENS, prompt_tokens: PROMPT_TOKENS, new_tokens: args.newTokens,
    ...Object.fromEntries(results.map((e) => [e.engine.replace('-', '_'), engine(e)])), ratios: ratios ?? null, goals, torch_note: torchNote ?? null,
  };
  console.log(JSON.stringify(summary));
  if (args.check && Object.values(goals).some((g) => g === false)) process.exit(1);
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.stack ?? e.message : e);
  process.exit(1);
});
