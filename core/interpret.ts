// The float64 reference interpreter: evaluates any Graph exactly as the primitive table defines it.
// It is the oracle every compiled backend and every gradient is checked against.
import type { Graph } from './ir.ts';
import { primitives } from './primitives/index.ts';
import type { NDArray } from './ndarray.ts';
import { fmt, sameShape, size } from './shape.ts';

/** Ids of the nodes needed to compute the given outputs. */
export const liveNodes = (graph: Graph, outputIds: readonly number[]): Set<number> => {
  const live = new Set(outputIds);
  for (let k = graph.nodes.length - 1; k >= 0; k--) if (live.has(k)) graph.nodes[k].inputs.forEach((i) => live.add(i));
  return live;
};

/** Values of every live node, by node id. */
export const evaluateNodes = (graph: Graph, inputs: Readonly<Record<string, NDArray>>, live: ReadonlySet<number>): Map<number, NDArray> => {
  const values = new Map<number, NDArray>();
  for (const n of graph.nodes) {
    if (!live.has(n.id)) continue;
    if (n.op === 'input') {
      const v = inputs[n.attrs.name];
      if (!v)
        throw new Error(
          `evaluate: missing input '${n.attrs.name}' of shape ${fmt(n.shape)}; given: ${Object.keys(inputs).join(', ') || '(none)'}`,
        );
      if (!sameShape(v.shape, n.shape) || v.data.length !== size(n.shape))
        throw new Error(
          `evaluate: input '${n.attrs.name}' has shape ${fmt(v.shape)} (${v.data.length} values), the graph expects ${fmt(n.shape)}`,
        );
      values.set(n.id, v);
      continue;
    }
    const args = n.inputs.map((i) => values.get(i)!);
    const data = (primitives[n.op].eval as (a: readonly NDArray[], attrs: unknown, s: readonly number[]) => Float64Array)(
      args,
      n.attrs,
      n.shape,
    );
    values.set(n.id, { shape: n.shape, data });
  }
  return values;
};

/** Evaluates the graph's outputs (or only those named) in float64. */
export const evaluate = (graph: Graph, inputs: Readonly<Record<string, NDArray>>, only?: readonly string[]): Record<string, NDArray> => {
  const outputs = only ? graph.outputs.filter((o) => only.includes(o.name)) : graph.outputs;
  if (only)
    for (const name of only)
      if (!outputs.some((o) => o.name === name))
        throw new Error(`evaluate: no output named '${name}'; outputs: ${graph.outputs.map((o) => o.name).join(', ')}`);
  const values = evaluateNodes(
    graph,
    inputs,
    liveNodes(
      graph,
      outputs.map((o) => o.id),
    ),
  );
  return Object.fromEntries(outputs.map((o) => [o.name, values.get(o.id)!]));
};
