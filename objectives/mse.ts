// The diffusion MSE objective (stage 1): || f_theta(x_t, t, c) - target ||^2 with target eps, v or x0, with
// optional min-SNR weighting (Hang et al. 2023) and condition dropout for CFG.
import { oneHot } from '../dsl/composites.ts';
import * as op from '../dsl/ops.ts';
import type { Tensor } from '../dsl/tensor.ts';
import type { Denoiser } from '../models/index.ts';
import { predictionTarget, type Prediction } from '../models/parameterization.ts';
import { snr as snrTable, type Schedule } from '../models/schedule.ts';
import { dropCondition } from './cfg.ts';
import { checkPrediction, noise, perSampleMean } from './noising.ts';
import type { Objective } from './types.ts';

/** Options of `mseObjective`: the model, schedule and target, min-SNR weighting, condition dropout, seed. */
export interface MseOptions {
  model: Denoiser;
  schedule: Schedule;
  prediction: Prediction;
  /** min-SNR-gamma weighting; gamma = 5 in the paper that proposed it */
  minSnrGamma?: number;
  /** probability of replacing the class by the null class (CFG training) */
  condDropout?: number;
  seed?: number;
}

/**
 * Per-sample min-SNR weight, expressed for the chosen target so that every parameterisation optimises the same
 * weighted x0 error: eps: min(snr, g) / snr; v: min(snr, g) / (snr + 1); x0: min(snr, g).
 */
const minSnrWeight = (schedule: Schedule, t: Tensor, prediction: Prediction, gamma: number): Tensor => {
  const s = snrTable(schedule);
  const w = Float64Array.from(s, (v) => {
    const m = Math.min(v, gamma);
    return prediction === 'eps' ? (v > 0 ? m / v : 0) : prediction === 'v' ? m / (v + 1) : m;
  });
  return op.reshape(op.matmul(oneHot(op.sub(t, 1), schedule.T), op.constant(w, [schedule.T, 1])), [t.shape[0]]);
};

/**
 * The diffusion MSE objective (stage 1): the mean over the batch of ||f(x_t, t, c) - target||^2 per sample (a mean over
 * its elements), target eps, v or x0, optionally min-SNR weighted, with condition dropout for CFG.
 */
export const mseObjective =
  ({ model, schedule, prediction, minSnrGamma, condDropout = 0, seed = 0 }: MseOptions): Objective =>
  ({ params, x0, c, step }) => {
    const n = noise(schedule, x0, step, seed);
    const cond = c && model.config.numClasses ? dropCondition(c, condDropout, model.config.numClasses, step, seed) : c;
    const pred = model.apply(params, n.xt, n.t, cond);
    checkPrediction('mseObjective', pred, x0);
    const d = op.sub(pred, predictionTarget(prediction, x0, n.eps, n.alpha, n.sigma));
    const perSample = perSampleMean(op.mul(d, d));
    const weighted = minSnrGamma ? op.mul(perSample, minSnrWeight(schedule, n.t, prediction, minSnrGamma)) : perSample;
    return op.div(op.sum(weighted), x0.shape[0]);
  };
