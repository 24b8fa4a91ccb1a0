// Workgroup-memory tiles (the shape TF.js's matmul takes on a GPU): the 64 invocations of a workgroup stand on a grid
// of 8 x 8 blocks, so a workgroup computes (8 x block rows) x (8 x block columns) outputs. Its reduction runs in steps
// of `step` terms of the flattened reduction (every reduction variable, outermost first: the order of the loop nest,
// so the sums are the same bits as the register-block kernel's); in each step the workgroup first computes together
// the terms of the reduction's body that do not depend on the columns (a matmul's A, a conv's weights) for all its rows,
// and those that do not depend on the rows (B, the image) for all its columns, into workgroup memory, then each
// invocation's block reads them from there. Each global load is then made once per workgroup instead of once per
// invocation that needs it.
//
// This file decides whether a kernel can take tiles, and which terms are staged; wgsl.ts prints the kernel. A kernel
// qualifies when every term of its body that depends on the reduction depends on the rows or on the columns, not on
// both (a matmul and an implicit-GEMM conv do), and the workgroup's tile divides its output.
import { ixDependsOn, type Ix } from '../kernel/indexExpr.ts';
import { reductionOf, type KernelIR, type Scalar } from '../kernel/ir.ts';

/** Invocations of a workgroup along its rows and along its columns (8 x 8 = wgsl.ts's WORKGROUP). */
export const GRID = 8;
/** WebGPU's default maxComputeWorkgroupStorageSize, in bytes: every adapter gives at least this. */
const WORKGROUP_BYTES = 16384;

export interface TilePlan {
  /** terms staged per row of the tile (they depend on the rows and the reduction, not on the columns) */
  readonly rowTerms: readonly Scalar[];
  /** terms staged per column (they depend on the columns and the reduction, not on the rows) */
  readonly colTerms: readonly Scalar[];
  /** terms of the flattened reduction per step */
  readonly step: number;
  /** the flattened reduction's length */
  readonly length: number;
}

interface Deps {
  readonly row: boolean;
  readonly col: boolean;
  readonly red: boolean;
}

/** The tiles of a kernel blocked as `block` with its rows along `rowAxis`, or why it takes none. */
export const planTiles = (ir: KernelIR, block: readonly [number, number], rowAxis: number): TilePlan | string => {
  const red = reductionOf(ir);
  const n = ir.shape.length;
  if (!red) return 'no reduction';
  if (n < 2 || rowAxis < 0 || rowAxis >= n - 1) return 'fewer than two output axes';
  const [br, bc] = block;
  if (ir.shape[rowAxis] % (GRID * br) !== 0 || ir.shape[n - 1] % (GRID * bc) !== 0)
    return `the tile (${GRID * br} x ${GRID * bc}) does not divide the output`;
  const length = red.vars.reduce((a, v) => a * ir.vars.get(v)!.extent, 1);
  const rowVar = ir.outVars[rowAxis];
  const colVar = ir.outVars[n - 1];
  const ixDeps = (x: Ix): Deps => ({
    row: ixDependsOn(x, rowVar),
    col: ixDependsOn(x, colVar),
    red: red.vars.some((v) => ixDependsOn(x, v)),
  });
  const or = (a: Deps, b: Deps): Deps => ({ row: a.row || b.row, col: a.col || b.col, red: a.red || b.red });
  const none: Deps = { row: false, col: false, red: false };
  const memo = new Map<Scalar, Deps>();
  const deps = (s: Scalar): Deps => {
    const hit = memo.get(s);
    if (hit) return hit;
    let d: Deps;
    switch (s.k) {
      case 'lit':
        d = none;
        break;
      case 'load':
        d = ixDeps(s.at);
        break;
      case 'un':
        d = deps(s.x);
        break;
      case 'bin':
        d = or(deps(s.a), deps(s.b));
        break;
      case 'where':
        d = or(deps(s.c), or(deps(s.a), deps(s.b)));
        break;
      case 'guard':
        d = s.conds.reduce((acc, c) => or(acc, ixDeps(c.ix)), deps(s.x));
        break;
      case 'pick':
        d = or(ixDeps(s.cond.ix), or(deps(s.a), deps(s.b)));
        break;
      case 'random':
        d = or(deps(s.counter), ixDeps(s.at));
        break;
      case 'reduce':
        d = { row: true, col: true, red: true };
        break;
    }
    memo.set(s, d);
    return d;
  };
  const rowTerms = new Set<Scalar>();
  const colTerms = new Set<Scalar>();
  /** false where a term depends on the rows, the columns and the reduction in one leaf (it cannot be staged) */
  const stage = (s: Scalar): boolean => {
    const d = deps(s);
    if (!d.red) return true;
    if (!d.col) return (rowTerms.add(s), true); // a term of the reduction alone is staged per row: correct, if redundant
    if (!d.row) return (colTerms.add(s), true);
    switch (s.k) {
      case 'un':
        return stage(s.x);
      case 'bin':
        return stage(s.a) && stage(s.b);
      case 'where':
        return stage(s.c) && stage(s.a) && stage(s.b);
      case 'guard':
        return s.conds.every((c) => !ixDeps(c.ix).red) && stage(s.x);
      case 'pick':
        return !ixDeps(s.cond.ix).red && stage(s.a) && stage(s.b);
      default:
        return false;
    }
  };
  if (!stage(red.body)) return 'a term of the body depends on the rows, the columns and the reduction at once';
  if (rowTerms.size === 0 || colTerms.size === 0) return 'no term shared along both the rows and the columns';
  const bytesPerStep = (rowTerms.size * GRID * br + colTerms.size * GRID * bc) * 4;
  const step = [32, 16, 8].find((s) => length % s === 0 && s * bytesPerStep <= WORKGROUP_BYTES);
  if (step === undefined) return `the reduction's ${length} terms have no step of 8, 16 or 32 that fits workgroup memory`;
  return { rowTerms: [...rowTerms], colTerms: [...colTerms], step, length };
};
