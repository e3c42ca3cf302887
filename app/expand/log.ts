/**
 * `expansion_log.json`: the record of an expansion, for the history charts and for reproducing it.
 * Everything except `timings` is a deterministic function of the recipe and its inputs: the same
 * config and seed give the same bytes (timings are wall-clock measurements and differ run to run).
 */

export interface LoggedExpert {
  /** expert-01 … expert-M: the folder name inside the output (and the id DARE masks derive from). */
  name: string;
  /** Where the expert is: relative to the output folder, or absolute for `originals: reference`. */
  path: string;
  origin: 'checkpoint' | 'generation';
  /** checkpoint: the label in the config; generation: "gen N". */
  label: string;
  /** checkpoint: the folder it came from. */
  source?: string;
  /** generation: how it was made. */
  generation?: number;
  parents?: [string, string];
  alpha?: number;
  merge_seed?: number;
}

export interface LoggedCandidate {
  candidate: number;
  /** Weight of the first parent (the second gets 1 − α). */
  alpha: number;
  /** The seed of this candidate's DARE masks (runMerge's seed). */
  merge_seed: number;
  /** cos(candidate, expert) for every expert of the pool, in pool order. */
  similarity: number[];
  max_similarity: number;
  /** Mean log-likelihood per token of the seed data (when seed_data is set). */
  seed_loglik?: number;
  /** Combined selection score (when seed_data weighs the choice; see similarity.ts chooseCandidate). */
  score?: number;
}

export interface LoggedGeneration {
  generation: number;
  /** The pool at the start of the generation (expert names). */
  pool: string[];
  /** Cosine similarity matrix of the pool's task vectors (pool order). */
  similarity: number[][];
  /** Mean pairwise (1 − cos) of the pool before the child joins. */
  diversity_before: number;
  parents: { names: [string, string]; indices: [number, number]; similarity: number };
  candidates: LoggedCandidate[];
  kept: { candidate: number; name: string; alpha: number; max_similarity: number };
  /** Mean pairwise (1 − cos) of the pool after the child joined. */
  diversity: number;
}

export interface PoolSnapshot {
  experts: string[];
  similarity: number[][];
  diversity: number;
}

export interface ExpansionTimings {
  total_s: number;
  /** Similarity passes: generation 0 = the starting pool; then one per candidate. */
  similarity: { generation: number; candidate?: number; seconds: number; bytes_read: number }[];
  /** `remerge`: the kept candidate merged again (seed-data runs keep at most two candidates on disk). */
  merges: { generation: number; candidate: number; seconds: number; bytes: number; remerge?: boolean }[];
  scoring: { generation: number; candidate: number; seconds: number }[];
}

export interface ExpansionLog {
  version: 1;
  kind: 'upcycle-expansion';
  method: 'upit-genetic';
  config: {
    base_model: string;
    models: { label: string; path: string }[];
    num_experts: number;
    candidates: number;
    density: number;
    alpha: [number, number];
    rescale_mode: string;
    sample_size: number;
    similarity_scope: string;
    seed: number;
    seed_data: string[];
    seed_weight: number;
    dtype: string | null;
    originals: string;
  };
  sampling: { total_parameters: number; sampled_parameters: number; tensors: number; chunk: number; full: boolean };
  experts: LoggedExpert[];
  initial: PoolSnapshot;
  generations: LoggedGeneration[];
  final: PoolSnapshot;
  /** Wall-clock measurements; the only part that differs between two runs of the same config. */
  timings: ExpansionTimings;
}
