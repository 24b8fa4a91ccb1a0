// Splats: constants whose elements are all equal, and broadcasts of one. Kernels inline them as literals.
import type { Graph, Node } from '../../core/ir.ts';
import { size } from '../../core/shape.ts';

/** The single value of a constant whose elements are all equal, else undefined. */
export const splatValue = (n: Node): number | undefined => {
  if (n.op !== 'constant') return undefined;
  const v = n.attrs.value;
  for (let i = 1; i < v.length; i++) if (!Object.is(v[i], v[0])) return undefined;
  return v[0];
};

/** A one-element splat constant, or a broadcast of one: no buffer, a literal wherever it is read. */
export const isSplat = (g: Graph, id: number): boolean => {
  const n = g.nodes[id];
  if (n.op === 'constant') return splatValue(n) !== undefined && (n.shape.length === 0 || size(n.shape) === 1);
  return n.op === 'broadcast' && isSplat(g, n.inputs[0]);
};

/** The value of a node for which isSplat holds. */
export const splatOf = (g: Graph, id: number): number => {
  const n = g.nodes[id];
  return n.op === 'constant' ? splatValue(n)! : splatOf(g, n.inputs[0]);
};
