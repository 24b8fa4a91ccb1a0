// checkGrads, in the spirit of JAX's check_grads: reverse-mode gradients against central finite differences
// along random directions, on the float64 interpreter. For a function with a non-scalar output the check is
// on s(x) = <f(x), c> for a random cotangent c, which is the identity <J t, c> = <t, J^T c>. Order 2 checks
// the gradient of x -> <grad s(x), r>, i.e. a Hessian-vector product, by the same means.
import { GraphBuilder } from '../../core/builder.ts';
import { activeNodes, grad, gradName, resolveWrt } from '../grad.ts';
import type { Graph, Node } from '../../core/ir.ts';
import { evaluate, evaluateNodes, liveNodes } from '../../core/interpret.ts';
import { normalAt, randomKey } from '../../core/rng.ts';
import type { NDArray } from '../../core/ndarray.ts';
import { size } from '../../core/shape.ts';
import * as op from '../../dsl/ops.ts';
import { Tensor } from '../../dsl/tensor.ts';
import type { ParamTensors } from '../../dsl/params.ts';
import { call, isNDArray, isTensor, specOf, trace, type Spec, type TensorsOf, type TensorTree } from '../../dsl/trace.ts';
import { flatten, unflatten, type Tree } from '../../dsl/tree.ts';

/** Options of `checkGrads`: what to differentiate, the order, the finite-difference step and the tolerances. */
export interface CheckGradsOptions {
  /** argument names (or tree prefixes) to differentiate; default: all */
  wrt?: readonly string[];
  /** 1 checks gradients, 2 also checks Hessian-vector products */
  order?: 1 | 2;
  /** finite-difference step; 1e-6 balances truncation (~eps^2) and f64 round-off (~1e-16/eps) */
  eps?: number;
  /** absolute tolerance: the error allowed on derivatives smaller than atol / rtol */
  atol?: number;
  /** relative tolerance; defaults atol 1e-6, rtol 1e-5 leave ~100x margin over the f64 errors of eps = 1e-6 */
  rtol?: number;
  /** random directions per order */
  directions?: number;
  seed?: number;
}

export interface Mismatch {
  order: number;
  finiteDifference: number;
  reverseMode: number;
  absErr: number;
  relErr: number;
}

/** What `checkGrads` found: whether every comparison passed, how many were made and the worst of them. */
export interface GradCheckReport {
  ok: boolean;
  /** comparisons made: `directions` random directions per order */
  checks: number;
  /** the comparison with the largest relative error */
  worst: Mismatch;
  /** on failure: the primitive whose own vjp disagrees most with finite differences, where the user created it */
  culprit?: { op: string; site?: string; relErr: number };
}

type Values = Record<string, NDArray>;

const defaults = { order: 1, eps: 1e-6, atol: 1e-6, rtol: 1e-5, directions: 3, seed: 0 } as const;

const randomLike = (shape: readonly number[], seed: number, stream: number): NDArray => {
  const key = randomKey(seed, stream, 0);
  return { shape, data: Float64Array.from({ length: size(shape) }, (_, i) => normalAt(key, i)) };
};

const dot = (a: Float64Array, b: Float64Array) => a.reduce((acc, v, i) => acc + v * b[i], 0);

const scalarValue = (graph: Graph, inputs: Values): number => {
  const v = Object.values(evaluate(graph, inputs))[0].data[0];
  return v;
};

/** Wraps a graph with one output into x -> <f(x), c> with a fixed random c (identity when already scalar). */
const scalarize = (graph: Graph, spec: Spec, seed: number): Graph => {
  const out = graph.nodes[graph.outputs[0].id];
  if (out.shape.length === 0) return graph;
  const c = randomLike(out.shape, seed, 9001);
  return trace(
    (args) => op.sum(op.mul(Object.values(call(graph, flat(args)))[0], op.constant(c.data, c.shape))),
    spec as Record<string, Spec>,
  );
};

const flat = (args: unknown): Record<string, Tensor> => Object.fromEntries(flatten(args as TensorTree, isTensor));

interface Ctx {
  eps: number;
  atol: number;
  rtol: number;
  directions: number;
  seed: number;
}

/**
 * Relative error with magnitudes below atol / rtol treated as atol / rtol, so near-zero derivatives are judged
 * by the absolute tolerance: ok when |fd - rev| <= max(atol, rtol * max(|fd|, |rev|)).
 */
const mismatch = (order: number, fd: number, an: number, ctx: Ctx): Mismatch & { ok: boolean } => {
  const absErr = Math.abs(fd - an);
  const relErr = absErr / Math.max(Math.abs(fd), Math.abs(an), ctx.atol / ctx.rtol);
  return { order, finiteDifference: fd, reverseMode: an, absErr, relErr, ok: relErr <= ctx.rtol };
};

/** Directional checks of a scalar graph's gradient; returns every comparison made. */
const directionalChecks = (
  graph: Graph,
  inputs: Values,
  wrt: readonly string[],
  order: number,
  ctx: Ctx,
): (Mismatch & { ok: boolean })[] => {
  const g = evaluate(grad(graph, wrt), inputs);
  const results: (Mismatch & { ok: boolean })[] = [];
  for (let d = 0; d < ctx.directions; d++) {
    const t = Object.fromEntries(wrt.map((name, i) => [name, randomLike(inputs[name].shape, ctx.seed + order * 7919 + d, i)]));
    const shifted = (sign: number): Values => ({
      ...inputs,
      ...Object.fromEntries(
        wrt.map((n) => [n, { shape: inputs[n].shape, data: inputs[n].data.map((v, i) => v + sign * ctx.eps * t[n].data[i]) }]),
      ),
    });
    const fd = (scalarValue(graph, shifted(1)) - scalarValue(graph, shifted(-1))) / (2 * ctx.eps);
    const an = wrt.reduce((acc, n) => acc + dot(t[n].data, g[gradName(n)].data), 0);
    results.push(mismatch(order, fd, an, ctx));
  }
  return results;
};

/** The graph x -> <grad s(x), r>: its gradient is the Hessian-vector product H r. */
const gradientProbe = (graph: Graph, inputs: Values, wrt: readonly string[], seed: number): Graph => {
  const gGraph = grad(graph, wrt);
  const r = Object.fromEntries(wrt.map((n, i) => [n, randomLike(inputs[n].shape, seed + 104729, i)]));
  const spec = unflatten(Object.entries(inputs).map(([n, v]) => [n, v.shape] as const)) as Record<string, Spec>;
  return trace((args) => {
    const outs = call(gGraph, flat(args));
    return wrt.map((n) => op.sum(op.mul(outs[gradName(n)], op.constant(r[n].data, r[n].shape)))).reduce((a, b) => op.add(a, b));
  }, spec);
};

/** Checks each differentiable node alone at the point's values, to name the primitive whose vjp is wrong. */
export const localize = (graph: Graph, inputs: Values, wrt: readonly string[], ctx: Ctx): GradCheckReport['culprit'] => {
  const values = evaluateNodes(
    graph,
    inputs,
    liveNodes(
      graph,
      graph.outputs.map((o) => o.id),
    ),
  );
  const active = activeNodes(graph, resolveWrt(graph, wrt));
  let worst: GradCheckReport['culprit'];
  for (const node of graph.nodes) {
    if (node.op === 'input' || !active.has(node.id) || !values.has(node.id)) continue;
    const single = singleNodeGraph(node, graph);
    const local: Values = Object.fromEntries(node.inputs.map((id, j) => [`in${j}`, values.get(id)!]));
    const diffInputs = node.inputs.flatMap((id, j) => (active.has(id) ? [`in${j}`] : []));
    let checks;
    try {
      checks = directionalChecks(scalarize(single, specFromValues(local), ctx.seed), local, diffInputs, 1, ctx);
    } catch {
      continue;
    }
    for (const c of checks) if (!c.ok && (!worst || c.relErr > worst.relErr)) worst = { op: node.op, site: node.site, relErr: c.relErr };
  }
  return worst;
};

const specFromValues = (v: Values): Record<string, Spec> => Object.fromEntries(Object.entries(v).map(([k, a]) => [k, a.shape]));

const singleNodeGraph = (node: Node, graph: Graph): Graph => {
  const b = new GraphBuilder();
  const ins = node.inputs.map((id, j) => b.emit('input', [], { name: `in${j}` }, graph.nodes[id].shape).id);
  const out = b.emit(node.op, ins, node.attrs as never, node.shape);
  return b.build([{ name: 'out', id: out.id }]);
};

/**
 * Checks reverse-mode gradients of `f` at `args` against central finite differences (float64 interpreter).
 * Returns a report; `ok` is false when any directional derivative differs by more than atol + rtol * |value|.
 */
/** The host arguments of a function of tensors: the same tree, with an NDArray for every Tensor. */
export type HostArgs<T> = T extends Tensor ? NDArray : { [K in keyof T]: HostArgs<T[K]> };

/** `f` with untyped (or `Tensor`) arguments: their tree follows `args`. */
export function checkGrads<A extends { readonly [name: string]: Tree<NDArray> }>(
  f: (args: ParamTensors<A>) => Tensor,
  args: A,
  options?: CheckGradsOptions,
): GradCheckReport;
/** `f` annotated with literal shapes (`{ a: Tensor<[3, 2]> }`): `args` holds the host arrays of those tensors. */
export function checkGrads<T extends { readonly [name: string]: unknown }>(
  f: (args: T) => Tensor,
  args: HostArgs<T>,
  options?: CheckGradsOptions,
): GradCheckReport;
export function checkGrads(f: (args: never) => Tensor, hostArgs: object, options: CheckGradsOptions = {}): GradCheckReport {
  // both overloads: a tree of host arrays, and a function of the matching tree of tensors (trace checks the shapes)
  const args = hostArgs as { readonly [name: string]: Tree<NDArray> };
  const { order, eps, atol, rtol, directions, seed } = { ...defaults, ...options };
  const inputs = Object.fromEntries(flatten(args, isNDArray)) as Values;
  for (const [name, v] of Object.entries(inputs)) {
    const bad = v.data.findIndex((x) => !Number.isFinite(x));
    if (bad >= 0)
      throw new Error(
        `checkGrads: argument '${name}' has a non-finite value (${v.data[bad]}) ` +
          `at flat index ${bad}; finite differences need finite inputs`,
      );
  }
  const spec = specOf(args) as Record<string, Spec>;
  const traced = trace(f as (a: TensorsOf<Record<string, Spec>>) => TensorTree, spec);
  if (traced.outputs.length !== 1) throw new Error('checkGrads: the function must return one tensor');
  const graph = scalarize(traced, spec, seed);
  const wrt = resolveWrt(graph, options.wrt ?? Object.keys(inputs)).map((n) => n.attrs.name);
  const value = scalarValue(graph, inputs);
  if (!Number.isFinite(value)) throw new Error(`checkGrads: the function's value is not finite (${value}) at the given arguments`);

  const ctx: Ctx = { eps, atol, rtol, directions, seed };
  const all = directionalChecks(graph, inputs, wrt, 1, ctx);
  if (order === 2) all.push(...directionalChecks(gradientProbe(graph, inputs, wrt, seed), inputs, wrt, 2, ctx));
  const failing = all.filter((c) => !c.ok);
  const { ok: _ok, ...worst } = all.reduce((a, b) => (b.relErr > a.relErr ? b : a));
  const report: GradCheckReport = { ok: failing.length === 0, checks: all.length, worst };
  if (!report.ok) report.culprit = localize(worst.order === 1 ? graph : gradientProbe(graph, inputs, wrt, seed), inputs, wrt, ctx);
  return report;
}
