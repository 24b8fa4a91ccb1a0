// Building blocks of the UNet: the conditioning embedding (time + class) and the DDPM residual block.
import { silu, timestepEmbedding } from '../dsl/composites.ts';
import * as nn from '../dsl/nn.ts';
import * as op from '../dsl/ops.ts';
import { seedFor, type ParamTensors } from '../dsl/params.ts';
import type { Tensor } from '../dsl/tensor.ts';

// ---- conditioning --------------------------------------------------------------------------------------------

export type CondParams = {
  /** sinusoidal(t) [B, sinDim] -> [B, embDim] */
  t0: nn.LinearParams;
  t1: nn.LinearParams;
  /** numClasses + 1 rows; the last is the null class of CFG */
  cls?: nn.EmbeddingParams;
};

/**
 * emb = linear(silu(linear(sinusoidal(t)))) (+ class row), as DDPM / guided-diffusion. The class embedding is added,
 * not concatenated, so a conditional and an unconditional model share every other shape.
 */
export const conditioning = {
  init: (seed: number, sinDim: number, embDim: number, numClasses?: number): CondParams => {
    const p: CondParams = {
      t0: nn.linear.init(seedFor(seed, 't0'), sinDim, embDim),
      t1: nn.linear.init(seedFor(seed, 't1'), embDim, embDim),
    };
    if (numClasses !== undefined) p.cls = nn.embedding.init(seedFor(seed, 'cls'), numClasses + 1, embDim);
    return p;
  },
  apply: (p: ParamTensors<CondParams>, t: Tensor, c: Tensor | undefined): Tensor => {
    const sin = timestepEmbedding(t, p.t0.w.shape[0]);
    const emb = nn.linear.apply(p.t1, silu(nn.linear.apply(p.t0, sin)));
    return p.cls && c ? op.add(emb, nn.embedding.apply(p.cls, c)) : emb;
  },
};

// ---- residual block ------------------------------------------------------------------------------------------

export type ResBlockParams = {
  norm1: nn.NormParams;
  conv1: nn.Conv2dParams;
  /** silu(emb) [B, embDim] -> one shift per output channel */
  emb: nn.LinearParams;
  norm2: nn.NormParams;
  /** zero-initialised, so each block starts as its skip path (DDPM's zero_module) */
  conv2: nn.Conv2dParams;
  /** 1x1 conv when the channel count changes */
  skip?: nn.Conv2dParams;
};

export const resBlock = {
  init: (seed: number, inCh: number, outCh: number, embDim: number): ResBlockParams => {
    const s = (k: string) => seedFor(seed, k);
    const p: ResBlockParams = {
      norm1: nn.groupNorm.init(s('norm1'), inCh),
      conv1: nn.conv2d.init(s('conv1'), inCh, outCh, 3),
      emb: nn.linear.init(s('emb'), embDim, outCh),
      norm2: nn.groupNorm.init(s('norm2'), outCh),
      conv2: nn.conv2d.init(s('conv2'), outCh, outCh, 3, { gain: 0 }),
    };
    if (inCh !== outCh) p.skip = nn.conv2d.init(s('skip'), inCh, outCh, 1);
    return p;
  },
  /** x [B, inCh, H, W], embAct = silu(emb) [B, embDim] (shared by all blocks, so computed once) -> [B, outCh, H, W] */
  apply: (p: ParamTensors<ResBlockParams>, x: Tensor, embAct: Tensor, groups: number): Tensor => {
    const outCh = p.conv1.w.shape[0];
    let h = nn.conv2d.apply(p.conv1, silu(nn.groupNorm.apply(p.norm1, x, groups)), { padding: 1 });
    h = op.add(h, op.reshape(nn.linear.apply(p.emb, embAct), [x.shape[0], outCh, 1, 1]));
    h = nn.conv2d.apply(p.conv2, silu(nn.groupNorm.apply(p.norm2, h, groups)), { padding: 1 });
    return op.add(p.skip ? nn.conv2d.apply(p.skip, x) : x, h);
  },
};
