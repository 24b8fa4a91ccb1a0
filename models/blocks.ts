// Building blocks of the UNet: the conditioning embedding (time + class), the DDPM residual block and its
// self-attention block.
import { silu, softmax, timestepEmbedding } from '../dsl/composites.ts';
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

// ---- self-attention ------------------------------------------------------------------------------------------

export type AttentionParams = {
  norm: nn.NormParams;
  /** 1x1 conv to queries, keys and values, C -> 3C */
  qkv: nn.Conv2dParams;
  /** zero-initialised 1x1 conv, so the block starts as the identity (DDPM's zero_module) */
  proj: nn.Conv2dParams;
};

/**
 * DDPM's single-head self-attention over the H x W positions: out = x + proj(v softmax(q^T k / sqrt(C))^T), with
 * q, k, v from a 1x1 conv of the group-normed input. Written in DSL ops (matmul, softmax), so the compiler fuses it.
 */
export const attentionBlock = {
  init: (seed: number, ch: number): AttentionParams => {
    const s = (k: string) => seedFor(seed, k);
    return {
      norm: nn.groupNorm.init(s('norm'), ch),
      qkv: nn.conv2d.init(s('qkv'), ch, 3 * ch, 1),
      proj: nn.conv2d.init(s('proj'), ch, ch, 1, { gain: 0 }),
    };
  },
  /** x [B, C, H, W] -> [B, C, H, W] */
  apply: (p: ParamTensors<AttentionParams>, x: Tensor, groups: number): Tensor => {
    const [b, c, h, w] = x.shape;
    const n = h * w;
    const qkv = op.reshape(nn.conv2d.apply(p.qkv, nn.groupNorm.apply(p.norm, x, groups)), [b, 3, c, n]);
    const part = (i: number) => op.reshape(op.slice(qkv, [null, [i, i + 1]]), [b, c, n]);
    const [q, k, v] = [part(0), part(1), part(2)];
    // scores[i, j] = q_i . k_j / sqrt(C): [B, N, C] x [B, C, N]; softmax over the keys j
    const attn = softmax(op.mul(op.matmul(op.transpose(q), k), 1 / Math.sqrt(c)), -1);
    // out[:, i] = sum_j v[:, j] attn[i, j]: [B, C, N] x [B, N, N]^T
    const out = op.reshape(op.matmul(v, op.transpose(attn)), [b, c, h, w]);
    return op.add(x, nn.conv2d.apply(p.proj, out));
  },
};
