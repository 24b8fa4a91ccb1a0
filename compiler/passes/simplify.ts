// simplify: Graph -> Graph. Common-subexpression elimination, constant folding, algebraic identities and
// dead-code removal, in one forward walk that re-emits each surviving node into a fresh builder.
import { GraphBuilder } from '../../core/builder.ts';
import type { Graph, Node } from '../../core/ir.ts';
import { primitives } from '../../core/primitives/index.ts';
import type { NDArray } from '../../core/ndarray.ts';
import { sameShape, size } from '../../core/shape.ts';
import { liveNodes } from '../../core/interpret.ts';

/** Constants up to this many elements are folded and compared by value. */
const FOLD_LIMIT = 4096;

/** The single value of a constant whose elements are all equal, else undefined. */
export const splatValue = (n: Node): number | undefined => {
  if (n.op !== 'constant') return undefined;
  const v = n.attrs.value;
  for (let i = 1; i < v.length; i++) if (!Object.is(v[i], v[0])) return undefined;
  return v[0];
};

const keyOf = (n: Node, inputs: readonly number[]): string | undefined => {
  if (n.op === 'input' || n.op === 'random') return n.op === 'random' ? `random|${inputs}|${JSON.stringify(n.attrs)}|${n.shape}` : undefined;
  if (n.op === 'constant') return n.attrs.value.length <= FOLD_LIMIT ? `c|${n.shape}|${Array.from(n.attrs.value).join(',')}` : undefined;
  return `${n.op}|${inputs}|${JSON.stringify(n.attrs)}|${n.shape}`;
};

export const simplify = (graph: Graph): Graph => {
  const live = liveNodes(graph, graph.outputs.map((o) => o.id));
  const b = new GraphBuilder();
  const map = new Map<number, number>(); // old id -> new id
  const seen = new Map<string, number>();
  const node = (id: number) => b.node(id);

  const emit = (n: Node, inputs: number[]): number => {
    const key = keyOf(n, inputs);
    if (key !== undefined && seen.has(key)) return seen.get(key)!;
    const id = b.emit(n.op, inputs, n.attrs as never, n.shape).id;
    if (key !== undefined) seen.set(key, id);
    return id;
  };
  const constant = (shape: readonly number[], value: Float64Array) => emit({ id: -1, op: 'constant', inputs: [], shape, attrs: { value } }, []);

  for (const n of graph.nodes) {
    if (!live.has(n.id) && n.op !== 'input') continue;
    const ins = n.inputs.map((i) => map.get(i)!);
    const inNodes = ins.map(node);
    map.set(n.id, rewrite(n, ins, inNodes) ?? fold(n, inNodes) ?? emit(n, ins));
  }
  return b.build(graph.outputs.map((o) => ({ name: o.name, id: map.get(o.id)! })));

  function rewrite(n: Node, ins: number[], inNodes: Node[]): number | undefined {
    const [a, c] = inNodes;
    const splat = (x: Node | undefined): number | undefined =>
      !x ? undefined : x.op === 'broadcast' || x.op === 'reshape' ? splat(node(x.inputs[0])) : splatValue(x);
    const same = (id: number) => sameShape(node(id).shape, n.shape);
    switch (n.op) {
      case 'stopGradient': // autodiff has already run: forward it is the identity
        return ins[0];
      case 'add':
        if (splat(c) === 0 && same(ins[0])) return ins[0];
        if (splat(a) === 0 && same(ins[1])) return ins[1];
        return undefined;
      case 'sub':
        return splat(c) === 0 && same(ins[0]) ? ins[0] : undefined;
      case 'mul':
        if (splat(c) === 1 && same(ins[0])) return ins[0];
        if (splat(a) === 1 && same(ins[1])) return ins[1];
        return undefined;
      case 'div':
        return splat(c) === 1 && same(ins[0]) ? ins[0] : undefined;
      case 'neg':
        return a.op === 'neg' ? a.inputs[0] : undefined;
      case 'reshape':
      case 'broadcast': {
        if (sameShape(a.shape, n.shape)) return ins[0];
        const v = splat(a);
        if (v !== undefined && a.shape.length > 0) return splatBroadcast(n, v); // canonical splat: broadcast of a scalar
        if (n.op === 'reshape' && a.op === 'reshape') return emit(n, [a.inputs[0]]);
        return undefined;
      }
      case 'permute':
        return n.attrs.perm.every((p, i) => p === i) ? ins[0] : undefined;
      case 'conv2d': {
        // conv2d(pad(x)) with plain spatial zero padding is conv2d(x) with more padding: the loop then reads x
        // directly (an affine buffer) instead of a masked pad view (the shape of every stride-1 input gradient)
        if (a.op !== 'pad' || a.attrs.interior.some((v) => v !== 0) || [0, 1].some((d) => a.attrs.lo[d] !== 0 || a.attrs.hi[d] !== 0)) return undefined;
        const [pt, pb, pl, pr] = n.attrs.padding;
        const padding = [pt + a.attrs.lo[2], pb + a.attrs.hi[2], pl + a.attrs.lo[3], pr + a.attrs.hi[3]] as const;
        return emit({ ...n, attrs: { stride: n.attrs.stride, padding } } as Node, [a.inputs[0], ins[1]]);
      }
      default:
        return undefined;
    }
  }

  /** A splat reshaped or broadcast stays a (small) splat constant under a broadcast, which codegen inlines as a literal. */
  function splatBroadcast(n: Node, v: number): number {
    const scalar = constant([], Float64Array.of(v));
    return n.shape.length === 0 ? scalar : emit({ ...n, op: 'broadcast', attrs: {} } as Node, [scalar]);
  }

  function fold(n: Node, inNodes: Node[]): number | undefined {
    if (n.op === 'constant' || n.op === 'input' || n.op === 'random' || inNodes.length === 0) return undefined;
    if (n.op === 'broadcast' && inNodes[0].shape.length === 0) return undefined; // already canonical
    if (!inNodes.every((x) => x.op === 'constant') || size(n.shape) > FOLD_LIMIT) return undefined;
    const args: NDArray[] = inNodes.map((x) => ({ shape: x.shape, data: (x as Extract<Node, { op: 'constant' }>).attrs.value }));
    const value = (primitives[n.op].eval as (a: readonly NDArray[], attrs: unknown, s: readonly number[]) => Float64Array)(args, n.attrs, n.shape);
    const first = value[0];
    return value.every((v) => Object.is(v, first)) ? splatBroadcast(n, first) : constant(n.shape, Float64Array.from(value));
  }
};
