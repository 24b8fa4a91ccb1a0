// Cases of the WGSL code-generation tests (wgsl-vectors, wgsl-tiles) that must equal the float64 interpreter exactly:
// every input is a multiple of 1/4 in [-1, 1], so every product is a multiple of 1/16 and the sums these small cases
// make are exact in float32, whatever the order.
import type { Graph } from '../../core/ir.ts';
import type { NDArray } from '../../core/ndarray.ts';
import type { Tensor } from '../../dsl/tensor.ts';
import { trace } from '../../dsl/trace.ts';
import { isAvailable, probeBackend } from '../../compiler/index.ts';

/** Skipped only outside CI where no adapter exists (under CI=true a missing adapter fails the test). */
export const skipWithoutWebGPU = (): string | false =>
  isAvailable('webgpu') || process.env.CI === 'true' ? false : `no WebGPU adapter here: ${probeBackend('webgpu').reason}`;

export const quarters = (shape: readonly number[], seed: number): NDArray => ({
  shape,
  data: Float64Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, i) => (((i * 7 + seed * 13) % 9) - 4) / 4),
});

export interface ExactCase {
  readonly name: string;
  readonly graph: Graph;
  readonly args: Record<string, NDArray>;
}

/** A named graph over inputs of the given shapes, with quarter-valued arguments. */
export const exactCase = <const Sp extends Record<string, readonly number[]>>(
  name: string,
  spec: Sp,
  f: (args: { [K in keyof Sp]: Tensor }) => Record<string, Tensor>,
): ExactCase => {
  const graph = trace((args) => f(args as { [K in keyof Sp]: Tensor }), spec);
  const args = Object.fromEntries(Object.entries(spec).map(([k, s], i) => [k, quarters(s, i + 1)]));
  return { name, graph, args };
};
