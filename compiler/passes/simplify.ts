// simplify: Graph -> Graph. Common-subexpression elimination, constant folding, algebraic identities (the named
// rules of rewrites.ts) and dead-code removal, in one forward walk that re-emits each surviving node into a fresh builder.
import { GraphBuilder } from '../../core/builder.ts';
import { isSource, type Graph, type Node, type OpName } from '../../core/ir.ts';
import { primitives } from '../../core/primitives/index.ts';
import type { NDArray } from '../../core/ndarray.ts';
import { size } from '../../core/shape.ts';
import { liveNodes } from '../../core/interpret.ts';
import { rewrites, type Rewrite, type RewriteArgs } from './rewrites.ts';

/** Constants up to this many elements are folded and compared by value. */
const FOLD_LIMIT = 4096;

/** The rewrites of each op, in list order. */
const rulesFor = new Map<OpName, Rewrite[]>();
for (const r of rewrites) for (const op of r.ops) rulesFor.set(op, [...(rulesFor.get(op) ?? []), r]);

const keyOf = (n: Node, inputs: readonly number[]): string | undefined => {
  if (n.op === 'input' || n.op === 'random')
    return n.op === 'random' ? `random|${inputs}|${JSON.stringify(n.attrs)}|${n.shape}` : undefined;
  // -0 keeps its sign in the key (String(-0) is '0'): x / -0 is -Infinity, not x / 0
  if (n.op === 'constant')
    return n.attrs.value.length <= FOLD_LIMIT
      ? `c|${n.shape}|${Array.from(n.attrs.value, (v) => (Object.is(v, -0) ? '-0' : v)).join(',')}`
      : undefined;
  return `${n.op}|${inputs}|${JSON.stringify(n.attrs)}|${n.shape}`;
};

export const simplify = (graph: Graph): Graph => {
  const live = liveNodes(
    graph,
    graph.outputs.map((o) => o.id),
  );
  const readers = new Map<number, number>();
  for (const n of graph.nodes) if (live.has(n.id)) for (const i of n.inputs) readers.set(i, (readers.get(i) ?? 0) + 1);
  for (const o of graph.outputs) readers.set(o.id, (readers.get(o.id) ?? 0) + 1);
  const uses = (id: number) => readers.get(id) ?? 0;
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
  const constant = (shape: readonly number[], value: Float64Array) =>
    emit({ id: -1, op: 'constant', inputs: [], shape, attrs: { value } }, []);

  for (const n of graph.nodes) {
    if (!live.has(n.id) && n.op !== 'input') continue;
    const ins = n.inputs.map((i) => map.get(i)!);
    const inNodes = ins.map(node);
    map.set(n.id, rewrite(n, ins) ?? fold(n, inNodes) ?? emit(n, ins));
  }
  return b.build(graph.outputs.map((o) => ({ name: o.name, id: map.get(o.id)! })));

  function rewrite(n: Node, ins: number[]): number | undefined {
    const args: RewriteArgs<OpName> = { n, ins, node, emit, splatBroadcast, uses };
    for (const r of rulesFor.get(n.op) ?? []) {
      const id = r.apply(args);
      if (id !== undefined) return id;
    }
    return undefined;
  }

  /** A splat reshaped or broadcast stays a (small) splat constant under a broadcast, which codegen inlines as a literal. */
  function splatBroadcast(n: Node, v: number): number {
    const scalar = constant([], Float64Array.of(v));
    return n.shape.length === 0 ? scalar : emit({ ...n, op: 'broadcast', attrs: {} } as Node, [scalar]);
  }

  function fold(n: Node, inNodes: Node[]): number | undefined {
    if (isSource(n.op) || inNodes.length === 0) return undefined;
    if (n.op === 'broadcast' && inNodes[0].shape.length === 0) return undefined; // already canonical
    if (!inNodes.every((x) => x.op === 'constant') || size(n.shape) > FOLD_LIMIT) return undefined;
    const args: NDArray[] = inNodes.map((x) => ({ shape: x.shape, data: (x as Extract<Node, { op: 'constant' }>).attrs.value }));
    const value = (primitives[n.op].eval as (a: readonly NDArray[], attrs: unknown, s: readonly number[]) => Float64Array)(
      args,
      n.attrs,
      n.shape,
    );
    const first = value[0];
    return value.every((v) => Object.is(v, first)) ? splatBroadcast(n, first) : constant(n.shape, Float64Array.from(value));
  }
};
