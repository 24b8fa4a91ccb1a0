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
export { noise, streams } from './noising.ts';
