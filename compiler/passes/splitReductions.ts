// splitReductions: Graph -> Graph, for backends that cut long loops (Mesa's llvmpipe, behind headless-gl, stops a shader invocation
// after 65,535 loop iterations, all loops together: test/loop-limit.test.ts measures it). A sum, max or matmul whose
// reduction is longer than the limit becomes two reductions, each below it: the reduced elements are laid out as
// [a, b] (padded with the reduction's identity, 0 or -Infinity, up to a multiple of b), reduced over b in one
// kernel and over a in the next. Only the order of the additions changes.
import { GraphBuilder } from '../../core/builder.ts';
import type { AttrsOf, Graph, Node, OpName } from '../../core/ir.ts';
import { size } from '../../core/shape.ts';

/** Thrown when a reduction cannot be brought below the limit (a conv2d's C x KH x KW, or more than limit^2 terms). */
export class ReductionTooLongError extends Error {
  override readonly name = 'ReductionTooLongError';
}

export const splitReductions = (graph: Graph, limit: number): Graph => {
  const needs = graph.nodes.some((n) => reductionLength(graph, n) > limit);
  if (!needs) return graph;
  const b = new GraphBuilder();
  const map = new Map<number, number>();
  const emit = <K extends OpName>(op: K, inputs: number[], attrs: AttrsOf[K], shape?: readonly number[]) =>
    b.emit(op, inputs, attrs, shape).id;
  const shapeOf = (id: number) => b.node(id).shape;

  /** [...keep, R] with the reduced axes last, padded with `fill` to a * blk, reshaped to [...keep, a, blk]. */
  const blocks = (x: number, axes: readonly number[], fill: number): { id: number; keep: number[]; a: number; blk: number } => {
    const s = shapeOf(x);
    const keepAxes = s.map((_, i) => i).filter((i) => !axes.includes(i));
    const keep = keepAxes.map((i) => s[i]);
    const R = axes.reduce((p, i) => p * s[i], 1);
    const blk = Math.min(limit, Math.ceil(Math.sqrt(R)));
    const a = Math.ceil(R / blk);
    if (a > limit)
      throw new ReductionTooLongError(`a reduction of ${R} terms exceeds ${limit}^2, more than two passes below the loop limit can reduce`);
    let id = emit('permute', [x], { perm: [...keepAxes, ...axes] });
    id = emit('reshape', [id], {}, [...keep, R]);
    if (a * blk > R) {
      const c = emit('constant', [], { value: Float64Array.of(fill) }, []);
      const padding = emit('broadcast', [c], {}, [...keep, a * blk - R]);
      id = emit('concat', [id, padding], { axis: keep.length });
    }
    return { id: emit('reshape', [id], {}, [...keep, a, blk]), keep, a, blk };
  };

  for (const n of graph.nodes) {
    const ins = n.inputs.map((i) => map.get(i)!);
    b.siteOf = () => n.site;
    const R = reductionLength(graph, n);
    if (R <= limit) {
      map.set(n.id, emit(n.op, ins, n.attrs as never, n.shape));
      continue;
    }
    if (n.op === 'sum' || n.op === 'reduceMax') {
      const { id, keep } = blocks(ins[0], n.attrs.axes, n.op === 'sum' ? 0 : -Infinity);
      const inner = emit(n.op, [id], { axes: [keep.length + 1] });
      const outer = emit(n.op, [inner], { axes: [keep.length] });
      map.set(n.id, emit('reshape', [outer], {}, n.shape));
    } else if (n.op === 'matmul') {
      // A [..., M, K] x B [..., K, N] = sum over a of A[..., M, a, blk] x B[..., a, blk, N]
      const [sa, sb] = [shapeOf(ins[0]), shapeOf(ins[1])];
      const r = sa.length;
      const A = blocks(ins[0], [r - 1], 0); // [...batch, M, a, blk]
      const Bt = emit('permute', [ins[1]], { perm: [...sb.slice(0, r - 2).map((_, i) => i), r - 1, r - 2] }); // [..., N, K]
      const Bb = blocks(Bt, [r - 1], 0); // [...batch, N, a, blk]
      const batch = sa.slice(0, r - 2).map((_, i) => i);
      const Ap = emit('permute', [A.id], { perm: [...batch, r - 1, r - 2, r] }); // [..., a, M, blk]
      const Bp = emit('permute', [Bb.id], { perm: [...batch, r - 1, r, r - 2] }); // [..., a, blk, N]
      const partial = emit('matmul', [Ap, Bp], {}); // [..., a, M, N]
      const total = emit('sum', [partial], { axes: [r - 2] });
      map.set(n.id, emit('reshape', [total], {}, n.shape));
    } else
      throw new ReductionTooLongError(`${n.op} reduces over ${R} terms per output element, more than the backend's loop limit of ${limit}`);
  }
  return b.build(graph.outputs.map((o) => ({ name: o.name, id: map.get(o.id)! })));
};

/** Terms summed (or maxed) per output element by a node's loop, 0 for loop-free nodes. */
const reductionLength = (g: Graph, n: Node): number => {
  const src = (i: number) => g.nodes[n.inputs[i]].shape;
  switch (n.op) {
    case 'sum':
    case 'reduceMax':
      return n.attrs.axes.reduce((p, a) => p * src(0)[a], 1);
    case 'matmul':
      return src(0)[src(0).length - 1];
    case 'conv2d':
      return size(src(1).slice(1));
    default:
      return 0;
  }
};
