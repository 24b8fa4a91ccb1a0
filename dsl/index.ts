// The public DSL: one import for writing, tracing, differentiating and evaluating tensor functions.
//   import * as fd from './dsl/index.ts'   — primitives and composites flat, layers under `fd.nn`.
// Differentiation lives one layer up (transforms/); the package root (index.ts) exports both.
export * from './ops.ts';
export * from './composites.ts';
export * from './params.ts';
export * as nn from './nn.ts';
export type { Layer, LinearParams, Conv2dParams, NormParams, EmbeddingParams, DenseInit } from './nn.ts';
export { trace, call, specOf, isShape, isTensor, isNDArray, type Spec, type TensorsOf, type TensorTree } from './trace.ts';
export { Tensor, type Operand, type ShapeOf } from './tensor.ts';
export { flatten, unflatten, mapTree, type Tree } from './tree.ts';
export type { Shape, MutableShape, Broadcast, BroadcastCheck, MatmulCheck, MatmulShape } from './shapeTypes.ts';
export type { NDArray } from '../core/ndarray.ts';
export type { Graph } from '../core/ir.ts';
export { ShapeError } from '../core/shape.ts';
// The float64 oracle, so a traced function can be evaluated with no second import.
export { evaluate } from '../core/interpret.ts';
