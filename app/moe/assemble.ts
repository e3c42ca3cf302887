/**
 * MoE assembly: the FFNs of dense experts (fine-tunes, intermediate checkpoints, base + LoRA, expanded
 * experts) become the experts of a Mixtral or Qwen2-MoE that stock transformers loads; non-expert
 * weights come from the base (mergekit-moe), their average (Branch-Train-MiX, arXiv 2403.07816) or any
 * merge method; routers from one of the gate modes (routers.ts, calibrate.ts). Streams tensor by tensor
 * into an atomic output folder; routers measured in the assembled model are fitted on the finished
 * (still hidden) folder and written in place before it is committed.
 */
import { readdir, readFile, open } from 'node:fs/promises';
import { join } from 'node:path';
import { stringify as toYaml } from 'yaml';
import { checkAdapterAgainstBase, compareCheckpoints } from '../core/compat.js';
import { fromFloat32, torchDTypeName, type DType } from '../core/dtypes.js';
import { CheckpointError } from '../core/errors.js';
import { getMergeMethod, createRng } from '../core/merge/index.js';
import { Checkpoint } from '../io/checkpoint.js';
import { stringifyHfConfig } from '../io/hf-json.js';
import { OutputFolder } from '../io/output-folder.js';
import { DEFAULT_SHARD_BYTES, SafetensorsWriter } from '../io/safetensors-writer.js';
import { summarize } from '../io/summary.js';
import { loadTask } from '../eval/tasks.js';
import type { ModelRef } from '../merge/config.js';
import { InputReader } from '../merge/sources.js';
import { runnableConfig } from '../runtime/graph-folder.js';
import { TextTokenizer } from '../runtime/tokenizer.js';
import { assignByPerplexity, calibrateInAssembled, type CalibrationText, type Sample } from './calibrate.js';
import type { MoeRecipe } from './config.js';
import { DriftAccumulator, driftSample, driftWarning, type DriftReport } from './drift.js';
import { chooseArchitecture, expertTensorName, FFN, isDenseFfnTensor, moeConfig, routerTensorName, type ArchChoice } from './layout.js';
import { cheapEmbedRouters, degenerateLayers, hiddenRouters, randomRouters, uniformRandomRouters, zeroRouters, type Routers } from './routers.js';

export interface MoeProgress {
  phase: 'checking' | 'routers' | 'writing' | 'calibrating' | 'finishing' | 'done';
  done: number;
  total: number;
  detail?: string;
}

export interface MoeBuildOptions {
  overwrite?: boolean;
  shardBytes?: number;
  signal?: AbortSignal;
  onProgress?: (p: MoeProgress) => void;
  pipeline?: unknown;
  /** Called as soon as a warning is known (e.g. expert drift), before the long part of the run. */
  onWarning?: (message: string) => void;
}

export interface MoeBuildResult {
  out: string;
  architecture: ArchChoice;
  numExperts: number;
  topK: number;
  files: string[];
  drift: DriftReport;
  /** calibrated / hidden_router_input: per-layer share of seed tokens routed (top-1) to their expert. */
  routingAccuracy: number[] | null;
  /** calibrated: share of seed samples whose lowest-perplexity expert is the one they were given for. */
  seedAgreement: number | null;
  notices: string[];
  seconds: number;
}

interface OutTensor {
  name: string;
  shape: number[];
  produce: () => Promise<Uint8Array>;
}

export async function buildMoe(recipe: MoeRecipe, outDir: string, opts: MoeBuildOptions = {}): Promise<MoeBuildResult> {
  const t0 = performance.now();
  const progress = (p: MoeProgress) => opts.onProgress?.(p);
  const notices: string[] = [];
  const base = await Checkpoint.open(recipe.base);
  const opened: Checkpoint[] = [base];
  const refs: ModelRef[] = [{ label: 'base', path: recipe.base }];
  const reader = new InputReader(refs);
  let out: OutputFolder | undefined;
  let writer: SafetensorsWriter | undefined;
  try {
    const cfg = runnableConfig(base);
    const E = recipe.experts.length;
    const H = cfg.hiddenSize;
    const L = cfg.numLayers;
    const arch = chooseArchitecture(cfg, recipe.architecture, recipe.sharedExpert.kind !== 'none');
    let topK = recipe.topK;
    if (recipe.gateMode === 'uniform' && topK !== E) {
      notices.push(`gate_mode uniform (gate-less) activates every expert: experts_per_token set to ${E} (was ${topK})`);
      topK = E;
    }
    if ((E & (E - 1)) !== 0) notices.push(`${E} experts is not a power of two: llama.cpp's GPU kernels need 2ⁿ experts (CPU and transformers are fine)`);

    // Experts as readable models: a checkpoint, or the base with an adapter merged on the fly.
    progress({ phase: 'checking', done: 0, total: E });
    const baseSummary = summarize(base);
    for (const [i, ex] of recipe.experts.entries()) {
      if (ex.adapter) {
        const a = await Checkpoint.open(ex.adapter);
        opened.push(a);
        if (a.kind !== 'adapter') throw new CheckpointError('INVALID_CONFIG', ex.adapter, 'is not a PEFT adapter folder', `experts[${i}].source_adapter must be an adapter trained on the base`);
        const errs = checkAdapterAgainstBase(summarize(a), baseSummary).filter((d) => d.severity === 'error');
        if (errs.length) throw new CheckpointError('INCOMPATIBLE', ex.adapter, errs[0]!.message, errs[0]!.meaning);
        const attn = a.adapterMap!.modules.filter((m) => !/\.mlp\./.test(m.module)).map((m) => m.module.split('.').pop()!);
        if (attn.length) {
          const kinds = [...new Set(attn)].join(', ');
          notices.push(recipe.nonExpert.kind === 'base'
            ? `${ex.label} also adapts ${kinds}: with non-expert weights from the base those changes are dropped (only its FFN deltas become the expert); use non_expert_weights: average to keep 1/${E} of each`
            : `${ex.label} also adapts ${kinds}: those deltas enter the shared attention through non_expert_weights (${recipe.nonExpert.kind}), diluted across the ${E} experts`);
        }
        refs.push({ label: ex.label, path: recipe.base, lora: ex.adapter });
      } else {
        const ck = await Checkpoint.open(ex.model!);
        opened.push(ck);
        const errs = compareCheckpoints(baseSummary, summarize(ck)).filter((d) => d.severity === 'error');
        if (errs.length) throw new CheckpointError('INCOMPATIBLE', ex.model!, `cannot be an expert of ${baseSummary.label}: ${errs[0]!.message}`, errs[0]!.meaning);
        refs.push({ label: ex.label, path: ex.model! });
      }
      progress({ phase: 'checking', done: i + 1, total: E });
    }
    const sharedIdx = recipe.sharedExpert.kind === 'model' ? refs.push({ label: 'shared', path: recipe.sharedExpert.model }) - 1 : 0;

    // Expert drift of the non-FFN weights, on a sample of tensors (driftSample) so that the check
    // costs a few tensors per expert, not a second read of every model.
    const nonFfn = base.names.filter((n) => !isDenseFfnTensor(n));
    const drift: DriftReport = { experts: [], warning: null };
    const sampled = driftSample(nonFfn, L, (n) => base.info(n).shape.reduce((a, d) => a * d, 1));
    for (const [i, ex] of recipe.experts.entries()) {
      const acc = new DriftAccumulator();
      for (const n of sampled) {
        opts.signal?.throwIfAborted();
        acc.add(n, await reader.read(0, n), await reader.read(i + 1, n));
      }
      drift.experts.push(acc.result(ex.label));
    }
    drift.warning = driftWarning(drift.experts, recipe.nonExpert.kind);
    if (drift.warning) {
      notices.push(drift.warning);
      opts.onWarning?.(drift.warning);
    }

    if (recipe.sharedExpert.kind === 'model' && recipe.sharedExpert.positivePrompts.length > 0) {
      // mergekit-moe derives the shared expert's gate from these prompts; ours starts every
      // shared_expert_gate at 0 (sigmoid ½: a constant half weight), which fine-tuning then moves.
      const m = 'shared_experts[0].positive_prompts are not used: the shared expert\'s gate starts at zero (a constant ½ weight, as for shared_expert: true)';
      notices.push(m);
      opts.onWarning?.(m);
    }
    const outDtype: DType = recipe.outDtype ?? base.storedFloatDtype;
    // Only prompt- and data-driven routers need the tokenizer (random/uniform MoEs of bare weights do not).
    let tokenizer: TextTokenizer | undefined;
    const tokFor = () => (tokenizer ??= TextTokenizer.load(recipe.base, cfg.eosTokenId));

    // Routers that need only the base model.
    progress({ phase: 'routers', done: 0, total: 1, detail: recipe.gateMode });
    let routers: Routers;
    switch (recipe.gateMode) {
      case 'random':
        routers = randomRouters(L, E, H, recipe.seed);
        break;
      case 'uniform_random':
        routers = uniformRandomRouters(L, E, H, recipe.seed);
        break;
      case 'cheap_embed':
        routers = await cheapEmbedRouters(recipe.experts, tokFor(), await reader.read(0, 'model.embed_tokens.weight'), H, L);
        break;
      case 'hidden':
      case 'hidden_last':
      case 'hidden_avg':
        routers = await hiddenRouters(recipe.base, recipe.experts, tokFor(), recipe.gateMode === 'hidden_avg' ? 'avg' : 'last', opts.signal);
        break;
      default:
        routers = zeroRouters(L, E, H); // uniform, or fitted in the assembled model below
    }
    const degenerate = ['hidden', 'hidden_last', 'hidden_avg', 'cheap_embed'].includes(recipe.gateMode) ? degenerateLayers(routers, E, H) : [];
    if (degenerate.length) notices.push(`routers of layers ${degenerate.join(', ')} are nearly identical for some experts (prompts too similar): routing there will not tell experts apart`);

    // Output tensors.
    const tensors: OutTensor[] = [];
    const convert = (f: Float32Array) => fromFloat32(f, outDtype);
    const raw = async (model: number, name: string): Promise<Uint8Array> => {
      const ck = model === 0 ? base : undefined;
      const ref = refs[model]!;
      if (ck && !ref.lora && ck.info(name).dtype === outDtype) return ck.readBytes(name); // straight copy
      return convert(await reader.read(model, name));
    };
    const merger = recipe.nonExpert.kind === 'merge' ? getMergeMethod(recipe.nonExpert.method) : undefined;
    for (const n of nonFfn) {
      const shape = base.info(n).shape;
      const produce = async () => {
        if (recipe.nonExpert.kind === 'base') return raw(0, n);
        const xs: Float32Array[] = [];
        for (let e = 1; e <= E; e++) xs.push(await reader.read(e, n));
        if (recipe.nonExpert.kind === 'average') {
          const avg = new Float32Array(xs[0]!.length);
          for (const x of xs) for (let k = 0; k < avg.length; k++) avg[k]! += x[k]! / E;
          return convert(avg);
        }
        const p = recipe.nonExpert.kind === 'merge' ? recipe.nonExpert.parameters : {};
        const perModel = Object.fromEntries(Object.entries(p).filter(([k]) => merger!.perModelParams.some((d) => d.name === k))) as Record<string, number>;
        const globals = Object.fromEntries(Object.entries(p).filter(([k]) => merger!.globalParams.some((d) => d.name === k))) as Record<string, number>;
        if (merger!.perModelParams.some((d) => d.name === 'weight') && perModel['weight'] === undefined) perModel['weight'] = 1 / E;
        return convert(merger!.merge({ tensorName: n, shape, base: { id: 'base', tensor: await reader.read(0, n) }, models: xs.map((t, i) => ({ id: recipe.experts[i]!.label, tensor: t, params: perModel })), globals }));
      };
      tensors.push({ name: n, shape, produce });
    }
    const I = cfg.intermediateSize;
    const partShape = (part: (typeof FFN)[number]) => (part === 'down_proj' ? [H, I] : [I, H]);
    for (let l = 0; l < L; l++) {
      tensors.push({ name: routerTensorName(arch.arch, l), shape: [E, H], produce: async () => convert(routers[l]!) });
      for (let e = 0; e < E; e++) {
        const ex = recipe.experts[e]!;
        for (const part of FFN) {
          const src = `model.layers.${l}.mlp.${part}.weight`;
          tensors.push({
            name: expertTensorName(arch.arch, l, e, part),
            shape: partShape(part),
            produce: async () => {
              if (!ex.noiseScale && ex.residualScale === undefined && !ex.adapter) {
                const ck = opened[1 + e]!; // each expert opened exactly one checkpoint, in order
                if (ck.info(src).dtype === outDtype) return ck.readBytes(src);
              }
              const w = await reader.read(e + 1, src);
              if (ex.noiseScale) {
                // mergekit-moe's noise_scale: W += N(0, s²), seeded per tensor.
                const rng = createRng(recipe.seed).fork(`noise/${e}/${src}`);
                for (let k = 0; k < w.length; k += 2) {
                  const r = Math.sqrt(-2 * Math.log(1 - rng.nextFloat()));
                  const th = 2 * Math.PI * rng.nextFloat();
                  w[k]! += r * Math.cos(th) * ex.noiseScale;
                  if (k + 1 < w.length) w[k + 1]! += r * Math.sin(th) * ex.noiseScale;
                }
              }
              if (ex.residualScale !== undefined && part === 'down_proj') for (let k = 0; k < w.length; k++) w[k]! *= ex.residualScale;
              return convert(w);
            },
          });
        }
      }
      if (arch.arch === 'qwen2_moe') {
        for (const part of FFN) {
          const src = `model.layers.${l}.mlp.${part}.weight`;
          // mergekit-moe's residual_scale scales the shared expert's down_proj as it does an expert's.
          const scale = recipe.sharedExpert.kind === 'model' && part === 'down_proj' ? recipe.sharedExpert.residualScale : undefined;
          tensors.push({
            name: `model.layers.${l}.mlp.shared_expert.${part}.weight`,
            shape: partShape(part),
            produce: async () => {
              if (scale === undefined) return raw(sharedIdx, src);
              const w = await reader.read(sharedIdx, src);
              for (let k = 0; k < w.length; k++) w[k]! *= scale;
              return convert(w);
            },
          });
        }
        // Gate zero → sigmoid(0) = ½: the shared expert starts at half weight; training moves it.
        tensors.push({ name: `model.layers.${l}.mlp.shared_expert_gate.weight`, shape: [1, H], produce: async () => convert(new Float32Array(H)) });
        for (const [proj, rows] of [['q_proj', cfg.numHeads * cfg.headDim], ['k_proj', cfg.numKvHeads * cfg.headDim], ['v_proj', cfg.numKvHeads * cfg.headDim]] as const) {
          const bn = `model.layers.${l}.self_attn.${proj}.bias`;
          if (!base.has(bn)) tensors.push({ name: bn, shape: [rows], produce: async () => convert(new Float32Array(rows)) });
        }
      }
    }

    // Write.
    out = await OutputFolder.create(outDir, { overwrite: opts.overwrite });
    const metadata: Record<string, string> = { upcycle_recipe: JSON.stringify({ kind: 'moe', gate_mode: recipe.gateMode, experts: recipe.experts.map((e) => e.label), architecture: arch.arch }) };
    if (opts.pipeline !== undefined) metadata['upcycle_pipeline'] = JSON.stringify(opts.pipeline);
    writer = await SafetensorsWriter.create(out, tensors.map((t) => ({ name: t.name, dtype: outDtype, shape: t.shape })), { maxShardBytes: opts.shardBytes ?? DEFAULT_SHARD_BYTES, metadata });
    let done = 0;
    const queue = [...tensors];
    const workerLoop = async () => {
      for (let t = queue.shift(); t; t = queue.shift()) {
        opts.signal?.throwIfAborted();
        await writer!.write(t.name, await t.produce());
        progress({ phase: 'writing', done: ++done, total: tensors.length, detail: t.name });
      }
    };
    await Promise.all([workerLoop(), workerLoop(), workerLoop()]);
    const { files } = await writer.finish();
    const config = moeConfig(cfg, arch.arch, E, topK, torchDTypeName(outDtype));
    await out.writeFile('config.json', stringifyHfConfig(config));
    if (base.generationConfig) await out.writeFile('generation_config.json', JSON.stringify(base.generationConfig, null, 2) + '\n');
    for (const f of await readdir(recipe.base)) {
      if (/^(tokenizer\.json|tokenizer_config\.json|special_tokens_map\.json|tokenizer\.model|chat_template\.jinja)$/.test(f)) await out.writeFile(f, await readFile(join(recipe.base, f)));
    }

    // Routers fitted in the assembled model.
    let routingAccuracy: number[] | null = null;
    let seedAgreement: number | null = null;
    if (recipe.gateMode === 'calibrated' || recipe.gateMode === 'hidden_router_input') {
      let samples: CalibrationText[];
      if (recipe.gateMode === 'calibrated') {
        const seed: Sample[] = [];
        for (const [e, ex] of recipe.experts.entries()) {
          const texts = ex.seedData ? (await loadTask(ex.seedData)).items.map((it) => ('text' in it ? it.text : 'prompt' in it ? `${it.prompt}${it.answer}` : it.query)) : ex.positivePrompts;
          for (const text of texts) seed.push({ text, given: e });
        }
        progress({ phase: 'calibrating', done: 0, total: L, detail: `assigning ${seed.length} seed samples by perplexity` });
        const assignment = await assignByPerplexity(recipe.base, recipe.experts, seed, tokFor(), opts.signal);
        seedAgreement = assignment.agreement;
        samples = seed.map((s, i) => ({ text: s.text, expert: assignment.expert[i]!, sign: 1 }));
        const empty = recipe.experts.filter((_, e) => !assignment.expert.includes(e)).map((x) => x.label);
        if (empty.length) notices.push(`no seed sample has its lowest perplexity on ${empty.join(', ')}: their routers learn only to avoid their experts`);
      } else {
        samples = recipe.experts.flatMap((ex, e) => [
          ...ex.positivePrompts.map((text) => ({ text, expert: e, sign: 1 as const })),
          ...ex.negativePrompts.map((text) => ({ text, expert: e, sign: -1 as const })),
        ]);
      }
      const cal = await calibrateInAssembled(out.tmp, recipe.gateMode, samples, tokFor(), {
        calibration: recipe.calibration,
        signal: opts.signal,
        onLayer: (l, acc) => progress({ phase: 'calibrating', done: l + 1, total: L, detail: `layer ${l}: routing accuracy ${(100 * acc).toFixed(1)}%` }),
      });
      routers = cal.routers;
      routingAccuracy = cal.accuracy;
      for (let l = 0; l < L; l++) {
        const slot = writer.slot(routerTensorName(arch.arch, l));
        const fh = await open(slot.file, 'r+');
        try {
          await fh.write(convert(routers[l]!), 0, slot.bytes, slot.offset);
          await fh.sync();
        } finally {
          await fh.close();
        }
      }
    }

    progress({ phase: 'finishing', done: 0, total: 1 });
    await out.writeFile('mergekit_moe_config.yml', toYaml(recipe.raw));
    await out.writeFile('upcycle_pipeline.json', JSON.stringify(opts.pipeline ?? { version: 1, kind: 'moe', recipe: recipe.raw }, null, 2) + '\n');
    await out.writeFile('README.md', modelCard(recipe, arch, topK, drift, routingAccuracy, seedAgreement, notices));
    const target = await out.commit();
    progress({ phase: 'done', done: 1, total: 1 });
    return { out: target, architecture: arch, numExperts: E, topK, files, drift, routingAccuracy, seedAgreement, notices, seconds: (performance.now() - t0) / 1000 };
  } catch (e) {
    await writer?.close();
    await out?.abort();
    throw e;
  } finally {
    await reader.close();
    await Promise.all(opened.map((c) => c.close()));
  }
}

function modelCard(recipe: MoeRecipe, arch: ArchChoice, topK: number, drift: DriftReport, acc: number[] | null, agreement: number | null, notices: string[]): string {
  const rows = drift.experts.map((d) => `| ${d.expert} | ${Object.entries(d.groups).map(([g, v]) => `${g} ${(100 * v).toFixed(2)}%`).join(', ')} |`);
  return `---
library_name: transformers
tags:
- moe
- upcycle-studio
---
# Upcycled Mixture-of-Experts

Built with **Upcycle Studio** from ${recipe.experts.length} dense experts: ${recipe.experts.map((e) => `\`${e.label}\``).join(', ')}.

- architecture: **${arch.arch === 'mixtral' ? 'MixtralForCausalLM' : 'Qwen2MoeForCausalLM'}** (${arch.reason})
- experts per token: ${topK}
- routers: \`${recipe.gateMode}\`
- non-expert weights: ${recipe.nonExpert.kind === 'merge' ? `merged with ${recipe.nonExpert.method}` : recipe.nonExpert.kind}
${acc ? `- routing accuracy on the seed data per layer (top-1): ${acc.map((a) => `${(100 * a).toFixed(1)}%`).join(', ')}\n` : ''}${agreement !== null ? `- seed samples whose lowest-perplexity expert is the one they were given for: ${(100 * agreement).toFixed(1)}%\n` : ''}
## Expert drift (non-FFN weights vs the base, relative norm)
| expert | drift |
|---|---|
${rows.join('\n')}
${notices.length ? `\n## Notes\n${notices.map((n) => `- ${n}`).join('\n')}\n` : ''}
The recipe is in \`mergekit_moe_config.yml\` and \`upcycle_pipeline.json\`.
`;
}

