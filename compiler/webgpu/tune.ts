// The one place the WGSL backend's kernel shapes are chosen: how many outputs each invocation computes. A reduction
// kernel whose body has loads that skip an output axis (a matmul's A[i, k] is the same for every column j) computes a
// block of rows x columns per invocation, so each shared load is made once for the block (jax-js and tinygrad do
// 4 x 4). The block shrinks while the kernel would have too few invocations to fill the adapter. With vectors on,
// a block four columns wide is contiguous and its aligned loads and stores are vec4 (wgsl.ts), and an elementwise
// kernel computes four contiguous outputs per invocation.
import { ixDependsOn, range } from '../kernel/indexExpr.ts';
import { reductionOf, walk, type Cond, type KernelIR } from '../kernel/ir.ts';
import { GRID, planTiles, type TilePlan } from './tiles.ts';

/** What a caller may override (tests force every path on small shapes). */
export interface Tuning {
  /** the fewest invocations a blocked kernel keeps (default: 256 on a software adapter, 4096 on a GPU) */
  readonly minInvocations?: number;
  /** a reduction kernel with fewer outputs than this takes a workgroup per output (default: 0 on software, 16384) */
  readonly treeOutputsBelow?: number;
  /** ... when its reduction is at least this long (default 256) */
  readonly treeMinLength?: number;
  /** four-aligned loads and stores as vec4, block columns contiguous (default true; false: every access scalar) */
  readonly vectors?: boolean;
  /** workgroup-memory tiles where a kernel qualifies (tiles.ts; default: on a GPU, not on a software adapter) */
  readonly tiles?: boolean;
  /** split every reduction into this many parts where a reduction variable allows (splitK.ts; default: chosen) */
  readonly splitK?: number;
  /** a reduction at least this long may be split (default 2048) */
  readonly splitMinLength?: number;
  /** ... where the kernel would have fewer invocations than this (default: 2048 on a software adapter, 8192) */
  readonly splitInvocations?: number;
}

export interface BlockChoice {
  readonly block: readonly [number, number];
  /** a workgroup per output element, its reduction shared by the workgroup and added in a tree */
  readonly tree: boolean;
  /** the output axis of the block's rows (the columns are the last axis); the last but one unless said otherwise */
  readonly rowAxis?: number;
  /** the workgroup's blocks read the terms it staged in workgroup memory (tiles.ts) */
  readonly tiles?: TilePlan;
  /** loads and stores of four aligned floats as one vec4 (wgsl.ts decides per buffer which are aligned) */
  readonly vectors: boolean;
  /** why, in words (shown in the kernel's source and by inspect) */
  readonly reason: string;
}

/** The next smaller block side: half, or 1 from an odd side (a column block of 3 covers a conv's 3 taps). */
const smaller = (b: number): number => (b % 2 === 0 ? b / 2 : 1);

/** Invocations a kernel keeps at least, where blocking would leave fewer: a GPU needs thousands in flight. */
const minInvocations = (software: boolean): number => (software ? 256 : 4096);

export const chooseBlock = (ir: KernelIR, software: boolean, tuning: Tuning = {}): BlockChoice => {
  const atLeast = tuning.minInvocations ?? minInvocations(software);
  const vectors = tuning.vectors ?? true;
  const red = reductionOf(ir);
  const n = ir.shape.length;
  const size = ir.shape.reduce((a, b) => a * b, 1);
  if (!red) {
    // four contiguous outputs per invocation, read and written as vec4 where aligned: on SwiftShader the per-invocation
    // cost dominates an elementwise kernel
    if (vectors && n > 0 && ir.shape[n - 1] % 4 === 0 && size / 4 >= atLeast)
      return { block: [1, 4], tree: false, vectors, reason: 'no reduction: four contiguous outputs per invocation, as a vec4' };
    return { block: [1, 1], tree: false, vectors, reason: 'no reduction: one output per invocation' };
  }
  const length = red.vars.reduce((a, v) => a * ir.vars.get(v)!.extent, 1);
  // on a CPU implementation the invocations of a workgroup are not parallel hardware: a tree only adds barriers
  if (size < (tuning.treeOutputsBelow ?? (software ? 0 : 16384)) && length >= (tuning.treeMinLength ?? 256))
    return {
      block: [1, 1],
      tree: true,
      vectors: false,
      reason: `a workgroup per output: ${size} outputs, each a reduction of ${length} terms`,
    };
  if (n === 0) return { block: [1, 1], tree: false, vectors, reason: 'a scalar output' };
  const loads: { at: Parameters<typeof ixDependsOn>[0] }[] = [];
  walk(red.body, (s) => void (s.k === 'load' && loads.push(s)));
  /** the loads that a block's elements along `axis` share (their index does not depend on it) */
  const sharedAlong = (axis: number) => loads.filter((l) => !ixDependsOn(l.at, ir.outVars[axis]));
  const shares = (axis: number) => axis >= 0 && sharedAlong(axis).length > 0;
  const fit = (extent: number, share: boolean, sizes: readonly number[]) => (share ? (sizes.find((b) => extent % b === 0) ?? 1) : 1);
  // the rows of the block: the axis whose elements share the loads that the columns do not (a matmul's rows share B,
  // as the columns share A; a conv's output channels share its image, as its columns share the weights), the last
  // but one where no axis does
  const byColumns = new Set(sharedAlong(n - 1));
  const complement = (axis: number) => sharedAlong(axis).filter((l) => !byColumns.has(l)).length;
  let rowAxis = n - 2;
  for (let a = n - 3; a >= 0; a--) if (ir.shape[a] % 2 === 0 && complement(a) > complement(rowAxis)) rowAxis = a;
  // on SwiftShader each loaded vector should serve as many products as it can: per GFLOP of process CPU time, a 512
  // matmul ran 0.8 at 8 x 4, 1.15 at 8 x 8, 1.4-1.5 at 16 x 8 and 1.4 at 16 x 16 (a lane's registers are memory
  // there); on a GPU, 4 x 4 as the peers do (registers)
  // (tiles are a GPU's shape: where they are asked for, the blocks are too)
  const tilesWanted = tuning.tiles ?? !software;
  const wide = software && vectors && !tilesWanted;
  let br = n >= 2 ? fit(ir.shape[rowAxis], shares(rowAxis), wide ? [16, 8, 4, 2] : [4, 2]) : 1;
  let bc = fit(ir.shape[n - 1], shares(n - 1), wide ? [8, 4, 2] : [4, 2]);
  // a guarded body (a padded conv2d) in a block of 16 made SwiftShader's shader compiler run for minutes (measured:
  // 2 x 2 compiled in 46 ms, 4 x 4 did not finish in 60 s), so guarded kernels keep at most 4 outputs
  // (a guard whose conditions hold for every index, as the printer finds from their ranges, is no guard)
  const holds = (c: Cond) => {
    const [lo, hi] = range(c.ix, ir.vars);
    return lo >= c.lo && hi <= c.hi && !c.step;
  };
  let guarded = false;
  walk(red.body, (s) => void (s.k === 'guard' && !s.conds.every(holds) && (guarded = true)));
  while ((guarded && br * bc > 4) || (br * bc > 1 && size / (br * bc) < atLeast)) {
    if (br >= bc) br = smaller(br);
    else bc = smaller(bc);
  }
  const rows = rowAxis === n - 2 ? 'rows' : `rows (axis ${rowAxis})`;
  const reason =
    br * bc === 1
      ? 'one output per invocation (no load shared along the output axes, or too few outputs)'
      : `${br} x ${bc} outputs per invocation: loads shared along ` +
        [br > 1 ? rows : '', bc > 1 ? 'columns' : ''].filter(Boolean).join(' and ');
  // workgroup-memory tiles, as TF.js's matmul on a GPU. On SwiftShader a 512 matmul ran 0.46 GFLOP per CPU-second
  // tiled against 0.70 in plain 4 x 4 blocks (its workgroups are not parallel hardware and the barriers are real
  // work); on a GPU they are unmeasured here (no GPU was lent), so bench:gpu times the matmul with and without them
  // (the block halves, the larger side first, until the workgroup's tile divides the output)
  let noTiles = '';
  for (let [r, c] = [br, bc]; tilesWanted; [r, c] = r >= c ? [smaller(r), c] : [r, smaller(c)]) {
    const plan = planTiles(ir, [r, c], rowAxis);
    if (typeof plan === 'string') {
      noTiles ||= `; no workgroup tiles: ${plan}`;
      if (r * c === 1) break;
      continue;
    }
    const rows = r > 1 || c > 1 ? `${r} x ${c} outputs per invocation` : 'one output per invocation';
    return {
      block: [r, c],
      rowAxis,
      tree: false,
      vectors: false,
      tiles: plan,
      reason:
        `${rows}, ${GRID * r} x ${GRID * c} per workgroup through workgroup memory ` +
        `(${plan.rowTerms.length + plan.colTerms.length} terms staged per step of ${plan.step})`,
    };
  }
  const vec4 = vectors && bc % 4 === 0 ? ', four contiguous columns as a vec4' : '';
  return { block: [br, bc], rowAxis: br > 1 ? rowAxis : n - 2, tree: false, vectors, reason: reason + vec4 + noTiles };
};
