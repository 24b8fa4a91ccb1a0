// The small examples of "no silent wrong answers" (issue 11): negative and non-finite literals, NaN through every op,
// each a graph and its inputs; the interpreter's float64 result is the answer. test/trust.test.ts runs them on the
// Node backends, test/browser-graphs.test.ts on WebGL2 and WebGPU in the page.
import assert from 'node:assert/strict';
import { evaluateNodes, liveNodes } from '../../core/interpret.ts';
import type { Graph } from '../../core/ir.ts';
import type { NDArray } from '../../core/ndarray.ts';
import * as op from '../../dsl/ops.ts';
import { trace } from '../../dsl/trace.ts';
import { valueAndGrad } from '../../transforms/grad.ts';

/** The inputs rounded to float32, as the device sees them (both sides are given these). */
export const f32 = (args: Record<string, NDArray>): Record<string, NDArray> =>
  Object.fromEntries(Object.entries(args).map(([k, v]) => [k, { shape: v.shape, data: v.data.map(Math.fround) }]));

/** NaN must be NaN, an infinity the same infinity, a finite value within 1e-4 (1 + |ref|). */
export const agrees = (got: number, ref: number): boolean =>
  Number.isNaN(ref) ? Number.isNaN(got) : !Number.isFinite(ref) ? got === ref : Math.abs(got - ref) <= 1e-4 * (1 + Math.abs(ref));

export const show = (v: number) => (Object.is(v, -0) ? '-0' : String(v));

/** Mismatches between a compiled run and the interpreter: undefined when none, else how many and the first few. */
export const mismatches = (ref: Record<string, NDArray>, got: Record<string, NDArray>): string | undefined => {
  const lines: string[] = [];
  let total = 0;
  for (const [name, r] of Object.entries(ref)) {
    const g = got[name];
    if (!g) return `no output '${name}'`;
    for (let i = 0; i < r.data.length; i++)
      if (!agrees(g.data[i], r.data[i])) {
        total++;
        if (lines.length < 4) lines.push(`${name}[${i}]: compiled ${show(g.data[i])}, interpreter ${show(r.data[i])}`);
      }
  }
  return total ? `${total} wrong element${total > 1 ? 's' : ''}: ${lines.join('; ')}${total > lines.length ? '; ...' : ''}` : undefined;
};

/**
 * The interpreter's value of every live node of `graph`, or undefined where one leaves float32's range (a finite value
 * above 1e30 or a non-zero one below 1e-30 in magnitude): there float32 overflows or flushes where float64 does not,
 * and the two legitimately differ. Such programs are discarded (fc.pre), not compared.
 */
const near = (a: number, b: number) =>
  a !== b && Number.isFinite(a) && Number.isFinite(b) && Math.abs(a - b) <= 1e-5 * (1 + Math.abs(a) + Math.abs(b));

export const withinF32 = (graph: Graph, args: Record<string, NDArray>): boolean => {
  const values = evaluateNodes(
    graph,
    args,
    liveNodes(
      graph,
      graph.outputs.map((o) => o.id),
    ),
  );
  for (const v of values.values())
    for (const e of v.data) if (Number.isFinite(e) && e !== 0 && (Math.abs(e) > 1e30 || Math.abs(e) < 1e-30)) return false;
  // near-ties: float32 rounding can make two values that differ in float64 equal (or swap them), which changes a
  // comparison, a max (and where its gradient goes) or a floor; such programs are discarded too
  for (const n of graph.nodes) {
    if (!values.has(n.id)) continue;
    const ins = n.inputs.map((i) => values.get(i)!.data);
    if (['max', 'min', 'lt', 'le', 'gt', 'ge', 'eq', 'ne'].includes(n.op) && ins[0].some((a, i) => near(a, ins[1][i]))) return false;
    if (n.op === 'floor' && ins[0].some((a) => near(a, Math.round(a)))) return false;
    if (n.op === 'reduceMax') {
      const out = values.get(n.id)!;
      const x = values.get(n.inputs[0])!;
      // a near-tie with the maximum of its group: compare every element with every group maximum (small graphs only)
      if (x.data.some((e) => out.data.some((m) => near(e, m)))) return false;
    }
  }
  return true;
};

export interface Example {
  readonly name: string;
  readonly graph: () => Graph;
  readonly args: Record<string, NDArray>;
}

const S = [2, 3] as const;
const xs = (...v: number[]): NDArray => ({ shape: [v.length], data: Float64Array.from(v) });
const grid = (f: (i: number) => number): NDArray => ({ shape: S, data: Float64Array.from({ length: 6 }, (_, i) => f(i)) });
const smooth = grid((i) => Math.sin(i + 1));

export const examples: Example[] = [
  {
    name: 'valueAndGrad of -sum(neg(x))',
    graph: () =>
      valueAndGrad(
        trace(({ x }) => op.neg(op.sum(op.neg(x))), { x: S }),
        ['x'],
      ),
    args: { x: smooth },
  },
  {
    name: 'valueAndGrad of sum(neg(x) * -2)',
    graph: () =>
      valueAndGrad(
        trace(({ x }) => op.sum(op.mul(op.neg(x), -2)), { x: S }),
        ['x'],
      ),
    args: { x: smooth },
  },
  { name: 'neg(full(s, -2))', graph: () => trace(() => op.neg(op.full(S, -2)), {}), args: {} },
  { name: 'sigmoid(full(s, -2))', graph: () => trace(() => op.sigmoid(op.full(S, -2)), {}), args: {} },
  {
    name: 'x - (-1.3) and -(x * -1.3)',
    graph: () => trace(({ x }) => ({ a: op.sub(x, -1.3), b: op.neg(op.mul(x, -1.3)) }), { x: S }),
    args: { x: smooth },
  },
  {
    name: 'eq(x, Infinity) at x = Inf',
    graph: () => trace(({ x }) => op.eq(x, Infinity), { x: [4] }),
    args: { x: xs(Infinity, 1, -Infinity, NaN) },
  },
  {
    name: 'eq(x, -Infinity) at x = -Inf',
    graph: () => trace(({ x }) => op.eq(x, -Infinity), { x: [4] }),
    args: { x: xs(-Infinity, 1, Infinity, NaN) },
  },
  {
    name: '(x + Inf) - Inf is NaN',
    graph: () => trace(({ x }) => op.sub(op.add(x, Infinity), Infinity), { x: [3] }),
    args: { x: xs(1, -2, 0) },
  },
  {
    name: 'x / 0 and x / -0 are signed infinities',
    graph: () => trace(({ x }) => ({ pos: op.div(x, 0), neg: op.div(x, -0) }), { x: [2] }),
    args: { x: xs(1, -2) },
  },
  {
    name: '0 / 0 and NaN / 0 are NaN, Inf / 0 is Inf',
    graph: () => trace(({ x }) => ({ pos: op.div(x, 0), neg: op.div(x, -0) }), { x: [3] }),
    args: { x: xs(0, NaN, Infinity) },
  },
  {
    name: 'x / z for a zero divisor computed at run time',
    graph: () => trace(({ x, z }) => op.div(x, op.mul(z, 2)), { x: [4], z: [4] }),
    args: { x: xs(1, -2, 0, 3), z: xs(0, 0, 0, 0.5) },
  },
  {
    name: 'x / (x - x) is a signed infinity for finite x',
    graph: () => trace(({ x }) => op.div(x, op.sub(x, x)), { x: [2] }),
    args: { x: xs(1, -2) },
  },
  {
    name: 'Inf * 0 and -Inf * 0 are NaN',
    graph: () => trace(({ x }) => op.mul(x, 0), { x: [3] }),
    args: { x: xs(Infinity, -Infinity, -2) },
  },
  { name: 'max(NaN, 0) is NaN', graph: () => trace(({ x }) => op.maximum(x, 0), { x: [3] }), args: { x: xs(NaN, 1, -1) } },
  { name: 'min(NaN, 0) is NaN', graph: () => trace(({ x }) => op.minimum(x, 0), { x: [3] }), args: { x: xs(NaN, 1, -1) } },
  { name: 'relu(NaN) is NaN', graph: () => trace(({ x }) => op.relu(x), { x: [3] }), args: { x: xs(NaN, 1, -1) } },
  { name: 'tanh(NaN) is NaN', graph: () => trace(({ x }) => op.tanh(x), { x: [3] }), args: { x: xs(NaN, 1, -1) } },
  {
    name: 'sigmoid(NaN) is NaN, sigmoid(+-Inf) is 1 and 0',
    graph: () => trace(({ x }) => op.sigmoid(x), { x: [3] }),
    args: { x: xs(NaN, Infinity, -Infinity) },
  },
  { name: 'NaN * 0 is NaN', graph: () => trace(({ x }) => op.mul(x, 0), { x: [2] }), args: { x: xs(NaN, 1) } },
  { name: 'where(NaN, a, b) is a', graph: () => trace(({ x }) => op.where(x, 1, 2), { x: [3] }), args: { x: xs(NaN, 0, 1) } },
  {
    name: 'max of [-Inf, -Inf] is -Inf (the reduction starts below every finite value)',
    graph: () => trace(({ x }) => op.max(x), { x: [2] }),
    args: { x: xs(-Infinity, -Infinity) },
  },
  {
    name: 'max of a vector holding a NaN is NaN',
    graph: () => trace(({ x }) => op.max(x), { x: [4] }),
    args: { x: xs(1, NaN, 3, -Infinity) },
  },
  {
    name: 'a NaN input makes the loss and its gradient NaN through relu, max and tanh',
    graph: () =>
      valueAndGrad(
        trace(({ x }) => op.sum(op.add(op.add(op.relu(x), op.maximum(x, 0)), op.tanh(x))), { x: S }),
        ['x'],
      ),
    args: { x: grid((i) => (i === 4 ? NaN : i - 2.5)) },
  },
];
