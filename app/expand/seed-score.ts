/**
 * The optional local evaluation of expansion candidates: mean log-likelihood per token of the seed
 * data under the candidate (higher = fits the seed data better), with our ONNX runtime.
 *
 * Seed files are JSONL tasks (app/eval/tasks.ts): `{"text"}` lines are scored whole, `{"prompt",
 * "answer"}` lines as prompt + answer, multiple-choice lines as query + the gold choice, as the MoE
 * calibration reads seed data. The first token of each text (BOS) is context only.
 */
import { rm } from 'node:fs/promises';
import { loadTask } from '../eval/tasks.js';
import { Decoder } from '../runtime/decoder.js';
import { loadModelSession } from '../runtime/model-session.js';
import type { TextTokenizer } from '../runtime/tokenizer.js';

export async function loadSeedTexts(paths: readonly string[]): Promise<string[]> {
  const texts: string[] = [];
  for (const p of paths) {
    const task = await loadTask(p);
    for (const it of task.items) {
      if ('text' in it) texts.push(it.text);
      else if ('prompt' in it) texts.push(`${it.prompt}${it.answer}`);
      else texts.push(`${it.query}${it.choices[it.gold] ?? ''}`);
    }
  }
  return texts;
}

/**
 * Mean log-likelihood per scored token of `seqs` (token ids) under the model in `modelDir`. The
 * session's cached graph folder is removed afterwards: candidates are temporary, so their graphs
 * (and the hard links to their weights the graph folder holds) must not outlive them.
 */
export async function seedLogLikelihood(modelDir: string, seqs: number[][], signal?: AbortSignal): Promise<number> {
  const loaded = await loadModelSession(modelDir, { tokenLogprobs: true });
  try {
    const lps = await new Decoder(loaded).logprobs(seqs, { signal });
    let sum = 0;
    let n = 0;
    for (const lp of lps) {
      for (const v of lp) sum += v;
      n += lp.length;
    }
    return n ? sum / n : 0;
  } finally {
    await loaded.session.release();
    await rm(loaded.dir, { recursive: true, force: true });
  }
}

export async function encodeSeed(tok: TextTokenizer, texts: readonly string[]): Promise<number[][]> {
  return tok.encodeBatch([...texts], true);
}
