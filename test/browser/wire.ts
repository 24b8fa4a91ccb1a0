// Graphs and arrays as plain data for page.evaluate (typed arrays become number arrays; Playwright carries NaN,
// the infinities and -0 through), so a graph built and evaluated in Node runs unchanged in the page.
import type { Graph, Node } from '../../core/ir.ts';
import type { NDArray } from '../../core/ndarray.ts';

export type WireArray = { shape: number[]; data: number[] };
export type WireGraph = { nodes: unknown[]; outputs: { name: string; id: number }[] };

export const toWire = (a: NDArray): WireArray => ({ shape: [...a.shape], data: Array.from(a.data) });
export const fromWire = (a: WireArray): NDArray => ({ shape: a.shape, data: Float64Array.from(a.data) });

export const graphToWire = (g: Graph): WireGraph => ({
  nodes: g.nodes.map((n) => (n.op === 'constant' ? { ...n, attrs: { ...n.attrs, value: Array.from(n.attrs.value) } } : n)),
  outputs: g.outputs.map((o) => ({ ...o })),
});

export const graphFromWire = (w: WireGraph): Graph => ({
  nodes: w.nodes.map((n) => {
    const node = n as Node;
    return node.op === 'constant' ? ({ ...node, attrs: { ...node.attrs, value: Float64Array.from(node.attrs.value) } } as Node) : node;
  }),
  outputs: w.outputs,
});
