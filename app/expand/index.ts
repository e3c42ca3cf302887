/** Genetic expert expansion (UpIT): config, similarity maths, the generation loop and its log. */
export { DEFAULTS, ExpandRecipeError, parseExpandConfig, parseExpandYaml, type ExpandRecipe, type ExpertSource, type OriginalsMode, type SimilarityScope } from './config.js';
export type { ExpansionLog, ExpansionTimings, LoggedCandidate, LoggedExpert, LoggedGeneration, PoolSnapshot } from './log.js';
export { candidateDraws, expertName, LOG_FILE, runExpansion, type ExpandOptions, type ExpandProgress, type ExpandResult } from './run.js';
export { chooseCandidate, chooseDistinct, cosineOf, diversity, Gram, mostDissimilarPair, planSample, type CandidateScore, type Choice, type SamplePlan } from './similarity.js';
export { similarityTensors, taskVectorDots, type DotsResult } from './task-vectors.js';
