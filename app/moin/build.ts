/**
 * `upcycle moin build`: fits the sequence-level router and exports the MoIN folder atomically
 * (OutputFolder: nothing appears at OUT_DIR unless everything was written):
 *
 *   OUT_DIR/
 *     router.json          the router (format described in README.md and app/moin/README.md)
 *     README.md            what the folder is, the experts, the clusters, how to run it
 *     moin_recipe.json     the config as given
 *     experts/<name>/      each adapter expert's PEFT folder, copied byte for byte
 *                          (model experts too with copy_models: true; otherwise referenced)
 *     merged/<name>/       with merged_models: true, base + adapter merged (linear, weight 1)
 *
 * The base is referenced, not copied: router.json stores its path relative to OUT_DIR, the sha256
 * of its tokenizer.json and a fingerprint of its weights, and loading refuses a different base.
 */
import { copyFile, mkdir, readdir, stat } from 'node:fs/promises';
import { join, relative, resolve, sep } from 'node:path';
import { CheckpointError } from '../core/errors.js';
import { Checkpoint } from '../io/checkpoint.js';
import { OutputFolder } from '../io/output-folder.js';
import { parseMergeConfig } from '../merge/config.js';
import { runMerge } from '../merge/execute.js';
import type { ProviderRequest } from '../runtime/ort.js';
import { BaseEmbedder, describeSpec } from './embedding.js';
import { fitRouter, type FitProgress } from './fit.js';
import type { MoinRecipe } from './config.js';
import { formatRouterJson, routerToJson, type SequenceRouter } from './router.js';

export interface BuildProgress {
  phase: 'checking' | FitProgress['phase'] | 'copying' | 'merging' | 'writing' | 'done';
  detail?: string;
}

export interface BuildOptions {
  overwrite?: boolean;
  provider?: ProviderRequest;
  signal?: AbortSignal;
  onProgress?: (p: BuildProgress) => void;
}

export interface MoinBuildResult {
  out: string;
  method: 'centroids' | 'kmeans';
  embedding: string;
  experts: { name: string; adapter: string | null; model: string | null; merged: string | null }[];
  centroids: number;
  clusters: SequenceRouter['clusters'] | null;
  seedRoutingAccuracy: number | null;
  notices: string[];
  seconds: number;
}

/** A path as router.json stores it: relative to the folder, with forward slashes. */
export function storedPath(folder: string, abs: string): string {
  return relative(folder, abs).split(sep).join('/') || '.';
}

/** Opens every input and checks that the experts fit the base. */
export async function checkInputs(recipe: MoinRecipe): Promise<string[]> {
  const notices: string[] = [];
  const base = await Checkpoint.open(recipe.base);
  try {
    if (base.kind !== 'model' || !base.config) throw new CheckpointError('INVALID_CONFIG', recipe.base, 'is not a model folder with config.json', 'base_model must be the frozen base model folder');
    if (!base.tokenizerSha256) throw new CheckpointError('NOT_FOUND', recipe.base, 'has no tokenizer.json', 'the router tokenizes queries with the base tokenizer; copy tokenizer.json into the base folder');
    for (const e of recipe.experts) {
      const ck = await Checkpoint.open(e.adapter ?? e.model!);
      try {
        if (e.adapter && ck.kind !== 'adapter') throw new CheckpointError('INVALID_CONFIG', e.adapter, 'is not a PEFT adapter folder', `expert ${e.name}: source_adapter must hold adapter_config.json and adapter_model.safetensors`);
        if (e.model) {
          if (ck.kind !== 'model' || !ck.config) throw new CheckpointError('INVALID_CONFIG', e.model, 'is not a model folder', `expert ${e.name}: source_model must be a model folder`);
          if (ck.tokenizerSha256 !== base.tokenizerSha256) throw new CheckpointError('INCOMPATIBLE', e.model, 'has a different tokenizer.json from the base', `expert ${e.name}: sequence-level experts share the base's tokenizer (the router tokenizes queries once)`);
          if (ck.config.vocabSize !== base.config.vocabSize) notices.push(`${e.name}: vocabulary ${ck.config.vocabSize} ≠ base ${base.config.vocabSize}`);
        }
        for (const p of ck.problems) if (p.severity === 'error') throw new CheckpointError('INVALID_CONFIG', ck.path, p.message, `expert ${e.name} is broken`);
      } finally {
        await ck.close();
      }
    }
  } finally {
    await base.close();
  }
  return notices;
}

/** Copies the regular files of a checkpoint folder (pickles left out) into the output. */
async function copyFolderFiles(src: string, out: OutputFolder, rel: string): Promise<void> {
  await mkdir(out.path(rel), { recursive: true });
  for (const f of (await readdir(src)).sort()) {
    if (/\.(bin|pt|pth|ckpt|pkl|pickle)$/i.test(f)) continue;
    const p = join(src, f);
    if (!(await stat(p)).isFile()) continue;
    await copyFile(p, out.path(`${rel}/${f}`));
  }
}

export async function buildMoin(recipe: MoinRecipe, outDir: string, opts: BuildOptions = {}): Promise<MoinBuildResult> {
  const t0 = performance.now();
  const target = resolve(outDir);
  const progress = (phase: BuildProgress['phase'], detail?: string) => opts.onProgress?.({ phase, detail });
  progress('checking');
  const notices = await checkInputs(recipe);
  if (recipe.mergedModels && !recipe.experts.some((e) => e.adapter)) notices.push('merged_models: no adapter experts, nothing to merge');
  const embedder = await BaseEmbedder.load(recipe.base, { provider: opts.provider, signal: opts.signal });
  let fit;
  try {
    notices.push(...embedder.notices);
    fit = await fitRouter(recipe, embedder, { provider: opts.provider, signal: opts.signal, onProgress: (p) => progress(p.phase, p.detail) });
  } finally {
    await embedder.release();
  }
  notices.push(...fit.notices);
  opts.signal?.throwIfAborted();
  const out = await OutputFolder.create(target, { overwrite: opts.overwrite });
  try {
    const router: SequenceRouter = { ...fit.router, base: { ...fit.router.base, path: storedPath(target, resolve(recipe.base)) } };
    router.experts = [];
    for (const e of recipe.experts) {
      opts.signal?.throwIfAborted();
      const ref: SequenceRouter['experts'][number] = { name: e.name };
      if (e.seedData) ref.seedData = storedPath(target, resolve(e.seedData));
      if (e.adapter) {
        progress('copying', e.name);
        await copyFolderFiles(e.adapter, out, `experts/${e.name}`);
        ref.adapter = `experts/${e.name}`;
        if (recipe.mergedModels) {
          progress('merging', e.name);
          const mr = parseMergeConfig({ merge_method: 'linear', models: [{ model: `${resolve(recipe.base)}+${resolve(e.adapter)}`, parameters: { weight: 1 } }] }, '/', `merged model of ${e.name}`);
          await runMerge(mr, out.path(`merged/${e.name}`), { signal: opts.signal, pipeline: { version: 1, kind: 'moin-merged-expert', base: recipe.base, adapter: e.adapter } });
          ref.merged = `merged/${e.name}`;
        }
      } else if (recipe.copyModels) {
        progress('copying', e.name);
        await copyFolderFiles(e.model!, out, `experts/${e.name}`);
        ref.model = `experts/${e.name}`;
      } else {
        ref.model = storedPath(target, resolve(e.model!));
      }
      router.experts.push(ref);
    }
    progress('writing');
    await out.writeFile('router.json', formatRouterJson(routerToJson(router)) + '\n');
    await out.writeFile('moin_recipe.json', JSON.stringify({ version: 1, kind: 'moin', recipe: recipe.raw }, null, 2) + '\n');
    await out.writeFile('README.md', folderReadme(router, fit.seedAccuracy));
    await out.commit();
    progress('done');
    return {
      out: target,
      method: router.method,
      embedding: describeSpec(router.spec),
      experts: router.experts.map((e) => ({ name: e.name, adapter: e.adapter ?? null, model: e.model ?? null, merged: e.merged ?? null })),
      centroids: router.centroids.length,
      clusters: router.clusters ?? null,
      seedRoutingAccuracy: fit.seedAccuracy,
      notices,
      seconds: (performance.now() - t0) / 1000,
    };
  } catch (e) {
    await out.abort();
    throw e;
  }
}

/** The README.md written beside router.json. */
export function folderReadme(r: SequenceRouter, seedAccuracy: number | null): string {
  const expertRows = r.experts.map((e, i) => `| ${i} | ${e.name} | ${e.adapter ? `adapter \`${e.adapter}\`` : `model \`${e.model}\``} | ${e.merged ? `\`${e.merged}\`` : '—'} | ${r.centroids.filter((c) => c.expert === i).length} |`);
  const clusterRows = (r.clusters ?? []).map((c) => `| ${c.cluster} | ${c.size} | ${r.experts[c.expert]!.name} | ${c.scores.map((s) => s.toFixed(3)).join(' / ')} | ${c.purity === undefined ? '—' : c.purity.toFixed(3)} | ${c.examples.map((x) => `\`${x.replace(/`/g, "'").replace(/\|/g, '\\|')}\``).join(', ')} |`);
  return `# Sequence-level experts (MoIN)

A frozen base model and ${r.experts.length} "introvert" experts. Each query is embedded by the base model, compared
with the router's centroids, and runs **whole** on the base plus the one expert of the most similar centroid.

- base model: \`${r.base.path}\` (relative to this folder; tokenizer sha256 \`${r.base.tokenizerSha256 ?? 'none'}\`)
- embedding: \`${describeSpec(r.spec)}\`
- query delimiter: ${r.queryDelimiter === null ? 'none (whole texts are embedded)' : `\`${r.queryDelimiter}\` (texts are embedded up to and including its first occurrence)`}
- router: ${r.method === 'kmeans' ? `k-means clusters of a corpus (${r.centroids.length} centroids)` : 'one centroid per expert, from its seed data'}${seedAccuracy === null ? '' : `; seed texts routed back to their own expert: ${(100 * seedAccuracy).toFixed(1)}%`}

| # | expert | weights | merged model | centroids |
|---:|---|---|---|---:|
${expertRows.join('\n')}
${clusterRows.length ? `
## Clusters

Scores per expert (${r.clusters![0]!.method === 'perplexity' ? 'mean token NLL, lower wins' : r.clusters![0]!.method === 'majority' ? 'votes' : 'similarity to the expert\'s seed centroid'}).

| cluster | size | expert | scores | purity | examples |
|---:|---:|---|---|---:|---|
${clusterRows.join('\n')}
` : ''}
## Running it

    upcycle moin eval THIS_FOLDER --task eval/add.gen.jsonl --task eval/upper.gen.jsonl
    upcycle moin route THIS_FOLDER "add 12 34 ="

## router.json (format \`upcycle-moin-router\`, version 1)

| field | meaning |
|---|---|
| \`format\`, \`version\` | \`upcycle-moin-router\`, \`1\` |
| \`routing\` | always \`sequence\`: one expert per query |
| \`method\` | \`centroids\` (one per expert, from seed data) or \`kmeans\` (clusters of a corpus) |
| \`base_model.path\` | the frozen base, relative to this folder |
| \`base_model.hidden_size\`, \`num_layers\`, \`architecture\` | the base's shape, checked on load |
| \`base_model.weights_fingerprint\` | sha256 over config.json and 1 MiB samples (start, middle, end) of each weight file; a different base is refused |
| \`tokenizer.sha256\` | sha256 of the base's tokenizer.json; queries are tokenised with it (BOS added) |
| \`query_delimiter\` | texts are embedded up to and including its first occurrence (null: whole texts) |
| \`embedding\` | \`layers\` (hidden-state indices: 0 = token embeddings, i = input of layer i, L = final normed output), \`pooling\` (\`mean\`, \`last\`, \`mean+last\`), \`skip_bos\`, \`normalize_parts\` (L2 per pooled part), \`transform\`, \`shrinkage\`, \`similarity\` (\`cosine\` or \`euclidean\`), \`dim\` |
| \`transform\` | fitted post-processing: \`kind\` and \`mean\` (dim), \`scale\` (dim, standardize) or \`matrix\` (dim×dim row-major, whiten) |
| \`experts[]\` | \`name\`, \`adapter\` (PEFT folder, relative) or \`model\`, \`merged_model\` (optional), \`seed_data\` |
| \`centroids[]\` | \`expert\` (index into experts), \`vector\` (dim, in the transformed space), \`count\`, \`source\` |
| \`clusters[]\` | k-means only: \`cluster\`, \`size\`, \`expert\`, \`method\`, \`scores\`, \`purity\`, \`examples\` |
| \`info\` | seed routing accuracy, k-means settings |

Routing a query: embed it (pool the chosen hidden states of the base over its tokens), apply the
transform (x − mean, then × scale or × matrix), and pick the centroid with the highest cosine similarity
(or the smallest Euclidean distance); the query runs on the base with that centroid's expert.
`;
}
