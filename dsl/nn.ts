// Layers as pairs: `init(seed, ...dims)` builds a host parameter tree, `apply(params, x, ...opts)` the traced
// computation on that tree's tensors. Init is deterministic in the seed; each leaf draws from seedFor(seed, its key),
// and a model gives each child layer seedFor(seed, childPath), so different paths never share values.
import type { NDArray } from '../core/ndarray.ts';
import { fmt, ShapeError } from '../core/shape.ts';
import { groupNorm as groupNormOp, layerNorm as layerNormOp, oneHot } from './composites.ts';
import * as op from './ops.ts';
import { initNormal, initUniform, onesArray, seedFor, zerosArray, type Params, type ParamTensors } from './params.ts';
import type { Tensor } from './tensor.ts';

/** The shape of every layer here: host init and traced apply over the same tree type P. */
export interface Layer<P extends Params, InitArgs extends unknown[], ApplyArgs extends unknown[]> {
  init(seed: number, ...args: InitArgs): P;
  apply(params: ParamTensors<P>, x: Tensor, ...args: ApplyArgs): Tensor;
}

const fail = (x: Tensor, name: string, detail: string): never => {
  throw new ShapeError(name, detail, x.graph.siteOf());
};

/** Init options of `linear` and `conv2d`. */
export interface DenseInit {
  /** include the bias (default true) */
  bias?: boolean;
  /** multiplies the init bound; 0 gives a zero-initialised layer (e.g. a UNet's last conv, "zero_module") */
  gain?: number;
}

/** U(-b, b) with b = gain / sqrt(fanIn), for weights and bias alike: PyTorch's default Linear/Conv init (kaiming_uniform, a = sqrt(5)). */
const fanInUniform = (shape: readonly number[], fanIn: number, gain: number, seed: number): NDArray => {
  const bound = gain / Math.sqrt(fanIn);
  return bound === 0 ? zerosArray(shape) : initUniform(shape, -bound, bound, seed);
};

// ---- linear -----------------------------------------------------------------------------------------------

/** The parameters of `linear`: y = x w + b. */
export type LinearParams = {
  /** [in, out]: y = x w + b, no transpose (PyTorch stores [out, in]) */
  w: NDArray;
  /** [out] */
  b?: NDArray;
};

/** Affine map over the last axis of x [..., in] -> [..., out]; leading axes are flattened into one matmul. */
export const linear: Layer<LinearParams, [inDim: number, outDim: number, opts?: DenseInit], []> = {
  init: (seed, inDim, outDim, { bias = true, gain = 1 } = {}) => {
    const w = fanInUniform([inDim, outDim], inDim, gain, seedFor(seed, 'w'));
    return bias ? { w, b: fanInUniform([outDim], inDim, gain, seedFor(seed, 'b')) } : { w };
  },
  apply: ({ w, b }, x) => {
    const [inDim, outDim] = w.shape;
    if (x.rank < 1 || x.shape[x.rank - 1] !== inDim)
      fail(x, 'linear', `input ${fmt(x.shape)} does not end in the weight's ${inDim} input features (w ${fmt(w.shape)})`);
    const lead = x.shape.slice(0, -1);
    const y: Tensor = op.matmul(op.reshape(x, [-1, inDim]), w);
    const out = op.reshape(y, [...lead, outDim]);
    return b ? op.add(out, b) : out;
  },
};

// ---- conv2d -----------------------------------------------------------------------------------------------

/** The parameters of `conv2d`: OIHW weights and a per-output-channel bias. */
export type Conv2dParams = {
  /** [out, in, kh, kw] (OIHW) */
  w: NDArray;
  /** [out], added as [1, out, 1, 1] */
  b?: NDArray;
};

/** 2-D convolution layer on NCHW input; stride and padding are apply-time options (default stride 1, padding 0, as op.conv2d). */
export const conv2d: Layer<
  Conv2dParams,
  [inCh: number, outCh: number, kernel: number | readonly [number, number], opts?: DenseInit],
  [opts?: op.Conv2dOptions]
> = {
  init: (seed, inCh, outCh, kernel, { bias = true, gain = 1 } = {}) => {
    const [kh, kw] = typeof kernel === 'number' ? [kernel, kernel] : kernel;
    const fanIn = inCh * kh * kw;
    const w = fanInUniform([outCh, inCh, kh, kw], fanIn, gain, seedFor(seed, 'w'));
    return bias ? { w, b: fanInUniform([outCh], fanIn, gain, seedFor(seed, 'b')) } : { w };
  },
  apply: ({ w, b }, x, opts = {}) => {
    const y = op.conv2d(x, w, opts);
    return b ? op.add(y, op.reshape(b, [1, w.shape[0], 1, 1])) : y;
  },
};

// ---- normalisation ----------------------------------------------------------------------------------------

/** The parameters of `groupNorm` and `layerNorm`: the per-feature scale and shift. */
export type NormParams = {
  /** [features], init ones */
  gamma: NDArray;
  /** [features], init zeros */
  beta: NDArray;
};

const normInit = (_seed: number, features: number): NormParams => ({ gamma: onesArray([features]), beta: zerosArray([features]) });

/** GroupNorm layer over [N, C, ...] with per-channel affine (gamma ones, beta zeros); the seed is unused. */
export const groupNorm: Layer<NormParams, [channels: number], [groups: number, eps?: number]> = {
  init: normInit,
  apply: ({ gamma, beta }, x, groups, eps = 1e-5) => groupNormOp(x, groups, gamma, beta, eps),
};

/** LayerNorm layer over the last axis with affine (gamma ones, beta zeros); the seed is unused. */
export const layerNorm: Layer<NormParams, [dim: number], [eps?: number]> = {
  init: normInit,
  apply: ({ gamma, beta }, x, eps = 1e-5) => layerNormOp(x, gamma, beta, eps),
};

// ---- embedding --------------------------------------------------------------------------------------------

/** The parameters of `embedding`: one row per id. */
export type EmbeddingParams = {
  /** [count, dim], init N(0, 1) as PyTorch's nn.Embedding */
  table: NDArray;
};

/**
 * Table lookup for integer-valued ids of any shape S -> [...S, dim]. The IR has no gather primitive (gpu.js cannot
 * scatter its backward), so the lookup is oneHot(ids) @ table: the backward is a plain matmul, ids out of range give
 * zero rows, and no gradient flows to the ids.
 */
export const embedding: Layer<EmbeddingParams, [count: number, dim: number], []> = {
  init: (seed, count, dim) => ({ table: initNormal([count, dim], 1, seedFor(seed, 'table')) }),
  apply: ({ table }, ids) => {
    const [count, dim] = table.shape;
    const rows: Tensor = op.matmul(op.reshape(oneHot(ids, count), [-1, count]), table);
    return op.reshape(rows, [...ids.shape, dim]);
  },
};
