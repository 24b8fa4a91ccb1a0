// A Tensor is a typed handle on a node of the graph being traced: ops on it append nodes, nothing computes.
import { GraphBuilder } from '../core/builder.ts';
import { ShapeError } from '../core/shape.ts';
import type { Shape } from './shapeTypes.ts';

/**
 * A traced value: a handle on one node of the graph being built, typed by its shape S (literal where known, e.g.
 * `Tensor<[8, 2]>`). It holds no data; ops on it append nodes, and values come from `evaluate` or a compiled plan.
 */
export class Tensor<S extends Shape = Shape> {
  constructor(
    readonly graph: GraphBuilder,
    readonly id: number,
    readonly shape: S,
  ) {}

  get rank(): number {
    return this.shape.length;
  }

  toString(): string {
    const n = this.graph.node(this.id);
    return `Tensor<[${this.shape.join(',')}]>(%${this.id} = ${n.op})`;
  }
}

/** What the elementwise ops accept: a tensor, or a number (a constant broadcast to the other operand). */
export type Operand = Tensor | number;
/** The shape type of an operand: S for a `Tensor<S>`, `[]` for a number. */
export type ShapeOf<T> = T extends Tensor<infer S> ? S : [];

// Traces nest (grad of grad traces inside a trace); ops that have no tensor argument use the innermost one.
const traceStack: GraphBuilder[] = [];

export const withBuilder = <T>(b: GraphBuilder, body: () => T): T => {
  traceStack.push(b);
  try {
    return body();
  } finally {
    traceStack.pop();
  }
};

export const builderFor = (op: string, operands: readonly unknown[]): GraphBuilder => {
  let found: GraphBuilder | undefined;
  for (const x of operands)
    if (x instanceof Tensor) {
      if (found && x.graph !== found)
        throw new ShapeError(op, 'operands come from different traces; pass tensors in as inputs instead of capturing them');
      found = x.graph;
    }
  found ??= traceStack[traceStack.length - 1];
  if (!found) throw new ShapeError(op, 'called outside a trace: wrap the function with trace(), grad() or checkGrads()');
  return found;
};
