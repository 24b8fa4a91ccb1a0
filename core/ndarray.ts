// The host tensor every layer shares: the interpreter's values, parameters, data batches and checkpoints.
import type { Shape } from './shape.ts';

/** A dense float64 array with a shape: the interpreter's values and the user's host tensors. */
export interface NDArray {
  readonly shape: Shape;
  readonly data: Float64Array;
}
