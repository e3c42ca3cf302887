/**
 * The generalized task arithmetic (GTA) family, one implementation shared by eight mergekit
 * methods, as in mergekit's `generalized_task_arithmetic.py` (`GTATask` / `merge_group`).
 *
 * Per tensor, with base θ₀, models θᵢ, weights wᵢ, densities dᵢ:
 *   1. task vectors      δᵢ = θᵢ − θ₀                                   (float32)
 *   2. sparsify          δ̃ᵢ = sparsify(δᵢ; dᵢ, γᵢ | εᵢ) [+ rescale]     (see sparsify.ts)
 *   3. weight            Δᵢ = wᵢ·δ̃ᵢ
 *   4. consensus (TIES)  s = sign(Σᵢ Δᵢ) (0 → +1), mᵢ = [sign(Δᵢ) = s]   (see consensus.ts)
 *   5. mix               with consensus: Δ = Σᵢ mᵢΔᵢ,  D = Σᵢ wᵢmᵢ, D = 0 → 1
 *                        without:        Δ = Σᵢ Δᵢ,    D = Σᵢ wᵢ,   |D| < 1e-8 → 1
 *   6. normalize         Δ ← Δ / D            (only if `normalize`)
 *   7. scale             Δ ← λ·Δ              (only if λ ≠ 1)
 *   8. output            θ = θ₀ + Δ
 * Every step is rounded to float32 where torch rounds it (mergekit computes in the tensor
 * dtype; parity is defined against float32 tensors).
 *
 * | method           | sparsifier         | consensus | normalize | rescale |
 * |------------------|--------------------|-----------|-----------|---------|
 * | task_arithmetic  | —                  | —         | false     | false   |
 * | ties             | magnitude          | sum       | true      | false   |
 * | dare_ties        | random             | sum       | false     | true    |
 * | dare_linear      | random             | —         | false     | true    |
 * | breadcrumbs      | magnitude_outliers | —         | false     | false   |
 * | breadcrumbs_ties | magnitude_outliers | sum       | false     | false   |
 * | della            | della_magprune     | sum       | true      | true    |
 * | della_linear     | della_magprune     | —         | false     | true    |
 *
 * Where mergekit departs from the papers, the paper form is an extension option and
 * mergekit's behaviour stays the default:
 * - rescale (`rescale_mode`): mergekit matches the L1 norm of the pruned task vector
 *   (‖δ‖₁/‖m⊙δ‖₁); DARE (arXiv 2311.03099) and DELLA (arXiv 2406.11617) divide kept
 *   entries by their keep probability (`'inverse_density'`).
 * - disjoint mean (`disjoint_mean`): mergekit divides by the sum of the agreeing models'
 *   WEIGHTS; TIES (arXiv 2306.01708) averages over the COUNT of agreeing models
 *   (`'count'`). Identical when all weights are 1.
 * - sign election (`consensus_method`): `'sum'` (mergekit and paper) or `'count'`
 *   (mergekit's unregistered variant).
 * Randomness: model i's mask is drawn from `rng.fork(modelId)`, so it is reproducible from
 * (seed, tensor name, model id) but not bit-identical to torch's generator.
 */
import { majoritySign, type ConsensusMethod } from './consensus.js';
import { defineMethod, INT8_MASK_PARAM, WEIGHT_PARAM } from './define.js';
import { dareStream } from './dare-stream.js';
import { gtaStream } from './gta-stream.js';
import { bool, num, optNum, requireBase, str } from './params.js';
import { sparsify, type RescaleMode, type SparsificationMethod } from './sparsify.js';
import type { MergeMethodDef, ParamDef, ResolvedInputs } from './types.js';

const f = Math.fround;
const NO_CONSENSUS_EPS = f(1e-8);

/** One member of the GTA family (see the table above). */
export interface GtaVariant {
  readonly id: string;
  readonly label: string;
  readonly paper: string;
  readonly description: string;
  readonly sparsifier: SparsificationMethod | null;
  readonly consensus: boolean;
  readonly defaultNormalize: boolean;
  readonly defaultRescale: boolean;
}

function globalParams(v: GtaVariant): ParamDef[] {
  const params: ParamDef[] = [
    INT8_MASK_PARAM,
    {
      name: 'normalize',
      type: 'boolean',
      default: v.defaultNormalize,
      description: v.consensus
        ? 'Divide the merged task vector by the sum of the weights of the models that agree with the elected sign.'
        : 'Divide the merged task vector by the sum of the weights.',
    },
    {
      name: 'rescale',
      type: 'boolean',
      default: v.defaultRescale,
      noEffect: v.sparsifier === null,
      description:
        v.sparsifier === null
          ? 'Accepted by mergekit; without a sparsifier it has no effect.'
          : 'Rescale each pruned task vector (mergekit: to its original L1 norm).',
    },
    { name: 'lambda', type: 'number', default: 1.0, description: 'Scale λ applied to the merged task vector.' },
  ];
  if (v.sparsifier !== null) {
    params.push({
      name: 'rescale_mode',
      type: 'enum',
      default: 'l1',
      choices: ['l1', 'inverse_density'],
      extension: true,
      description:
        "How `rescale` rescales: 'l1' = mergekit (‖δ‖₁/‖m⊙δ‖₁ per tensor); " +
        "'inverse_density' = DARE/DELLA papers (divide each kept entry by its keep probability).",
    });
  }
  if (v.consensus) {
    params.push(
      {
        name: 'consensus_method',
        type: 'enum',
        default: 'sum',
        choices: ['sum', 'count'],
        extension: true,
        description: "Sign election: 'sum' = sign of the summed weighted deltas (mergekit, TIES paper); 'count' = majority of signs.",
      },
      {
        name: 'disjoint_mean',
        type: 'enum',
        default: 'weighted',
        choices: ['weighted', 'count'],
        extension: true,
        description:
          "Divisor of the disjoint merge when `normalize`: 'weighted' = sum of agreeing weights (mergekit); " +
          "'count' = number of agreeing models (TIES paper).",
      },
    );
  }
  return params;
}

function perModelParams(v: GtaVariant): ParamDef[] {
  const params: ParamDef[] = [
    WEIGHT_PARAM,
    {
      name: 'density',
      type: 'number',
      default: 1.0,
      noEffect: v.sparsifier === null,
      description:
        v.sparsifier === null ? 'Accepted by mergekit; unused without a sparsifier.' : 'Fraction of the task vector to keep.',
    },
  ];
  if (v.sparsifier === 'magnitude_outliers') {
    params.push({
      name: 'gamma',
      type: 'number',
      default: 0.01,
      description: 'Fraction of the largest-magnitude entries to drop (γ/β). γ·n < 1 drops the whole task vector, as in mergekit.',
    });
  }
  if (v.sparsifier === 'della_magprune') {
    params.push({
      name: 'epsilon',
      type: 'number',
      default: 0.15,
      description: 'Half-width ε of the keep-probability range [density − ε, density + ε]; both ends must lie in (0, 1).',
    });
  }
  return params;
}

/** The shared GTA maths (see the file comment). */
function gtaMerge(v: GtaVariant, r: ResolvedInputs): Float32Array {
  const base = requireBase(r).tensor;
  const n = r.numel;
  if (r.models.length === 0) return base.slice();
  const g = r.globals;
  const rescale = bool(g, 'rescale');
  const rescaleMode = (v.sparsifier !== null ? str(g, 'rescale_mode') : 'l1') as RescaleMode;

  const weights: number[] = [];
  const weighted: Float32Array[] = [];
  for (const m of r.models) {
    const delta = new Float32Array(n);
    for (let j = 0; j < n; j++) delta[j] = m.tensor[j] - base[j]; // stored as float32
    if (v.sparsifier !== null) {
      sparsify(delta, r.shape, v.sparsifier, {
        density: num(m.params, 'density'),
        rescale,
        rescaleMode,
        gamma: optNum(m.params, 'gamma'),
        epsilon: optNum(m.params, 'epsilon'),
        rng: r.rng.fork(m.id),
      });
    }
    const w = f(num(m.params, 'weight'));
    for (let j = 0; j < n; j++) delta[j] = f(delta[j] * w);
    weights.push(w);
    weighted.push(delta);
  }

  const normalize = bool(g, 'normalize');
  const lambda = num(g, 'lambda');
  const scale = lambda !== 1;
  const lambda32 = f(lambda);
  const out = new Float32Array(n);
  const count = weighted.length;

  if (v.consensus) {
    const method = str(g, 'consensus_method') as ConsensusMethod;
    const divisorWeights = str(g, 'disjoint_mean') === 'count' ? weights.map(() => 1) : weights;
    for (let j = 0; j < n; j++) {
      const s = majoritySign(weighted, j, method);
      let mixed = 0;
      let divisor = 0;
      for (let i = 0; i < count; i++) {
        const x = weighted[i][j];
        if (s > 0 ? x > 0 : x < 0) {
          mixed = f(mixed + x);
          divisor = f(divisor + divisorWeights[i]);
        }
      }
      if (normalize) mixed = f(mixed / (divisor === 0 ? 1 : divisor));
      if (scale) mixed = f(mixed * lambda32);
      out[j] = base[j] + mixed;
    }
  } else {
    let divisor = 0;
    for (const w of weights) divisor = f(divisor + w);
    if (Math.abs(divisor) < NO_CONSENSUS_EPS) divisor = 1;
    for (let j = 0; j < n; j++) {
      let mixed = 0;
      for (let i = 0; i < count; i++) mixed = f(mixed + weighted[i][j]);
      if (normalize) mixed = f(mixed / divisor);
      if (scale) mixed = f(mixed * lambda32);
      out[j] = base[j] + mixed;
    }
  }
  return out;
}

function gtaMethod(v: GtaVariant): MergeMethodDef {
  return defineMethod(
    {
      id: v.id,
      label: v.label,
      paper: v.paper,
      description: v.description,
      requiresBase: true,
      baseUsage: 'required',
      minModels: 0,
      maxModels: null,
      random: v.sparsifier === 'random' || v.sparsifier === 'della_magprune',
      perModelParams: perModelParams(v),
      globalParams: globalParams(v),
    },
    (r) => gtaMerge(v, r),
    // Streamed: no sparsifier, TIES's top-k (gta-stream.ts) and DARE's Bernoulli drop (dare-stream.ts).
    // Breadcrumbs' rank window and DELLA's per-row ranks need a sort of the whole tensor / row.
    (spec) => (v.sparsifier === 'random' ? dareStream(v, spec) : gtaStream(v, spec)),
  );
}

/** Task Arithmetic (Ilharco et al., arXiv 2212.04089): θ = θ₀ + λ·Σᵢ wᵢ(θᵢ − θ₀) [÷ Σᵢ wᵢ]. */
export const taskArithmetic = gtaMethod({
  id: 'task_arithmetic',
  label: 'Task Arithmetic',
  paper: 'https://arxiv.org/abs/2212.04089',
  description: 'θ = θ₀ + λ·Σ wᵢ(θᵢ − θ₀), optionally divided by Σ wᵢ.',
  sparsifier: null,
  consensus: false,
  defaultNormalize: false,
  defaultRescale: false,
});

/**
 * TIES-Merging (Yadav et al., arXiv 2306.01708): trim each δᵢ to its top-k magnitudes
 * (k = int(dᵢ·n)), elect s = sign(Σ wᵢδ̃ᵢ), disjoint weighted mean
 * θ = θ₀ + λ·Σ mᵢwᵢδ̃ᵢ / Σ mᵢwᵢ (the paper: Σ mᵢδ̃ᵢ / Σ mᵢ, see `disjoint_mean`).
 */
export const ties = gtaMethod({
  id: 'ties',
  label: 'TIES',
  paper: 'https://arxiv.org/abs/2306.01708',
  description: 'Trim task vectors to their largest magnitudes, elect a sign per parameter, average the agreeing ones.',
  sparsifier: 'magnitude',
  consensus: true,
  defaultNormalize: true,
  defaultRescale: false,
});

/**
 * DARE + TIES (Yu et al., arXiv 2311.03099): mᵢ ~ Bernoulli(dᵢ), L1 rescale (paper: ÷dᵢ),
 * then TIES sign election; not normalized by default: θ = θ₀ + λ·Σ mᵢwᵢδ̃ᵢ.
 */
export const dareTies = gtaMethod({
  id: 'dare_ties',
  label: 'DARE TIES',
  paper: 'https://arxiv.org/abs/2311.03099',
  description: 'Randomly drop task-vector entries (keep probability = density), rescale, then TIES sign election.',
  sparsifier: 'random',
  consensus: true,
  defaultNormalize: false,
  defaultRescale: true,
});

/** DARE, linear (arXiv 2311.03099): θ = θ₀ + λ·Σ wᵢ·DARE(δᵢ; dᵢ). */
export const dareLinear = gtaMethod({
  id: 'dare_linear',
  label: 'Linear DARE',
  paper: 'https://arxiv.org/abs/2311.03099',
  description: 'Randomly drop task-vector entries (keep probability = density), rescale, sum with weights.',
  sparsifier: 'random',
  consensus: false,
  defaultNormalize: false,
  defaultRescale: true,
});

/**
 * Model Breadcrumbs (Davari & Belilovsky, arXiv 2312.06795): drop the γ largest and the
 * smallest magnitudes so that a fraction d is kept; θ = θ₀ + λ·Σ wᵢδ̃ᵢ.
 */
export const breadcrumbs = gtaMethod({
  id: 'breadcrumbs',
  label: 'Model Breadcrumbs',
  paper: 'https://arxiv.org/abs/2312.06795',
  description: 'Drop both the largest (γ) and the smallest task-vector magnitudes, keep the middle, sum with weights.',
  sparsifier: 'magnitude_outliers',
  consensus: false,
  defaultNormalize: false,
  defaultRescale: false,
});

/** Model Breadcrumbs with TIES sign election (arXiv 2312.06795 + 2306.01708). */
export const breadcrumbsTies = gtaMethod({
  id: 'breadcrumbs_ties',
  label: 'Model Breadcrumbs with TIES',
  paper: 'https://arxiv.org/abs/2312.06795',
  description: 'Breadcrumbs pruning followed by TIES sign election.',
  sparsifier: 'magnitude_outliers',
  consensus: true,
  defaultNormalize: false,
  defaultRescale: false,
});

/**
 * DELLA (Deep et al., arXiv 2406.11617) with TIES election: MagPrune keeps entry j of a row
 * with probability (d − ε) + 2ε·rank̂ⱼ, L1 rescale (paper: ÷pⱼ), elect, disjoint mean.
 */
export const della = gtaMethod({
  id: 'della',
  label: 'DELLA',
  paper: 'https://arxiv.org/abs/2406.11617',
  description: 'Magnitude-ranked random dropping (MagPrune), rescale, TIES sign election, weighted disjoint mean.',
  sparsifier: 'della_magprune',
  consensus: true,
  defaultNormalize: true,
  defaultRescale: true,
});

/** DELLA without sign election (arXiv 2406.11617): θ = θ₀ + λ·Σ wᵢ·MagPrune(δᵢ). */
export const dellaLinear = gtaMethod({
  id: 'della_linear',
  label: 'Linear DELLA',
  paper: 'https://arxiv.org/abs/2406.11617',
  description: 'Magnitude-ranked random dropping (MagPrune), rescale, sum with weights.',
  sparsifier: 'della_magprune',
  consensus: false,
  defaultNormalize: false,
  defaultRescale: true,
});

export const GTA_METHODS: readonly MergeMethodDef[] = [
  taskArithmetic,
  ties,
  dareTies,
  dareLinear,
  breadcrumbs,
  breadcrumbsTies,
  della,
  dellaLinear,
];
