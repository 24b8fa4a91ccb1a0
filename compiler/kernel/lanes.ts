// Several outputs per thread. A kernel's last output axis is split into groups of `lanes` consecutive elements and
// one thread computes a group: the loads that do not depend on that axis (a matmul's row of A, a conv's weights)
// are read once for all lanes, and the lanes' reductions run in one loop. GL kernels return the lanes as one RGBA
// texel (gpu.js's Array(4)); the flat order of the elements is unchanged.
import { mapChildren, reductionOf, walk, type Cond, type KernelIR, type Scalar } from './ir.ts';
import { addIx, ixDependsOn, scaleIx, substituteIx, varIx, type Ix, type VarInfo } from './indexExpr.ts';

export interface LaneKernelIR {
  /** the threads: the output's shape with its last axis divided by the lane count */
  readonly shape: readonly number[];
  /** one variable per thread axis; the last one numbers the groups */
  readonly outVars: readonly number[];
  readonly vars: ReadonlyMap<number, VarInfo>;
  /** lane i's value: the output element whose last coordinate is lanes * group + i */
  readonly values: readonly Scalar[];
  readonly reads: readonly number[];
}

/** The kernel with its last output axis grouped by `lanes` (which must divide it); the kernel has no extra outputs. */
export const splitLanes = (ir: KernelIR, lanes: number): LaneKernelIR => {
  const axis = ir.shape.length - 1;
  if (axis < 0 || ir.shape[axis] % lanes !== 0) throw new Error(`splitLanes: last axis of [${ir.shape}] is not a multiple of ${lanes}`);
  if (ir.extras.length > 0) throw new Error('splitLanes: a kernel with extra outputs keeps one output per thread');
  const last = ir.outVars[axis];
  const group = Math.max(...ir.vars.keys()) + 1;
  const vars = new Map(ir.vars);
  vars.delete(last);
  vars.set(group, { id: group, extent: ir.shape[axis] / lanes, role: 'out' });
  const values = Array.from({ length: lanes }, (_, lane) => {
    const at: Ix = addIx(scaleIx(varIx(group), lanes), { terms: [], c: lane });
    const sub = (x: Ix): Ix => substituteIx(x, last, at, vars);
    return mapIndices(ir.value, sub);
  });
  return {
    shape: ir.shape.map((n, d) => (d === axis ? n / lanes : n)),
    outVars: ir.outVars.map((v, d) => (d === axis ? group : v)),
    vars,
    values,
    reads: ir.reads,
  };
};

/** The scalar tree with every index expression mapped; shared subtrees stay shared. */
export const mapIndices = (root: Scalar, f: (x: Ix) => Ix): Scalar => {
  const memo = new Map<Scalar, Scalar>();
  const cond = (c: Cond): Cond => ({ ...c, ix: f(c.ix) });
  const go = (s: Scalar): Scalar => {
    let out = memo.get(s);
    if (out) return out;
    out = mapChildren(s, go);
    if (out.k === 'load' || out.k === 'random') out = { ...out, at: f(out.at) };
    else if (out.k === 'guard') out = { ...out, conds: out.conds.map(cond) };
    else if (out.k === 'pick') out = { ...out, cond: cond(out.cond) };
    memo.set(s, out);
    return out;
  };
  return go(root);
};

/**
 * How many outputs per thread a GL kernel computes: 4 where that shares work between the lanes (a reduction reads
 * something that does not depend on the last output axis: a matmul's row, a conv's weights) and the last axis
 * divides by 4; else 1. Kernels with extra outputs (gpu.js kernel maps) keep one.
 */
export const glLanes = (ir: KernelIR): 1 | 4 => {
  const axis = ir.shape.length - 1;
  if (axis < 0 || ir.shape[axis] % 4 !== 0 || ir.extras.length > 0) return 1;
  const r = reductionOf(ir);
  if (!r) return 1;
  const last = ir.outVars[axis];
  let shared = false;
  walk(r.body, (s) => {
    if (s.k === 'load' && !ixDependsOn(s.at, last) && r.vars.some((v) => ixDependsOn(s.at, v))) shared = true;
  });
  return shared ? 4 : 1;
};
