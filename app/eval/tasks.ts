/**
 * Evaluation tasks from JSONL files; the format is recognised by the fields of the first line:
 * - `{"text"}`                       → perplexity (token, word and byte perplexity, bits per byte)
 * - `{"query","choices","gold"}`     → multiple choice (acc, acc_norm)
 * - `{"prompt","answer"}`            → greedy generation scored by exact match
 * The task's name is the file's stem (`add.gen.jsonl` → `add.gen`).
 */
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { CheckpointError } from '../core/errors.js';

export type Task =
  | { kind: 'perplexity'; name: string; path: string; items: { text: string }[] }
  | { kind: 'multiple_choice'; name: string; path: string; items: { query: string; choices: string[]; gold: number }[] }
  | { kind: 'generation'; name: string; path: string; items: { prompt: string; answer: string }[] };

export type TaskKind = Task['kind'];

export function taskName(path: string): string {
  return basename(path).replace(/\.jsonl$/i, '');
}

export function detectKind(row: Record<string, unknown>): TaskKind | undefined {
  if (typeof row['query'] === 'string' && Array.isArray(row['choices']) && typeof row['gold'] === 'number') return 'multiple_choice';
  if (typeof row['prompt'] === 'string' && typeof row['answer'] === 'string') return 'generation';
  if (typeof row['text'] === 'string') return 'perplexity';
  return undefined;
}

export async function loadTask(path: string, limit?: number): Promise<Task> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new CheckpointError('NOT_FOUND', path, `cannot be read: ${(e as Error).message}`, 'pass a .jsonl file');
  }
  const lines = text.split('\n').map((l) => l.trim()).filter((l) => l.length > 0);
  const rows: Record<string, unknown>[] = [];
  for (const [i, l] of lines.entries()) {
    if (limit !== undefined && rows.length >= limit) break;
    try {
      const r = JSON.parse(l) as unknown;
      if (typeof r !== 'object' || r === null || Array.isArray(r)) throw new Error('not an object');
      rows.push(r as Record<string, unknown>);
    } catch (e) {
      throw new CheckpointError('INVALID_CONFIG', path, `line ${i + 1} is not a JSON object (${(e as Error).message})`, 'each line must be one JSON object');
    }
  }
  if (rows.length === 0) throw new CheckpointError('INVALID_CONFIG', path, 'has no items', 'add JSONL lines such as {"text": …}, {"query","choices","gold"} or {"prompt","answer"}');
  const kind = detectKind(rows[0]!);
  if (!kind) throw new CheckpointError('INVALID_CONFIG', path, `line 1 has fields ${Object.keys(rows[0]!).join(', ')}, which match no task format`, 'use {"text"}, {"query","choices","gold"} or {"prompt","answer"}');
  rows.forEach((r, i) => {
    if (detectKind(r) !== kind) throw new CheckpointError('INVALID_CONFIG', path, `line ${i + 1} does not have the fields of a ${kind} task like line 1`, 'keep one format per file');
    if (kind === 'multiple_choice') {
      const c = r['choices'] as unknown[];
      const g = r['gold'] as number;
      if (!c.every((x) => typeof x === 'string') || !Number.isInteger(g) || g < 0 || g >= c.length) {
        throw new CheckpointError('INVALID_CONFIG', path, `line ${i + 1}: choices must be strings and gold an index into them`, 'fix the line');
      }
    }
  });
  const name = taskName(path);
  if (kind === 'perplexity') return { kind, name, path, items: rows.map((r) => ({ text: r['text'] as string })) };
  if (kind === 'multiple_choice') return { kind, name, path, items: rows.map((r) => ({ query: r['query'] as string, choices: r['choices'] as string[], gold: r['gold'] as number })) };
  return { kind, name, path, items: rows.map((r) => ({ prompt: r['prompt'] as string, answer: r['answer'] as string })) };
}
