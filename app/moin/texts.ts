/**
 * Texts for sequence-level routing: what is embedded from a training line, a corpus line or a query.
 *
 * The router embeds the *query part* of a text: everything up to and including the first
 * `query_delimiter` (when one is configured and present), else the whole text. Seed lines of the
 * fixtures are `<prompt> =<answer>` while the queries at evaluation are `<prompt> =`, so with
 * `query_delimiter: "="` both sides embed the same kind of text; embedding the whole seed line
 * instead puts the answer into the centroid (upper-case words for `upper`, which then look like
 * nothing any query has) and costs routing accuracy (see README.md).
 *
 * JSONL lines may be `{"text"}`, `{"prompt","answer"}` (query = prompt) or `{"query","choices","gold"}`
 * (query = query). An optional `"label"` (or `"expert"`) string names the expert a line belongs to.
 */
import { readFile } from 'node:fs/promises';

export interface RoutedText {
  /** What the router embeds. */
  query: string;
  /** The whole line (prompt + answer): what perplexity-based cluster mapping scores. */
  full: string;
  label?: string;
}

/** The part of `text` up to and including the first delimiter, or all of it. */
export function queryOf(text: string, delimiter: string | null | undefined): string {
  if (!delimiter) return text;
  const at = text.indexOf(delimiter);
  return at < 0 ? text : text.slice(0, at + delimiter.length);
}

export function routedText(row: Record<string, unknown>, delimiter: string | null | undefined): RoutedText | undefined {
  const label = typeof row['label'] === 'string' ? row['label'] : typeof row['expert'] === 'string' ? row['expert'] : undefined;
  const withLabel = (r: RoutedText): RoutedText => (label !== undefined ? { ...r, label } : r);
  if (typeof row['prompt'] === 'string') {
    const answer = typeof row['answer'] === 'string' ? row['answer'] : '';
    return withLabel({ query: queryOf(row['prompt'], delimiter), full: row['prompt'] + answer });
  }
  if (typeof row['query'] === 'string') {
    const choices = Array.isArray(row['choices']) ? row['choices'] : [];
    const gold = typeof row['gold'] === 'number' ? choices[row['gold']] : undefined;
    return withLabel({ query: queryOf(row['query'], delimiter), full: row['query'] + (typeof gold === 'string' ? gold : '') });
  }
  if (typeof row['text'] === 'string') return withLabel({ query: queryOf(row['text'], delimiter), full: row['text'] });
  return undefined;
}

export class TextsError extends Error {
  override readonly name = 'TextsError';
}

/** Reads a JSONL file of texts (see the header for the accepted line shapes). */
export async function readTexts(path: string, delimiter: string | null | undefined, limit?: number): Promise<RoutedText[]> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new TextsError(`${path}: cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  const out: RoutedText[] = [];
  const lines = text.split('\n');
  for (const [i, raw] of lines.entries()) {
    const l = raw.trim();
    if (!l) continue;
    if (limit !== undefined && out.length >= limit) break;
    let row: unknown;
    try {
      row = JSON.parse(l);
    } catch (e) {
      throw new TextsError(`${path}: line ${i + 1} is not JSON (${(e as Error).message})`);
    }
    const r = typeof row === 'object' && row !== null && !Array.isArray(row) ? routedText(row as Record<string, unknown>, delimiter) : undefined;
    if (!r) throw new TextsError(`${path}: line ${i + 1} has none of the fields "text", "prompt" or "query"`);
    out.push(r);
  }
  if (out.length === 0) throw new TextsError(`${path}: has no lines`);
  return out;
}
