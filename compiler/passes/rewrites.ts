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
];
