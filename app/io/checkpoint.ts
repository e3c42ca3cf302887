/**
 * Checkpoints as users have them: a Hugging Face model folder (config.json, one or sharded
 * safetensors, tokenizer files, generation_config), a PEFT LoRA adapter folder, or a bare
 * .safetensors file. Opening reads configs and safetensors headers only; tensors are read on demand.
 */
import { createHash } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import { basename, extname, join, resolve } from 'node:path';
import { expectedTensors } from '../core/architectures.js';
import type { DType } from '../core/dtypes.js';
import { CheckpointError } from '../core/errors.js';
import { ConfigError, parseModelConfig, type ModelConfig } from '../core/hf-config.js';
import { LoraConfigError, mapAdapterTensors, parseLoraConfig, type AdapterTensorMap, type LoraConfig } from '../core/lora.js';
import type { TensorInfo } from '../core/safetensors-header.js';
import { resolveInside } from './safe-paths.js';
import { SafetensorsFile, ioError } from './safetensors-reader.js';

export type CheckpointKind = 'model' | 'adapter' | 'safetensors';

export interface Problem {
  severity: 'error' | 'warning' | 'info';
  message: string;
}

interface Located {
  file: SafetensorsFile;
  info: TensorInfo;
}

const PICKLE_EXT = new Set(['.bin', '.pt', '.pth', '.ckpt', '.pkl', '.pickle']);
const TOKENIZER_FILES = ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'tokenizer.model', 'vocab.json', 'merges.txt', 'added_tokens.json', 'chat_template.jinja'];

function pickleError(path: string): CheckpointError {
  return new CheckpointError('PICKLE_REFUSED', path,
    'is a pickle checkpoint (.bin/.pt), which can run arbitrary code when loaded, so it is refused',
    'convert it to safetensors where you trust it, e.g. `python -c "from transformers import AutoModelForCausalLM as M; M.from_pretrained(\'DIR\').save_pretrained(\'OUT\', safe_serialization=True)"`, or with PEFT `save_pretrained(..., safe_serialization=True)` for adapters');
}

export class Checkpoint {
  readonly problems: Problem[] = [];
  config?: ModelConfig;
  lora?: LoraConfig;
  adapterMap?: AdapterTensorMap;
  tokenizerSha256?: string;
  tokenizerFiles: string[] = [];
  generationConfig?: Record<string, unknown>;
  /** Bytes of the safetensors files plus the small JSON files we read. */
  bytesOnDisk = 0;
  private readonly tensors = new Map<string, Located>();
  readonly files: SafetensorsFile[] = [];

  private constructor(readonly kind: CheckpointKind, readonly path: string) {}

  /** Opens a model folder, an adapter folder or a .safetensors file. */
  static async open(path: string): Promise<Checkpoint> {
    const abs = resolve(path);
    let st;
    try {
      st = await stat(abs);
    } catch (e) {
      throw ioError(abs, e);
    }
    if (st.isFile()) {
      if (PICKLE_EXT.has(extname(abs).toLowerCase())) throw pickleError(abs);
      const ck = new Checkpoint('safetensors', abs);
      try {
        await ck.addFile(abs);
      } catch (e) {
        await ck.close();
        throw e;
      }
      return ck;
    }
    if (!st.isDirectory()) throw new CheckpointError('NOT_FOUND', abs, 'is neither a file nor a folder');
    const entries = new Set(await readdir(abs));
    const kind: CheckpointKind = entries.has('adapter_config.json') ? 'adapter' : 'model';
    const ck = new Checkpoint(kind, abs);
    try {
      if (kind === 'adapter') await ck.openAdapter(entries);
      else await ck.openModel(entries);
    } catch (e) {
      await ck.close();
      throw e;
    }
    return ck;
  }

  private async openModel(entries: Set<string>): Promise<void> {
    const dir = this.path;
    if (entries.has('config.json')) {
      const raw = await this.readJson('config.json');
      try {
        this.config = parseModelConfig(raw);
      } catch (e) {
        if (e instanceof ConfigError) throw new CheckpointError('INVALID_CONFIG', join(dir, 'config.json'), e.message, 'fix or replace config.json');
        throw e;
      }
      for (const n of this.config.notes) this.problems.push({ severity: 'warning', message: n });
    } else {
      this.problems.push({ severity: 'warning', message: 'no config.json: tensors can be listed and merged, but the architecture is unknown' });
    }
    if (entries.has('generation_config.json')) {
      this.generationConfig = (await this.readJson('generation_config.json')) as Record<string, unknown>;
    }
    const index = [...entries].find((e) => e.endsWith('.safetensors.index.json'));
    const singles = [...entries].filter((e) => e.endsWith('.safetensors')).sort();
    if (index) {
      await this.openSharded(index);
    } else if (singles.length > 0) {
      const main = singles.includes('model.safetensors') ? ['model.safetensors'] : singles;
      for (const f of main) await this.addFile(await resolveInside(dir, f, f));
    } else {
      const pickles = [...entries].filter((e) => PICKLE_EXT.has(extname(e).toLowerCase()) || e.endsWith('.bin.index.json'));
      if (pickles.length > 0) throw pickleError(join(dir, pickles[0]!));
      throw new CheckpointError('NOT_FOUND', dir, 'has no .safetensors weights', 'point at a Hugging Face model folder (config.json + *.safetensors) or a PEFT adapter folder');
    }
    if ([...entries].some((e) => PICKLE_EXT.has(extname(e).toLowerCase()))) {
      this.problems.push({ severity: 'info', message: 'pickle files (.bin/.pt) beside the safetensors were ignored' });
    }
    await this.readTokenizer(entries);
    this.checkAgainstConfig();
  }

  private async openSharded(indexName: string): Promise<void> {
    const dir = this.path;
    const idxPath = join(dir, indexName);
    const raw = await this.readJson(indexName);
    const weightMap = typeof raw === 'object' && raw !== null ? (raw as { weight_map?: unknown }).weight_map : undefined;
    if (typeof weightMap !== 'object' || weightMap === null || Array.isArray(weightMap)) {
      throw new CheckpointError('INVALID_INDEX', idxPath, 'has no "weight_map" object', 'the index is corrupt; download it again');
    }
    const byFile = new Map<string, string[]>();
    for (const [name, file] of Object.entries(weightMap as Record<string, unknown>)) {
      if (typeof file !== 'string') throw new CheckpointError('INVALID_INDEX', idxPath, `weight_map["${name}"] is not a file name`, 'the index is corrupt; download it again');
      const list = byFile.get(file) ?? [];
      list.push(name);
      byFile.set(file, list);
    }
    for (const [file, names] of byFile) {
      const real = await resolveInside(dir, file, indexName);
      const f = await this.addFile(real);
      for (const n of names) {
        if (!f.has(n)) {
          throw new CheckpointError('MISSING_TENSOR', idxPath, `lists tensor "${n}" in ${file}, which does not contain it`,
            'the index and the shards are from different versions; download the checkpoint again');
        }
      }
      const listed = new Set(names);
      const extra = f.names.filter((n) => !listed.has(n));
      if (extra.length > 0) this.problems.push({ severity: 'warning', message: `${file} holds ${extra.length} tensors the index does not list (first: ${extra[0]})` });
    }
  }

  private async openAdapter(entries: Set<string>): Promise<void> {
    const dir = this.path;
    const raw = await this.readJson('adapter_config.json');
    try {
      this.lora = parseLoraConfig(raw);
    } catch (e) {
      if (e instanceof LoraConfigError) throw new CheckpointError('INVALID_CONFIG', join(dir, 'adapter_config.json'), e.message, 'fix or replace adapter_config.json');
      throw e;
    }
    if (entries.has('adapter_model.safetensors')) {
      await this.addFile(await resolveInside(dir, 'adapter_model.safetensors', 'adapter_config.json'));
    } else if (entries.has('adapter_model.bin')) {
      throw pickleError(join(dir, 'adapter_model.bin'));
    } else {
      throw new CheckpointError('NOT_FOUND', join(dir, 'adapter_model.safetensors'), 'is missing', 'a PEFT adapter folder needs adapter_config.json and adapter_model.safetensors');
    }
    this.adapterMap = mapAdapterTensors(this.names);
    if (this.adapterMap.unknown.length > 0) {
      this.problems.push({ severity: 'warning', message: `${this.adapterMap.unknown.length} adapter tensors are not LoRA A/B pairs and will be ignored (first: ${this.adapterMap.unknown[0]})` });
    }
    for (const m of this.adapterMap.modules) {
      const a = this.info(m.a);
      const b = this.info(m.b);
      if (a.shape.length !== 2 || b.shape.length !== 2 || a.shape[0] !== b.shape[1]) {
        this.problems.push({ severity: 'error', message: `${m.module}: lora_A [${a.shape}] and lora_B [${b.shape}] do not form a rank-r pair` });
      }
    }
    await this.readTokenizer(entries);
  }

  private async readJson(name: string): Promise<unknown> {
    const p = await resolveInside(this.path, name, name);
    const bytes = await readFile(p);
    this.bytesOnDisk += bytes.byteLength;
    try {
      return JSON.parse(bytes.toString('utf8'));
    } catch (e) {
      throw new CheckpointError('INVALID_CONFIG', join(this.path, name), `is not valid JSON (${(e as Error).message})`, `fix or replace ${name}`);
    }
  }

  private async readTokenizer(entries: Set<string>): Promise<void> {
    this.tokenizerFiles = TOKENIZER_FILES.filter((f) => entries.has(f));
    if (entries.has('tokenizer.json')) {
      const bytes = await readFile(await resolveInside(this.path, 'tokenizer.json', 'tokenizer.json'));
      this.tokenizerSha256 = createHash('sha256').update(bytes).digest('hex');
    } else if (this.kind === 'model') {
      this.problems.push({ severity: 'warning', message: 'no tokenizer.json: the model cannot be evaluated here, and tokenizer compatibility cannot be checked' });
    }
  }

  private async addFile(path: string): Promise<SafetensorsFile> {
    const f = await SafetensorsFile.open(path);
    this.files.push(f);
    this.bytesOnDisk += f.size;
    for (const t of f.header.tensors) {
      const prev = this.tensors.get(t.name);
      if (prev) {
        throw new CheckpointError('INVALID_INDEX', path, `tensor "${t.name}" is also in ${basename(prev.file.path)}`, 'the checkpoint mixes files from different versions; keep one copy of each tensor');
      }
      this.tensors.set(t.name, { file: f, info: t });
    }
    return f;
  }

  /** Missing, unexpected and mis-shaped tensors against the config's architecture. */
  private checkAgainstConfig(): void {
    const cfg = this.config;
    if (!cfg?.family) return;
    const expected = expectedTensors(cfg);
    const want = new Set(expected.map((e) => e.name));
    const missing = expected.filter((e) => !e.optional && !this.tensors.has(e.name));
    if (missing.length > 0) {
      this.problems.push({ severity: 'error', message: `${missing.length} tensors required by ${cfg.architecture} are missing (first: ${missing[0]!.name})` });
    }
    for (const e of expected) {
      const t = this.tensors.get(e.name)?.info;
      if (t && (t.shape.length !== e.shape.length || t.shape.some((d, i) => d !== e.shape[i]))) {
        this.problems.push({ severity: 'error', message: `${e.name} is [${t.shape.join(', ')}], config.json implies [${e.shape.join(', ')}]` });
      }
    }
    const extra = this.names.filter((n) => !want.has(n) && !/rotary_emb\.inv_freq$/.test(n));
    if (extra.length > 0) this.problems.push({ severity: 'warning', message: `${extra.length} tensors are not part of ${cfg.architecture} (first: ${extra[0]})` });
  }

  get names(): string[] {
    return [...this.tensors.keys()];
  }

  has(name: string): boolean {
    return this.tensors.has(name);
  }

  info(name: string): TensorInfo {
    return this.locate(name).info;
  }

  private locate(name: string): Located {
    const l = this.tensors.get(name);
    if (!l) throw new CheckpointError('MISSING_TENSOR', this.path, `has no tensor "${name}"`, 'check that this is the checkpoint you meant, or that all its shards are present');
    return l;
  }

  readBytes(name: string): Promise<Uint8Array> {
    const l = this.locate(name);
    return l.file.readBytes(name);
  }

  readF32(name: string): Promise<Float32Array> {
    const l = this.locate(name);
    return l.file.readF32(name);
  }

  /** Which file holds a tensor (for coalesced reads and ONNX external data). */
  fileOf(name: string): SafetensorsFile {
    return this.locate(name).file;
  }

  get numParameters(): number {
    let n = 0;
    for (const { info } of this.tensors.values()) n += info.shape.reduce((a, d) => a * d, 1);
    return n;
  }

  /** Tensor count per dtype. */
  get dtypes(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const { info } of this.tensors.values()) out[info.dtype] = (out[info.dtype] ?? 0) + 1;
    return out;
  }

  /** The float dtype most tensors are stored in (BF16/F16), else F32: the default output dtype of jobs. */
  get storedFloatDtype(): DType {
    const d = Object.entries(this.dtypes).sort((a, b) => b[1] - a[1])[0]?.[0];
    return d === 'BF16' || d === 'F16' ? d : 'F32';
  }

  /** Bytes read so far from safetensors files (headers on open; tensors when read). */
  get bytesRead(): number {
    return this.files.reduce((a, f) => a + f.stats.bytesRead, 0);
  }

  async close(): Promise<void> {
    await Promise.all(this.files.map((f) => f.close()));
  }
}

/** Opens, runs `fn`, and always closes. */
export async function withCheckpoint<T>(path: string, fn: (ck: Checkpoint) => Promise<T>): Promise<T> {
  const ck = await Checkpoint.open(path);
  try {
    return await fn(ck);
  } finally {
    await ck.close();
  }
}
