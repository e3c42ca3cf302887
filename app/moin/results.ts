/**
 * The MoIN rows of the results table (docs/RESULTS.md) and the embedding comparison, on the bundled
 * fixtures. Rows have the shape of app/reports/results.ts's `Row`, so the report can append them
 * beside the token-routed MoEs and the dense merges:
 *
 *   import { runMoinResults } from '../moin/results.js';
 *   const moin = await runMoinResults({ demo, log });   rows.push(...moin.rows);
 *   …and moin.markdown as its own section.
 *
 * Run alone: `node build/app/moin/results.js` (about a minute).
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadTask } from '../eval/tasks.js';
import { buildMoin } from './build.js';
import { compareEmbeddings, comparisonMarkdown, COMPARISON_SPECS, type ComparisonRow } from './compare.js';
import { parseMoinConfig } from './config.js';
import { BaseEmbedder, DEFAULT_EMBEDDING, describeSpec } from './embedding.js';
import { evaluateMoin } from './evaluate.js';
import { readTexts } from './texts.js';

export const SKILLS = ['add', 'upper', 'rev', 'sort'] as const;

export interface MoinRow {
  group: string;
  name: string;
  scores: number[];
  mean: number;
  note?: string;
  routing: number;
}

/** The four skills' `<skill>.text.jsonl` lines interleaved, as `{"text"}` only: an unlabelled corpus. */
export async function writeDemoCorpus(demo: string, file: string): Promise<number> {
  const per = await Promise.all(SKILLS.map(async (s) => (await readFile(join(demo, 'eval', `${s}.text.jsonl`), 'utf8')).split('\n').filter((l) => l.trim())));
  const lines: string[] = [];
  const n = Math.max(...per.map((p) => p.length));
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < SKILLS.length; j++) {
      const l = per[(i + j) % SKILLS.length]![i];
      if (l) lines.push(JSON.stringify({ text: (JSON.parse(l) as { text: string }).text }));
    }
  }
  await writeFile(file, lines.join('\n') + '\n');
  return lines.length;
}

/** A MoIN config for the fixtures (`family` lora → adapters/lora-*, ffn → models/ffn-*). */
export function demoConfig(demo: string, family: 'lora' | 'ffn', over: Record<string, unknown> = {}) {
  return parseMoinConfig({
    base_model: 'models/base',
    routing: 'sequence',
    query_delimiter: '=',
    experts: SKILLS.map((s) => ({ name: s, ...(family === 'lora' ? { source_adapter: `adapters/lora-${s}` } : { source_model: `models/ffn-${s}` }), seed_data: `eval/${s}.seed.jsonl` })),
    ...over,
  }, demo);
}

export async function runMoinResults(opts: { demo: string; log?: (s: string) => void }): Promise<{ rows: MoinRow[]; comparison: ComparisonRow[]; markdown: string }> {
  const { demo } = opts;
  const log = opts.log ?? (() => undefined);
  const tmp = await mkdtemp(join(tmpdir(), 'upcycle-moin-results-'));
  const gen = SKILLS.map((s) => join(demo, 'eval', `${s}.gen.jsonl`));
  const rows: MoinRow[] = [];
  try {
    const corpus = join(tmp, 'corpus.jsonl');
    await writeDemoCorpus(demo, corpus);
    const independent = { query_delimiter: null, embedding: { layers: ['last'], skip_bos: false, normalize_parts: false, transform: 'none' } };
    const variants: [string, Record<string, unknown>, string][] = [
      ['seed centroids', {}, `default embedding ${describeSpec(DEFAULT_EMBEDDING)}`],
      ['seed centroids, whole lines, mean(h_last)', independent, 'the independent implementation\'s choice'],
      ['k-means k=4 (perplexity mapping)', { router: { method: 'kmeans', corpus, assign: 'perplexity' } }, 'unlabelled corpus of 800 text lines'],
    ];
    for (const family of ['lora', 'ffn'] as const) {
      for (const [label, over, note] of variants) {
        const out = join(tmp, `${family}-${rows.length}`);
        await buildMoin(demoConfig(demo, family, over), out);
        const ev = await evaluateMoin(out, gen);
        const scores = SKILLS.map((s) => ev.tasks[`${s}.gen`]!['exact_match']!);
        const row: MoinRow = { group: 'sequence-level experts (MoIN)', name: `MoIN(${family}-*) ${label}`, scores, mean: scores.reduce((a, b) => a + b, 0) / scores.length, routing: ev.routing.accuracy ?? NaN, note: `routing ${(ev.routing.accuracy ?? NaN).toFixed(3)}; ${note}` };
        rows.push(row);
        log(`${row.name.padEnd(52)} ${scores.map((x) => x.toFixed(3)).join(' ')}  mean ${row.mean.toFixed(3)}  routing ${row.routing.toFixed(3)}`);
        if (label === 'seed centroids') {
          const oracle = await evaluateMoin(out, gen, { routeBy: 'gold' });
          const os = SKILLS.map((s) => oracle.tasks[`${s}.gen`]!['exact_match']!);
          rows.push({ group: row.group, name: `MoIN(${family}-*) gold routing`, scores: os, mean: os.reduce((a, b) => a + b, 0) / os.length, routing: 1, note: 'each prompt on its own skill\'s expert: the ceiling' });
        }
        await rm(out, { recursive: true, force: true });
      }
    }
    const emb = await BaseEmbedder.load(join(demo, 'models', 'base'));
    let comparison: ComparisonRow[];
    try {
      const train = await Promise.all(SKILLS.map((s) => readTexts(join(demo, 'eval', `${s}.seed.jsonl`), '=')));
      const heldOut = await Promise.all(SKILLS.map(async (s, e) => ({ name: s, expert: e, queries: (await loadTask(join(demo, 'eval', `${s}.gen.jsonl`))).items.map((i) => (i as { prompt: string }).prompt) })));
      comparison = await compareEmbeddings(emb, { expertNames: [...SKILLS], train, heldOut }, COMPARISON_SPECS);
    } finally {
      await emb.release();
    }
    const f = (x: number) => x.toFixed(3);
    const markdown = `## Sequence-level experts (MoIN)

Each prompt is embedded by the frozen base and runs whole on base + one expert (nearest centroid, cosine).
Routing accuracy is the share of \`eval/<skill>.gen.jsonl\` prompts sent to their own skill's expert.

| model | ${SKILLS.join(' | ')} | mean | routing | notes |
|---|${SKILLS.map(() => '---:').join('|')}|---:|---:|---|
${rows.map((r) => `| ${r.name} | ${r.scores.map(f).join(' | ')} | **${f(r.mean)}** | ${f(r.routing)} | ${r.note ?? ''} |`).join('\n')}

### Which sequence embedding?

Centroids from each expert's 32 seed lines cut after \`=\` (the default) or whole (answers included);
held out: the 800 gen prompts. k-means purity: k = 4 on the gen prompts alone, no labels.

${comparisonMarkdown(comparison)}
`;
    return { rows, comparison, markdown };
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop()!) && process.argv[1].endsWith('moin/results.js')) {
  const root = new URL('../../../', import.meta.url).pathname;
  runMoinResults({ demo: join(root, 'resources', 'demo'), log: (s) => console.log(s) }).then((r) => console.log(`\n${r.markdown}`), (e: unknown) => {
    console.error(e instanceof Error ? e.message : e);
    process.exit(1);
  });
}
