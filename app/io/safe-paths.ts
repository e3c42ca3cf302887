/**
 * Path containment for checkpoint folders. A file a checkpoint refers to (a shard in weight_map, a
 * symlinked weight file) must resolve inside the checkpoint folder, so a crafted index or link can
 * never make us read `/etc/…` or a neighbour's files. One exception, by design: the Hugging Face
 * hub cache (`<repo>/snapshots/<rev>/file -> ../../blobs/<sha>`), where every file is a link into
 * the repository's own `blobs/` folder; refusing it would refuse every model users downloaded.
 */
import { realpath } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, normalize, sep } from 'node:path';
import { CheckpointError } from '../core/errors.js';

/** Resolves `rel` inside `folder` and checks the real file stays inside it. */
export async function resolveInside(folder: string, rel: string, what: string): Promise<string> {
  if (rel === '' || isAbsolute(rel) || rel.includes('\0') || normalize(rel).split(/[\\/]/).includes('..')) {
    throw new CheckpointError('UNSAFE_PATH', join(folder, what), `refers to "${rel}", which is outside the checkpoint folder`,
      'a checkpoint may only refer to files inside its own folder; the file may be malicious');
  }
  const realFolder = await realpath(folder);
  const candidate = join(folder, rel);
  let real: string;
  try {
    real = await realpath(candidate);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new CheckpointError('MISSING_SHARD', candidate, `is missing (referred to by ${what})`, 'the download is incomplete; fetch the missing file again');
    throw new CheckpointError('NOT_FOUND', candidate, `cannot be read: ${(e as Error).message}`);
  }
  if (isInside(realFolder, real) || isHubCacheBlob(realFolder, real)) return real;
  throw new CheckpointError('UNSAFE_PATH', candidate, `is a link to ${real}, outside the checkpoint folder`,
    'copy the real file into the folder (a link may only point inside it, or into a Hugging Face cache\'s blobs/)');
}

export function isInside(folder: string, p: string): boolean {
  return p === folder || p.startsWith(folder.endsWith(sep) ? folder : folder + sep);
}

/** `<repo>/snapshots/<rev>` linking into `<repo>/blobs/<file>`. */
function isHubCacheBlob(realFolder: string, real: string): boolean {
  const snapshots = dirname(realFolder);
  if (basename(snapshots) !== 'snapshots') return false;
  const blobs = join(dirname(snapshots), 'blobs');
  return dirname(real) === blobs;
}
