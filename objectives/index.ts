// `fusediff/objectives`: the training objectives as pure functions from a step's arguments to a scalar loss (MSE,
// self-perceptual), their parts (noising, features, condition dropout) and the weighted sum that combines them.
export type { Objective, ObjectiveArgs } from './types.ts';
export { mseObjective, type MseOptions } from './mse.ts';
export {
  featureDistance,
  selfPerceptualFeatures,
  selfPerceptualObjective,
  type PerceptualFeatures,
  type SelfPerceptualOptions,
} from './selfPerceptual.ts';
export { dropCondition } from './cfg.ts';
export { weightedSum } from './combine.ts';
export { noise, streams, type Noised } from './noising.ts';
