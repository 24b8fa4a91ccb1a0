// The forward process shared by the objectives: t ~ U{1..T}, eps ~ N(0, I), x_t = alpha_t x0 + sigma_t eps.
import { fmt, ShapeError } from '../core/shape.ts';
import * as op from '../dsl/ops.ts';
import type { Tensor } from '../dsl/tensor.ts';
import { perSample } from '../models/parameterization.ts';
import { alphaSigmaAt, sampleTimesteps, type Schedule } from '../models/schedule.ts';

/** Random streams of the objectives; distinct so t, eps, t' and the condition dropout are independent. */
export const streams = { t: 101, eps: 102, tPrime: 103, dropout: 104, renoise: 105 } as const;

/** A noised batch (`noise`): timesteps t, the noise eps, alpha and sigma shaped to broadcast, and x_t. */
export interface Noised {
  t: Tensor; // [B]
  eps: Tensor; // like x0
  alpha: Tensor; // [B, 1, ...] broadcastable against x0
  sigma: Tensor;
  xt: Tensor;
}

/** alpha_t, sigma_t as [B, 1, ...] for data of the given rank. */
export const coefficients = (schedule: Schedule, t: Tensor, rank: number) => {
  const { alpha, sigma } = alphaSigmaAt(schedule, t);
  return { alpha: perSample(alpha, rank), sigma: perSample(sigma, rank) };
};

/**
 * The forward process on a batch: t uniform in 1..T and eps standard normal, each on its own stream keyed by `step`,
 * and x_t = alpha_t x0 + sigma_t eps.
 */
export const noise = (schedule: Schedule, x0: Tensor, step: Tensor, seed: number): Noised => {
  const B = x0.shape[0];
  const t = sampleTimesteps(schedule, B, { seed, stream: streams.t, counter: step as Tensor<readonly []> });
  const eps = op.normal(x0.shape, { seed, stream: streams.eps, counter: step as Tensor<readonly []> });
  const { alpha, sigma } = coefficients(schedule, t, x0.rank);
  return { t, eps, alpha, sigma, xt: op.add(op.mul(alpha, x0), op.mul(sigma, eps)) };
};

/** Mean over every axis but the batch axis: [B, ...] -> [B]. */
export const perSampleMean = (x: Tensor): Tensor => {
  const axes = x.shape.map((_, i) => i).slice(1);
  const n = axes.reduce((a, d) => a * x.shape[d], 1);
  return axes.length ? op.div(op.sum(x, axes), n) : x;
};

/**
 * The model's prediction must have the data's shape: a prediction of another shape (e.g. [B, D, 1] for [B, D]) would
 * broadcast against x_t or the target and the loss would average over the wrong pairs without an error.
 */
export const checkPrediction = (objective: string, pred: Tensor, x0: Tensor): void => {
  if (pred.rank !== x0.rank || pred.shape.some((d, i) => d !== x0.shape[i]))
    throw new ShapeError(
      objective,
      `the model's prediction ${fmt(pred.shape)} does not have the data's shape ${fmt(x0.shape)}; a denoiser returns [B, ...dataShape]`,
      pred.graph.siteOf(),
    );
};
