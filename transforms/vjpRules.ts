// The vjp rule of every primitive, written with the DSL's own ops: the backward graph is made of the same
// primitives as the forward one, so it can be differentiated again (grad of grad) and compiled alike.
import * as op from '../dsl/ops.ts';
import type { Tensor } from '../dsl/tensor.ts';
import type { NodeOf, OpName } from '../core/ir.ts';

export interface VjpArgs<K extends OpName> {
  ct: Tensor; // cotangent of the output
  ins: readonly Tensor[]; // the forward inputs
  out: Tensor; // the forward output
  node: NodeOf<K>;
  needs: readonly boolean[]; // which inputs need a cotangent
}

/** Input cotangents, null where an input is not differentiable or not needed. */
export type VjpRule<K extends OpName> = (a: VjpArgs<K>) => (Tensor | null)[];

/** The entry of an op that passes no cotangent to any input: autodiff stops there (see blocksGradient). */
export const nonDiff = Symbol('nonDiff');
export type NonDiff = typeof nonDiff;

/** One entry per op of Ops (OpName; a parameter for test/optable.types.test.ts): its rule, or nonDiff. */
export type VjpTable<Ops extends string = OpName> = { [P in Ops]: VjpRule<P & OpName> | NonDiff };
const when = (need: boolean | undefined, f: () => Tensor): Tensor | null => (need ? f() : null);

const sign = (x: Tensor) => op.sub(op.gt(x, 0), op.lt(x, 0));

/** Sums `ct` down to `shape` (undoes numpy broadcasting): the backward of a broadcast. */
export const unbroadcast = (ct: Tensor, shape: readonly number[]): Tensor => {
  const lead = ct.rank - shape.length;
  const axes = ct.shape.map((d, i) => i).filter((i) => i < lead || (shape[i - lead] === 1 && ct.shape[i] !== 1));
  return op.reshape(axes.length ? op.sum(ct, axes, true) : ct, shape);
};

const maxRule =
  (first: 'gt' | 'lt') =>
  ({ ct, ins: [x, y], needs }: { ct: Tensor; ins: readonly Tensor[]; needs: readonly boolean[] }) => {
    const half = op.mul(op.eq(x, y), 0.5); // ties share the cotangent equally
    const winsX = op.add(first === 'gt' ? op.gt(x, y) : op.lt(x, y), half);
    const winsY = op.add(first === 'gt' ? op.lt(x, y) : op.gt(x, y), half);
    return [when(needs[0], () => op.mul(ct, winsX)), when(needs[1], () => op.mul(ct, winsY))];
  };

export const vjpRules: VjpTable = {
  input: nonDiff, // a source: its cotangent is the gradient itself
  constant: nonDiff,
  random: nonDiff, // its counter input is an integer step
  stopGradient: nonDiff, // by definition
  floor: nonDiff, // piecewise constant: zero almost everywhere
  lt: nonDiff, // comparisons are piecewise constant
  le: nonDiff,
  gt: nonDiff,
  ge: nonDiff,
  eq: nonDiff,
  ne: nonDiff,

  neg: ({ ct }) => [op.neg(ct)],
  exp: ({ ct, out }) => [op.mul(ct, out)],
  log: ({ ct, ins: [x] }) => [op.div(ct, x)],
  sqrt: ({ ct, out }) => [op.div(ct, op.mul(out, 2))],
  rsqrt: ({ ct, ins: [x], out }) => [op.mul(ct, op.div(op.mul(out, -0.5), x))],
  sin: ({ ct, ins: [x] }) => [op.mul(ct, op.cos(x))],
  cos: ({ ct, ins: [x] }) => [op.neg(op.mul(ct, op.sin(x)))],
  tanh: ({ ct, out }) => [op.mul(ct, op.sub(1, op.mul(out, out)))],
  sigmoid: ({ ct, out }) => [op.mul(ct, op.mul(out, op.sub(1, out)))],
  relu: ({ ct, ins: [x] }) => [op.mul(ct, op.gt(x, 0))], // subgradient 0 at x = 0
  abs: ({ ct, ins: [x] }) => [op.mul(ct, sign(x))], // subgradient 0 at x = 0

  add: ({ ct, needs }) => [when(needs[0], () => ct), when(needs[1], () => ct)],
  sub: ({ ct, needs }) => [when(needs[0], () => ct), when(needs[1], () => op.neg(ct))],
  mul: ({ ct, ins: [x, y], needs }) => [when(needs[0], () => op.mul(ct, y)), when(needs[1], () => op.mul(ct, x))],
  div: ({ ct, ins: [, y], out, needs }) => [when(needs[0], () => op.div(ct, y)), when(needs[1], () => op.neg(op.div(op.mul(ct, out), y)))],
  // d/dy x^y = x^y log x is defined for x > 0; it is taken as 0 elsewhere (as for an integer exponent of a negative base).
  pow: ({ ct, ins: [x, y], out, needs }) => [
    when(needs[0], () => op.mul(ct, op.mul(y, op.pow(x, op.sub(y, 1))))),
    when(needs[1], () => op.mul(ct, op.where(op.gt(x, 0), op.mul(out, op.log(op.maximum(x, 1e-300))), 0))),
  ],
  max: maxRule('gt'),
  min: maxRule('lt'),
  where: ({ ct, ins: [c], needs }) => [null, when(needs[1], () => op.where(c, ct, 0)), when(needs[2], () => op.where(c, 0, ct))],

  sum: ({ ct, ins: [x] }) => [op.broadcastTo(ct, x.shape)],
  // At ties the cotangent is shared equally between the maximal elements.
  reduceMax: ({ ct, ins: [x], out, node }) => {
    const mask = op.eq(x, op.broadcastTo(out, x.shape));
    const count = op.sum(mask, node.attrs.axes, true);
    return [op.mul(op.broadcastTo(op.div(ct, count), x.shape), mask)];
  },

  reshape: ({ ct, ins: [x] }) => [op.reshape(ct, x.shape)],
  broadcast: ({ ct, ins: [x] }) => [unbroadcast(ct, x.shape)],
  permute: ({ ct, node }) => {
    const inverse = new Array<number>(node.attrs.perm.length);
    node.attrs.perm.forEach((p, i) => (inverse[p] = i));
    return [op.permute(ct, inverse)];
  },
  slice: ({
    ct,
    ins: [x],
    node: {
      attrs: { start, step },
      shape,
    },
  }) => [
    op.pad(
      ct,
      x.shape.map((d, i) => [start[i], d - 1 - (start[i] + (shape[i] - 1) * step[i])] as const),
      step.map((s) => s - 1),
    ),
  ],
  pad: ({
    ct,
    ins: [x],
    node: {
      attrs: { lo, interior },
    },
  }) => [
    op.slice(
      ct,
      x.shape.map((d, i) => [lo[i], lo[i] + (d - 1) * (interior[i] + 1) + 1, interior[i] + 1] as const),
    ),
  ],
  concat: ({
    ct,
    ins,
    node: {
      attrs: { axis },
    },
    needs,
  }) => {
    let offset = 0;
    return ins.map((x, i) => {
      const from = offset;
      offset += x.shape[axis];
      return when(needs[i], () =>
        op.slice(
          ct,
          ct.shape.map((d, a) => (a === axis ? ([from, from + x.shape[axis]] as const) : null)),
        ),
      );
    });
  },
  flip: ({ ct, node }) => [op.flip(ct, node.attrs.axes)],

  matmul: ({ ct, ins: [a, b], needs }) => [
    when(needs[0], () => op.matmul(ct, op.transpose(b))),
    when(needs[1], () => op.matmul(op.transpose(a), ct)),
  ],

  // Both input and weight cotangents are again stride-1 convolutions: interior padding dilates the
  // cotangent by the stride, and rows/columns the forward never read (r below) are cropped or zero.
  conv2d: ({
    ct,
    ins: [x, w],
    needs,
    node: {
      attrs: {
        stride: [sh, sw],
        padding: [pt, pb, pl, pr],
      },
    },
  }) => {
    const [, , H, W] = x.shape;
    const [, , KH, KW] = w.shape;
    const [, , OH, OW] = ct.shape;
    const rH = H + pt + pb - ((OH - 1) * sh + KH); // trailing rows of the padded input that no output reads
    const rW = W + pl + pr - ((OW - 1) * sw + KW);
    const dx = () => {
      const dilated = op.pad(
        ct,
        [
          [0, 0],
          [0, 0],
          [KH - 1, KH - 1 + rH],
          [KW - 1, KW - 1 + rW],
        ],
        [0, 0, sh - 1, sw - 1],
      );
      const wT = op.flip(op.permute(w, [1, 0, 2, 3]), [2, 3]);
      const full = op.conv2d(dilated, wT); // [N, C, H + pt + pb, W + pl + pr]
      return op.slice(full, [null, null, [pt, pt + H], [pl, pl + W]]);
    };
    const dw = () => {
      const xT = op.permute(x, [1, 0, 2, 3]); // [C, N, H, W]
      const ctT = op.pad(op.permute(ct, [1, 0, 2, 3]), [], [0, 0, sh - 1, sw - 1]); // [O, N, dilated OH, OW]
      const corr = op.conv2d(xT, ctT, { padding: [pt, pb, pl, pr] }); // [C, O, KH + rH, KW + rW]
      return op.permute(op.slice(corr, [null, null, [0, KH], [0, KW]]), [1, 0, 2, 3]);
    };
    return [when(needs[0], dx), when(needs[1], dw)];
  },
};

/** Ops whose vjp entry is nonDiff: no cotangent flows through them, so nothing they compute is active. */
export const blocksGradient = (op: OpName): boolean => vjpRules[op] === nonDiff;
