/**
 * `upcycle export MODEL_DIR OUT --format onnx`: a self-contained folder that any onnxruntime (Python,
 * C++, Node, web) can run — model.onnx whose initializers are external data pointing into the
 * checkpoint's own .safetensors files (hard-linked or copied beside it), plus config and tokenizer.
 *
 * Graph I/O (documented in the folder's README.md):
 *   inputs   input_ids int64 [batch, seq], position_ids int64 [batch, seq],
 *            past_key_values.{i}.key / .value float32 [batch, kv_heads, past, head_dim] (zero-length past for the first call)
 *   outputs  logits float32 [batch, seq, vocab], present.{i}.key / .value float32 [batch, kv_heads, past+seq, head_dim]
 * Batches must be right-padded (causal attention never sees the padding after a real token).
 */
import { copyFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Checkpoint } from '../io/checkpoint.js';
import { OutputFolder } from '../io/output-folder.js';
import { graphOutputs, OPSET } from './decoder-graph.js';
import { buildGraphBytes, linkOrCopy, runnableConfig, weightFiles } from './graph-folder.js';

const COPY = /^(config\.json|generation_config\.json|tokenizer\.json|tokenizer_config\.json|special_tokens_map\.json|tokenizer\.model|vocab\.json|merges\.txt|added_tokens\.json|chat_template\.jinja)$/;

export interface OnnxExportResult {
  out: string;
  files: string[];
  notices: string[];
  inputs: string[];
  outputs: string[];
}

export async function exportOnnx(modelDir: string, outDir: string, opts: { adapter?: string; overwrite?: boolean; maxPositions?: number } = {}): Promise<OnnxExportResult> {
  const base = await Checkpoint.open(modelDir);
  const adapter = opts.adapter ? await Checkpoint.open(opts.adapter) : undefined;
  let out: OutputFolder | undefined;
  try {
    const cfg = runnableConfig(base, adapter);
    const graphOpts = { kvCache: true, maxPositions: opts.maxPositions };
    const graph = buildGraphBytes(base, adapter, graphOpts);
    out = await OutputFolder.create(outDir, { overwrite: opts.overwrite });
    const notices: string[] = [];
    const files: string[] = [];
    for (const f of weightFiles(base, adapter)) {
      if (!(await linkOrCopy(f.path, out.path(f.local)))) notices.push(`${f.path} was copied (hard link impossible)`);
      files.push(f.local);
    }
    for (const name of await readdir(base.path)) {
      if (COPY.test(name)) {
        await copyFile(join(base.path, name), out.path(name)); // small and editable: never share an inode
        files.push(name);
      }
    }
    await out.writeFile('model.onnx', graph);
    const inputs = ['input_ids', 'position_ids', ...Array.from({ length: cfg.numLayers }, (_, i) => [`past_key_values.${i}.key`, `past_key_values.${i}.value`]).flat()];
    const outputs = graphOutputs(cfg, graphOpts);
    await out.writeFile('README.md', readme(cfg.architecture, cfg.numLayers, cfg.numKvHeads, cfg.headDim, cfg.vocabSize, !!adapter));
    files.push('model.onnx', 'README.md');
    await out.commit();
    return { out: out.target, files, notices, inputs, outputs };
  } catch (e) {
    await out?.abort();
    throw e;
  } finally {
    await base.close();
    await adapter?.close();
  }
}

function readme(arch: string, layers: number, kv: number, d: number, vocab: number, lora: boolean): string {
  return `# ONNX export (${arch})

Exported by Upcycle Studio. \`model.onnx\` (opset ${OPSET}: RMSNormalization, RotaryEmbedding, Attention) keeps its
weights as external data inside the \`w*.safetensors\` files beside it: keep the folder together.${lora ? '\nA LoRA adapter is applied unmerged (extra low-rank MatMuls beside each adapted projection).' : ''}

| name | type | shape |
|---|---|---|
| input \`input_ids\` | int64 | [batch, seq] |
| input \`position_ids\` | int64 | [batch, seq] (positions past+0 … past+seq-1) |
| inputs \`past_key_values.{0…${layers - 1}}.key\` / \`.value\` | float32 | [batch, ${kv}, past, ${d}] — zero-length (past = 0) on the first call |
| output \`logits\` | float32 | [batch, seq, ${vocab}] |
| outputs \`present.{0…${layers - 1}}.key\` / \`.value\` | float32 | [batch, ${kv}, past+seq, ${d}] — feed back as the next call's past |

Attention is causal with no mask input: pad batches on the right, or batch only sequences of equal length.
`;
}
