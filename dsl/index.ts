// The public DSL: one import for writing, tracing, differentiating and evaluating tensor functions.
//   import * as fd from './dsl/index.ts'   — primitives and composites flat, layers under `fd.nn`.
export * from './ops.ts';
export * from './composites.ts';
export * from './params.ts';
export * as nn from './nn.ts';
export type { Layer, LinearParams, Conv2dParams, NormParams, EmbeddingParams, DenseInit } from './nn.ts';
export { trace, call, specOf, isShape, isTensor, isNDArray, type Spec, type TensorsOf, type TensorTree } from './trace.ts';
export { Tensor, type Operand, type ShapeOf } from './tensor.ts';
export { flatten, unflatten, mapTree, type Tree } from './tree.ts';
export type { Shape, Broadcast, BroadcastCheck, MatmulCheck, MatmulShape } from './shapeTypes.ts';
export type { NDArray } from '../compiler/primitives/types.ts';
export type { Graph } from '../compiler/ir.ts';
export { ShapeError } from '../compiler/shape.ts';
// Differentiation and the float64 oracle, so a gradient check needs no second import.
export { grad, valueAndGrad, vjp, gradName, cotangentName } from '../compiler/autodiff/transform.ts';
export { evaluate } from '../compiler/interpret.ts';
