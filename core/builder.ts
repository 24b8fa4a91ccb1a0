// Appends nodes to a graph under construction, checking shapes as it goes (abstract evaluation).
import type { AttrsOf, Graph, Node, OpName, Output } from './ir.ts';
import { primitives } from './primitives/index.ts';
import { fmt, ShapeError, type Shape } from './shape.ts';

/**
 * Every dimension of every node is a positive integer. Zero-size tensors are refused here, at trace time, with the op,
 * the shape and the call site: the compiled backends cannot run them (a kernel has at least one thread), so the one
 * choice that holds on every backend is to never build them (docs/numerics.md).
 */
const checkDims = (op: OpName, attrs: unknown, shape: Shape, site: string | undefined): void => {
  if (shape.every((d) => Number.isInteger(d) && d > 0)) return;
  const what = op === 'input' ? `input '${(attrs as AttrsOf['input']).name}' has shape` : 'the result would have shape';
  const why = shape.some((d) => d === 0)
    ? 'a zero-size dimension: zero-size tensors are not supported'
    : 'a dimension that is not a positive integer';
  throw new ShapeError(op, `${what} ${fmt(shape)}, with ${why}`, site);
};

export class GraphBuilder {
  private readonly nodes: Node[] = [];
  private readonly inputNames = new Map<string, number>();
  /** Names the user's call site for new nodes and errors; autodiff swaps it to say which rule made a node. */
  siteOf: () => string | undefined = () => undefined;

  emit<K extends OpName>(op: K, inputs: readonly number[], attrs: AttrsOf[K], declared?: Shape): Node {
    const site = this.siteOf();
    let shape: Shape;
    try {
      shape = primitives[op].shape(
        inputs.map((i) => this.node(i).shape),
        attrs,
        declared,
      );
    } catch (e) {
      if (e instanceof ShapeError && !e.site && site) throw new ShapeError(e.op, e.detail, site);
      throw e;
    }
    checkDims(op, attrs, shape, site);
    if (op === 'input') {
      const { name } = attrs as AttrsOf['input'];
      if (this.inputNames.has(name)) throw new ShapeError('input', `two inputs are named '${name}'`, site);
      this.inputNames.set(name, this.nodes.length);
    }
    const node = Object.freeze({
      id: this.nodes.length,
      op,
      inputs: Object.freeze([...inputs]),
      shape: Object.freeze([...shape]),
      attrs,
      site,
    }) as Node;
    this.nodes.push(node);
    return node;
  }

  node(id: number): Node {
    const n = this.nodes[id];
    if (!n) throw new Error(`node ${id} does not belong to this graph`);
    return n;
  }

  build(outputs: readonly Output[]): Graph {
    const names = new Set<string>();
    for (const o of outputs) {
      if (names.has(o.name)) throw new Error(`two outputs are named '${o.name}'`);
      names.add(o.name);
      this.node(o.id);
    }
    return Object.freeze({ nodes: Object.freeze([...this.nodes]), outputs: Object.freeze([...outputs]) });
  }
}
