/**
 * Evolutionary merge search (Sakana AI, arXiv 2403.13187; mergekit-evolve): CMA-ES over merge
 * parameters — per model and per layer group, a weight and (for TIES/DARE) a density — with a smooth
 * fitness measured locally: the mean log-likelihood of each seed answer given its prompt (exact match
 * of plain merges is often 0 everywhere, which gives the search nothing to climb). Runs on this
 * machine with our own merge engine and runtime: no GPU cluster, no Ray.
 *
 * Genome → recipe (as mergekit-evolve decodes it): weight = |x|, density = clamp(|x|, 0.05, 1); a
 * model's per-group values become a mergekit gradient list across the layers. mergekit's default recipe
 * for the method is evaluated first as the baseline (the result is never worse on the fitness data); the
 * search starts from equal weights and density 0.5 (defaultGenome), unnormalised for TIES (decodeGenome).
 */
import { mkdir, readFile, rm } from 'node:fs/promises';
import { isAbsolute, join, resolve } from 'node:path';
import { parse as parseYaml, stringify as toYaml } from 'yaml';
import { CmaEs } from '../core/cmaes.js';
import { withCheckpoint } from '../io/checkpoint.js';
import { OutputFolder } from '../io/output-folder.js';
import { loadTask } from '../eval/tasks.js';
import { parseMergeConfig } from '../merge/config.js';
import { runMerge } from '../merge/execute.js';
import { Decoder } from '../runtime/decoder.js';
import { loadModelSession } from '../runtime/model-session.js';
import { TextTokenizer } from '../runtime/tokenizer.js';

export interface EvolveRecipe {
  base: string;
  models: string[];
  method: 'ties' | 'dare_ties' | 'task_arithmetic' | 'linear';
  layerGroups: number;
  fitness: string[];
  budget: number;
  popsize?: number;
  sigma: number;
  seed: number;
  dtype: string;
  limit?: number;
  /** TIES/DARE-TIES: divide by the agreeing weights' sum (mergekit's default) or not (ours, see decodeGenome). */
  normalize: boolean;
}

export interface GenerationLog {
  generation: number;
  evaluations: number;
  best: number;
  mean: number;
  sigma: number;
  bestSoFar: number;
}

export interface EvolveResult {
  out: string;
  bestFitness: number;
  defaultFitness: number;
  /** Fitness of the search's starting recipe (defaultGenome). */
  startFitness: number;
  bestConfig: Record<string, unknown>;
  generations: GenerationLog[];
  evaluations: number;
  seconds: number;
}

const EVOLVE_KEYS = ['base_model', 'models', 'merge_method', 'layer_groups', 'normalize', 'fitness', 'budget', 'popsize', 'sigma', 'random_seed', 'dtype', 'limit'];
const DTYPES = ['float32', 'float16', 'bfloat16'];

export function parseEvolveYaml(text: string, yamlPath: string): EvolveRecipe {
  const dir = resolve(yamlPath, '..');
  const bad = (m: string): never => {
    throw new Error(`${yamlPath}: ${m}`);
  };
  let y: Record<string, unknown> = {};
  try {
    y = parseYaml(text) as Record<string, unknown>;
  } catch (e) {
    bad(`not valid YAML (${(e as Error).message.split('\n')[0]})`);
  }
  if (typeof y !== 'object' || y === null || Array.isArray(y)) bad('the config must be a mapping (base_model, models, fitness, …)');
  for (const k of Object.keys(y)) if (!EVOLVE_KEYS.includes(k)) bad(`unknown key "${k}" (supported: ${EVOLVE_KEYS.join(', ')})`);
  const abs = (p: unknown, what: string) => (typeof p === 'string' && p ? (isAbsolute(p) ? p : join(dir, p)) : bad(`${what} must be a path`));
  const method = (y['merge_method'] ?? 'ties') as string;
  if (!['ties', 'dare_ties', 'task_arithmetic', 'linear'].includes(method)) bad(`merge_method "${method}" cannot be evolved (ties, dare_ties, task_arithmetic, linear can)`);
  if (!Array.isArray(y['models']) || y['models'].length < 2) bad('models must list at least two models');
  if (!Array.isArray(y['fitness']) || y['fitness'].length === 0) bad('fitness must list JSONL files ({text} lines "<prompt> =<answer>" or {prompt, answer})');
  const int = (v: unknown, d: number, what: string, min = 1) => {
    const n = v ?? d;
    if (!Number.isInteger(n) || (n as number) < min) bad(`${what} must be an integer ≥ ${min}`);
    return n as number;
  };
  const model = (m: unknown, i: number) => {
    if (typeof m !== 'object' || m === null) return abs(m, `models[${i}]`);
    // The search sets each model's parameters itself; anything else here would be silently ignored.
    const extra = Object.keys(m).filter((k) => k !== 'model');
    if (extra.length) bad(`models[${i}]: only "model" is read (the search chooses the parameters); remove ${extra.map((k) => `"${k}"`).join(', ')}`);
    return abs((m as { model?: unknown }).model, `models[${i}]`);
  };
  const sigma = y['sigma'] ?? 1 / 6;
  if (typeof sigma !== 'number' || !(sigma > 0) || !Number.isFinite(sigma)) bad('sigma must be a positive number (the initial step of the search, in weight/density units; default 1/6)');
  const dtype = y['dtype'] ?? 'float32';
  if (typeof dtype !== 'string' || !DTYPES.includes(dtype)) bad(`dtype must be one of ${DTYPES.join(', ')}`);
  const r: EvolveRecipe = {
    base: abs(y['base_model'], 'base_model'),
    models: (y['models'] as unknown[]).map(model),
    method: method as EvolveRecipe['method'],
    layerGroups: int(y['layer_groups'], 2, 'layer_groups'),
    fitness: (y['fitness'] as unknown[]).map((f, i) => abs(f, `fitness[${i}]`)),
    budget: int(y['budget'], 60, 'budget', 2),
    popsize: y['popsize'] === undefined ? undefined : int(y['popsize'], 8, 'popsize', 2),
    sigma: sigma as number,
    seed: int(y['random_seed'], 0, 'random_seed', 0),
    dtype: dtype as string,
    limit: y['limit'] === undefined ? undefined : int(y['limit'], 0, 'limit'),
    normalize: y['normalize'] === undefined ? false : typeof y['normalize'] === 'boolean' ? y['normalize'] : bad('normalize must be true or false'),
  };
  const short = budgetProblem(r);
  if (short) bad(short);
  return r;
}

/**
 * Baseline + start + at least one generation, or the run would only evaluate the defaults: the reason, or
 * null. The start costs nothing when it is the baseline recipe (evolveMerge reuses its fitness).
 */
export function budgetProblem(r: EvolveRecipe): string | null {
  const x0 = defaultGenome(r);
  if (x0.length === 0) return 'nothing to search: the recipe needs at least one model and layer_groups ≥ 1';
  const lambda = r.popsize ?? 4 + Math.floor(3 * Math.log(x0.length));
  const startIsBaseline = JSON.stringify(decodeGenome(r, x0)) === JSON.stringify(baselineConfig(r));
  const need = (startIsBaseline ? 1 : 2) + lambda;
  if (r.budget >= need) return null;
  return `budget ${r.budget} leaves no generation: it needs at least ${need} evaluations (the baseline, ${startIsBaseline ? '' : 'the start, '}and one generation of ${lambda}); raise budget or lower popsize`;
}

/**
 * Lowest density a genome decodes to. Magnitude trimming refuses to keep no entries (as mergekit asserts
 * k > 0), and 0.01 of a 96-wide norm vector is 0: 0.05 keeps ≥ 3 entries of any tensor of ≥ 64 values.
 */
const MIN_DENSITY = 0.05;

const usesDensity = (m: string) => m === 'ties' || m === 'dare_ties';

/**
 * mergekit config for a genome. TIES is searched unnormalised by default: with `normalize: true` the
 * merged delta is divided by the agreeing weights' sum, so the weights' common scale cancels (one wasted
 * dimension per layer group) and the delta can never be smaller than an average of agreeing task vectors.
 * On the ffn-* fixtures that is the difference between −4.08 (normalised, default) and −3.12 (weights 0.4,
 * density 0.3, unnormalised) seed log-likelihood; linear is −3.23. `normalize: true` restores
 * mergekit-evolve's behaviour.
 */
export function decodeGenome(r: EvolveRecipe, x: number[]): Record<string, unknown> {
  const G = r.layerGroups;
  const per = usesDensity(r.method) ? 2 : 1;
  const list = (vals: number[]) => (vals.length === 1 ? vals[0] : vals.map((v) => Math.round(v * 1e6) / 1e6));
  return {
    merge_method: r.method,
    ...(r.method === 'linear' ? {} : { base_model: r.base }),
    models: r.models.map((m, i) => {
      const w: number[] = [];
      const d: number[] = [];
      for (let g = 0; g < G; g++) {
        const o = (i * G + g) * per;
        w.push(Math.abs(x[o]!));
        if (per === 2) d.push(Math.min(1, Math.max(MIN_DENSITY, Math.abs(x[o + 1]!))));
      }
      return { model: m, parameters: { weight: list(w), ...(per === 2 ? { density: list(d) } : {}) } };
    }),
    ...(usesDensity(r.method) ? { parameters: { normalize: r.normalize } } : {}),
    dtype: r.dtype,
  };
}

/**
 * Where the search starts: equal weights — 1 when the method normalises them (linear, normalised TIES),
 * else 1/n, i.e. the models' mean task vector — and density 0.5.
 */
export function defaultGenome(r: EvolveRecipe): number[] {
  const per = usesDensity(r.method) ? 2 : 1;
  const normalises = r.method === 'linear' || (usesDensity(r.method) && r.normalize);
  const w = normalises ? 1 : 1 / r.models.length;
  const x: number[] = [];
  for (let i = 0; i < r.models.length * r.layerGroups; i++) {
    x.push(w);
    if (per === 2) x.push(0.5);
  }
  return x;
}

/**
 * The recipe a user would write without a search — mergekit's documented defaults (TIES/DARE-TIES:
 * every weight 1, density 0.5, normalised; linear: equal weights; task arithmetic: weights 1/n) —
 * evaluated first as the baseline the result is judged against and never worse than.
 */
export function baselineConfig(r: EvolveRecipe): Record<string, unknown> {
  const w = r.method === 'task_arithmetic' ? 1 / r.models.length : 1;
  return {
    merge_method: r.method,
    ...(r.method === 'linear' ? {} : { base_model: r.base }),
    models: r.models.map((m) => ({ model: m, parameters: { weight: w, ...(usesDensity(r.method) ? { density: 0.5 } : {}) } })),
    ...(usesDensity(r.method) ? { parameters: { normalize: true } } : {}),
    dtype: r.dtype,
  };
}

/** Items of the fitness files as (prompt, answer) pairs: `{prompt, answer}`, or `{text}` split at its last " =". */
export async function fitnessItems(files: string[], limit?: number): Promise<{ prompt: string; answer: string }[]> {
  const out: { prompt: string; answer: string }[] = [];
  for (const f of files) {
    const t = await loadTask(f, limit);
    for (const it of t.items) {
      if ('prompt' in it) out.push({ prompt: it.prompt, answer: it.answer });
      else if ('text' in it) {
        const at = it.text.lastIndexOf(' =');
        if (at < 0) throw new Error(`${f}: the line "${it.text.slice(0, 40)}" has no " =" to split prompt and answer at`);
        out.push({ prompt: it.text.slice(0, at + 2), answer: it.text.slice(at + 2) });
      }
    }
  }
  return out;
}

/** Mean over items of the mean log-probability of the answer's tokens given the prompt. */
export async function answerLogLikelihood(modelDir: string, items: { prompt: string; answer: string }[], signal?: AbortSignal): Promise<number> {
  const loaded = await loadModelSession(modelDir, { tokenLogprobs: true });
  try {
    const tok = TextTokenizer.load(modelDir, loaded.config.eosTokenId);
    const seqs: number[][] = [];
    const lens: number[] = [];
    for (const it of items) {
      const p = await tok.encode(it.prompt, true);
      const a = await tok.encode(it.answer, false);
      seqs.push([...p, ...a]);
      lens.push(a.length);
    }
    const lps = await new Decoder(loaded).logprobs(seqs, { signal });
    let total = 0;
    lps.forEach((lp, i) => {
      let s = 0;
      for (let t = lp.length - lens[i]!; t < lp.length; t++) s += lp[t]!;
      total += s / Math.max(1, lens[i]!);
    });
    return total / items.length;
  } finally {
    await loaded.session.release();
    await rm(loaded.dir, { recursive: true, force: true }); // candidate graphs are one-off: drop their hard links
  }
}

export async function evolveMerge(r: EvolveRecipe, outDir: string, opts: { signal?: AbortSignal; onGeneration?: (g: GenerationLog) => void; onEvaluation?: (n: number, fitness: number) => void; overwrite?: boolean } = {}): Promise<EvolveResult> {
  const t0 = performance.now();
  const short = budgetProblem(r);
  if (short) throw new Error(short);
  const layers = await withCheckpoint(r.base, async (ck) => ck.config?.numLayers ?? 0);
  if (layers % r.layerGroups !== 0 && r.layerGroups !== 1) throw new Error(`layer_groups ${r.layerGroups} does not divide the ${layers} layers`);
  const items = await fitnessItems(r.fitness, r.limit);
  const out = await OutputFolder.create(outDir, { overwrite: opts.overwrite });
  const scratch = join(out.tmp, 'candidates');
  await mkdir(scratch, { recursive: true });
  try {
    let evaluations = 0;
    const evaluate = async (config: Record<string, unknown>): Promise<number> => {
      opts.signal?.throwIfAborted();
      const dir = join(scratch, `c${evaluations}`);
      await runMerge(parseMergeConfig(config, '/'), dir, { seed: r.seed, workers: 1, signal: opts.signal });
      try {
        const f = await answerLogLikelihood(dir, items, opts.signal);
        evaluations++;
        opts.onEvaluation?.(evaluations, f);
        return f;
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    };
    const base = baselineConfig(r);
    const defaultFitness = await evaluate(base);
    let best: { config: Record<string, unknown>; x: number[] | null; f: number } = { config: base, x: null, f: defaultFitness };
    const x0 = defaultGenome(r);
    const start = decodeGenome(r, x0);
    // The start differs from the baseline unless normalised TIES/linear is searched; then it is the same recipe.
    const startFitness = JSON.stringify(start) === JSON.stringify(base) ? defaultFitness : await evaluate(start);
    if (startFitness > best.f) best = { config: start, x: x0, f: startFitness };
    const es = new CmaEs(x0, { sigma0: r.sigma, popsize: r.popsize, seed: r.seed });
    const generations: GenerationLog[] = [];
    while (evaluations + es.lambda <= r.budget) {
      const xs = es.ask();
      const fs: number[] = [];
      for (const x of xs) {
        const config = decodeGenome(r, x);
        const f = await evaluate(config);
        fs.push(f);
        if (f > best.f) best = { config, x, f };
      }
      es.tell(fs.map((f) => -f));
      const g: GenerationLog = { generation: es.generation, evaluations, best: Math.max(...fs), mean: fs.reduce((a, b) => a + b, 0) / fs.length, sigma: es.sigma, bestSoFar: best.f };
      generations.push(g);
      opts.onGeneration?.(g);
    }
    await rm(scratch, { recursive: true, force: true });
    const bestConfig = best.config;
    await runMerge(parseMergeConfig(bestConfig, '/'), out.path('model'), { seed: r.seed, signal: opts.signal });
    await out.writeFile('best_recipe.yml', toYaml(bestConfig));
    await out.writeFile('evolution_log.json', JSON.stringify({ recipe: r, baseline: base, default_fitness: defaultFitness, start_fitness: startFitness, best_fitness: best.f, best_genome: best.x, generations }, null, 2) + '\n');
    const target = await out.commit();
    return { out: target, bestFitness: best.f, defaultFitness, startFitness, bestConfig, generations, evaluations, seconds: (performance.now() - t0) / 1000 };
  } catch (e) {
    await out.abort();
    throw e;
  }
}

export async function readEvolveYaml(path: string): Promise<EvolveRecipe> {
  return parseEvolveYaml(await readFile(path, 'utf8'), path);
}
