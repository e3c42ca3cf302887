/** What a checkpoint is, for `upcycle inspect` and the canvas's node facts. Headers only. */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { checkAdapterAgainstBase } from '../core/compat.js';
import { moduleScaling } from '../core/lora.js';
import type { Inspection } from '../core/inspection.js';
import { Checkpoint } from './checkpoint.js';
import { summarize } from './summary.js';

export type { Inspection };

export async function inspectCheckpoint(path: string): Promise<Inspection> {
  const ck = await Checkpoint.open(path);
  try {
    const cfg = ck.config;
    const embed = ck.names.find((n) => n.endsWith('embed_tokens.weight'));
    const embedShape = embed ? ck.info(embed).shape : undefined;
    const layerIdx = ck.names.map((n) => /\.layers\.(\d+)\./.exec(n)?.[1]).filter((x): x is string => !!x).map(Number);
    const problems = ck.problems.map((p) => `${p.severity}: ${p.message}`);
    let adapter: Inspection['adapter'] = null;
    if (ck.kind === 'adapter' && ck.lora && ck.adapterMap) {
      const lora = ck.lora;
      const targets = [...new Set(ck.adapterMap.modules.map((m) => m.module.split('.').pop()!))].sort();
      const base = lora.baseModelNameOrPath ? resolve(ck.path, lora.baseModelNameOrPath) : undefined;
      const baseFound = !!base && existsSync(resolve(base, 'config.json'));
      if (baseFound) {
        const baseCk = await Checkpoint.open(base);
        try {
          for (const d of checkAdapterAgainstBase(summarize(ck), summarize(baseCk))) problems.push(`${d.severity}: ${d.message} — ${d.meaning}`);
        } finally {
          await baseCk.close();
        }
      } else if (lora.baseModelNameOrPath) {
        problems.push(`info: base model "${lora.baseModelNameOrPath}" is not a local folder; pair the adapter with its base on the canvas or with --base`);
      }
      const first = ck.adapterMap.modules[0];
      adapter = {
        r: lora.r,
        lora_alpha: lora.alpha,
        scaling: first ? moduleScaling(lora, first.module).scaling : lora.useRslora ? lora.alpha / Math.sqrt(lora.r) : lora.alpha / lora.r,
        use_rslora: lora.useRslora,
        target_modules: targets,
        num_modules: ck.adapterMap.modules.length,
        base_model: lora.baseModelNameOrPath ?? null,
        base_found: baseFound,
      };
    }
    return {
      path: ck.path,
      kind: ck.kind,
      architecture: cfg?.architecture ?? null,
      model_type: cfg?.modelType ?? null,
      family: cfg?.family ?? null,
      num_parameters: ck.numParameters,
      dtypes: ck.dtypes,
      num_layers: cfg?.numLayers ?? (layerIdx.length ? Math.max(...layerIdx) + 1 : null),
      hidden_size: cfg?.hiddenSize ?? embedShape?.[1] ?? null,
      vocab_size: cfg?.vocabSize ?? embedShape?.[0] ?? null,
      num_experts: cfg?.moe?.numExperts ?? null,
      num_tensors: ck.names.length,
      total_bytes: ck.bytesOnDisk,
      bytes_read: ck.bytesRead,
      num_files: ck.files.length,
      tokenizer_sha256: ck.tokenizerSha256 ?? null,
      adapter,
      problems,
    };
  } finally {
    await ck.close();
  }
}

export function formatInspection(r: Inspection): string {
  const rows: [string, string][] = [
    ['path', r.path],
    ['kind', r.kind],
  ];
  if (r.architecture) rows.push(['architecture', `${r.architecture} (${r.model_type}${r.family ? '' : ', unsupported family'})`]);
  rows.push(['parameters', `${r.num_parameters.toLocaleString('en-US')} (${humanCount(r.num_parameters)})`]);
  rows.push(['dtypes', Object.entries(r.dtypes).map(([d, n]) => `${d} ×${n}`).join(', ')]);
  if (r.num_layers !== null) rows.push(['layers', String(r.num_layers)]);
  if (r.hidden_size !== null) rows.push(['hidden size', String(r.hidden_size)]);
  if (r.vocab_size !== null) rows.push(['vocab size', String(r.vocab_size)]);
  if (r.num_experts !== null) rows.push(['experts', String(r.num_experts)]);
  rows.push(['tensors', `${r.num_tensors} in ${r.num_files} file${r.num_files === 1 ? '' : 's'}`]);
  rows.push(['on disk', `${humanBytes(r.total_bytes)} (${humanBytes(r.bytes_read)} read)`]);
  rows.push(['tokenizer', r.tokenizer_sha256 ? `sha256 ${r.tokenizer_sha256.slice(0, 16)}…` : '(none)']);
  if (r.adapter) {
    const a = r.adapter;
    rows.push(['lora', `r=${a.r} alpha=${a.lora_alpha} scaling=${a.scaling}${a.use_rslora ? ' (rsLoRA)' : ''}, ${a.num_modules} modules: ${a.target_modules.join(', ')}`]);
    rows.push(['base', `${a.base_model ?? '(not recorded)'}${a.base_found ? ' (found, checked)' : ''}`]);
  }
  const w = Math.max(...rows.map(([k]) => k.length));
  const out = rows.map(([k, v]) => `${k.padEnd(w)}  ${v}`);
  out.push(r.problems.length === 0 ? 'problems'.padEnd(w) + '  none' : `problems${' '.repeat(Math.max(0, w - 8))}  ${r.problems.length}`);
  for (const p of r.problems) out.push(`  - ${p}`);
  return out.join('\n');
}

export function humanBytes(n: number): string {
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  let v = n;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(v < 10 ? 2 : 1)} ${units[i]}`;
}

export function humanCount(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)}B`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)}K`;
  return String(n);
}
