import { fmt, ShapeError } from '../shape.ts';
import type { PrimitiveImpl } from './types.ts';

/** Cross-correlation, NCHW input [N,C,H,W] with OIHW weights [O,C,KH,KW], stride and zero padding (top, bottom, left, right). */
export const conv2d: PrimitiveImpl<'conv2d'> = {
  shape: ([x, w], { stride, padding }) => {
    if (x.length !== 4 || w.length !== 4)
      throw new ShapeError('conv2d', `expects NCHW input and OIHW weights, got ${fmt(x)} and ${fmt(w)}`);
    if (x[1] !== w[1]) throw new ShapeError('conv2d', `input ${fmt(x)} has ${x[1]} channels but weights ${fmt(w)} expect ${w[1]}`);
    if (!stride.every((s) => Number.isInteger(s) && s >= 1))
      throw new ShapeError('conv2d', `stride must be positive integers, got [${stride.join(',')}]`);
    if (!padding.every((p) => Number.isInteger(p) && p >= 0))
      throw new ShapeError('conv2d', `padding must be non-negative integers, got [${padding.join(',')}]`);
    const hp = x[2] + padding[0] + padding[1];
    const wp = x[3] + padding[2] + padding[3];
    if (hp < w[2] || wp < w[3])
      throw new ShapeError('conv2d', `kernel ${w[2]}x${w[3]} is larger than the padded input ${hp}x${wp} of ${fmt(x)}`);
    return [x[0], w[0], Math.floor((hp - w[2]) / stride[0]) + 1, Math.floor((wp - w[3]) / stride[1]) + 1];
  },
  eval: ([x, w], { stride: [sh, sw], padding: [pt, , pl] }, [N, O, OH, OW]) => {
    const [, C, H, W] = x.shape;
    const [, , KH, KW] = w.shape;
    const out = new Float64Array(N * O * OH * OW);
    for (let n = 0; n < N; n++)
      for (let o = 0; o < O; o++)
        for (let p = 0; p < OH; p++)
          for (let q = 0; q < OW; q++) {
            let acc = 0;
            for (let c = 0; c < C; c++)
              for (let i = 0; i < KH; i++) {
                const y = p * sh + i - pt;
                if (y < 0 || y >= H) continue;
                for (let j = 0; j < KW; j++) {
                  const xx = q * sw + j - pl;
                  if (xx < 0 || xx >= W) continue;
                  acc += x.data[((n * C + c) * H + y) * W + xx] * w.data[((o * C + c) * KH + i) * KW + j];
                }
              }
            out[((n * O + o) * OH + p) * OW + q] = acc;
          }
    return out;
  },
};
