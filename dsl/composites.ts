// Composite ops: built only from the DSL's primitives (dsl/ops.ts), so autodiff, fusion and codegen need nothing new.
import { broadcastShapes, fmt, normalizeAxes, ShapeError, size } from '../core/shape.ts';
import * as op from './ops.ts';
import type { Shape } from './shapeTypes.ts';
import { Tensor, withBuilder } from './tensor.ts';

// ---- helpers ----------------------------------------------------------------------------------------------

const fail = (x: Tensor, name: string, detail: string): never => {
  throw new ShapeError(name, detail, x.graph.siteOf());
};

/** Normalised reduction axes (all axes when undefined); a bad axis is a ShapeError naming the op and call site. */
const axesOf = (name: string, x: Tensor, axes: number | readonly number[] | undefined): number[] => {
  const list = axes === undefined ? x.shape.map((_, i) => i) : typeof axes === 'number' ? [axes] : axes;
  try {
    return normalizeAxes(name, list, x.rank, x.shape);
  } catch (e) {
    if (e instanceof ShapeError) throw new ShapeError(e.op, e.detail, x.graph.siteOf());
    throw e;
  }
};

/** Re-types a result of shape-preserving arithmetic on `like` with `like`'s static shape (checked at trace time). */
const asShapeOf = <S extends Shape>(like: Tensor<S>, t: Tensor): Tensor<S> => {
  if (t.rank !== like.rank || t.shape.some((d, i) => d !== like.shape[i]))
    throw new Error(`internal: ${fmt(t.shape)} is not ${fmt(like.shape)}`);
  return t as unknown as Tensor<S>;
};

/** A constant in `x`'s trace (not merely the innermost one), so composites work on any builder. */
const constantLike = (x: Tensor, values: ArrayLike<number>, shape: Shape): Tensor => withBuilder(x.graph, () => op.constant(values, shape));

/** Host-side 0, 1, ..., n-1 as a constant [n] (there is no iota primitive: it is folded into a constant). */
export const arange = (n: number): Tensor<[number]> =>
  op.constant(
    Float64Array.from({ length: n }, (_, i) => i),
    [n],
  );

// ---- reductions -------------------------------------------------------------------------------------------

/** Arithmetic mean over `axes` (all by default): sum divided by the number of reduced elements, as numpy. */
export function mean(x: Tensor): Tensor<[]>;
export function mean(x: Tensor, axes?: number | readonly number[], keepDims?: boolean): Tensor;
export function mean(x: Tensor, axes?: number | readonly number[], keepDims = false): Tensor {
  const ax = axesOf('mean', x, axes);
  const count = ax.reduce((n, a) => n * x.shape[a], 1);
  return op.div(op.sum(x, ax, keepDims), count);
}

/** Population (biased, divide by N) variance, two-pass for stability: the convention of PyTorch's norm layers. */
export function variance(x: Tensor): Tensor<[]>;
export function variance(x: Tensor, axes?: number | readonly number[], keepDims?: boolean): Tensor;
export function variance(x: Tensor, axes?: number | readonly number[], keepDims = false): Tensor {
  const ax = axesOf('variance', x, axes);
  const d = op.sub(x, mean(x, ax, true));
  return mean(op.mul(d, d), ax, keepDims);
}

/**
 * log(sum(exp(x))) over `axes`, shifted by stopGradient(max): the shift cancels exactly, so its gradient is zero
 * and stopping it only drops the max's tie mask. An all -inf slice gives -inf (its shift is taken as 0), as torch.
 */
export function logsumexp(x: Tensor): Tensor<[]>;
export function logsumexp(x: Tensor, axes?: number | readonly number[], keepDims?: boolean): Tensor;
export function logsumexp(x: Tensor, axes?: number | readonly number[], keepDims = false): Tensor {
  const ax = axesOf('logsumexp', x, axes);
  const m = op.max(x, ax, true);
  const shift = op.stopGradient(op.where(op.eq(m, -Infinity), 0, m));
  const lse = op.add(op.log(op.sum(op.exp(op.sub(x, shift)), ax, true)), shift);
  return keepDims
    ? lse
    : op.reshape(
        lse,
        x.shape.filter((_, i) => !ax.includes(i)),
      );
}

/** softmax along `axis`, stable: x - stopGradient(max) (softmax is shift-invariant, so the stopped shift is exact). */
export const softmax = <S extends Shape>(input: Tensor<S>, axis = -1): Tensor<S> => {
  const x: Tensor = input;
  const [ax] = axesOf('softmax', x, [axis]);
  const e = op.exp(op.sub(x, op.stopGradient(op.max(x, ax, true))));
  return asShapeOf(input, op.div(e, op.sum(e, ax, true)));
};

/** log(softmax(x)) along `axis` as z - log(sum(exp(z))) with z = x - stopGradient(max): no log of an underflowed 0. */
export const logSoftmax = <S extends Shape>(input: Tensor<S>, axis = -1): Tensor<S> => {
  const x: Tensor = input;
  const [ax] = axesOf('logSoftmax', x, [axis]);
  const z = op.sub(x, op.stopGradient(op.max(x, ax, true)));
  return asShapeOf(input, op.sub(z, op.log(op.sum(op.exp(z), ax, true))));
};

// ---- normalisation ----------------------------------------------------------------------------------------

/** Normalises over the last axis, (x - mean) / sqrt(var + eps) * gamma + beta, biased variance (PyTorch LayerNorm). */
export const layerNorm = <S extends Shape>(input: Tensor<S>, gamma?: Tensor, beta?: Tensor, eps = 1e-5): Tensor<S> => {
  const x: Tensor = input;
  if (x.rank < 1) fail(x, 'layerNorm', `needs rank >= 1, got ${fmt(x.shape)}`);
  const D = x.shape[x.rank - 1];
  for (const [name, p] of [
    ['gamma', gamma],
    ['beta', beta],
  ] as const)
    if (p && (p.rank !== 1 || p.shape[0] !== D))
      fail(x, 'layerNorm', `${name} of shape ${fmt(p.shape)} does not match the last axis of ${fmt(x.shape)} (want [${D}])`);
  const d = op.sub(x, mean(x, -1, true));
  let y: Tensor = op.mul(d, op.rsqrt(op.add(mean(op.mul(d, d), -1, true), eps)));
  if (gamma) y = op.mul(y, gamma);
  if (beta) y = op.add(y, beta);
  return asShapeOf(input, y);
};

/**
 * GroupNorm (Wu & He; PyTorch GroupNorm): x is [N, C, ...spatial] (e.g. NCHW or [N, C]); channels are split into
 * `groups` contiguous groups, each normalised over its channels and all spatial positions with biased variance;
 * gamma and beta are per channel [C], broadcast as [1, C, 1, ...].
 */
export const groupNorm = <S extends Shape>(input: Tensor<S>, groups: number, gamma?: Tensor, beta?: Tensor, eps = 1e-5): Tensor<S> => {
  const x: Tensor = input;
  if (x.rank < 2) fail(x, 'groupNorm', `expects [N, C, ...], got ${fmt(x.shape)}`);
  const [N, C] = x.shape;
  if (!Number.isInteger(groups) || groups < 1 || C % groups !== 0)
    fail(x, 'groupNorm', `${C} channels of ${fmt(x.shape)} do not split into ${groups} groups`);
  for (const [name, p] of [
    ['gamma', gamma],
    ['beta', beta],
  ] as const)
    if (p && (p.rank !== 1 || p.shape[0] !== C))
      fail(x, 'groupNorm', `${name} of shape ${fmt(p.shape)} does not match the ${C} channels of ${fmt(x.shape)}`);
  const g = op.reshape(x, [N, groups, size(x.shape) / (N * groups)]);
  const d = op.sub(g, mean(g, -1, true));
  let y: Tensor = op.reshape(op.mul(d, op.rsqrt(op.add(mean(op.mul(d, d), -1, true), eps))), x.shape);
  const perChannel = [1, C, ...x.shape.slice(2).map(() => 1)];
  if (gamma) y = op.mul(y, op.reshape(gamma, perChannel));
  if (beta) y = op.add(y, op.reshape(beta, perChannel));
  return asShapeOf(input, y);
};

// ---- activations ------------------------------------------------------------------------------------------

/** SiLU / swish, x * sigmoid(x): the activation of DDPM-style UNets. */
export const silu = <S extends Shape>(input: Tensor<S>): Tensor<S> => {
  const x: Tensor = input;
  return asShapeOf(input, op.mul(x, op.sigmoid(x)));
};

/** GELU, tanh approximation (Hendrycks & Gimpel; PyTorch approximate='tanh'): 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))). */
export const gelu = <S extends Shape>(input: Tensor<S>): Tensor<S> => {
  const x: Tensor = input;
  const inner = op.mul(op.add(x, op.mul(op.mul(op.mul(x, x), x), 0.044715)), Math.sqrt(2 / Math.PI));
  return asShapeOf(input, op.mul(op.mul(x, 0.5), op.add(op.tanh(inner), 1)));
};

// ---- resampling -------------------------------------------------------------------------------------------

const nchw = (x: Tensor, name: string): [number, number, number, number] => {
  if (x.rank !== 4) fail(x, name, `expects NCHW input, got ${fmt(x.shape)}`);
  return x.shape as unknown as [number, number, number, number];
};

/** Average pooling of NCHW input with kernel = stride = k and no padding, as reshape + mean (no conv, no weights). */
export const avgPool2d = (x: Tensor, k: number): Tensor => {
  const [N, C, H, W] = nchw(x, 'avgPool2d');
  if (!Number.isInteger(k) || k < 1 || H % k !== 0 || W % k !== 0)
    fail(x, 'avgPool2d', `kernel ${k} does not tile the ${H}x${W} image of ${fmt(x.shape)}`);
  return mean(op.reshape(x, [N, C, H / k, k, W / k, k]), [3, 5]);
};

/** Nearest-neighbour upsampling of NCHW input by an integer factor k: each pixel becomes a k x k block. */
export const upsampleNearest2d = (x: Tensor, k: number): Tensor => {
  const [N, C, H, W] = nchw(x, 'upsampleNearest2d');
  if (!Number.isInteger(k) || k < 1) fail(x, 'upsampleNearest2d', `factor must be a positive integer, got ${k}`);
  const blocks = op.broadcastTo(op.reshape(x, [N, C, H, 1, W, 1]), [N, C, H, k, W, k]);
  return op.reshape(blocks, [N, C, H * k, W * k]);
};

// ---- embeddings -------------------------------------------------------------------------------------------

/**
 * Sinusoidal timestep embedding, the convention of DDPM / OpenAI guided-diffusion (diffusers with
 * flip_sin_to_cos=True, downscale_freq_shift=0): half = floor(dim/2), freqs_i = exp(-ln(maxPeriod) * i / half),
 * out = concat([cos(t * freqs), sin(t * freqs)], -1), plus one zero column when dim is odd.
 * t of shape S (typically [B]) gives [...S, dim]; the frequencies are host constants.
 */
export const timestepEmbedding = (t: Tensor, dim: number, maxPeriod = 10000): Tensor => {
  if (!Number.isInteger(dim) || dim < 2) fail(t, 'timestepEmbedding', `dim must be an integer >= 2, got ${dim}`);
  const half = Math.floor(dim / 2);
  const freqs = constantLike(
    t,
    Float64Array.from({ length: half }, (_, i) => Math.exp((-Math.log(maxPeriod) * i) / half)),
    [half],
  );
  const args = op.mul(op.reshape(t, [...t.shape, 1]), freqs);
  const emb = op.concat([op.cos(args), op.sin(args)], -1);
  return dim % 2 === 1 ? op.pad(emb, [...t.shape.map(() => [0, 0] as const), [0, 1] as const]) : emb;
};

/**
 * One-hot rows for integer-valued class ids: ids of shape S give [...S, n] with 1 at column id, else 0 (an id outside
 * 0..n-1 gives a zero row). Built as eq(ids, arange(n)); no gradient flows to the ids.
 */
export const oneHot = (ids: Tensor, n: number): Tensor => {
  const cols = constantLike(
    ids,
    Float64Array.from({ length: n }, (_, i) => i),
    [n],
  );
  return op.eq(op.reshape(ids, [...ids.shape, 1]), cols);
};

// ---- losses -----------------------------------------------------------------------------------------------

/** Options of the losses: `broadcast: true` lets operands of different shapes broadcast (numpy rules) before the mean. */
export interface LossOptions {
  broadcast?: boolean;
}

/**
 * A loss compares operands of one shape: [N,1] against [N] would broadcast to [N,N] and average the wrong pairs
 * without any error, so different shapes are a ShapeError naming the op, both shapes and the call site, unless the
 * caller asks for broadcasting.
 */
const checkLossOperands = (name: string, a: Tensor, b: Tensor, opts: LossOptions | undefined): void => {
  if (opts?.broadcast || (a.rank === b.rank && a.shape.every((d, i) => d === b.shape[i]))) return;
  const joint = broadcastShapes(a.shape, b.shape);
  fail(
    a,
    name,
    `operands have different shapes ${fmt(a.shape)} and ${fmt(b.shape)}` +
      (joint ? ` (they would broadcast to ${fmt(joint)})` : '') +
      `; reshape one to the other's shape, or pass { broadcast: true } to broadcast on purpose`,
  );
};

/** Mean squared error over all elements (the DDPM epsilon loss); a and b must have one shape unless `{ broadcast: true }`. */
export const mse = (a: Tensor, b: Tensor, opts?: LossOptions): Tensor<[]> => {
  checkLossOperands('mse', a, b, opts);
  const d = op.sub(a, b);
  return mean(op.mul(d, d));
};

/** Mean absolute error over all elements (L1); subgradient 0 where a = b; one shape unless `{ broadcast: true }`. */
export const mae = (a: Tensor, b: Tensor, opts?: LossOptions): Tensor<[]> => {
  checkLossOperands('mae', a, b, opts);
  return mean(op.abs(op.sub(a, b)));
};

/** Mean cross-entropy of logits [..., K] against integer class ids [...], via logSoftmax (PyTorch cross_entropy, mean reduction). */
export const crossEntropy = (logits: Tensor, labels: Tensor): Tensor<[]> => {
  const K = logits.shape[logits.rank - 1];
  if (logits.rank < 1 || labels.rank !== logits.rank - 1 || labels.shape.some((d, i) => d !== logits.shape[i]))
    fail(logits, 'crossEntropy', `labels ${fmt(labels.shape)} must be the shape of logits ${fmt(logits.shape)} without its last axis`);
  return op.neg(mean(op.sum(op.mul(oneHot(labels, K), logSoftmax(logits)), -1)));
};
