// Tracing: run a TS function on tensor handles and record the graph it builds.
import { GraphBuilder } from '../core/builder.ts';
import type { Graph, Output } from '../core/ir.ts';
import type { NDArray } from '../core/ndarray.ts';
import { callSite } from './site.ts';
import type { MutableShape, Shape } from './shapeTypes.ts';
import { Tensor, withBuilder } from './tensor.ts';
import { flatten, unflatten, type Tree } from './tree.ts';

/** A tree of input shapes: `{ x: [4, 2], params: { w: [2, 3], b: [3] } }`. */
export type Spec = Shape | { readonly [key: string]: Spec };

/**
 * The tensors a function receives for a spec, with literal shapes kept, as mutable tuples: a spec `[3, 2]` gives
 * `Tensor<[3, 2]>`, the type a user writes, which a function annotated `Tensor<readonly [3, 2]>` accepts too.
 */
export type TensorsOf<Sp> = Sp extends Shape
  ? Tensor<{ -readonly [K in keyof Sp]: Sp[K] }>
  : { -readonly [K in keyof Sp]: TensorsOf<Sp[K]> };

/** What a traced function returns: one tensor (the output 'out') or a tree of them (outputs named by path). */
export type TensorTree = Tree<Tensor>;

/** Whether `x` is a shape: an array of numbers. */
export const isShape = (x: unknown): x is Shape => Array.isArray(x) && x.every((d) => typeof d === 'number');
/** Whether `x` is a traced `Tensor`. */
export const isTensor = (x: unknown): x is Tensor => x instanceof Tensor;
/** Whether `x` is a host array: `{ shape, data: Float64Array }`. */
export const isNDArray = (x: unknown): x is NDArray =>
  typeof x === 'object' && x !== null && (x as NDArray).data instanceof Float64Array && isShape((x as NDArray).shape);

/** The shape tree of a tree of host arrays (e.g. initialised parameters), for tracing. */
export const specOf = (values: Tree<NDArray>): Spec => unflatten(flatten(values, isNDArray).map(([p, v]) => [p, v.shape] as const)) as Spec;

const outputsOf = (result: TensorTree): Output[] =>
  result instanceof Tensor ? [{ name: 'out', id: result.id }] : flatten(result, isTensor).map(([name, t]) => ({ name, id: t.id }));

/**
 * Traces `f` on inputs of the given shapes. Inputs are named by their path in the spec; outputs are named
 * 'out' for a single tensor, else by their path in the returned tree.
 */
export const trace = <const Sp extends { readonly [key: string]: Spec }>(f: (args: TensorsOf<Sp>) => TensorTree, spec: Sp): Graph => {
  const b = new GraphBuilder();
  b.siteOf = callSite;
  return withBuilder(b, () => {
    const args = unflatten(
      flatten(spec as Spec, isShape).map(([name, shape]) => [name, new Tensor(b, b.emit('input', [], { name }, shape).id, shape)] as const),
    );
    const result = f(args as TensorsOf<Sp>);
    for (const t of result instanceof Tensor ? [result] : flatten(result, isTensor).map(([, t]) => t))
      if (t.graph !== b) throw new Error('trace: the function returned a tensor from another trace');
    return b.build(outputsOf(result));
  });
};

/**
 * Inlines a graph into the trace of `inputs`' builder: the graph's inputs are bound by name, its outputs
 * returned by name. This is how a transformed graph (a gradient, say) is used inside another function.
 */
export const call = (graph: Graph, inputs: Readonly<Record<string, Tensor>>): Record<string, Tensor> => {
  const bound = Object.values(inputs)[0];
  if (!bound) throw new Error('call: needs at least one input tensor');
  const env = inlineNodes(bound.graph, graph, (name) => {
    const t = inputs[name];
    if (!t) throw new Error(`call: input '${name}' is not bound; bound: ${Object.keys(inputs).join(', ')}`);
    return t;
  });
  return Object.fromEntries(graph.outputs.map((o) => [o.name, env.get(o.id)!]));
};

/** Re-emits every node of `graph` into `b`, binding input nodes through `bind`. Returns old id -> new tensor. */
export const inlineNodes = (b: GraphBuilder, graph: Graph, bind: (name: string, shape: Shape) => Tensor): Map<number, Tensor> => {
  const env = new Map<number, Tensor>();
  for (const n of graph.nodes) {
    if (n.op === 'input') {
      const t = bind(n.attrs.name, n.shape);
      if (t.shape.length !== n.shape.length || t.shape.some((d, i) => d !== n.shape[i]))
        throw new Error(`call: input '${n.attrs.name}' expects shape [${n.shape.join(',')}], got [${t.shape.join(',')}]`);
      env.set(n.id, t);
      continue;
    }
    const saved = b.siteOf;
    if (n.site) b.siteOf = () => n.site;
    const m = b.emit(
      n.op,
      n.inputs.map((i) => env.get(i)!.id),
      n.attrs as never,
      n.shape,
    );
    b.siteOf = saved;
    env.set(n.id, new Tensor(b, m.id, m.shape));
  }
  return env;
};
