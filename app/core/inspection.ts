/**
 * What `upcycle inspect` (and the service's `inspect`) reports about a checkpoint. Pure data, so the
 * renderer shares this one definition with the engine that produces it (app/io/inspect.ts).
 */
export interface Inspection {
  path: string;
  kind: 'model' | 'adapter' | 'safetensors';
  architecture: string | null;
  model_type: string | null;
  family: string | null;
  num_parameters: number;
  /** Tensor count per dtype. */
  dtypes: Record<string, number>;
  num_layers: number | null;
  hidden_size: number | null;
  vocab_size: number | null;
  num_experts: number | null;
  num_tensors: number;
  /** Bytes on disk of the weight files and the configs read. */
  total_bytes: number;
  /** Bytes of safetensors files actually read (headers only). */
  bytes_read: number;
  num_files: number;
  tokenizer_sha256: string | null;
  adapter: null | {
    r: number;
    lora_alpha: number;
    scaling: number;
    use_rslora: boolean;
    target_modules: string[];
    num_modules: number;
    base_model: string | null;
    base_found: boolean;
  };
  problems: string[];
}
