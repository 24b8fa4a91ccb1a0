// The primitives as users call them: typed wrappers that broadcast, normalise arguments and emit one node each.
import type { AttrsOf, BinaryOp, CompareOp, OpName, RandomDist, UnaryOp } from '../core/ir.ts';
import { broadcastShapes, fmt, normalizeAxes, ShapeError, size } from '../core/shape.ts';
import type { Broadcast, BroadcastCheck, MatmulCheck, MatmulShape, Shape } from './shapeTypes.ts';
import { builderFor, Tensor, type Operand, type ShapeOf } from './tensor.ts';
import type { GraphBuilder } from '../core/builder.ts';

const emit = <S extends Shape = Shape>(
  g: GraphBuilder,
  op: OpName,
  inputs: readonly Tensor[],
  attrs: AttrsOf[OpName],
  declared?: Shape,
): Tensor<S> => {
  const node = g.emit(
    op,
    inputs.map((t) => t.id),
    attrs as never,
    declared,
  );
  return new Tensor(g, node.id, node.shape as unknown as S);
};

const fail = (g: GraphBuilder, op: string, detail: string): never => {
  throw new ShapeError(op, detail, g.siteOf());
};

// ---- constants --------------------------------------------------------------------------------------------

/** A constant tensor from flat row-major values. */
export const constant = <const S extends Shape>(values: ArrayLike<number>, shape: S): Tensor<S> => {
  const g = builderFor('constant', []);
  return emit<S>(g, 'constant', [], { value: Float64Array.from(values) }, shape);
};

/** A rank-0 constant; `g` is the graph to put it in (by default the one being traced). */
export const scalar = (v: number, g: GraphBuilder = builderFor('scalar', [])): Tensor<[]> =>
  emit<[]>(g, 'constant', [], { value: Float64Array.of(v) }, []);

/** A constant of the given shape, every element `v` (a scalar broadcast: one value, not `size` of them). */
export const full = <const S extends Shape>(shape: S, v: number): Tensor<S> => broadcastTo(scalar(v), shape);
/** `full(shape, 0)`. */
export const zeros = <const S extends Shape>(shape: S): Tensor<S> => full(shape, 0);
/** `full(shape, 1)`. */
export const ones = <const S extends Shape>(shape: S): Tensor<S> => full(shape, 1);

const lift = (g: GraphBuilder, x: Operand): Tensor => (x instanceof Tensor ? x : scalar(x, g));

// ---- elementwise ------------------------------------------------------------------------------------------

const unaryOp =
  (op: UnaryOp) =>
  <S extends Shape>(x: Tensor<S>): Tensor<S> =>
    emit<S>(x.graph, op, [x], {});

/** Elementwise negation, -x. */
export const neg = unaryOp('neg');
/** Elementwise e^x. */
export const exp = unaryOp('exp');
/** Elementwise natural logarithm: -Infinity at 0, NaN below 0 (IEEE, on every backend: docs/numerics.md). */
export const log = unaryOp('log');
/** Elementwise square root: NaN below 0. */
export const sqrt = unaryOp('sqrt');
/** Elementwise 1 / sqrt(x) as one primitive (the normalisation layers use it). */
export const rsqrt = unaryOp('rsqrt');
/** Elementwise sine (radians). */
export const sin = unaryOp('sin');
/** Elementwise cosine (radians). */
export const cos = unaryOp('cos');
/** Elementwise hyperbolic tangent. */
export const tanh = unaryOp('tanh');
/** Elementwise logistic function, 1 / (1 + e^-x). */
export const sigmoid = unaryOp('sigmoid');
/** Elementwise max(x, 0); its gradient at 0 is 0. */
export const relu = unaryOp('relu');
/** Elementwise |x|; its gradient at 0 is 0. */
export const abs = unaryOp('abs');
/** Rounds down; its gradient is zero (e.g. for discrete timesteps drawn from a uniform). */
export const floor = unaryOp('floor');

/** Broadcasts every operand to their common numpy shape (an explicit `broadcast` node for each that needs one). */
const broadcastAll = (op: string, g: GraphBuilder, xs: readonly Tensor[]): Tensor[] => {
  let shape: Shape = [];
  for (const x of xs) {
    const s = broadcastShapes(shape, x.shape);
    if (!s) fail(g, op, `shapes ${xs.map((t) => fmt(t.shape)).join(' and ')} are not broadcastable`);
    shape = s!;
  }
  return xs.map((x) => broadcastTo(x, shape));
};

/** The type of the binary elementwise ops: operands are tensors or numbers, broadcast as numpy does; a literal shape
 * mismatch is a type error, any mismatch a ShapeError at trace time. */
export type Elementwise = <A extends Operand, B extends Operand>(
  a: A,
  b: B & BroadcastCheck<ShapeOf<A>, ShapeOf<B>>,
) => Tensor<Broadcast<ShapeOf<A>, ShapeOf<B>>>;

const binaryOp = (op: BinaryOp | CompareOp, name: string = op): Elementwise =>
  ((a: Operand, b: Operand) => {
    const g = builderFor(name, [a, b]);
    const [x, y] = broadcastAll(name, g, [lift(g, a), lift(g, b)]);
    return emit(g, op, [x, y], {});
  }) as Elementwise;

/** a + b, elementwise with broadcasting. */
export const add = binaryOp('add');
/** a - b, elementwise with broadcasting. */
export const sub = binaryOp('sub');
/** a * b, elementwise with broadcasting. */
export const mul = binaryOp('mul');
/** a / b, elementwise with broadcasting (IEEE: x / 0 is ±Infinity, 0 / 0 is NaN). */
export const div = binaryOp('div');
/** a ** b, elementwise with broadcasting; the gradient in b is taken as 0 where a <= 0. */
export const pow = binaryOp('pow');
/** Elementwise maximum (numpy's `maximum`); `max` is the reduction. At ties the gradient is split equally. */
export const maximum = binaryOp('max', 'maximum');
/** Elementwise minimum (numpy's `minimum`); at ties the gradient is split equally. */
export const minimum = binaryOp('min', 'minimum');
/** a < b: 1 where true and 0 where false, with broadcasting; comparisons have zero gradient. */
export const lt = binaryOp('lt');
/** a <= b as 1 or 0, with broadcasting (see `lt`). */
export const le = binaryOp('le');
/** a > b as 1 or 0, with broadcasting (see `lt`). */
export const gt = binaryOp('gt');
/** a >= b as 1 or 0, with broadcasting (see `lt`). */
export const ge = binaryOp('ge');
/** a === b as 1 or 0, with broadcasting (see `lt`). */
export const eq = binaryOp('eq');
/** a !== b as 1 or 0, with broadcasting (see `lt`). */
export const ne = binaryOp('ne');

/** `a` where `cond` is non-zero, else `b`, with broadcasting of all three. */
export const where = <C extends Operand, A extends Operand, B extends Operand>(
  cond: C,
  a: A & BroadcastCheck<ShapeOf<C>, ShapeOf<A>>,
  b: B & BroadcastCheck<Broadcast<ShapeOf<C>, ShapeOf<A>>, ShapeOf<B>>,
): Tensor<Broadcast<Broadcast<ShapeOf<C>, ShapeOf<A>>, ShapeOf<B>>> => {
  const g = builderFor('where', [cond, a, b]);
  return emit(g, 'where', broadcastAll('where', g, [lift(g, cond), lift(g, a as Operand), lift(g, b as Operand)]), {});
};

/** The identity whose gradient is zero: autodiff treats its result as a constant. */
export const stopGradient = <S extends Shape>(x: Tensor<S>): Tensor<S> => emit<S>(x.graph, 'stopGradient', [x], {});

// ---- reductions -------------------------------------------------------------------------------------------

const allAxes = (x: Tensor) => x.shape.map((_, i) => i);

const reduceOp = (op: 'sum' | 'reduceMax', name: string) => {
  function reduce<S extends Shape>(x: Tensor<S>): Tensor<[]>;
  function reduce(x: Tensor, axes?: number | readonly number[], keepDims?: boolean): Tensor;
  function reduce(x: Tensor, axes?: number | readonly number[], keepDims = false): Tensor {
    const ax = normalizeWithSite(name, x, axes === undefined ? allAxes(x) : typeof axes === 'number' ? [axes] : axes);
    const kept = emit(x.graph, op, [x], { axes: ax });
    return keepDims
      ? kept
      : reshape(
          kept,
          x.shape.filter((_, i) => !ax.includes(i)),
        );
  }
  return reduce;
};

const normalizeWithSite = (op: string, x: Tensor, axes: readonly number[]): number[] => {
  try {
    return normalizeAxes(op, axes, x.rank, x.shape);
  } catch (e) {
    if (e instanceof ShapeError) throw new ShapeError(e.op, e.detail, x.graph.siteOf());
    throw e;
  }
};

/** Sum over `axes` (all by default, giving a scalar); `keepDims` keeps each reduced axis with size 1. */
export const sum = reduceOp('sum', 'sum');
/** Maximum over `axes` (all by default), `keepDims` as for `sum`; at ties the gradient is shared equally between the tied elements. */
export const max = reduceOp('reduceMax', 'max');

// ---- layout -----------------------------------------------------------------------------------------------

/** A reshape target with its inferred -1 dimension typed as `number`. */
export type Inferred<S extends Shape> = { -readonly [K in keyof S]: S[K] extends -1 ? number : S[K] };

/** Reshape; one dimension may be -1 and is inferred. */
export const reshape = <const S extends Shape>(x: Tensor, shape: S): Tensor<Inferred<S>> => {
  const known = shape.filter((d) => d !== -1);
  const inferred = shape.length - known.length;
  let target: Shape = shape;
  if (inferred === 1) {
    const k = size(known);
    if (k === 0 || size(x.shape) % k !== 0) fail(x.graph, 'reshape', `cannot reshape ${fmt(x.shape)} to ${fmt(shape)}`);
    target = shape.map((d) => (d === -1 ? size(x.shape) / k : d));
  } else if (inferred > 1) fail(x.graph, 'reshape', `only one dimension may be -1 in ${fmt(shape)}`);
  if (target.length === x.rank && target.every((d, i) => d === x.shape[i])) return x as unknown as Tensor<Inferred<S>>;
  return emit<Inferred<S>>(x.graph, 'reshape', [x], {}, target);
};

/** Broadcasts `x` to `shape` as numpy does (new leading axes, size-1 axes repeated); a no-op for its own shape. */
export const broadcastTo = <const S extends Shape>(x: Tensor, shape: S): Tensor<S> => {
  if (shape.length === x.rank && shape.every((d, i) => d === x.shape[i])) return x as unknown as Tensor<S>;
  return emit<S>(x.graph, 'broadcast', [x], {}, shape);
};

/** Reorders the axes: axis i of the result is axis `perm[i]` of `x` (numpy's `transpose(x, perm)`). */
export const permute = (x: Tensor, perm: readonly number[]): Tensor => {
  if (perm.length !== x.rank) fail(x.graph, 'permute', `permutation [${perm.join(',')}] does not fit shape ${fmt(x.shape)}`);
  const p = normalizeWithSite('permute', x, perm);
  return p.every((a, i) => a === i) ? x : emit(x.graph, 'permute', [x], { perm: p });
};

/** Swaps the last two axes. */
export const transpose = <S extends Shape>(
  x: Tensor<S>,
): Tensor<S extends readonly [...infer B extends number[], infer M extends number, infer N extends number] ? [...B, N, M] : number[]> => {
  if (x.rank < 2) fail(x.graph, 'transpose', `needs rank >= 2, got ${fmt(x.shape)}`);
  const perm = allAxes(x);
  [perm[x.rank - 2], perm[x.rank - 1]] = [perm[x.rank - 1], perm[x.rank - 2]];
  return permute(x, perm) as never;
};

/** Python-style slicing per axis: `[start, stop, step?]`, or null for the whole axis; negative start/stop count from the end. */
export const slice = (x: Tensor, ranges: readonly (readonly [number, number, number?] | null)[]): Tensor => {
  if (ranges.length > x.rank) fail(x.graph, 'slice', `${ranges.length} ranges for shape ${fmt(x.shape)}`);
  const start: number[] = [],
    stop: number[] = [],
    step: number[] = [];
  x.shape.forEach((d, i) => {
    const r = ranges[i] ?? [0, d, 1];
    const norm = (v: number) => (v < 0 ? v + d : v);
    start.push(norm(r[0]));
    stop.push(norm(r[1]));
    step.push(r[2] ?? 1);
  });
  if (start.every((s) => s === 0) && stop.every((s, i) => s === x.shape[i]) && step.every((s) => s === 1)) return x;
  return emit(x.graph, 'slice', [x], { start, stop, step });
};

/** Zero padding `[lo, hi]` per axis (missing axes unpadded), with optional interior zeros between elements. */
export const pad = (x: Tensor, widths: readonly (readonly [number, number])[], interior?: readonly number[]): Tensor => {
  if (widths.length > x.rank) fail(x.graph, 'pad', `${widths.length} pad widths for shape ${fmt(x.shape)}`);
  const lo = x.shape.map((_, i) => widths[i]?.[0] ?? 0);
  const hi = x.shape.map((_, i) => widths[i]?.[1] ?? 0);
  const inner = x.shape.map((_, i) => interior?.[i] ?? 0);
  if ([...lo, ...hi, ...inner].every((v) => v === 0)) return x;
  return emit(x.graph, 'pad', [x], { lo, hi, interior: inner });
};

/** Joins tensors along `axis` (negative counts from the end); the other dimensions must agree. */
export const concat = (xs: readonly Tensor[], axis: number): Tensor => {
  if (xs.length === 0) throw new ShapeError('concat', 'needs at least one tensor');
  const g = builderFor('concat', xs);
  if (xs.length === 1) return xs[0];
  return emit(g, 'concat', xs, { axis: normalizeWithSite('concat', xs[0], [axis])[0] });
};

/** Reverses the order of the elements along each of `axes`. */
export const flip = <S extends Shape>(x: Tensor<S>, axes: readonly number[]): Tensor<S> =>
  axes.length === 0 ? x : emit<S>(x.graph, 'flip', [x], { axes: normalizeWithSite('flip', x, axes) });

// ---- contractions -----------------------------------------------------------------------------------------

/** Batched matrix product [..., M, K] x [..., K, N]; batch dimensions broadcast. */
export const matmul = <A extends Shape, B extends Shape>(a: Tensor<A>, b: Tensor<B> & MatmulCheck<A, B>): Tensor<MatmulShape<A, B>> => {
  const g = builderFor('matmul', [a, b]);
  if (a.rank < 2 || b.rank < 2) fail(g, 'matmul', `operands need rank >= 2, got ${fmt(a.shape)} and ${fmt(b.shape)}`);
  const [M, K] = a.shape.slice(-2);
  const [K2, N] = b.shape.slice(-2);
  if (K !== K2) fail(g, 'matmul', `inner dimensions differ: ${fmt(a.shape)} x ${fmt(b.shape)} (${K} vs ${K2})`);
  const batch = broadcastShapes(a.shape.slice(0, -2), b.shape.slice(0, -2));
  if (!batch) fail(g, 'matmul', `batch dimensions of ${fmt(a.shape)} and ${fmt(b.shape)} are not broadcastable`);
  const x = broadcastTo(a, [...batch!, M, K]);
  const y = broadcastTo(b as Tensor, [...batch!, K, N]);
  return emit(g, 'matmul', [x, y], {});
};

/** Options of `conv2d`: the stride (default 1) and the zero padding (default 0). */
export interface Conv2dOptions {
  /** one number for both axes, or [vertical, horizontal] */
  stride?: number | readonly [number, number];
  /** one number for all sides, [vertical, horizontal], or [top, bottom, left, right] */
  padding?: number | readonly [number, number] | readonly [number, number, number, number];
}

/** 2-D cross-correlation of NCHW input with OIHW weights. */
export const conv2d = (x: Tensor, w: Tensor, { stride = 1, padding = 0 }: Conv2dOptions = {}): Tensor => {
  const g = builderFor('conv2d', [x, w]);
  const s: [number, number] = typeof stride === 'number' ? [stride, stride] : [stride[0], stride[1]];
  const p: [number, number, number, number] =
    typeof padding === 'number'
      ? [padding, padding, padding, padding]
      : padding.length === 2
        ? [padding[0], padding[0], padding[1], padding[1]]
        : ([...padding] as [number, number, number, number]);
  return emit(g, 'conv2d', [x, w], { stride: s, padding: p });
};

// ---- randomness -------------------------------------------------------------------------------------------

/** Options of `normal` and `uniform`: the draw is a pure function of (seed, stream, counter, element index). */
export interface RandomOptions {
  seed: number;
  /** distinguishes independent draws in one graph (e.g. the noise and the timestep) */
  stream: number;
  /** a scalar tensor (e.g. the training step) or a number; a new counter gives fresh noise */
  counter?: Tensor<readonly []> | number;
}

const randomOp =
  (dist: RandomDist) =>
  <const S extends Shape>(shape: S, { seed, stream, counter = 0 }: RandomOptions): Tensor<S> => {
    const g = builderFor(dist, [counter]);
    return emit<S>(g, 'random', [lift(g, counter)], { dist, seed, stream }, shape);
  };

/** Standard normal noise from the counter-based RNG (identical on every backend). */
export const normal = randomOp('normal');
/** Uniform noise in (0, 1) from the counter-based RNG. */
export const uniform = randomOp('uniform');
