// Shape primitives: they move data, never combine it. Each is a map from output index to input index.
import { fmt, normalizeAxes, ShapeError, size, strides, type Shape } from '../shape.ts';
import type { NDArray } from '../ndarray.ts';
import type { PrimitiveImpl } from './types.ts';

/** Visits every multi-index of `shape` in row-major order. */
export const forEachIndex = (shape: Shape, visit: (idx: number[], flat: number) => void): void => {
  const n = size(shape);
  const idx = new Array<number>(shape.length).fill(0);
  for (let flat = 0; flat < n; flat++) {
    visit(idx, flat);
    for (let d = shape.length - 1; d >= 0; d--) {
      if (++idx[d] < shape[d]) break;
      idx[d] = 0;
    }
  }
};

const perAxis = (op: string, name: string, v: readonly number[], rank: number) => {
  if (v.length !== rank) throw new ShapeError(op, `${name} has ${v.length} entries for a tensor of rank ${rank}`);
  if (!v.every(Number.isInteger)) throw new ShapeError(op, `${name} must be integers, got [${v.join(',')}]`);
};

export const reshape: PrimitiveImpl<'reshape'> = {
  shape: ([x], _a, declared) => {
    if (!declared || size(declared) !== size(x) || !declared.every((d) => Number.isInteger(d) && d >= 0))
      throw new ShapeError('reshape', `cannot reshape ${fmt(x)} (${size(x)} elements) to ${declared ? fmt(declared) : 'nothing'}`);
    return declared;
  },
  eval: ([x]) => x.data.slice(),
};

export const broadcast: PrimitiveImpl<'broadcast'> = {
  shape: ([x], _a, declared) => {
    const ok = declared && declared.length >= x.length && x.every((d, i) => d === 1 || d === declared[declared.length - x.length + i]);
    if (!ok) throw new ShapeError('broadcast', `cannot broadcast ${fmt(x)} to ${declared ? fmt(declared) : 'nothing'}`);
    return declared;
  },
  eval: ([x], _a, shape) => {
    if (x.data.length === 1) return new Float64Array(size(shape)).fill(x.data[0]); // a splat: every element is x's one value
    const off = shape.length - x.shape.length;
    const xs = strides(x.shape).map((s, i) => (x.shape[i] === 1 ? 0 : s));
    const out = new Float64Array(size(shape));
    forEachIndex(shape, (idx, flat) => {
      let src = 0;
      for (let d = 0; d < xs.length; d++) src += idx[d + off] * xs[d];
      out[flat] = x.data[src];
    });
    return out;
  },
};

export const permute: PrimitiveImpl<'permute'> = {
  shape: ([x], { perm }) => {
    const p = normalizeAxes('permute', perm, x.length, x);
    if (p.length !== x.length) throw new ShapeError('permute', `permutation [${perm.join(',')}] does not fit shape ${fmt(x)}`);
    return p.map((a) => x[a]);
  },
  eval: ([x], { perm }, shape) => {
    const xs = strides(x.shape);
    const out = new Float64Array(size(shape));
    forEachIndex(shape, (idx, flat) => {
      let src = 0;
      for (let d = 0; d < perm.length; d++) src += idx[d] * xs[perm[d]];
      out[flat] = x.data[src];
    });
    return out;
  },
};

export const slice: PrimitiveImpl<'slice'> = {
  shape: ([x], { start, stop, step }) => {
    for (const [n, v] of [
      ['start', start],
      ['stop', stop],
      ['step', step],
    ] as const)
      perAxis('slice', n, v, x.length);
    return x.map((d, i) => {
      if (step[i] < 1 || start[i] < 0 || stop[i] > d || start[i] > stop[i])
        throw new ShapeError(
          'slice',
          `axis ${i}: start ${start[i]}, stop ${stop[i]}, step ${step[i]} do not fit dimension ${d} of ${fmt(x)}`,
        );
      return Math.ceil((stop[i] - start[i]) / step[i]);
    });
  },
  eval: ([x], { start, step }, shape) => {
    const xs = strides(x.shape);
    const out = new Float64Array(size(shape));
    forEachIndex(shape, (idx, flat) => {
      let src = 0;
      for (let d = 0; d < xs.length; d++) src += (start[d] + idx[d] * step[d]) * xs[d];
      out[flat] = x.data[src];
    });
    return out;
  },
};

/** Zero padding: `lo`/`hi` elements at each end and `interior` zeros between neighbours (as in XLA's pad). */
export const pad: PrimitiveImpl<'pad'> = {
  shape: ([x], { lo, hi, interior }) => {
    for (const [n, v] of [
      ['lo', lo],
      ['hi', hi],
      ['interior', interior],
    ] as const) {
      perAxis('pad', n, v, x.length);
      if (v.some((e) => e < 0)) throw new ShapeError('pad', `${n} must be non-negative, got [${v.join(',')}]`);
    }
    return x.map((d, i) => lo[i] + hi[i] + d + Math.max(0, d - 1) * interior[i]);
  },
  eval: ([x], { lo, interior }, shape) => {
    const os = strides(shape);
    const out = new Float64Array(size(shape));
    forEachIndex(x.shape, (idx, flat) => {
      let dst = 0;
      for (let d = 0; d < idx.length; d++) dst += (lo[d] + idx[d] * (interior[d] + 1)) * os[d];
      out[dst] = x.data[flat];
    });
    return out;
  },
};

export const concat: PrimitiveImpl<'concat'> = {
  shape: (xs, { axis }) => {
    if (xs.length === 0) throw new ShapeError('concat', 'needs at least one input');
    const [first] = xs;
    const [ax] = normalizeAxes('concat', [axis], first.length, first);
    for (const s of xs)
      if (s.length !== first.length || s.some((d, i) => i !== ax && d !== first[i]))
        throw new ShapeError('concat', `shapes ${xs.map(fmt).join(', ')} differ outside axis ${axis}`);
    return first.map((d, i) => (i === ax ? xs.reduce((a, s) => a + s[i], 0) : d));
  },
  eval: (xs, { axis }, shape) => {
    const ax = axis < 0 ? axis + shape.length : axis;
    const outer = size(shape.slice(0, ax));
    const out = new Float64Array(size(shape));
    let dst = 0;
    for (let o = 0; o < outer; o++)
      for (const x of xs) {
        const block = size(x.shape.slice(ax));
        out.set(x.data.subarray(o * block, (o + 1) * block), dst);
        dst += block;
      }
    return out;
  },
};

export const flip: PrimitiveImpl<'flip'> = {
  shape: ([x], { axes }) => (normalizeAxes('flip', axes, x.length, x), x),
  eval: ([x]: readonly NDArray[], { axes }, shape) => {
    const ax = new Set(normalizeAxes('flip', axes, shape.length));
    const xs = strides(shape);
    const out = new Float64Array(size(shape));
    forEachIndex(shape, (idx, flat) => {
      let src = 0;
      for (let d = 0; d < idx.length; d++) src += (ax.has(d) ? shape[d] - 1 - idx[d] : idx[d]) * xs[d];
      out[flat] = x.data[src];
    });
    return out;
  },
};
