/**
 * The evolutionary-merge section of docs/RESULTS.md: CMA-ES over TIES parameters of the four ffn-*
 * specialists with the seed sets as fitness, judged on the held-back eval/<skill>.gen.jsonl prompts
 * beside linear and mergekit's default TIES. Exact match cannot separate these merges (every dense merge
 * of the specialists scores 0), so the judge is the fitness's own measure — the answers' mean token
 * log-likelihood — on data the search never saw, per skill.
 *
 * Two searches with the same budget: ours (unnormalised TIES, see decodeGenome) and mergekit-evolve's
 * setting (normalised), so the table shows what that choice buys.
 *
 * Run alone: `node build/app/evolve/results.js` (a few minutes).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseMergeConfig } from '../merge/config.js';
import { runMerge } from '../merge/execute.js';
import { answerLogLikelihood, evolveMerge, fitnessItems, parseEvolveYaml, type EvolveResult } from './evolve.js';

const SKILLS = ['add', 'upper', 'rev', 'sort'] as const;
/** Evaluations per search: enough for ~9 generations of the default population (12 for 16 parameters). */
export const EVOLVE_BUDGET = 112;

export interface EvolveRow {
  name: string;
  /** Held-out answer log-likelihood per skill, then their mean. */
  perSkill: number[];
  mean: number;
  seedFitness?: number;
}

const f3 = (x: number) => x.toFixed(3);
const signed = (x: number) => `${x >= 0 ? '+' : '−'}${Math.abs(x).toFixed(3)}`;

export async function runEvolveResults(opts: { demo: string; log?: (s: string) => void; budget?: number }): Promise<{ rows: EvolveRow[]; markdown: string }> {
  const { demo } = opts;
  const log = opts.log ?? (() => undefined);
  const budget = opts.budget ?? EVOLVE_BUDGET;
  const models = join(demo, 'models');
  const tmp = await mkdtemp(join(tmpdir(), 'upcycle-evolve-results-'));
  const heldOut = await Promise.all(SKILLS.map((s) => fitnessItems([join(demo, 'eval', `${s}.gen.jsonl`)])));
  const judge = async (name: string, dir: string, seedFitness?: number): Promise<EvolveRow> => {
    const perSkill: number[] = [];
    for (const items of heldOut) perSkill.push(await answerLogLikelihood(dir, items));
    const row = { name, perSkill, mean: perSkill.reduce((a, b) => a + b, 0) / perSkill.length, seedFitness };
    log(`${name.padEnd(44)} ${perSkill.map(f3).join(' ')}  mean ${f3(row.mean)}`);
    return row;
  };
  try {
    const rows: EvolveRow[] = [];
    const baselines: [string, Record<string, unknown>][] = [
      ['linear(ffn-*)', { merge_method: 'linear', models: SKILLS.map((s) => ({ model: `ffn-${s}`, parameters: { weight: 1 } })) }],
      ['ties(ffn-*) default: weight 1, density 0.5, normalised', { merge_method: 'ties', base_model: 'base', models: SKILLS.map((s) => ({ model: `ffn-${s}`, parameters: { weight: 1, density: 0.5 } })), parameters: { normalize: true } }],
    ];
    for (const [name, doc] of baselines) {
      const dir = join(tmp, `baseline-${rows.length}`);
      await runMerge(parseMergeConfig(doc, models), dir);
      rows.push(await judge(name, dir));
    }
    const searches: [string, boolean][] = [['ties(ffn-*) evolved, unnormalised (ours)', false], ['ties(ffn-*) evolved, normalised (mergekit-evolve)', true]];
    const runs: EvolveResult[] = [];
    for (const [name, normalize] of searches) {
      const recipe = parseEvolveYaml(JSON.stringify({
        base_model: join(models, 'base'),
        models: SKILLS.map((s) => join(models, `ffn-${s}`)),
        merge_method: 'ties',
        layer_groups: 2,
        normalize,
        fitness: SKILLS.map((s) => join(demo, 'eval', `${s}.seed.jsonl`)),
        budget,
        random_seed: 1,
      }), join(tmp, 'evolve.yml'));
      const t0 = performance.now();
      const evo = await evolveMerge(recipe, join(tmp, `evolved-${runs.length}`));
      log(`${name}: seed fitness ${f3(evo.defaultFitness)} → ${f3(evo.bestFitness)} in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
      runs.push(evo);
      rows.push(await judge(name, join(evo.out, 'model'), evo.bestFitness));
    }
    return { rows, markdown: evolveMarkdown(rows, runs, budget) };
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

function recipeTable(r: EvolveResult): string {
  const models = r.bestConfig['models'] as { model: string; parameters: { weight: number | number[]; density?: number | number[] } }[];
  const fmt = (v: number | number[] | undefined) => (v === undefined ? '' : (Array.isArray(v) ? v : [v]).map((x) => x.toFixed(2)).join(' → '));
  return [
    '| model | weight (first → last layer) | density (first → last layer) |',
    '|---|---|---|',
    ...models.map((m) => `| ${m.model.split('/').pop()} | ${fmt(m.parameters.weight)} | ${fmt(m.parameters.density)} |`),
  ].join('\n');
}

export function evolveMarkdown(rows: EvolveRow[], runs: EvolveResult[], budget: number): string {
  const [linear, ties] = rows;
  const table = [
    `| recipe | ${SKILLS.join(' | ')} | mean | vs linear | vs default TIES | seed fitness |`,
    `|---|${SKILLS.map(() => '---:').join('|')}|---:|---:|---:|---:|`,
    ...rows.map((r) => `| ${r.name} | ${r.perSkill.map(f3).join(' | ')} | **${f3(r.mean)}** | ${signed(r.mean - linear!.mean)} | ${signed(r.mean - ties!.mean)} | ${r.seedFitness === undefined ? '' : f3(r.seedFitness)} |`),
  ].join('\n');
  const ours = runs[0]!;
  const gens = [
    '| generation | evaluations | best | mean | σ | best so far |',
    '|---:|---:|---:|---:|---:|---:|',
    ...ours.generations.map((g) => `| ${g.generation} | ${g.evaluations} | ${f3(g.best)} | ${f3(g.mean)} | ${g.sigma.toFixed(3)} | ${f3(g.bestSoFar)} |`),
  ].join('\n');
  return `## evolutionary merge search (CMA-ES, ${budget} evaluations per search)

CMA-ES over TIES of the four \`ffn-*\` specialists: per model and per layer group (2 groups), a weight and a
density — 16 parameters. Fitness: the mean per-token log-likelihood of the answers of the seed sets
(\`eval/<skill>.seed.jsonl\`, 128 lines). Judged here on the held-back \`eval/<skill>.gen.jsonl\` prompts (200 per
skill), by the same measure: every dense merge of these specialists has exact match 0 (tables above), so the
log-likelihood is what tells the merges apart. Higher is better; log-likelihoods are natural-log per token.

${table}

Ours searches TIES **unnormalised**: with \`normalize: true\` (mergekit's default, and mergekit-evolve's for TIES)
the merged delta is divided by the agreeing weights' sum, so the weights' common scale cancels and the update can
never be smaller than an average of the agreeing task vectors — too strong for these four specialists, whose
mean task vector (linear) already beats default TIES. Unnormalised, the search can shrink and re-balance the
deltas per layer group. The search starts from weights ¼ and density 0.5 and also evaluates mergekit's default
recipe first, so its result is never worse than the default on the seed data
(\`upcycle evolve\` option \`normalize\`, default false).

Best recipe found (ours), written by \`upcycle evolve\` as \`best_recipe.yml\`; each pair is a mergekit gradient,
interpolated linearly across the layers:

${recipeTable(ours)}

Per generation (ours; the history's evolution chart shows the same series):

${gens}
`;
}

async function main(): Promise<void> {
  const root = new URL('../../../', import.meta.url).pathname;
  const t0 = performance.now();
  const r = await runEvolveResults({ demo: join(root, 'resources', 'demo'), log: (s) => console.log(s) });
  console.log(r.markdown);
  console.log(`${((performance.now() - t0) / 1000).toFixed(0)} s`);
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop()!)) {
  main().catch((e: unknown) => {
    console.error(e instanceof Error ? e.message : e);
    process.exit(1);
  });
}
