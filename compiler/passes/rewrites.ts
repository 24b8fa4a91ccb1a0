// simplify's algebraic rewrites: small named rules, each for the ops it names. A rule returns the id of an
// equivalent node of the new graph, or undefined where it does not apply; for a node, the first rule that applies
// (in list order) wins. Constant folding and common subexpressions are simplify's own, for every op.
import type { Node, NodeOf, OpName } from '../../core/ir.ts';
import { sameShape } from '../../core/shape.ts';
import { splatValue } from './splat.ts';

export interface RewriteArgs<P extends OpName> {
  /** the node to rewrite, as in the old graph */
  readonly n: NodeOf<P>;
  /** its inputs, as ids of the new graph */
  readonly ins: readonly number[];
  /** a node of the new graph */
  node(id: number): Node;
  /** adds a node to the new graph (or finds its equal) */
  emit(n: Node, inputs: number[]): number;
  /** the splat v in n's shape: a scalar constant, broadcast (which codegen inlines as a literal) */
  splatBroadcast(n: Node, v: number): number;
  /** how many live nodes and outputs of the old graph read node `id` (an id of the old graph, as in n.inputs) */
  uses(id: number): number;
}

export interface Rewrite {
  readonly name: string;
  readonly ops: readonly OpName[];
  /** a method (bivariant): simplify applies a rule only to nodes of its ops, which it looks up by op */
  apply(a: RewriteArgs<OpName>): number | undefined;
}

const rule = <P extends OpName>(name: string, ops: readonly P[], apply: (a: RewriteArgs<P>) => number | undefined): Rewrite => ({
  name,
  ops,
  apply,
});

/** The value of a splat input, looking through reshapes and broadcasts (how the DSL builds a literal operand). */
const splat = (a: RewriteArgs<OpName>, x: Node): number | undefined =>
  x.op === 'broadcast' || x.op === 'reshape' ? splat(a, a.node(x.inputs[0])) : splatValue(x);

/** Input k when input `other` is the splat `unit` and input k already has the output's shape. */
const keep = (a: RewriteArgs<OpName>, k: number, other: number, unit: number): number | undefined =>
  splat(a, a.node(a.ins[other])) === unit && sameShape(a.node(a.ins[k]).shape, a.n.shape) ? a.ins[k] : undefined;

export const rewrites: readonly Rewrite[] = [
  rule('stopGradient is the identity once autodiff has run', ['stopGradient'], ({ ins }) => ins[0]),
  rule('x + 0 = 0 + x = x', ['add'], (a) => keep(a, 0, 1, 0) ?? keep(a, 1, 0, 0)),
  rule('x - 0 = x', ['sub'], (a) => keep(a, 0, 1, 0)),
  rule('x * 1 = 1 * x = x', ['mul'], (a) => keep(a, 0, 1, 1) ?? keep(a, 1, 0, 1)),
  rule('x / 1 = x', ['div'], (a) => keep(a, 0, 1, 1)),
  rule('-(-x) = x', ['neg'], ({ ins, node }) => {
    const x = node(ins[0]);
    return x.op === 'neg' ? x.inputs[0] : undefined;
  }),
  rule('a reshape or broadcast to the same shape is its input', ['reshape', 'broadcast'], ({ n, ins, node }) =>
    sameShape(node(ins[0]).shape, n.shape) ? ins[0] : undefined,
  ),
  rule('a reshaped or broadcast splat is a broadcast scalar (the canonical splat)', ['reshape', 'broadcast'], (a) => {
    const x = a.node(a.ins[0]);
    const v = splat(a, x);
    return v !== undefined && x.shape.length > 0 ? a.splatBroadcast(a.n, v) : undefined;
  }),
  rule('reshape(reshape(x)) = reshape(x)', ['reshape'], ({ n, ins, node, emit }) => {
    const x = node(ins[0]);
    return x.op === 'reshape' ? emit(n, [x.inputs[0]]) : undefined;
  }),
  rule('the identity permutation is its input', ['permute'], ({ n, ins }) => (n.attrs.perm.every((p, i) => p === i) ? ins[0] : undefined)),
  // the loop then reads x directly (an affine buffer) instead of a masked pad view: the shape of every stride-1
  // input gradient
  rule('conv2d(pad(x)) with plain spatial zero padding is conv2d(x) with more padding', ['conv2d'], ({ n, ins, node, emit }) => {
    const x = node(ins[0]);
    if (x.op !== 'pad' || x.attrs.interior.some((v) => v !== 0) || [0, 1].some((d) => x.attrs.lo[d] !== 0 || x.attrs.hi[d] !== 0))
      return undefined;
    const [pt, pb, pl, pr] = n.attrs.padding;
    const padding = [pt + x.attrs.lo[2], pb + x.attrs.hi[2], pl + x.attrs.lo[3], pr + x.attrs.hi[3]] as const;
    return emit({ ...n, attrs: { stride: n.attrs.stride, padding } }, [x.inputs[0], ins[1]]);
  }),
  // an input gradient is the full convolution of the padded cotangent, cropped by the forward padding (vjpRules.ts):
  // computing only the rows and columns kept saves (H + 2p)^2 / H^2 of its work, 2.25x on a 4x4 image
  rule('a spatial slice of a conv2d used nowhere else is a conv2d with less padding', ['slice'], ({ n, ins, node, emit, uses }) => {
    const conv = node(ins[0]);
    if (conv.op !== 'conv2d' || uses(n.inputs[0]) !== 1 || n.attrs.step.some((s) => s !== 1)) return undefined;
    if ([0, 1].some((d) => n.attrs.start[d] !== 0 || n.attrs.stop[d] !== conv.shape[d])) return undefined;
    const [x, w] = conv.inputs.map((id) => node(id).shape);
    const padding: number[] = [];
    for (const d of [0, 1]) {
      const [start, stop, stride, before] = [n.attrs.start[2 + d], n.attrs.stop[2 + d], conv.attrs.stride[d], conv.attrs.padding[2 * d]];
      const lo = before - start * stride;
      // the last kept output's window ends at (stop - 1) * stride + kernel in the new padded input
      const hi = (stop - start - 1) * stride + w[2 + d] - x[2 + d] - lo;
      if (lo < 0 || hi < 0) return undefined; // the kept outputs skip input rows: not a padding
      padding.push(lo, hi);
    }
    const [pt, pb, pl, pr] = padding;
    return emit({ ...conv, shape: n.shape, attrs: { stride: conv.attrs.stride, padding: [pt, pb, pl, pr] } }, [...conv.inputs]);
  }),
  // a concat's backward slices its cotangent: the input gradient of a first layer whose input is [x_t, time
  // embedding, class embedding] is read only at the class embedding's columns (16 of 82 in the MLP), or at x_t's (2,
  // through the frozen copy of the SP objective); computing only those saves 5-40x of that matmul
  rule('a slice of a matmul used nowhere else is the matmul of the sliced operands', ['slice'], ({ n, ins, node, emit, uses }) => {
    const mm = node(ins[0]);
    if (mm.op !== 'matmul' || uses(n.inputs[0]) !== 1) return undefined;
    const r = mm.shape.length;
    const { start, stop, step } = n.attrs;
    /** operand `id` with every axis but its reduction axis k sliced as the output's axis of the same index */
    const cut = (id: number, k: number): number => {
      const x = node(id);
      const st = x.shape.map((_, i) => (i === k ? 0 : start[i]));
      const sp = x.shape.map((d, i) => (i === k ? d : stop[i]));
      const se = x.shape.map((_, i) => (i === k ? 1 : step[i]));
      if (x.shape.every((d, i) => st[i] === 0 && sp[i] === d && se[i] === 1)) return id;
      const shape = x.shape.map((_, i) => Math.ceil((sp[i] - st[i]) / se[i]));
      return emit({ id: -1, op: 'slice', inputs: [], shape, attrs: { start: st, stop: sp, step: se } }, [id]);
    };
    return emit({ ...mm, shape: n.shape }, [cut(mm.inputs[0], r - 1), cut(mm.inputs[1], r - 2)]);
  }),
];
