// A Tensor is a typed handle on a node of the graph being traced: ops on it append nodes, nothing computes.
import { GraphBuilder } from '../core/builder.ts';
import { ShapeError } from '../core/shape.ts';
import type { Shape } from './shapeTypes.ts';

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

export type Operand = Tensor | number;
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
