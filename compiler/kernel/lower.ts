// Fused kernel -> kernel IR. Each node inlined into the kernel contributes its value at the coordinates asked for:
// views remap coordinates (exact integer index expressions), elementwise ops combine their inputs at the same
// coordinates, and the kernel's core (reduction, matmul, conv2d) becomes its one reduction. Values are memoised
// per (node, coordinates), so a subexpression read twice at the same element is one tree.
import type { Graph, Node, NodeOf, OpName } from '../../core/ir.ts';
import type { FusedProgram, Kernel } from '../passes/fuse.ts';
import { isSplat, splatOf } from '../passes/splat.ts';
import { addIx, clampIx, constIx, divmodIx, flattenIx, ixKey, scaleIx, unflattenIx, varIx, type Ix, type VarInfo } from './indexExpr.ts';
import type { Cond, KernelIR, Scalar } from './ir.ts';

export interface LowerContext {
  readonly graph: Graph;
  readonly vars: Map<number, VarInfo>;
  /** a fresh variable */
  newVar(extent: number, role: VarInfo['role']): number;
  /** the value of node `id` at coordinates `at` */
  value(id: number, at: readonly Ix[]): Scalar;
}

export type Lower<K extends OpName> = (c: LowerContext, n: NodeOf<K>, at: readonly Ix[]) => Scalar;
export type LowerTable<Ops extends string = OpName> = { readonly [P in Ops]: Lower<P & OpName> };

const shapeOf = (c: LowerContext, id: number) => c.graph.nodes[id].shape;

const un =
  <K extends 'neg' | 'exp' | 'log' | 'sqrt' | 'rsqrt' | 'sin' | 'cos' | 'tanh' | 'sigmoid' | 'relu' | 'abs' | 'floor'>(): Lower<K> =>
  (c, n, at) => ({ k: 'un', op: n.op, x: c.value(n.inputs[0], at) });
const bin =
  <K extends 'add' | 'sub' | 'mul' | 'div' | 'pow' | 'max' | 'min' | 'lt' | 'le' | 'gt' | 'ge' | 'eq' | 'ne'>(): Lower<K> =>
  (c, n, at) => ({ k: 'bin', op: n.op, a: c.value(n.inputs[0], at), b: c.value(n.inputs[1], at) });
const materialised: Lower<'input' | 'constant'> = (_c, n) => {
  throw new Error(`kernel IR: ${n.op} %${n.id} must be materialised`);
};

const reduce =
  (op: 'sum' | 'max'): Lower<'sum' | 'reduceMax'> =>
  (c, n, at) => {
    const src = shapeOf(c, n.inputs[0]);
    const axes = n.attrs.axes;
    const vars = axes.map((d) => c.newVar(src[d], 'red'));
    const inner = src.map((_, d) => (axes.includes(d) ? varIx(vars[axes.indexOf(d)]) : at[d]));
    return { k: 'reduce', op, vars, body: c.value(n.inputs[0], inner) };
  };

export const lowerRules: LowerTable = {
  input: materialised,
  constant: materialised,
  random: (c, n, at) => ({
    k: 'random',
    seed: n.attrs.seed,
    stream: n.attrs.stream,
    dist: n.attrs.dist,
    counter: c.value(n.inputs[0], []),
    at: flattenIx(at, n.shape),
  }),
  stopGradient: (c, n, at) => c.value(n.inputs[0], at),
  neg: un(),
  exp: un(),
  log: un(),
  sqrt: un(),
  rsqrt: un(),
  sin: un(),
  cos: un(),
  tanh: un(),
  sigmoid: un(),
  relu: un(),
  abs: un(),
  floor: un(),
  add: bin(),
  sub: bin(),
  mul: bin(),
  div: bin(),
  pow: bin(),
  max: bin(),
  min: bin(),
  lt: bin(),
  le: bin(),
  gt: bin(),
  ge: bin(),
  eq: bin(),
  ne: bin(),
  where: (c, n, at) => ({ k: 'where', c: c.value(n.inputs[0], at), a: c.value(n.inputs[1], at), b: c.value(n.inputs[2], at) }),

  reshape: (c, n, at) => c.value(n.inputs[0], unflattenIx(flattenIx(at, n.shape), shapeOf(c, n.inputs[0]), c.vars)),
  broadcast: (c, n, at) => {
    const src = shapeOf(c, n.inputs[0]);
    const off = n.shape.length - src.length;
    return c.value(
      n.inputs[0],
      src.map((d, i) => (d === 1 ? constIx(0) : at[i + off])),
    );
  },
  permute: (c, n, at) => {
    const inner = new Array<Ix>(at.length);
    n.attrs.perm.forEach((p, d) => (inner[p] = at[d]));
    return c.value(n.inputs[0], inner);
  },
  slice: (c, n, at) =>
    c.value(
      n.inputs[0],
      at.map((x, d) => addIx(constIx(n.attrs.start[d]), scaleIx(x, n.attrs.step[d]))),
    ),
  flip: (c, n, at) =>
    c.value(
      n.inputs[0],
      at.map((x, d) => (n.attrs.axes.includes(d) ? addIx(constIx(n.shape[d] - 1), scaleIx(x, -1)) : x)),
    ),
  pad: (c, n, at) => {
    const src = shapeOf(c, n.inputs[0]);
    const conds: Cond[] = [];
    const inner = at.map((x, d) => {
      const { lo, hi, interior } = { lo: n.attrs.lo[d], hi: n.attrs.hi[d], interior: n.attrs.interior[d] };
      if (lo === 0 && hi === 0 && interior === 0) return x;
      const j = addIx(x, constIx(-lo));
      const step = interior + 1;
      conds.push({ ix: j, lo: 0, hi: (src[d] - 1) * step, ...(step > 1 ? { step } : {}) });
      // reads are clamped into the source, so the value computed under a false guard is still in bounds
      return clampIx(step > 1 ? divmodIx(j, step, c.vars).q : j, 0, src[d] - 1, c.vars);
    });
    const v = c.value(n.inputs[0], inner);
    return conds.length ? { k: 'guard', conds, x: v } : v;
  },
  concat: (c, n, at) => {
    const ax = n.attrs.axis;
    let offset = 0;
    const parts = n.inputs.map((id) => {
      const d = shapeOf(c, id)[ax];
      const local = clampIx(addIx(at[ax], constIx(-offset)), 0, d - 1, c.vars);
      const v = c.value(
        id,
        at.map((x, a) => (a === ax ? local : x)),
      );
      offset += d;
      return { end: offset, v };
    });
    return parts
      .slice(0, -1)
      .reduceRight<Scalar>(
        (acc, p) => ({ k: 'pick', cond: { ix: at[ax], lo: Number.MIN_SAFE_INTEGER, hi: p.end - 1 }, a: p.v, b: acc }),
        parts[parts.length - 1].v,
      );
  },

  sum: reduce('sum'),
  reduceMax: reduce('max'),
  matmul: (c, n, at) => {
    const r = n.shape.length;
    const K = shapeOf(c, n.inputs[0])[r - 1];
    const kv = c.newVar(K, 'red');
    const k = varIx(kv);
    const batch = at.slice(0, r - 2);
    const a = c.value(n.inputs[0], [...batch, at[r - 2], k]);
    const b = c.value(n.inputs[1], [...batch, k, at[r - 1]]);
    return { k: 'reduce', op: 'sum', vars: [kv], body: { k: 'bin', op: 'mul', a, b } };
  },
  conv2d: (c, n, at) => {
    const [, C, H, W] = shapeOf(c, n.inputs[0]);
    const [, , KH, KW] = shapeOf(c, n.inputs[1]);
    const [sh, sw] = n.attrs.stride;
    const [pt, , pl] = n.attrs.padding;
    const [bn, o, p, q] = at;
    const vars = [c.newVar(C, 'red'), c.newVar(KH, 'red'), c.newVar(KW, 'red')];
    const [ci, i, j] = vars.map(varIx);
    const y = addIx(addIx(scaleIx(p, sh), constIx(-pt)), i);
    const x = addIx(addIx(scaleIx(q, sw), constIx(-pl)), j);
    const xv = c.value(n.inputs[0], [bn, ci, clampIx(y, 0, H - 1, c.vars), clampIx(x, 0, W - 1, c.vars)]);
    const wv = c.value(n.inputs[1], [o, ci, i, j]);
    const conds: Cond[] = [
      { ix: y, lo: 0, hi: H - 1 },
      { ix: x, lo: 0, hi: W - 1 },
    ];
    const body: Scalar = { k: 'bin', op: 'mul', a: xv, b: wv };
    return { k: 'reduce', op: 'sum', vars, body: { k: 'guard', conds: conds.filter((cd) => !withinAlways(cd, c.vars)), x: body } };
  },
};

const withinAlways = (cd: Cond, vars: ReadonlyMap<number, VarInfo>): boolean => {
  const r = clampIx(cd.ix, cd.lo, cd.hi, vars);
  return r === cd.ix;
};

/** The kernel IR of one fused kernel. */
export const lowerKernel = (prog: FusedProgram, kernel: Kernel): KernelIR => {
  const { graph, materialized } = prog;
  const vars = new Map<number, VarInfo>();
  const memo = new Map<string, Scalar>();
  const extras = kernel.extraOutputs ?? [];
  const reads: number[] = [];
  const computedHere = (id: number) => id === kernel.root || extras.includes(id);
  const ctx: LowerContext = {
    graph,
    vars,
    newVar(extent, role) {
      const id = vars.size;
      vars.set(id, { id, extent, role });
      return id;
    },
    value(id, at) {
      if (isSplat(graph, id)) return { k: 'lit', v: splatOf(graph, id) };
      const key = `${id}|${at.map(ixKey).join(';')}`;
      const hit = memo.get(key);
      if (hit) return hit;
      const n: Node = graph.nodes[id];
      let v: Scalar;
      if (materialized.has(id) && !computedHere(id)) {
        if (!reads.includes(id)) reads.push(id);
        v = { k: 'load', buf: id, at: flattenIx(at, n.shape) };
      } else v = (lowerRules[n.op] as Lower<OpName>)(ctx, n as NodeOf<OpName>, at);
      memo.set(key, v);
      return v;
    },
  };
  const outVars = kernel.shape.map((d) => ctx.newVar(d, 'out'));
  const at = outVars.map(varIx);
  const compute = (id: number) => (lowerRules[graph.nodes[id].op] as Lower<OpName>)(ctx, graph.nodes[id] as NodeOf<OpName>, at);
  const extraValues = extras.map((node) => ({ node, value: compute(node) }));
  const value = compute(kernel.root);
  return { shape: kernel.shape, outVars, vars, value, extras: extraValues, reads };
};
