// A view chain (permute, broadcast, slice, flip, contiguous reshape) over a buffer is an affine map:
// element offset = offset + sum idx * stride. A loop (matmul, conv2d) can then walk it with a running pointer
// instead of recomputing the index each iteration.
import { strides } from '../../../core/shape.ts';
import { add, lit, mulc } from '../emitter.ts';
import type { EmitContext } from './types.ts';

export interface Affine {
  readonly buf: number;
  readonly offset: number;
  readonly strides: number[];
}

export const affine = (c: EmitContext, id: number): Affine | undefined => {
  const n = c.nodes[id];
  if (c.splat(id) !== undefined) return undefined;
  if (c.isBuffer(id) || n.op === 'input') return { buf: id, offset: 0, strides: strides(n.shape) };
  const src = n.inputs.length ? affine(c, n.inputs[0]) : undefined;
  if (!src) return undefined;
  switch (n.op) {
    case 'stopGradient':
      return src;
    case 'reshape': {
      // a reshape of a contiguous view is contiguous in the new shape
      const inShape = c.nodes[n.inputs[0]].shape;
      const contiguous = strides(inShape).every((s, d) => inShape[d] === 1 || src.strides[d] === s);
      return contiguous ? { buf: src.buf, offset: src.offset, strides: strides(n.shape) } : undefined;
    }
    case 'permute':
      return { ...src, strides: n.attrs.perm.map((p) => src.strides[p]) };
    case 'broadcast': {
      const inShape = c.nodes[n.inputs[0]].shape;
      const off = n.shape.length - inShape.length;
      return { ...src, strides: n.shape.map((_, d) => (d < off || inShape[d - off] === 1 ? 0 : src.strides[d - off])) };
    }
    case 'slice':
      return { buf: src.buf, offset: src.offset + n.attrs.start.reduce((a, s, d) => a + s * src.strides[d], 0), strides: src.strides.map((s, d) => s * n.attrs.step[d]) };
    case 'flip':
      return {
        buf: src.buf,
        offset: src.offset + n.attrs.axes.reduce((a, d) => a + (n.shape[d] - 1) * src.strides[d], 0),
        strides: src.strides.map((s, d) => (n.attrs.axes.includes(d) ? -s : s)),
      };
    default:
      return undefined;
  }
};

/** The offset expression of the element at coordinates m. */
export const affineBase = (a: { offset: number; strides: number[] }, m: readonly string[]): string =>
  m.reduce((acc, x, d) => (a.strides[d] === 0 ? acc : add(acc, mulc(x, a.strides[d]))), lit(a.offset));
