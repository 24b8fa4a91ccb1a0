// What a denoiser predicts (eps, v or x0) and the exact conversions between predictions, as DSL functions.
// All conversions assume x_t = alpha x0 + sigma eps with alpha^2 + sigma^2 = 1 (variance preserving).
// alpha and sigma are tensors broadcastable against x (e.g. [B, 1] for [B, D], [B, 1, 1, 1] for NCHW): see perSample.
import * as op from '../dsl/ops.ts';
import type { Tensor } from '../dsl/tensor.ts';

/** What a denoiser predicts: the noise eps, the velocity v = alpha eps - sigma x0, or the clean data x0. */
export type Prediction = 'eps' | 'v' | 'x0';
/** Every Prediction, for validation and option lists. */
export const predictions: readonly Prediction[] = ['eps', 'v', 'x0'];

/** [B] -> [B, 1, ..., 1] of the given rank, so a per-sample scalar broadcasts against a [B, ...] tensor. */
export const perSample = (v: Tensor, rank: number): Tensor => {
  if (v.rank !== 1) throw new Error(`perSample: expects [B], got [${v.shape.join(',')}]`);
  if (!Number.isInteger(rank) || rank < 1) throw new Error(`perSample: rank must be a positive integer, got ${rank}`);
  return op.reshape(v, [v.shape[0], ...Array<number>(rank - 1).fill(1)]);
};

/** The training target of a parameterisation: eps, x0, or v = alpha eps - sigma x0 (Salimans & Ho 2022). */
export const predictionTarget = (kind: Prediction, x0: Tensor, eps: Tensor, alpha: Tensor, sigma: Tensor): Tensor => {
  switch (kind) {
    case 'eps':
      return eps;
    case 'x0':
      return x0;
    case 'v':
      return op.sub(op.mul(alpha, eps), op.mul(sigma, x0));
  }
};

/**
 * (x0_hat, eps_hat) from a prediction at x_t:
 *   v:   x0 = alpha xt - sigma v,  eps = sigma xt + alpha v   (no division: valid for every alpha, sigma, incl.
 *        alpha = 0 at a zero-terminal t = T and sigma = 0; this is why zero-terminal SNR wants v-prediction)
 *   eps: x0 = (xt - sigma eps) / alpha                       (singular at alpha = 0: a zero-terminal t = T)
 *   x0:  eps = (xt - alpha x0) / sigma                       (singular at sigma = 0: abar = 1, a noiseless step)
 * Every conversion is affine in the prediction for fixed (xt, alpha, sigma), so guidance commutes with it.
 */
export const fromPrediction = (kind: Prediction, pred: Tensor, xt: Tensor, alpha: Tensor, sigma: Tensor): { x0: Tensor; eps: Tensor } => {
  switch (kind) {
    case 'v':
      return { x0: op.sub(op.mul(alpha, xt), op.mul(sigma, pred)), eps: op.add(op.mul(sigma, xt), op.mul(alpha, pred)) };
    case 'eps':
      return { x0: op.div(op.sub(xt, op.mul(sigma, pred)), alpha), eps: pred };
    case 'x0':
      return { x0: pred, eps: op.div(op.sub(xt, op.mul(alpha, pred)), sigma) };
  }
};
