// Parameter trees: host float64 arrays in nested records, deterministic seeded init, and the bridges between a
// tree and a trace (input specs, evaluate bindings, frozen constants).
import { normalAt, randomKey, uniformAt } from '../core/rng.ts';
import type { NDArray } from '../core/ndarray.ts';
import { fmt, size } from '../core/shape.ts';
import * as op from './ops.ts';
import type { Shape } from './shapeTypes.ts';
import type { Tensor } from './tensor.ts';
import { isNDArray } from './trace.ts';
import { flatten, unflatten, type Tree } from './tree.ts';

/** A parameter tree: nested records whose leaves are host arrays, e.g. `{ enc: { w: NDArray, b: NDArray } }`. */
export type Params = Tree<NDArray>;

/** The tensors a traced function sees for a parameter tree of type P (same keys, NDArray leaves become Tensors). */
export type ParamTensors<P> = P extends NDArray ? Tensor : { [K in keyof P]: ParamTensors<P[K]> };

/** The input spec of a parameter tree of type P (same keys, NDArray leaves become their shapes). */
export type ParamSpec<P> = P extends NDArray ? Shape : { [K in keyof P]: ParamSpec<P[K]> };

// ---- host arrays ------------------------------------------------------------------------------------------

const checkShape = (shape: Shape): void => {
  if (!shape.every((d) => Number.isInteger(d) && d >= 0)) throw new Error(`invalid shape ${fmt(shape)}`);
};

/** A host array from flat row-major values (copied). */
export const ndarray = (shape: Shape, values: ArrayLike<number>): NDArray => {
  checkShape(shape);
  if (values.length !== size(shape)) throw new Error(`ndarray: ${values.length} values do not fill shape ${fmt(shape)}`);
  return { shape: [...shape], data: Float64Array.from(values) };
};

// ---- shapes without values ------------------------------------------------------------------------------

/**
 * Depth of the paramShapesOf calls in progress. While it is positive the init helpers below (fullArray, zerosArray,
 * onesArray, initNormal, initUniform: every model's init goes through them) return arrays with their shape and no
 * values, so a model's init lists its parameters at no cost whatever their sizes.
 */
let shapesOnly = 0;
const NO_VALUES = new Float64Array(0);
const shapeOnlyArray = (shape: Shape): NDArray => ({ shape: [...shape], data: NO_VALUES });

/**
 * The [path, shape] of every parameter `init` creates (flattenParams's order), computed without allocating or
 * drawing any value: `paramShapesOf(() => model.init(0))`. This is what a checkpoint's tensors are checked
 * against before a model of its config is built, and what a memory estimate counts. `init` must be synchronous,
 * and the arrays it makes must not escape it (they hold no values).
 */
export const paramShapesOf = (init: () => Params): [string, number[]][] => {
  shapesOnly++;
  try {
    const tree = init();
    return (isNDArray(tree) ? [['', tree] as [string, NDArray]] : flattenParams(tree)).map(([p, a]) => [p, [...a.shape]]);
  } finally {
    shapesOnly--;
  }
};

/** A host array of the given shape, every element `value` (float64). */
export const fullArray = (shape: Shape, value: number): NDArray => {
  checkShape(shape);
  if (shapesOnly) return shapeOnlyArray(shape);
  return { shape: [...shape], data: new Float64Array(size(shape)).fill(value) };
};
/** `fullArray(shape, 0)`. */
export const zerosArray = (shape: Shape): NDArray => fullArray(shape, 0);
/** `fullArray(shape, 1)`. */
export const onesArray = (shape: Shape): NDArray => fullArray(shape, 1);

/** The RNG stream reserved for host-side parameter init, so it never coincides with a graph's noise streams by accident. */
const INIT_STREAM = 0x7a4a_11;

/** i.i.d. normal(mean, std^2) values from the project's counter-based hash RNG: deterministic in (seed, shape). */
export const initNormal = (shape: Shape, std: number, seed: number, mean = 0): NDArray => {
  const a = zerosArray(shape);
  if (shapesOnly) return a;
  const key = randomKey(seed >>> 0, INIT_STREAM, 0);
  for (let i = 0; i < a.data.length; i++) a.data[i] = mean + std * normalAt(key, i);
  return a;
};

/** i.i.d. uniform values in the open interval (low, high) from the counter-based hash RNG: deterministic in (seed, shape). */
export const initUniform = (shape: Shape, low: number, high: number, seed: number): NDArray => {
  const a = zerosArray(shape);
  if (shapesOnly) return a;
  const key = randomKey(seed >>> 0, INIT_STREAM, 1);
  for (let i = 0; i < a.data.length; i++) a.data[i] = low + (high - low) * uniformAt(key, i);
  return a;
};

/** Host-only 32-bit integer mix ("lowbias32", C. Wellons) for deriving seeds; device noise uses rng.ts. */
const mix32 = (x: number): number => {
  x ^= x >>> 16;
  x = Math.imul(x, 0x7feb352d);
  x ^= x >>> 15;
  x = Math.imul(x, 0x846ca68b);
  x ^= x >>> 16;
  return x >>> 0;
};

/** A child seed for a tree path: FNV-1a of the path mixed into the parent seed, so every parameter draws its own values. */
export const seedFor = (seed: number, path: string): number => {
  let h = 0x811c9dc5;
  for (let i = 0; i < path.length; i++) h = Math.imul(h ^ path.charCodeAt(i), 0x01000193) >>> 0;
  return mix32((mix32(seed >>> 0) ^ h) >>> 0);
};

// ---- trees ------------------------------------------------------------------------------------------------

/** [path, array] pairs in the tree's key order; paths are dot-joined ("enc.0.w"), the names graph inputs get. */
export const flattenParams = (tree: Params): [string, NDArray][] => flatten(tree, isNDArray);

/** Inverse of flattenParams. */
export const unflattenParams = (entries: Iterable<readonly [string, NDArray]>): Params => unflatten(entries);

/** Applies f to every leaf, keeping the tree's structure (optimizer updates, casts, copies). */
export const mapParams = <P extends Params>(tree: P, f: (leaf: NDArray, path: string) => NDArray): P =>
  (isNDArray(tree) ? f(tree, '') : unflattenParams(flattenParams(tree).map(([p, a]) => [p, f(a, p)] as const))) as P;

/** Number of scalars in the tree. */
export const paramCount = (tree: Params): number => flattenParams(tree).reduce((n, [, a]) => n + a.data.length, 0);

/** The input spec of a parameter tree, typed so that a traced function sees the tree's own keys. */
export const paramSpec = <P extends Params>(tree: P): ParamSpec<P> =>
  (isNDArray(tree) ? [...tree.shape] : unflatten(flattenParams(tree).map(([p, a]) => [p, [...a.shape]] as const))) as ParamSpec<P>;

/**
 * Binds a tree of host arrays to graph inputs for `evaluate`: `bindInputs({ x, params })` gives
 * `{ x, 'params.w': ..., ... }`, the names `trace` gives inputs of the same spec.
 */
export const bindInputs = (tree: Params): Record<string, NDArray> => Object.fromEntries(flattenParams(tree));

/**
 * The subtree of evaluated outputs under a path prefix: `subtree(evaluate(g, ...), 'grad.params')` gives the
 * gradient tree with the parameters' own keys. Throws when nothing matches.
 */
export const subtree = (outputs: Readonly<Record<string, NDArray>>, prefix: string): Params => {
  if (outputs[prefix]) return outputs[prefix];
  const hits = Object.entries(outputs).filter(([k]) => k.startsWith(`${prefix}.`));
  if (hits.length === 0) throw new Error(`subtree: no output under '${prefix}'; outputs: ${Object.keys(outputs).join(', ')}`);
  return unflattenParams(hits.map(([k, v]) => [k.slice(prefix.length + 1), v] as const));
};

/**
 * Freezes a parameter tree into the current trace: every leaf becomes a constant node, so the frozen network has no
 * parameter inputs and grad gives them no entries, while gradients still flow through it to its input. This is the
 * frozen-network semantics of the self-perceptual loss, not a stop-gradient around the call.
 */
export const frozen = <P extends Params>(tree: P): ParamTensors<P> =>
  (isNDArray(tree)
    ? op.constant(tree.data, tree.shape)
    : unflatten(flattenParams(tree).map(([p, a]) => [p, op.constant(a.data, a.shape)] as const))) as ParamTensors<P>;
