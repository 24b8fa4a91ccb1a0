// Condition dropout for classifier-free guidance training: with probability p a sample's class id is replaced by
// the null class (id = numClasses), so one network learns both the conditional and the unconditional model.
import * as op from '../dsl/ops.ts';
import type { Tensor } from '../dsl/tensor.ts';
import { streams } from './noising.ts';

/**
 * Classifier-free guidance's condition dropout: each class id in `c` becomes the null class `numClasses` with
 * probability `p`, drawn on its own RNG stream keyed by `step` and `seed`.
 */
export const dropCondition = (c: Tensor, p: number, numClasses: number, step: Tensor, seed: number): Tensor => {
  if (!(p >= 0 && p <= 1)) throw new Error(`condition dropout must be a probability in [0, 1], got ${p}`);
  if (p === 0) return c;
  const u = op.uniform(c.shape, { seed, stream: streams.dropout, counter: step as Tensor<readonly []> });
  return op.where(op.lt(u, p), numClasses, c);
};
