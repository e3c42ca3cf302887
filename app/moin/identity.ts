/**
 * Identity of the base model a router was built on, so that a router folder refuses to run on a
 * different base (its centroids live in that base's hidden space, and its adapters were trained on
 * it). Hashing whole weight files would take minutes for a 7B model, so the fingerprint is a sha256
 * over config.json and, per safetensors file in name order, its name, size, header and up to 1 MiB
 * from its start, middle and end: any fine-tune changes bytes in all of those.
 */
import { createHash } from 'node:crypto';
import { open, readFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { Checkpoint } from '../io/checkpoint.js';

const SAMPLE = 1 << 20;

export interface BaseIdentity {
  architecture?: string;
  hiddenSize: number;
  numLayers: number;
  tokenizerSha256: string | null;
  weightsFingerprint: string;
}

export async function baseIdentity(dir: string): Promise<BaseIdentity> {
  const ck = await Checkpoint.open(dir);
  try {
    if (ck.kind !== 'model' || !ck.config) throw new Error(`${dir}: the base must be a model folder with config.json`);
    const h = createHash('sha256');
    h.update(await readFile(join(ck.path, 'config.json')));
    const files = ck.files.map((f) => ({ path: f.path, size: f.size })).sort((a, b) => basename(a.path).localeCompare(basename(b.path)));
    for (const f of files) {
      h.update(`${basename(f.path)}:${f.size}\n`);
      const fh = await open(f.path, 'r');
      try {
        for (const at of new Set([0, Math.max(0, Math.floor(f.size / 2) - SAMPLE / 2), Math.max(0, f.size - SAMPLE)])) {
          const buf = Buffer.alloc(Math.min(SAMPLE, f.size - at));
          await fh.read(buf, 0, buf.length, at);
          h.update(buf);
        }
      } finally {
        await fh.close();
      }
    }
    return {
      architecture: ck.config.architecture,
      hiddenSize: ck.config.hiddenSize,
      numLayers: ck.config.numLayers,
      tokenizerSha256: ck.tokenizerSha256 ?? null,
      weightsFingerprint: `sampled-sha256:${h.digest('hex')}`,
    };
  } finally {
    await ck.close();
  }
}
