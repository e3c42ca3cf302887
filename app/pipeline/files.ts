/** Pipeline files on disk: relative paths are relative to the file; saving is atomic. */
import { readFile, rename, writeFile } from 'node:fs/promises';
import { dirname, isAbsolute, relative, resolve } from 'node:path';
import { migratePipeline, type PipelineDoc } from '../core/pipeline/document.js';

const PATH_TYPES = new Set(['checkpoint', 'adapter', 'dataset', 'export']);

export async function loadPipelineFile(path: string): Promise<PipelineDoc> {
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(path, 'utf8'));
  } catch (e) {
    throw new Error(`${path}: cannot be read as a pipeline (${(e as Error).message})`);
  }
  try {
    return resolvePaths(migratePipeline(raw), dirname(resolve(path)));
  } catch (e) {
    throw new Error(`${path}: ${(e as Error).message}`);
  }
}

export function resolvePaths(doc: PipelineDoc, baseDir: string): PipelineDoc {
  return {
    ...doc,
    nodes: doc.nodes.map((n) => (PATH_TYPES.has(n.type) && typeof n.params['path'] === 'string' && n.params['path'] && !isAbsolute(n.params['path'])
      ? { ...n, params: { ...n.params, path: resolve(baseDir, n.params['path']) } }
      : n)),
  };
}

/** Writes the pipeline with paths relative to the file where possible (so a project folder can move). */
export async function savePipelineFile(path: string, doc: PipelineDoc): Promise<void> {
  const dir = dirname(resolve(path));
  const rel = {
    ...doc,
    nodes: doc.nodes.map((n) => (PATH_TYPES.has(n.type) && typeof n.params['path'] === 'string' && isAbsolute(n.params['path'])
      ? { ...n, params: { ...n.params, path: relative(dir, n.params['path']) || '.' } }
      : n)),
  };
  const tmp = `${path}.partial-${process.pid}`;
  await writeFile(tmp, JSON.stringify(rel, null, 2) + '\n');
  await rename(tmp, path);
}
