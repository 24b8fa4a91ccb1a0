// Combinators: objectives are functions, so a weighted sum is a function too (e.g. mse + lambda * sp).
import * as op from '../dsl/ops.ts';
import type { Objective } from './types.ts';

export const weightedSum = (...terms: readonly (readonly [number, Objective])[]): Objective => {
  if (terms.length === 0) throw new Error('weightedSum: needs at least one term');
  return (args) => terms.map(([w, f]) => op.mul(f(args), w)).reduce((a, b) => op.add(a, b));
};
