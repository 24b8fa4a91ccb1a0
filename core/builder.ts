// Appends nodes to a graph under construction, checking shapes as it goes (abstract evaluation).
import type { AttrsOf, Graph, Node, OpName, Output } from './ir.ts';
import { primitives } from './primitives/index.ts';
import { ShapeError, type Shape } from './shape.ts';

export class GraphBuilder {
  private readonly nodes: Node[] = [];
  private readonly inputNames = new Map<string, number>();
  /** Names the user's call site for new nodes and errors; autodiff swaps it to say which rule made a node. */
  siteOf: () => string | undefined = () => undefined;

  emit<K extends OpName>(op: K, inputs: readonly number[], attrs: AttrsOf[K], declared?: Shape): Node {
    const site = this.siteOf();
    let shape: Shape;
    try {
      shape = primitives[op].shape(inputs.map((i) => this.node(i).shape), attrs, declared);
    } catch (e) {
      if (e instanceof ShapeError && !e.site && site) throw new ShapeError(e.op, e.detail, site);
      throw e;
    }
    if (op === 'input') {
      const { name } = attrs as AttrsOf['input'];
      if (this.inputNames.has(name)) throw new ShapeError('input', `two inputs are named '${name}'`, site);
      this.inputNames.set(name, this.nodes.length);
    }
    const node = Object.freeze({ id: this.nodes.length, op, inputs: Object.freeze([...inputs]), shape: Object.freeze([...shape]), attrs, site }) as Node;
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
