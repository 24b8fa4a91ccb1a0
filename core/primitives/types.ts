import type { AttrsOf, OpName } from '../ir.ts';
import type { NDArray } from '../ndarray.ts';
import type { Shape } from '../shape.ts';

/** What each primitive carries for the interpreter: abstract evaluation (shapes) and its float64 implementation. */
export interface PrimitiveImpl<K extends OpName> {
  /** Output shape from input shapes; `declared` is the requested shape for reshape/broadcast. Throws ShapeError. */
  shape(inputs: readonly Shape[], attrs: AttrsOf[K], declared?: Shape): Shape;
  /** float64 reference implementation. */
  eval(inputs: readonly NDArray[], attrs: AttrsOf[K], shape: Shape): Float64Array;
}
