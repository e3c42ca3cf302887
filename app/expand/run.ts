/**
 * Genetic expert expansion (UpIT, arXiv 2410.01610 §3.2; research merge-anchors §4.1): from K dense
 * checkpoints of one base to M > K experts. Each generation
 *   1. takes the pool's cosine similarity matrix of task vectors (θ − θ_base, on a deterministic
 *      sample of parameters, similarity.ts) and picks the most dissimilar pair (p₁, p₂);
 *   2. makes N candidates with the merge engine: `dare_linear` over the base with weights α and
 *      1 − α, α ~ U(α_min, α_max), every parent's task vector randomly dropped with keep probability
 *      `density` and rescaled (DARE's drop is the mutation), each candidate with its own mask seed;
 *   3. keeps the candidate whose highest similarity to any expert of the pool is lowest, optionally
 *      traded against its mean log-likelihood on seed data (formula in similarity.ts
 *      `chooseCandidate`), and adds it to the pool.
 *
 * Randomness, all from the recipe's seed: α of candidate c in generation g is drawn from
 * `createRng(seed).fork('expand/alpha').fork(g).fork(c)`, its mask seed (runMerge's seed) from
 * `…fork('expand/merge').fork(g).fork(c)`; the parameter sample from `fork('expand/similarity')`.
 * DARE masks derive from (mask seed, tensor name, parent name), and parents are named expert-01 …
 * expert-M (never by path), so the output does not depend on where it is written. Same seed → the
 * same experts byte for byte and the same `expansion_log.json` except its `timings`.
 *
 * Output (one atomic folder; cancelling or failing leaves nothing):
 *   OUT/expert-01 … OUT/expert-K  the K originals: weights hard-linked (`originals: link`, copied
 *                                 across filesystems; small files always copied, so editing a
 *                                 config.json never edits the original) or copied (`copy`); with
 *                                 `reference` no folder is written and the log records their paths;
 *   OUT/expert-K+1 … expert-M     the kept children, complete HF model folders;
 *   OUT/expansion_log.json        per generation: similarity matrix, parents, every candidate's α,
 *                                 similarities and score, the kept child, diversity (log.ts);
 *   OUT/README.md                 a summary table.
 * Candidates are merged into OUT/.candidates/ (inside the hidden partial folder), compared with the
 * pool one by one and deleted as soon as they lose, so at most two candidates are on disk at a time
 * (with seed data, a kept candidate that was not the last is merged again; see the loop).
 */
import { copyFile, link, mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import { extname, join, resolve } from 'node:path';
import { stringify as toYaml } from 'yaml';
import { torchDTypeName } from '../core/dtypes.js';
import { createRng } from '../core/merge/index.js';
import { Checkpoint } from '../io/checkpoint.js';
import { OutputFolder } from '../io/output-folder.js';
import { parseMergeConfig } from '../merge/config.js';
import { runMerge } from '../merge/execute.js';
import { TextTokenizer } from '../runtime/tokenizer.js';
import type { ExpandRecipe } from './config.js';
import type { ExpansionLog, ExpansionTimings, LoggedCandidate, LoggedExpert, LoggedGeneration, PoolSnapshot } from './log.js';
import { encodeSeed, loadSeedTexts, seedLogLikelihood } from './seed-score.js';
import { chooseCandidate, cosineOf, diversity, Gram, mostDissimilarPair, planSample, type Pair, type SamplePlan } from './similarity.js';
import { similarityTensors, taskVectorDots } from './task-vectors.js';

export interface ExpandProgress {
  phase: 'similarity' | 'merging' | 'scoring' | 'writing' | 'done';
  /** 0 before the first generation. */
  generation: number;
  generations: number;
  candidate?: number;
  candidates: number;
  /** Overall progress, 0 … 1. */
  fraction: number;
  detail?: string;
}

export interface ExpandOptions {
  /** Overrides the recipe's seed. */
  seed?: number;
  overwrite?: boolean;
  /** Merge worker threads per candidate (default: 1 for models under 64 MiB, else runMerge's default). */
  workers?: number;
  memoryBudget?: number;
  shardBytes?: number;
  signal?: AbortSignal;
  onProgress?: (p: ExpandProgress) => void;
}

export interface ExpandResult {
  out: string;
  /** Absolute paths of the M experts, in order. */
  experts: string[];
  log: ExpansionLog;
  seconds: number;
}

export const LOG_FILE = 'expansion_log.json';

interface PoolExpert {
  name: string;
  /** Where to read it from now (inside the partial folder for generated experts). */
  readPath: string;
  logged: LoggedExpert;
}

const PICKLE = new Set(['.bin', '.pt', '.pth', '.ckpt', '.pkl', '.pickle']);

export function expertName(i: number, total: number): string {
  return `expert-${String(i + 1).padStart(Math.max(2, String(total).length), '0')}`;
}

/** α and mask seed of candidate c in generation g (see the file comment). */
export function candidateDraws(seed: number, g: number, c: number, alpha: readonly [number, number]): { alpha: number; mergeSeed: number } {
  const root = createRng(seed);
  const u = root.fork('expand/alpha').fork(g).fork(c).nextFloat();
  return { alpha: alpha[0] + (alpha[1] - alpha[0]) * u, mergeSeed: root.fork('expand/merge').fork(g).fork(c).nextUint32() };
}

export async function runExpansion(recipe: ExpandRecipe, outDir: string, opts: ExpandOptions = {}): Promise<ExpandResult> {
  const t0 = performance.now();
  const seed = opts.seed ?? recipe.seed;
  if (!Number.isSafeInteger(seed) || seed < 0) throw new RangeError(`seed must be a non-negative integer, got ${seed}`);
  const K = recipe.models.length;
  const M = recipe.numExperts;
  const N = recipe.candidates;
  const G = M - K;
  const useSeed = recipe.seedData.length > 0;
  const totalSteps = 1 + G * N * (useSeed ? 3 : 2) + 1;
  let steps = 0;
  const progress = (p: Omit<ExpandProgress, 'generations' | 'candidates' | 'fraction'>, partial = 0) =>
    opts.onProgress?.({ ...p, generations: G, candidates: N, fraction: Math.min(1, (steps + partial) / totalSteps) });
  const timings: ExpansionTimings = { total_s: 0, similarity: [], merges: [], scoring: [] };

  // Inputs: headers only, to plan the sample and size the merges.
  const base = await Checkpoint.open(recipe.base);
  let plan: SamplePlan;
  let modelBytes: number;
  try {
    if (base.kind !== 'model') throw new Error(`${recipe.base}: base_model must be a model folder, not a ${base.kind}`);
    plan = planSample(similarityTensors(base, recipe.scope), recipe.sampleSize, seed);
    modelBytes = base.bytesOnDisk;
  } finally {
    await base.close();
  }
  if (plan.tensors.length === 0) throw new Error(`${recipe.base}: no float tensors to compare${recipe.scope === 'mlp' ? ' (similarity_scope: mlp found no .mlp. tensors)' : ''}`);
  const workers = opts.workers ?? (modelBytes < 64 * 2 ** 20 ? 1 : undefined);

  let seqs: number[][] | undefined;
  if (useSeed) {
    const texts = await loadSeedTexts(recipe.seedData);
    seqs = await encodeSeed(TextTokenizer.load(recipe.base), texts);
  }

  opts.signal?.throwIfAborted();
  const out = await OutputFolder.create(outDir, { overwrite: opts.overwrite });
  try {
    const reference = recipe.originals === 'reference';
    const pool: PoolExpert[] = recipe.models.map((m, i) => {
      const name = expertName(i, M);
      const source = resolve(m.path);
      return { name, readPath: source, logged: { name, path: reference ? source : name, origin: 'checkpoint', label: m.label, source } };
    });
    const gram = new Gram();
    const dots = async (paths: string[], pairs: Pair[], generation: number, candidate?: number) => {
      const r = await taskVectorDots(recipe.base, paths, plan, pairs, {
        signal: opts.signal,
        onProgress: (p) => progress({ phase: 'similarity', generation, candidate, detail: `task-vector similarity ${p.done}/${p.total} parameters` }, p.total ? p.done / p.total : 0),
      });
      timings.similarity.push({ generation, ...(candidate !== undefined ? { candidate } : {}), seconds: r.seconds, bytes_read: r.bytesRead });
      return r.sums;
    };
    const snapshot = (): PoolSnapshot => {
      const sim = gram.matrix(pool.map((_, i) => i));
      return { experts: pool.map((e) => e.name), similarity: sim, diversity: diversity(sim) };
    };

    // Initial similarity of the K originals.
    progress({ phase: 'similarity', generation: 0, detail: 'similarity of the starting checkpoints' });
    const initPairs: Pair[] = [];
    for (let i = 0; i < K; i++) for (let j = i; j < K; j++) initPairs.push([i, j]);
    const initSums = await dots(pool.map((e) => e.readPath), initPairs, 0);
    initPairs.forEach(([i, j], p) => gram.set(i, j, initSums[p]!));
    steps++;
    const initial = snapshot();

    const generations: LoggedGeneration[] = [];
    const candRoot = out.path('.candidates');
    for (let g = 1; g <= G; g++) {
      opts.signal?.throwIfAborted();
      const before = snapshot();
      const [pi, pj] = mostDissimilarPair(before.similarity);
      const p1 = pool[pi]!;
      const p2 = pool[pj]!;
      const childName = expertName(pool.length, M);

      // N candidates, one at a time: merge, compare with the pool (and score on the seed data).
      // At most two candidates are ever on disk: without seed data the better of the two is known
      // at once; with seed data the choice needs every score, so earlier candidates are deleted after
      // scoring and the winner, if it is not the last, is merged again (merges are deterministic).
      const P = pool.length;
      const genDir = join(candRoot, `gen-${String(g).padStart(2, '0')}`);
      const candDir = (c: number) => join(genDir, `candidate-${String(c).padStart(2, '0')}`);
      const make = async (c: number, remerge: boolean): Promise<{ alpha: number; mergeSeed: number }> => {
        const { alpha, mergeSeed } = candidateDraws(seed, g, c, recipe.alpha);
        const mergeRecipe = parseMergeConfig({
          merge_method: 'dare_linear',
          base_model: 'base',
          models: [
            { model: p1.name, parameters: { weight: alpha, density: recipe.density } },
            { model: p2.name, parameters: { weight: 1 - alpha, density: recipe.density } },
          ],
          parameters: { rescale_mode: recipe.rescaleMode },
          random_seed: mergeSeed,
          ...(recipe.outDtype ? { dtype: torchDTypeName(recipe.outDtype) } : {}),
        }, candRoot, `generation ${g} candidate ${c}`);
        // Labels (the DARE mask ids) stay the expert names; paths point at the real folders.
        const where: Record<string, string> = { base: resolve(recipe.base), [p1.name]: p1.readPath, [p2.name]: p2.readPath };
        for (const ref of mergeRecipe.models) ref.path = where[ref.label]!;
        const pipeline = {
          version: 1,
          kind: 'expand-candidate',
          method: 'dare_linear',
          base_model: resolve(recipe.base),
          parents: [p1.name, p2.name],
          alpha,
          density: recipe.density,
          rescale_mode: recipe.rescaleMode,
          merge_seed: mergeSeed,
          expansion_seed: seed,
          generation: g,
          candidate: c,
        };
        const what = `${remerge ? 'merging the kept ' : ''}candidate ${c + 1}/${N}`;
        progress({ phase: 'merging', generation: g, candidate: c, detail: `${what}: α ${alpha.toFixed(3)} · ${p1.name} + ${(1 - alpha).toFixed(3)} · ${p2.name}` });
        let bytes = 0;
        const r = await runMerge(mergeRecipe, candDir(c), {
          seed: mergeSeed,
          outDtype: recipe.outDtype,
          workers,
          memoryBudget: opts.memoryBudget,
          shardBytes: opts.shardBytes,
          signal: opts.signal,
          pipeline,
          onProgress: (p) => {
            bytes = Math.max(bytes, p.bytesTotal);
            if (p.phase === 'merging') progress({ phase: 'merging', generation: g, candidate: c, detail: `${what}: ${p.tensorsDone}/${p.tensorsTotal} tensors` }, p.bytesTotal && !remerge ? p.bytesDone / p.bytesTotal : 0);
          },
        });
        timings.merges.push({ generation: g, candidate: c, seconds: r.seconds, bytes, ...(remerge ? { remerge: true } : {}) });
        return { alpha, mergeSeed };
      };

      const logged: LoggedCandidate[] = [];
      const norms: number[] = [];
      const dotsToPool: number[][] = [];
      let best = -1; // the candidate on disk besides the newest (no seed data)
      for (let c = 0; c < N; c++) {
        const { alpha, mergeSeed } = await make(c, false);
        steps++;
        const pairs: Pair[] = [[P, P], ...pool.map((_, e): Pair => [P, e])];
        progress({ phase: 'similarity', generation: g, candidate: c, detail: `similarity of candidate ${c + 1}/${N} to ${P} experts` });
        const sums = await dots([...pool.map((e) => e.readPath), candDir(c)], pairs, g, c);
        steps++;
        norms.push(sums[0]!);
        dotsToPool.push(pool.map((_, e) => sums[1 + e]!));
        const sim = pool.map((_, e) => cosineOf(sums[1 + e]!, sums[0]!, gram.dot(e, e)));
        const entry: LoggedCandidate = { candidate: c, alpha, merge_seed: mergeSeed, similarity: sim, max_similarity: Math.max(...sim) };
        logged.push(entry);
        if (seqs) {
          progress({ phase: 'scoring', generation: g, candidate: c, detail: `seed-data log-likelihood of candidate ${c + 1}/${N}` });
          const ts = performance.now();
          entry.seed_loglik = await seedLogLikelihood(candDir(c), seqs, opts.signal);
          timings.scoring.push({ generation: g, candidate: c, seconds: (performance.now() - ts) / 1000 });
          steps++;
          if (c < N - 1) await rm(candDir(c), { recursive: true, force: true });
        } else if (best < 0 || entry.max_similarity < logged[best]!.max_similarity) {
          if (best >= 0) await rm(candDir(best), { recursive: true, force: true });
          best = c;
        } else {
          await rm(candDir(c), { recursive: true, force: true });
        }
      }
      const choice = chooseCandidate(logged.map((l) => ({ maxSimilarity: l.max_similarity, seedLogLikelihood: l.seed_loglik })), recipe.seedWeight);
      if (choice.scores) logged.forEach((l, c) => (l.score = choice.scores![c]!));
      const k = choice.index;
      if (!seqs && k !== best) throw new Error(`internal: kept candidate ${k} is not the best on disk (${best})`);
      if (seqs && k !== N - 1) {
        await rm(candDir(N - 1), { recursive: true, force: true });
        await make(k, true);
      }
      const kept = logged[k]!;

      // The child joins the pool.
      const childDir = out.path(childName);
      await rename(candDir(k), childDir);
      await rm(genDir, { recursive: true, force: true });
      gram.set(P, P, norms[k]!);
      for (let e = 0; e < P; e++) gram.set(P, e, dotsToPool[k]![e]!);
      const child: PoolExpert = {
        name: childName,
        readPath: childDir,
        logged: { name: childName, path: childName, origin: 'generation', label: `gen ${g}`, generation: g, parents: [p1.name, p2.name], alpha: kept.alpha, merge_seed: kept.merge_seed },
      };
      pool.push(child);
      await writeChildCard(out, child, recipe, pool, seed, kept);
      generations.push({
        generation: g,
        pool: before.experts,
        similarity: before.similarity,
        diversity_before: before.diversity,
        parents: { names: [p1.name, p2.name], indices: [pi, pj], similarity: before.similarity[pi]![pj]! },
        candidates: logged,
        kept: { candidate: k, name: childName, alpha: kept.alpha, max_similarity: kept.max_similarity },
        diversity: snapshot().diversity,
      });
    }
    await rm(candRoot, { recursive: true, force: true });

    // The originals, the log, the summary.
    progress({ phase: 'writing', generation: G, detail: recipe.originals === 'reference' ? 'writing the log' : `${recipe.originals === 'link' ? 'linking' : 'copying'} the ${K} starting checkpoints` });
    if (!reference) for (const e of pool.slice(0, K)) await placeOriginal(e.readPath, out.path(e.name), recipe.originals === 'link', opts.signal);
    const log: ExpansionLog = {
      version: 1,
      kind: 'upcycle-expansion',
      method: 'upit-genetic',
      config: {
        base_model: resolve(recipe.base),
        models: recipe.models.map((m) => ({ label: m.label, path: resolve(m.path) })),
        num_experts: M,
        candidates: N,
        density: recipe.density,
        alpha: [...recipe.alpha],
        rescale_mode: recipe.rescaleMode,
        sample_size: recipe.sampleSize,
        similarity_scope: recipe.scope,
        seed,
        seed_data: recipe.seedData.map((p) => resolve(p)),
        seed_weight: recipe.seedWeight,
        dtype: recipe.outDtype ? torchDTypeName(recipe.outDtype) : null,
        originals: recipe.originals,
      },
      sampling: { total_parameters: plan.totalParameters, sampled_parameters: plan.sampledParameters, tensors: plan.tensors.length, chunk: plan.chunk, full: plan.full },
      experts: pool.map((e) => e.logged),
      initial,
      generations,
      final: snapshot(),
      timings,
    };
    timings.total_s = (performance.now() - t0) / 1000;
    await out.writeFile(LOG_FILE, JSON.stringify(log, null, 2) + '\n');
    await out.writeFile('README.md', summaryCard(log));
    steps++;
    const target = await out.commit();
    progress({ phase: 'done', generation: G });
    const experts = pool.map((e) => (reference && e.logged.origin === 'checkpoint' ? e.readPath : join(target, e.name)));
    return { out: target, experts, log, seconds: (performance.now() - t0) / 1000 };
  } catch (e) {
    await out.abort();
    throw e;
  }
}

/** Weights hard-linked (or copied across filesystems); every other file copied. */
async function placeOriginal(src: string, dst: string, hardLink: boolean, signal?: AbortSignal): Promise<void> {
  await mkdir(dst, { recursive: true });
  for (const f of (await readdir(src)).sort()) {
    signal?.throwIfAborted();
    if (f.startsWith('.') || PICKLE.has(extname(f).toLowerCase())) continue;
    const from = join(src, f);
    if (!(await stat(from)).isFile()) continue;
    const to = join(dst, f);
    if (hardLink && f.endsWith('.safetensors')) {
      try {
        await link(from, to);
        continue;
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code !== 'EXDEV' && code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EMLINK') throw e;
      }
    }
    await copyFile(from, to);
  }
}

async function writeChildCard(out: OutputFolder, child: PoolExpert, recipe: ExpandRecipe, pool: PoolExpert[], seed: number, cand: LoggedCandidate): Promise<void> {
  const l = child.logged;
  const parent = (name: string) => pool.find((e) => e.name === name)!;
  // Paths that `upcycle merge` resolves from this folder (generated parents are siblings).
  const where = (e: PoolExpert) => (e.logged.origin === 'checkpoint' ? e.logged.source! : `../${e.name}`);
  const [a, b] = l.parents!.map(parent) as [PoolExpert, PoolExpert];
  const yaml = toYaml({
    merge_method: 'dare_linear',
    base_model: resolve(recipe.base),
    models: [
      { model: where(a), parameters: { weight: l.alpha, density: recipe.density } },
      { model: where(b), parameters: { weight: 1 - l.alpha!, density: recipe.density } },
    ],
    parameters: { rescale_mode: recipe.rescaleMode },
    ...(recipe.outDtype ? { dtype: torchDTypeName(recipe.outDtype) } : {}),
  });
  const header = `# ${l.name}: generation ${l.generation} of an Upcycle Studio expert expansion (seed ${seed}).\n` +
    `# The DARE masks were drawn with seed ${l.merge_seed} for the parents named ${a.name} and ${b.name};\n` +
    '# this recipe reproduces the merge in distribution (the masks depend on the names), expansion_log.json exactly.\n';
  await out.writeFile(join(l.name, 'mergekit_config.yml'), header + yaml);
  await out.writeFile(join(l.name, 'README.md'), `---
library_name: transformers
tags:
- merge
- upcycle-studio
- upit-expansion
---
# ${l.name}

An expert grown by **Upcycle Studio**'s genetic expert expansion (UpIT, [arXiv 2410.01610](https://arxiv.org/abs/2410.01610)),
generation ${l.generation}: a DARE merge (\`dare_linear\`, density ${recipe.density}, rescale ${recipe.rescaleMode}) over the base
\`${resolve(recipe.base)}\` of the two most dissimilar experts of the pool,

- ${a.name} (${a.logged.label}) with weight α = ${l.alpha!.toFixed(4)}
- ${b.name} (${b.logged.label}) with weight 1 − α = ${(1 - l.alpha!).toFixed(4)}

Kept among ${recipe.candidates} candidates for its novelty${cand.score !== undefined ? ` and its fit to the seed data (combined score ${cand.score.toFixed(4)}, seed weight ${recipe.seedWeight})` : ''}: its highest cosine similarity
to an expert of the pool is ${cand.max_similarity.toFixed(4)}${cand.seed_loglik !== undefined ? `; mean log-likelihood on the seed data ${cand.seed_loglik.toFixed(4)}` : ''}.
Mask seed ${l.merge_seed}, expansion seed ${seed}. The whole history is in \`../expansion_log.json\`.
`);
}

function summaryCard(log: ExpansionLog): string {
  const rows = log.experts.map((e) => `| ${e.name} | ${e.origin === 'checkpoint' ? `checkpoint \`${e.label}\`` : `gen ${e.generation}: ${e.alpha!.toFixed(3)}·${e.parents![0]} + ${(1 - e.alpha!).toFixed(3)}·${e.parents![1]}`} |`);
  const gens = log.generations.map((g) => `| ${g.generation} | ${g.parents.names.join(' × ')} (cos ${g.parents.similarity.toFixed(4)}) | ${g.candidates.map((c) => c.alpha.toFixed(3)).join(', ')} | ${g.kept.name} (max cos ${g.kept.max_similarity.toFixed(4)}) | ${g.diversity_before.toFixed(5)} → ${g.diversity.toFixed(5)} |`);
  return `# Expert expansion

${log.config.models.length} checkpoints grown to ${log.config.num_experts} experts with UpIT's genetic expansion (seed ${log.config.seed},
${log.config.candidates} candidates per generation, DARE density ${log.config.density}, α ~ U(${log.config.alpha[0]}, ${log.config.alpha[1]});
similarity on ${log.sampling.sampled_parameters.toLocaleString('en-US')} of ${log.sampling.total_parameters.toLocaleString('en-US')} parameters).

| expert | origin |
|---|---|
${rows.join('\n')}

| generation | parents | α of the candidates | kept | diversity |
|---|---|---|---|---|
${gens.join('\n')}

Diversity is the mean pairwise (1 − cos) of the task vectors. Everything is in \`${LOG_FILE}\`.
`;
}
