// Reverse mode as a Graph -> Graph transform: the forward graph is copied, then every node on a path from a
// differentiated input to an output gets its vjp rule applied in reverse order, cotangents summed per node.
import { GraphBuilder } from '../core/builder.ts';
import type { Graph, Node, NodeOf, OpName } from '../core/ir.ts';
import { fmt } from '../core/shape.ts';
import * as op from '../dsl/ops.ts';
import { Tensor, withBuilder } from '../dsl/tensor.ts';
import { inlineNodes } from '../dsl/trace.ts';
import { blocksGradient, nonDiff, vjpRules, type VjpRule } from './vjpRules.ts';

/** The name under which the gradient of input `name` is returned. */
export const gradName = (name: string): string => `grad.${name}`;
/** The name of the cotangent input fed for output `name` by `vjp`. */
export const cotangentName = (name: string): string => `ct.${name}`;

/**
 * Resolves `wrt` (input names, or prefixes of tree paths such as 'params') to input nodes.
 * A name that matches nothing is an error listing the inputs the graph has.
 */
export const resolveWrt = (graph: Graph, wrt: readonly string[]): NodeOf<'input'>[] => {
  const inputs = graph.nodes.filter((n): n is NodeOf<'input'> => n.op === 'input');
  const chosen = new Set<NodeOf<'input'>>();
  for (const w of wrt) {
    const hits = inputs.filter((n) => n.attrs.name === w || n.attrs.name.startsWith(`${w}.`));
    if (hits.length === 0)
      throw new Error(
        `grad: no argument named '${w}'; the function's arguments are: ${inputs.map((n) => n.attrs.name).join(', ') || '(none)'}`,
      );
    hits.forEach((h) => chosen.add(h));
  }
  return inputs.filter((n) => chosen.has(n));
};

/** Nodes whose value depends differentiably on one of `sources`. */
export const activeNodes = (graph: Graph, sources: readonly Node[]): Set<number> => {
  const active = new Set(sources.map((n) => n.id));
  for (const n of graph.nodes) if (!blocksGradient(n.op) && n.inputs.some((i) => active.has(i))) active.add(n.id);
  return active;
};

interface Seeds {
  /** cotangent of each output, given the copied forward outputs */
  (outputs: { name: string; value: Tensor }[], b: GraphBuilder): Map<string, Tensor>;
}

const backward = (
  graph: Graph,
  wrt: readonly string[],
  seeds: Seeds,
  keepValues: boolean,
  extraInputs: (b: GraphBuilder) => void,
): Graph => {
  const wrtNodes = resolveWrt(graph, wrt);
  const active = activeNodes(graph, wrtNodes);
  const b = new GraphBuilder();
  return withBuilder(b, () => {
    const env = inlineNodes(b, graph, (name, shape) => new Tensor(b, b.emit('input', [], { name }, shape).id, shape));
    extraInputs(b);
    const outs = graph.outputs.map((o) => ({ name: o.name, value: env.get(o.id)! }));
    const cts = new Map<number, Tensor>();
    const accumulate = (id: number, ct: Tensor) => {
      const prev = cts.get(id);
      cts.set(id, prev ? op.add(prev, ct) : ct);
    };
    const seedByName = seeds(outs, b);
    for (const o of graph.outputs) if (active.has(o.id)) accumulate(o.id, seedByName.get(o.name)!);

    for (let k = graph.nodes.length - 1; k >= 0; k--) {
      const node = graph.nodes[k];
      const ct = cts.get(node.id);
      const rule = vjpRules[node.op];
      if (!ct || !active.has(node.id) || rule === nonDiff) continue; // only sources (inputs) are active and nonDiff
      b.siteOf = () => `vjp of ${node.op}${node.site ? ` at ${node.site}` : ''}`;
      const inputCts = (rule as VjpRule<OpName>)({
        ct,
        ins: node.inputs.map((i) => env.get(i)!),
        out: env.get(node.id)!,
        node,
        needs: node.inputs.map((i) => active.has(i)),
      });
      node.inputs.forEach((i, j) => {
        const c = inputCts[j];
        if (!c || !active.has(i)) return;
        const want = graph.nodes[i].shape;
        if (c.rank !== want.length || c.shape.some((d, a) => d !== want[a]))
          throw new Error(`vjp rule of ${node.op} returned a cotangent of shape ${fmt(c.shape)} for an input of shape ${fmt(want)}`);
        accumulate(i, c);
      });
      cts.delete(node.id);
    }
    b.siteOf = () => undefined;
    const gradOutputs = wrtNodes.map((n) => {
      const g = cts.get(n.id) ?? op.zeros(n.shape);
      return { name: gradName(n.attrs.name), id: g.id };
    });
    const valueOutputs = keepValues ? outs.map((o) => ({ name: o.name, id: o.value.id })) : [];
    return b.build([...valueOutputs, ...gradOutputs]);
  });
};

const scalarOutput = (graph: Graph, fn: string) => {
  if (graph.outputs.length !== 1)
    throw new Error(
      `${fn}: the function must return one scalar, ` +
        `it returns ${graph.outputs.length} outputs (${graph.outputs.map((o) => o.name).join(', ')})`,
    );
  const out = graph.outputs[0];
  const shape = graph.nodes[out.id].shape;
  if (shape.length !== 0)
    throw new Error(
      `${fn}: the function must return a scalar, its output '${out.name}' has shape ${fmt(shape)}; reduce it (sum, mean) or use vjp`,
    );
  return out;
};

const onesSeed: Seeds = (outs) => new Map(outs.map((o) => [o.name, op.ones(o.value.shape)]));

/** Gradient of a scalar-valued graph with respect to the named inputs; outputs are named `grad.<input>`. */
export const grad = (graph: Graph, wrt: readonly string[]): Graph => {
  scalarOutput(graph, 'grad');
  return backward(graph, wrt, onesSeed, false, () => {});
};

/** Like grad, but also returns the value under its own name. */
export const valueAndGrad = (graph: Graph, wrt: readonly string[]): Graph => {
  scalarOutput(graph, 'valueAndGrad');
  return backward(graph, wrt, onesSeed, true, () => {});
};

/**
 * Vector-Jacobian product of any graph: for each output `o` an input `ct.o` of its shape is added, and
 * the outputs are the original values followed by `grad.<input>` = J^T ct for each input in `wrt`.
 */
export const vjp = (graph: Graph, wrt: readonly string[]): Graph => {
  const cotangents = new Map<string, Tensor>();
  return backward(
    graph,
    wrt,
    () => cotangents,
    true,
    (b) => {
      for (const o of graph.outputs) {
        const shape = graph.nodes[o.id].shape;
        cotangents.set(o.name, new Tensor(b, b.emit('input', [], { name: cotangentName(o.name) }, shape).id, shape));
      }
    },
  );
};
