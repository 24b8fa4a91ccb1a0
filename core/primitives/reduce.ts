// Reductions keep reduced axes with size 1: dropping them is a free reshape, and the backward is one broadcast.
import { normalizeAxes, size, strides, type Shape } from '../shape.ts';
import { forEachIndex } from './layout.ts';
import type { PrimitiveImpl } from './types.ts';

const reduceShape =
  (op: string) =>
  ([x]: readonly Shape[], { axes }: { axes: readonly number[] }) => {
    const ax = normalizeAxes(op, axes, x.length, x);
    return x.map((d, i) => (ax.includes(i) ? 1 : d));
  };

const reduceEval =
  (init: number, combine: (acc: number, v: number) => number) =>
  ([x]: readonly { shape: Shape; data: Float64Array }[], _a: unknown, shape: Shape): Float64Array => {
    const out = new Float64Array(size(shape)).fill(init);
    const os = strides(shape).map((s, i) => (shape[i] === 1 ? 0 : s));
    forEachIndex(x.shape, (idx, flat) => {
      let dst = 0;
      for (let d = 0; d < idx.length; d++) dst += idx[d] * os[d];
      out[dst] = combine(out[dst], x.data[flat]);
    });
    return out;
  };

export const sum: PrimitiveImpl<'sum'> = { shape: reduceShape('sum'), eval: reduceEval(0, (a, v) => a + v) };
export const reduceMax: PrimitiveImpl<'reduceMax'> = {
  shape: reduceShape('max'),
  eval: reduceEval(-Infinity, (a, v) => (v > a || Number.isNaN(v) ? v : a)),
};
