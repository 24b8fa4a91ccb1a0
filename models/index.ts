// The models' public surface (`fusediff/models`): createDenoiser (the factory over every kind), the contract and the
// configs, the noise schedules, the parameterisations (eps, v, x0) and the DDPM / DDIM samplers.
import type { DenoiserOptions, MlpOptions, UnetOptions } from './configs.ts';
import type { Denoiser } from './denoiser.ts';
import { createMlpDenoiser, type MlpParams } from './mlpDenoiser.ts';
import { createUnet, type UnetParams } from './unet.ts';

export * from './configs.ts';
export * from './denoiser.ts';
export type { MlpParams } from './mlpDenoiser.ts';
export type { UnetParams } from './unet.ts';
export {
  alphaSigmaAt,
  cosineSchedule,
  fromAlphaBar,
  fromBetas,
  linearSchedule,
  rescaleZeroTerminalSnr,
  sampleTimesteps,
  scaledLinearSchedule,
  snr,
  type Schedule,
} from './schedule.ts';
export { fromPrediction, predictionTarget, predictions, type Prediction } from './parameterization.ts';
export {
  createSampler,
  denoiserPredict,
  sample,
  timestepSubsequence,
  type PredictFn,
  type SampleCallOptions,
  type Sampler,
  type SampleResult,
  type SamplerOptions,
  type StepCoefficients,
} from './samplers.ts';
export { createSamplerAuto, type SamplerAutoOptions } from './samplerAuto.ts';

/** A denoiser of the given kind with defaults for every size not given; typed by kind when the kind is literal. */
export function createDenoiser(options: MlpOptions): Denoiser<MlpParams>;
export function createDenoiser(options: UnetOptions): Denoiser<UnetParams>;
export function createDenoiser(options: DenoiserOptions): Denoiser;
export function createDenoiser(options: DenoiserOptions): Denoiser {
  return (options.kind === 'mlp' ? createMlpDenoiser(options) : createUnet(options)) as unknown as Denoiser;
}
