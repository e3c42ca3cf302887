/**
 * The files beside a merged model's weights: config.json, generation_config.json and tokenizer files
 * from the chosen source, a model card stating the recipe and inputs, the recipe as mergekit YAML
 * (`mergekit_config.yml`, runnable by mergekit) and as our pipeline JSON (`upcycle_pipeline.json`,
 * which re-opens on the canvas).
 */
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { stringify as toYaml } from 'yaml';
import { torchDTypeName, type DType } from '../core/dtypes.js';
import type { Checkpoint } from '../io/checkpoint.js';
import { stringifyHfConfig } from '../io/hf-json.js';
import type { OutputFolder } from '../io/output-folder.js';
import { readChatTemplates } from '../runtime/chat-template.js';
import { pluralityTemplate } from './chat-template.js';
import type { MergeRecipe } from './config.js';
import type { MergePlan } from './plan.js';

const TOKENIZER = /^(tokenizer\.json|tokenizer_config\.json|special_tokens_map\.json|tokenizer\.model|vocab\.json|merges\.txt|added_tokens\.json|chat_template\.jinja|chat_template\.json)$/;

export async function writeMergeArtifacts(out: OutputFolder, recipe: MergeRecipe, plan: MergePlan, cks: Checkpoint[], info: { seed: number; outDtype?: DType; pipeline?: unknown }): Promise<void> {
  const ref = cks[plan.reference]!;
  await out.writeFile('config.json', stringifyHfConfig(plan.config));
  if (ref.generationConfig) await out.writeFile('generation_config.json', JSON.stringify(ref.generationConfig, null, 2) + '\n');
  const tokSource = recipe.tokenizerSource === 'base' ? ref : cks[recipe.models.indexOf(recipe.tokenizerSource)]!;
  const chat = await chosenChatTemplate(recipe, cks);
  for (const f of await readdir(tokSource.path)) {
    if (!TOKENIZER.test(f)) continue;
    // A chosen template replaces the source's, which transformers would otherwise read first from these files.
    if (chat !== undefined && /^chat_template\.(jinja|json)$/.test(f)) continue;
    if (chat !== undefined && f === 'tokenizer_config.json') {
      const cfg = JSON.parse(await readFile(join(tokSource.path, f), 'utf8')) as Record<string, unknown>;
      await out.writeFile(f, JSON.stringify({ ...cfg, chat_template: chat }, null, 2) + '\n');
    } else await out.writeFile(f, await readFile(join(tokSource.path, f)));
  }
  // No tokenizer_config.json to carry it: transformers (≥ 4.43) also reads chat_template.jinja.
  if (chat !== undefined && !existsSync(join(tokSource.path, 'tokenizer_config.json'))) await out.writeFile('chat_template.jinja', chat);
  const yaml = toYaml(mergekitYaml(recipe));
  await out.writeFile('mergekit_config.yml', yaml);
  const pipeline = info.pipeline ?? { version: 1, kind: 'merge', recipe: recipe.raw, seed: info.seed, out_dtype: info.outDtype };
  await out.writeFile('upcycle_pipeline.json', JSON.stringify(pipeline, null, 2) + '\n');
  await out.writeFile('README.md', modelCard(recipe, plan, info, yaml));
}

/** The template the recipe's `chat_template` picks, or undefined to keep the tokenizer source's. */
async function chosenChatTemplate(recipe: MergeRecipe, cks: Checkpoint[]): Promise<string | undefined> {
  const c = recipe.chatTemplate;
  if (c === undefined) return undefined;
  if (c.kind === 'template') return c.template;
  const defaults = await Promise.all(cks.map(async (ck) => {
    const file = join(ck.path, 'tokenizer_config.json');
    const cfg = existsSync(file) ? (JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>) : {};
    const t = readChatTemplates(ck.path, cfg);
    if (t === undefined) return undefined;
    return typeof t.templates === 'string' ? t.templates : t.templates['default'];
  }));
  return pluralityTemplate(defaults);
}

/** The recipe as mergekit would read it (our own keys removed). */
export function mergekitYaml(recipe: MergeRecipe): Record<string, unknown> {
  const raw = { ...recipe.raw };
  delete raw['random_seed'];
  return raw;
}

function modelCard(recipe: MergeRecipe, plan: MergePlan, info: { seed: number; outDtype?: DType }, yaml: string): string {
  const inputs = recipe.models.map((m) => `- \`${m.label}\`${m === recipe.base ? ' (base)' : ''}${m.lora ? ` — with the LoRA adapter \`${basename(m.lora)}\` merged in first` : ''}`);
  return `---
library_name: transformers
tags:
- merge
- upcycle-studio
---
# Merged model

This model was merged with **Upcycle Studio** using the **${recipe.method.label}** method ([paper](${recipe.method.paper})).

## Inputs
${inputs.join('\n')}

## Recipe
${plan.tasks.length} tensors, ${plan.numLayers} layers, written as ${torchDTypeName(info.outDtype ?? 'F32')}${recipe.method.random ? `, random seed ${info.seed}` : ''}.
${plan.notices.length ? `\nNotes:\n${plan.notices.map((n) => `- ${n}`).join('\n')}\n` : ''}
The recipe as a mergekit config (also in \`mergekit_config.yml\`; our pipeline is in \`upcycle_pipeline.json\`):

\`\`\`yaml
${yaml.trimEnd()}
\`\`\`
`;
}
