/**
 * The one boundary to onnxruntime-node: every other module goes through this file.
 *
 * - The native binding is loaded lazily (first session or tensor), so listing providers or
 *   importing this module never loads native code, and a platform without a binary fails only
 *   when a session is actually requested.
 * - ORT 1.30 does not fall back when an execution provider fails to load (a missing CUDA library,
 *   no WebGPU adapter): it throws. `createSession` retries on CPU and reports why in `fallback`.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import type * as Ort from 'onnxruntime-node';
import { checkHostTensor, elementType, type HostElementType, type HostTensor, type HostTensorData } from './host-tensor.js';
import { AUTO_ORDER, PROVIDER_NAMES, platformProviders, type ProviderName, type ProviderRequest } from './providers.js';

export type { ProviderName, ProviderRequest } from './providers.js';

const cjsRequire = createRequire(import.meta.url);
let ortModule: typeof Ort | undefined;

/** onnxruntime-node is CommonJS; `require` gives the same module object an ESM default import would. */
function ort(): typeof Ort {
  ortModule ??= cjsRequire('onnxruntime-node') as typeof Ort;
  return ortModule;
}

/** Directory holding this platform's onnxruntime binding and provider libraries. */
function bindingDir(): string {
  const pkgDir = path.dirname(cjsRequire.resolve('onnxruntime-node/package.json'));
  return path.join(pkgDir, 'bin', 'napi-v6', process.platform, process.arch);
}

/** True when the CUDA EP libraries that onnxruntime-node downloads at install time are present. */
function cudaInstalled(): boolean {
  if (process.platform !== 'linux') return false;
  return existsSync(path.join(bindingDir(), 'libonnxruntime_providers_cuda.so'));
}

export interface ProviderInfo {
  name: ProviderName;
  /** Best effort: true means worth trying, not guaranteed to load (drivers, adapters). */
  available: boolean;
  note?: string;
}

/** Every provider name with whether it can be used on this machine, and why not. */
export function listProviders(): ProviderInfo[] {
  const where = `${process.platform}/${process.arch}`;
  const built = platformProviders(process.platform, process.arch);
  const binding = existsSync(path.join(bindingDir(), 'onnxruntime_binding.node'));
  return PROVIDER_NAMES.map((name): ProviderInfo => {
    if (!binding) return { name, available: false, note: `onnxruntime-node has no binary for ${where}` };
    if (!built.includes(name)) return { name, available: false, note: `not built into onnxruntime-node for ${where}` };
    if (name === 'cuda' && !cudaInstalled()) {
      return { name, available: false, note: 'CUDA EP libraries not installed (onnxruntime-node downloads them at npm install time)' };
    }
    if (name === 'webgpu') return { name, available: true, note: 'experimental; needs a GPU adapter' };
    return { name, available: true };
  });
}

/** Names of the providers `listProviders` reports as available. */
export function availableProviders(): ProviderName[] {
  return listProviders().filter((p) => p.available).map((p) => p.name);
}

export interface SessionConfig {
  /** Default 'cpu'. 'auto' picks the first available of cuda, dml, cpu. */
  provider?: ProviderRequest;
  /** GPU index for cuda / dml. */
  deviceId?: number;
  /** Default 'all'. 'disabled' avoids constant-folding Cast(bf16→fp32) into a full fp32 copy at load. */
  optimization?: 'disabled' | 'basic' | 'extended' | 'all';
  /** Intra-op thread count; unset or 0 lets ORT choose (one per physical core). */
  intraOpThreads?: number;
  /**
   * Keep MatMul weights file-backed instead of pre-packing them into an anonymous copy
   * (session.disable_prepacking; saves 1× the weight size in RAM, research §0.5).
   */
  disablePrepacking?: boolean;
  /** Set false to stop the CPU arena from holding on to peak activation memory. */
  cpuMemArena?: boolean;
  /** Raw session config entries with dotted keys, e.g. { 'session.use_env_allocators': '1' }. */
  configEntries?: Readonly<Record<string, string>>;
  /** 0 verbose … 4 fatal; ORT's default is 2 (warning). */
  logSeverity?: 0 | 1 | 2 | 3 | 4;
  /** Write the optimized graph here (debugging). */
  optimizedModelPath?: string;
  /** Only for models given as bytes: the files their external data refers to, read into memory. */
  externalData?: readonly { path: string; data: Uint8Array }[];
}

export interface ProviderFallback {
  /** What the caller asked for. */
  requested: ProviderRequest;
  /** The provider that failed ('auto' resolved to a name). */
  attempted: ProviderName;
  /** ORT's error message, or why the provider was not tried. */
  reason: string;
}

export interface ValueInfo {
  name: string;
  /** ORT's element type name ('float32', 'int64', …) or 'non-tensor'. */
  type: string;
  /** Symbolic dims are strings (e.g. 'batch'). */
  shape: (number | string)[];
}

/** The session config entries as the Node binding wants them: nested objects of strings. */
function nestedEntries(entries: Readonly<Record<string, string>>): Record<string, unknown> {
  const root: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(entries)) {
    const parts = key.split('.');
    let node = root;
    for (const p of parts.slice(0, -1)) {
      const next = node[p] ?? {};
      if (typeof next !== 'object') throw new Error(`session config key ${key} conflicts with another key`);
      node[p] = next;
      node = next as Record<string, unknown>;
    }
    node[parts[parts.length - 1]!] = value;
  }
  return root;
}

function providerConfig(p: ProviderName, deviceId: number | undefined): Ort.InferenceSession.ExecutionProviderConfig {
  if ((p === 'cuda' || p === 'dml') && deviceId !== undefined) return { name: p, deviceId };
  return p;
}

/** Translates our config to ORT's session options for one provider attempt. */
export function toOrtOptions(config: SessionConfig, provider: ProviderName): Ort.InferenceSession.SessionOptions {
  const entries: Record<string, string> = { ...config.configEntries };
  if (config.disablePrepacking === true) entries['session.disable_prepacking'] = '1';
  const providers = provider === 'cpu' ? ['cpu' as const] : [providerConfig(provider, config.deviceId), 'cpu' as const];
  const o: Ort.InferenceSession.SessionOptions = {
    executionProviders: providers,
    graphOptimizationLevel: config.optimization ?? 'all',
  };
  if (config.intraOpThreads !== undefined) o.intraOpNumThreads = config.intraOpThreads;
  if (config.cpuMemArena !== undefined) o.enableCpuMemArena = config.cpuMemArena;
  if (config.logSeverity !== undefined) o.logSeverityLevel = config.logSeverity;
  if (config.optimizedModelPath !== undefined) o.optimizedModelFilePath = config.optimizedModelPath;
  if (Object.keys(entries).length > 0) o.extra = nestedEntries(entries);
  if (config.externalData !== undefined) o.externalData = config.externalData.map((x) => ({ path: x.path, data: x.data }));
  return o;
}

const ORT_TYPE_OF: Readonly<Record<HostElementType, Ort.Tensor.Type>> = {
  float32: 'float32', float16: 'float16', int64: 'int64', int32: 'int32', uint16: 'uint16', uint8: 'uint8', bool: 'bool',
};

/** Wraps a HostTensor's buffer in an ort.Tensor (no copy; ORT reads and, for outputs, writes it). */
export function toOrtTensor(t: HostTensor, what = 'tensor'): Ort.Tensor {
  checkHostTensor(t, what);
  return new (ort().Tensor)(ORT_TYPE_OF[elementType(t)], t.data, t.dims);
}

/** Reads an ort.Tensor (CPU location) as a HostTensor, sharing its buffer. */
export function fromOrtTensor(t: Ort.Tensor, what = 'tensor'): HostTensor {
  const type = t.type as string;
  if (!(type in ORT_TYPE_OF)) throw new TypeError(`${what}: element type ${type} is not supported by HostTensor`);
  let data = t.data as HostTensorData;
  if (type === 'float16' && !(data instanceof Uint16Array)) {
    // Where a global Float16Array exists (newer V8), ORT hands fp16 back as one; keep the bits.
    const v = data as ArrayBufferView & { length: number };
    data = new Uint16Array(v.buffer, v.byteOffset, v.length);
  }
  return { type: type as HostElementType, dims: [...t.dims], data };
}

function valueInfos(meta: readonly Ort.InferenceSession.ValueMetadata[]): ValueInfo[] {
  return meta.map((m) => (m.isTensor ? { name: m.name, type: m.type, shape: [...m.shape] } : { name: m.name, type: 'non-tensor', shape: [] }));
}

export class OrtSession {
  readonly inputs: readonly ValueInfo[];
  readonly outputs: readonly ValueInfo[];
  #session: Ort.InferenceSession | undefined;

  constructor(
    session: Ort.InferenceSession,
    /** The provider the session actually runs on. */
    readonly provider: ProviderName,
    /** Set when the requested provider failed and the session fell back to CPU. */
    readonly fallback: ProviderFallback | undefined,
  ) {
    this.#session = session;
    this.inputs = valueInfos(session.inputMetadata);
    this.outputs = valueInfos(session.outputMetadata);
  }

  get released(): boolean {
    return this.#session === undefined;
  }

  /**
   * Runs the graph. `outputs` selects outputs by name, or maps names to pre-allocated tensors that
   * ORT fills in place (null: let ORT allocate). Pre-allocated tensors come back as the same objects.
   */
  async run(
    feeds: Readonly<Record<string, HostTensor>>,
    outputs?: readonly string[] | Readonly<Record<string, HostTensor | null>>,
  ): Promise<Record<string, HostTensor>> {
    const session = this.#session;
    if (session === undefined) throw new Error('session was released');
    const ortFeeds: Record<string, Ort.Tensor> = {};
    for (const [name, t] of Object.entries(feeds)) ortFeeds[name] = toOrtTensor(t, `input ${name}`);
    let result: Ort.InferenceSession.ReturnType;
    const prealloc: Record<string, HostTensor> = {};
    if (outputs === undefined) {
      result = await session.run(ortFeeds);
    } else if (Array.isArray(outputs)) {
      result = await session.run(ortFeeds, outputs as readonly string[]);
    } else {
      const fetches: Record<string, Ort.Tensor | null> = {};
      for (const [name, t] of Object.entries(outputs as Readonly<Record<string, HostTensor | null>>)) {
        fetches[name] = t === null ? null : toOrtTensor(t, `output ${name}`);
        if (t !== null) prealloc[name] = t;
      }
      result = await session.run(ortFeeds, fetches);
    }
    const out: Record<string, HostTensor> = {};
    for (const [name, v] of Object.entries(result)) {
      out[name] = prealloc[name] ?? fromOrtTensor(v, `output ${name}`);
    }
    return out;
  }

  /** Frees the native session (weights, arena). Idempotent; later runs throw. */
  async release(): Promise<void> {
    const s = this.#session;
    this.#session = undefined;
    if (s !== undefined) await s.release();
  }
}

function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** The provider 'auto' stands for on this machine. */
export function resolveAuto(): ProviderName {
  const avail = availableProviders();
  return AUTO_ORDER.find((p) => avail.includes(p)) ?? 'cpu';
}

async function open(model: string | Uint8Array, config: SessionConfig, provider: ProviderName): Promise<Ort.InferenceSession> {
  const options = toOrtOptions(config, provider);
  const { InferenceSession } = ort();
  // Two calls because `create` is overloaded separately for paths and bytes.
  return typeof model === 'string' ? InferenceSession.create(model, options) : InferenceSession.create(model, options);
}

/**
 * Creates a session from an `.onnx` path (external data resolved next to it) or from model bytes
 * (then `config.externalData` must carry any external files). If the requested provider cannot be
 * used, the session is created on CPU and `fallback` says what failed; errors on CPU are thrown.
 */
export async function createSession(model: string | Uint8Array, config: SessionConfig = {}): Promise<OrtSession> {
  const requested = config.provider ?? 'cpu';
  const provider = requested === 'auto' ? resolveAuto() : requested;
  let reason: string;
  if (provider !== 'cpu' && !platformProviders(process.platform, process.arch).includes(provider)) {
    reason = `${provider} is not available in onnxruntime-node on ${process.platform}/${process.arch}`;
  } else {
    try {
      return new OrtSession(await open(model, config, provider), provider, undefined);
    } catch (e) {
      if (provider === 'cpu') throw e;
      reason = errorMessage(e);
    }
  }
  const session = await open(model, config, 'cpu');
  return new OrtSession(session, 'cpu', { requested, attempted: provider, reason });
}
