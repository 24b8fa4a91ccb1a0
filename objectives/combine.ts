// Combinators: objectives are functions, so a weighted sum is a function too (e.g. mse + lambda * sp).
import { fmt, ShapeError } from '../core/shape.ts';
import * as op from '../dsl/ops.ts';
import type { Objective } from './types.ts';

/** The objective sum of w_i * objective_i, e.g. `weightedSum([1, mse], [0.1, sp])`; every term must return a scalar. */
export const weightedSum = (...terms: readonly (readonly [number, Objective])[]): Objective => {
  if (terms.length === 0) throw new Error('weightedSum: needs at least one term');
  // every term must be a scalar: a [B] term added to a [] one (or [B, 1] to [B]) would broadcast instead of summing losses
  return (args) =>
    terms
      .map(([w, f], i) => {
        const v = f(args);
        if (v.rank !== 0)
          throw new ShapeError('weightedSum', `term ${i} returned ${fmt(v.shape)}; every objective returns a scalar []`, v.graph.siteOf());
        return op.mul(v, w);
      })
      .reduce((a, b) => op.add(a, b));
};
