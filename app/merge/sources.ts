/**
 * Reading merge inputs as float32: a model's tensor, optionally only its first rows, with a PEFT
 * adapter merged in on the fly for `model+lora` references (W + scaling·B·A, or the adapter's
 * modules_to_save replacement) — no merged copy of the model is ever written.
 */
import { toFloat32 } from '../core/dtypes.js';
import { loraDelta, moduleScaling } from '../core/lora.js';
import { readableDType } from '../core/safetensors-header.js';
import { Checkpoint } from '../io/checkpoint.js';
import type { ModelRef } from './config.js';

export class InputReader {
  private readonly open = new Map<string, Promise<Checkpoint>>();

  constructor(private readonly models: ModelRef[]) {}

  private ck(path: string): Promise<Checkpoint> {
    let p = this.open.get(path);
    if (!p) {
      p = Checkpoint.open(path);
      this.open.set(path, p);
    }
    return p;
  }

  /** The opened checkpoint of a model reference (its base model when it has a LoRA adapter). */
  checkpoint(model: number): Promise<Checkpoint> {
    return this.ck(this.models[model]!.path);
  }

  async read(model: number, tensor: string, rows?: number): Promise<Float32Array> {
    const ref = this.models[model]!;
    const ck = await this.ck(ref.path);
    let data: Float32Array;
    const adapter = ref.lora ? await this.ck(ref.lora) : undefined;
    const replacement = adapter?.adapterMap?.replacements.find((r) => r.baseTensor === tensor);
    if (adapter && replacement) {
      data = await adapter.readF32(replacement.adapterTensor);
    } else {
      const info = ck.info(tensor);
      const bytes = await ck.readBytes(tensor);
      data = toFloat32(bytes, readableDType(info, ck.fileOf(tensor).path), false);
      const mod = adapter?.adapterMap?.modules.find((m) => m.baseTensor === tensor);
      if (adapter?.lora && mod) {
        const a = await adapter.readF32(mod.a);
        const b = await adapter.readF32(mod.b);
        const d = loraDelta(a, adapter.info(mod.a).shape, b, adapter.info(mod.b).shape, moduleScaling(adapter.lora, mod.module).scaling, { fanInFanOut: adapter.lora.fanInFanOut, embedding: mod.embedding });
        if (d.data.length !== data.length) throw new Error(`${ref.label}: the adapter's delta for ${tensor} has ${d.data.length} values, the weight ${data.length}`);
        // PEFT merges in float32 and casts back; we stay in float32 until the output cast.
        for (let i = 0; i < data.length; i++) data[i]! += d.data[i]!;
      }
    }
    if (rows !== undefined) {
      const cols = data.length / ck.info(tensor).shape[0]!;
      data = data.subarray(0, rows * cols);
    }
    return data;
  }

  async close(): Promise<void> {
    const all = await Promise.allSettled(this.open.values());
    await Promise.all(all.map((r) => (r.status === 'fulfilled' ? r.value.close() : undefined)));
    this.open.clear();
  }
}
