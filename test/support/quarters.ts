// Test inputs that every float format holds exactly: multiples of 1/4 in [-1, 1], hashed from the element's index and
// a salt, so sums and products of a few of them stay exact in float32 and results can be compared bit for bit.
import type { NDArray } from '../../core/ndarray.ts';
import { size } from '../../core/shape.ts';

export const quarters = (shape: readonly number[], salt: number): NDArray => ({
  shape,
  data: Float64Array.from({ length: size(shape) }, (_, i) => ((Math.imul(i + 7919 * salt, 0x9e3779b1) >>> 0) % 9) / 4 - 1),
});
