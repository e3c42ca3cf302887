/**
 * Atomic output folders: everything is written into a hidden sibling folder
 * (`.NAME.partial-<pid>-<random>`) and renamed into place only when complete, so a cancelled,
 * failed or killed job never leaves a half-written model where the user expects a finished one.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, rename, rm, stat, writeFile, open } from 'node:fs/promises';
import { basename, dirname, join, resolve, sep } from 'node:path';
import { CheckpointError } from '../core/errors.js';

export interface OutputFolderOptions {
  /** Replace an existing folder at the target (the old one is removed only after the new one is in place). */
  overwrite?: boolean;
}

export class OutputFolder {
  private done = false;

  private constructor(readonly target: string, readonly tmp: string, private readonly overwrite: boolean) {}

  static async create(target: string, opts: OutputFolderOptions = {}): Promise<OutputFolder> {
    const abs = resolve(target);
    const exists = await stat(abs).then(() => true, () => false);
    if (exists && !opts.overwrite) {
      throw new CheckpointError('OUTPUT_EXISTS', abs, 'already exists', 'choose another output folder, or pass --overwrite to replace it');
    }
    await mkdir(dirname(abs), { recursive: true });
    const tmp = join(dirname(abs), `.${basename(abs)}.partial-${process.pid}-${randomBytes(4).toString('hex')}`);
    await mkdir(tmp);
    return new OutputFolder(abs, tmp, !!opts.overwrite);
  }

  /** Absolute path inside the temporary folder; refuses names that would escape it. */
  path(rel: string): string {
    const p = resolve(this.tmp, rel);
    if (!p.startsWith(this.tmp + sep)) {
      throw new CheckpointError('UNSAFE_PATH', rel, 'would be written outside the output folder', 'this is a bug; please report it');
    }
    return p;
  }

  /** Writes a small file (config, README, index) durably. */
  async writeFile(rel: string, data: string | Uint8Array): Promise<void> {
    const p = this.path(rel);
    await mkdir(dirname(p), { recursive: true });
    await writeFile(p, data);
    await fsyncPath(p);
  }

  /** Moves the finished folder into place. */
  async commit(): Promise<string> {
    if (this.done) throw new Error('output folder already committed or aborted');
    this.done = true;
    const exists = await stat(this.target).then(() => true, () => false);
    if (exists) {
      if (!this.overwrite) {
        await rm(this.tmp, { recursive: true, force: true });
        throw new CheckpointError('OUTPUT_EXISTS', this.target, 'appeared while the job was running', 'choose another output folder');
      }
      const old = `${this.tmp}.old`;
      await rename(this.target, old);
      await rename(this.tmp, this.target);
      await rm(old, { recursive: true, force: true });
    } else {
      await rename(this.tmp, this.target);
    }
    await fsyncPath(dirname(this.target)).catch(() => undefined);
    return this.target;
  }

  /** Removes everything written so far. Safe to call more than once. */
  async abort(): Promise<void> {
    if (this.done) return;
    this.done = true;
    await rm(this.tmp, { recursive: true, force: true });
  }
}

export async function fsyncPath(p: string): Promise<void> {
  const fh = await open(p, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
