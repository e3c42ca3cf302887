/** `upcycle export MODEL_DIR OUT --format onnx [--adapter DIR] [--overwrite]` */
import { parseArgs } from 'node:util';
import type { Command } from './main.js';

export const exportCommand: Command = {
  name: 'export',
  summary: 'Export a model (optionally + a LoRA adapter) as an ONNX folder any onnxruntime can run.',
  usage: 'upcycle export MODEL_DIR OUT --format onnx [--adapter DIR] [--max-positions N] [--overwrite] [--json]',
  async run(args) {
    const { values, positionals } = parseArgs({
      args,
      options: { format: { type: 'string', default: 'onnx' }, adapter: { type: 'string' }, overwrite: { type: 'boolean' }, 'max-positions': { type: 'string' }, json: { type: 'boolean' } },
      allowPositionals: true,
    });
    if (positionals.length !== 2) throw new Error('expected MODEL_DIR and OUT');
    if (values.format !== 'onnx') throw new Error(`--format ${values.format} is not supported (onnx is; merged Hugging Face folders come from \`upcycle merge\`)`);
    const maxPositions = values['max-positions'] ? Number(values['max-positions']) : undefined;
    if (maxPositions !== undefined && (!Number.isInteger(maxPositions) || maxPositions <= 0)) throw new Error('--max-positions must be a positive integer');
    const { exportOnnx } = await import('../runtime/export-onnx.js');
    const r = await exportOnnx(positionals[0]!, positionals[1]!, { adapter: values.adapter, overwrite: values.overwrite, maxPositions });
    if (values.json) console.log(JSON.stringify(r, null, 2));
    else {
      for (const n of r.notices) process.stderr.write(`note: ${n}\n`);
      console.log(`exported ${r.out}\n  files: ${r.files.join(', ')}\n  inputs: ${r.inputs.slice(0, 4).join(', ')}${r.inputs.length > 4 ? ', …' : ''}\n  outputs: ${r.outputs.slice(0, 3).join(', ')}${r.outputs.length > 3 ? ', …' : ''}`);
    }
    return 0;
  },
};
