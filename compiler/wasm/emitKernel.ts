// Kernel IR -> one WebAssembly function over the plan's memory (buffer offsets are constants of the module).
// The output is walked by nested loops over its axes with integer indices (exact at every size the memory holds).
// The innermost axis runs four lanes at a time (f32x4) when its extent allows: a load whose index steps by one
// along it is a v128.load, one that does not depend on it a load32_splat, any other a four-lane gather. A kernel
// with a reduction is register-tiled: R rows x 4*CV columns of the output are computed together, so one pass of
// the reduction loop updates R*CV vector accumulators and every operand load is shared (memoised by its resolved
// address) by the tile positions that read it: for a matmul, one splat of A per row and one vector of B per
// column block. Values are computed at the outermost loop level whose variables they depend on; a concat whose
// condition is the same on every lane computes only the part taken (branch).
import { randomBase } from '../../core/rng.ts';
import type { UnaryOp } from '../../core/ir.ts';
import { coefficientOf, dependsOn, ixDependsOn, ixKey, range, substituteIx, type Atom, type Ix } from '../kernel/indexExpr.ts';
import { mapChildren, reductionOf, scalarLevel, walk, type Cond, type KernelIR, type Scalar } from '../kernel/ir.ts';
import { FunctionBody, Op, Simd } from './encoder.ts';
import { Lanes } from './lanes.ts';
import * as M from './math.ts';
import { randomDraw } from './rng.ts';

export interface KernelLayout {
  /** byte offset of a node's buffer in the plan's memory */
  offsetOf(node: number): number;
  /** each thread's scratch (packed panels): thread t's starts at base + t * bytesPerThread */
  readonly scratch?: { readonly base: number; readonly bytesPerThread: number };
}

interface Binding {
  readonly local: number;
  /** constant added to the local (the tile position) */
  readonly offset: number;
}

/**
 * Tile shape chosen for a kernel: `vectors` four-lane vectors along output axis `vecAxis`, times `rows` along output
 * axis `rowAxis` (for kernels with a reduction, so that operand loads are shared across the tile).
 */
export interface Tiling {
  readonly width: 1 | 4;
  readonly rows: number;
  readonly vectors: number;
  readonly vecAxis: number;
  readonly rowAxis: number;
  /**
   * Cache blocking: when > 0, the vector axis is walked in panels of this many elements, each for every row before
   * the next, and the operand read along the vector axis and the reduction (a matmul's B, see packedOperandOf) is
   * first copied into the thread's scratch as [panel / tile width][reduction][tile width]: the reduction loop then
   * reads one contiguous tile row per step from a block that stays in the cache, instead of a column strip whose
   * stride (a power of two for square matmuls) maps every row to the same few cache sets.
   */
  readonly panel: number;
  /**
   * The four lanes run along the innermost reduction variable instead of an output axis (vecAxis -1): for kernels whose
   * output axes would gather (a group norm's statistics, a bias gradient), each output's sum is accumulated four
   * elements at a time from contiguous loads and the lanes are added at the end.
   */
  readonly lanesOnReduction?: boolean;
  /**
   * With lanes along the reduction: a second output axis of the tile, `vectors` positions of it (a 3x3 weight
   * gradient's kernel columns), so that a load that does not move with it (the cotangent) serves them all.
   */
  readonly colAxis?: number;
  /** A kernel without a reduction whose tile reads a gathered load as transposed 4 x 4 blocks (transposeAxisOf). */
  readonly transposed?: boolean;
}

const scalarTiling: Tiling = { width: 1, rows: 1, vectors: 1, vecAxis: -1, rowAxis: -1, panel: 0 };

/** Bytes of the operands read along a panel (x the reduction) that should stay in a core's cache (half an L2). */
export const PANEL_BYTES = 256 * 1024;

/** The tiling in words, for `inspect`: the register tile, and the packed panel where there is one. */
export const describeTiling = (t: Tiling, fma: boolean): string => {
  if (t.width === 1) return 'scalar loops';
  if (t.lanesOnReduction)
    return (
      `4 lanes along the reduction${t.rows > 1 ? `, ${t.rows} rows of axis ${t.rowAxis}` : ''}` +
      `${t.colAxis !== undefined ? `, ${t.vectors} columns of axis ${t.colAxis}` : ''}${fma ? ', fused multiply-add' : ''}`
    );
  if (t.transposed) return `4 x 4 tile (axes ${t.rowAxis}, ${t.vecAxis}), gathers read as 4 x 4 blocks transposed in registers`;
  const tile = `${t.rows} x ${4 * t.vectors} tile (${t.rows * t.vectors} f32x4 accumulators or values, axes ${t.rowAxis}, ${t.vecAxis})`;
  const panel = t.panel > 0 ? `, axis ${t.vecAxis} in packed panels of ${t.panel}` : '';
  const madd = t.rowAxis >= 0 && fma ? ', fused multiply-add' : '';
  return `${t.rowAxis < 0 ? `${4 * t.vectors} lanes along axis ${t.vecAxis}` : tile}${panel}${madd}`;
};

/**
 * Whether an index takes one value on the four lanes of a vector along v (whose lane groups start at multiples of 4):
 * v appears only inside quotients (x div d, d a multiple of 4) of sums where v has coefficient 1 and every other term
 * and the constant are multiples of 4, as a channel looked up from an element of a group norm's group.
 */
export const laneUniform = (x: Ix, v: number): boolean =>
  x.terms.every(([a]) => {
    if (!dependsOn(a, v)) return true;
    if (a.k !== 'div' || a.d % 4 !== 0 || a.x.c % 4 !== 0) return false;
    return a.x.terms.every(([t, c]) => (t.k === 'var' && t.v === v ? c === 1 : !dependsOn(t, v) && c % 4 === 0));
  });

/**
 * The loop a call's range [lo, hi) bounds, so that threads can share a kernel: its extent, and the step a share is a
 * multiple of. The outermost output axis; for a kernel that packs, its panels instead (the vector axis in steps of a
 * panel), so that each call packs only the panels it computes and no panel is packed twice.
 */
export const callRange = (ir: KernelIR, t: Tiling): { extent: number; step: number } => {
  if (ir.shape.length === 0) return { extent: 1, step: 1 };
  if (t.panel > 0) return { extent: ir.shape[t.vecAxis], step: t.panel };
  const step = t.vecAxis === 0 ? t.width * t.vectors : t.colAxis === 0 ? t.vectors : t.rowAxis === 0 ? t.rows : 1;
  return { extent: ir.shape[0], step };
};

/** Every load (and index use) of a kernel, with the index it reads. */
const loadsOf = (ir: KernelIR): Ix[] => {
  const out: Ix[] = [];
  for (const root of [ir.value, ...ir.extras.map((e) => e.value)]) walk(root, (s) => void (s.k === 'load' && out.push(s.at)));
  return out;
};

/**
 * The tiling decision, a pure function of the IR: vectorise the output axis (extent a multiple of 4) along which the
 * most loads are contiguous or constant (a gather costs four scalar loads), preferring the innermost; with a
 * reduction, also unroll a second axis so that loads that do not depend on one of the two axes are shared.
 */
export const chooseTiling = (ir: KernelIR, panelBytes = PANEL_BYTES): Tiling => {
  const rank = ir.shape.length;
  const loads = loadsOf(ir);
  if (rank === 0) {
    // a full reduction to one value (a loss's mean): four lanes along its contiguous innermost variable
    const r = reductionOf(ir);
    return (r && lanesOnReductionTiling(ir, loads, r.vars, -1)) || scalarTiling;
  }
  const costAlong = (axis: number): number => {
    const v = ir.outVars[axis];
    // gathers cost 4 loads each; the output store along a non-innermost axis is a 4-lane scatter
    const gathers = loads.filter((x) => ixDependsOn(x, v) && coefficientOf(x, v) !== 1).length;
    return 4 * gathers + (axis === rank - 1 ? 0 : 4) - loads.filter((x) => !ixDependsOn(x, v)).length * 0.5;
  };
  // a ragged axis (extent not a multiple of 4, at least 3) is vectorised too when every load along it is contiguous:
  // its last vector reads up to 3 elements past the row (inside the plan's margins) and stores only the lanes inside
  const ragged = (a: number): boolean => {
    const v = ir.outVars[a];
    return ir.shape[a] % 4 !== 0 && ir.shape[a] >= 3 && loads.every((x) => !ixDependsOn(x, v) || coefficientOf(x, v) === 1);
  };
  const wasted = (a: number) => (ir.shape[a] % 4 === 0 ? 0 : 1 - ir.shape[a] / (4 * Math.ceil(ir.shape[a] / 4)));
  const cost = (a: number) => costAlong(a) + 4 * wasted(a);
  const candidates = ir.outVars.map((_, a) => a).filter((a) => ir.shape[a] % 4 === 0 || ragged(a));
  if (!candidates.length) {
    const r = reductionOf(ir);
    return (r && lanesOnReductionTiling(ir, loads, r.vars, -1)) || scalarTiling;
  }
  const vecAxis = candidates.reduce((best, a) => (cost(a) < cost(best) || (cost(a) === cost(best) && a > best) ? a : best));
  const reduction = reductionOf(ir);
  if (reduction) {
    const alongReduction = lanesOnReductionTiling(ir, loads, reduction.vars, vecAxis);
    if (alongReduction) return alongReduction;
  }
  // without a reduction, four vectors per step where they divide the axis: an elementwise kernel's math (a sigmoid's
  // exp and division) then runs as independent chains the core overlaps; a reduction's tile keeps at most two
  const vectors = reduction ? (ir.shape[vecAxis] % 8 === 0 ? 2 : 1) : ([4, 2].find((v) => ir.shape[vecAxis] % (4 * v) === 0) ?? 1);
  if (!reduction) {
    const rowAxis = transposeAxisOf(ir, loads, vecAxis);
    if (rowAxis >= 0) return { width: 4, rows: 4, vectors: 1, vecAxis, rowAxis, panel: 0, transposed: true };
  }
  if (!reduction || rank < 2) return { width: 4, rows: 1, vectors, vecAxis, rowAxis: -1, panel: 0 };
  const others = ir.outVars.map((_, a) => a).filter((a) => a !== vecAxis && rowsOfAxis(ir, a) > 1);
  if (!others.length) return { width: 4, rows: 1, vectors, vecAxis, rowAxis: -1, panel: 0 };
  const rowAxis = bestRowAxis(ir, stepLoadsOf(loads, reduction.vars), others, ir.outVars[vecAxis], vectors);
  const rows = rowsOfAxis(ir, rowAxis);
  const panel = ir.shape[vecAxis] % 4 === 0 ? panelOf(ir, vecAxis, rowAxis, 4 * vectors, panelBytes) : 0;
  return { width: 4, rows, vectors, vecAxis, rowAxis, panel };
};

/**
 * A kernel without a reduction that gathers along its vector axis a load that is contiguous along another output axis
 * (a transpose: out[i, j] = w[j, i]) takes 4 rows of that axis: the tile's 4 x 4 block of the load is then 4
 * contiguous vectors, transposed in registers (transposedLoad), instead of 16 single loads. The row axis, or -1.
 */
export const transposeAxisOf = (ir: KernelIR, loads: readonly Ix[], vecAxis: number): number => {
  if (ir.shape[vecAxis] % 4 !== 0) return -1;
  const v = ir.outVars[vecAxis];
  const gathers = loads.filter((x) => ixDependsOn(x, v) && coefficientOf(x, v) !== 1 && coefficientOf(x, v) !== undefined);
  return ir.outVars.findIndex((u, a) => a !== vecAxis && ir.shape[a] % 4 === 0 && gathers.some((x) => coefficientOf(x, u) === 1));
};

/**
 * Lanes along the innermost reduction variable r, when the output axis chosen (vecAxis; -1: none) would gather inside
 * the reduction or is ragged with at least a quarter of its lanes idle (a 3x3 weight gradient's kernel width), every
 * load that moves with r is contiguous along it or lane-uniform, and r's extent is a multiple of 4, at least 16, or
 * at least 4 where the tile has columns. Rows: an output axis, for independent accumulators and shared loads;
 * columns (columnsOf): a second one where that shares more loads.
 */
const lanesOnReductionTiling = (
  ir: KernelIR,
  loads: readonly Ix[],
  reductionVars: readonly number[],
  vecAxis: number,
): Tiling | undefined => {
  if (!reductionVars.length) return undefined;
  const r = reductionVars[reductionVars.length - 1];
  const extent = ir.vars.get(r)!.extent;
  if (extent % 4 !== 0 || extent < 4) return undefined;
  const inBody = stepLoadsOf(loads, reductionVars);
  if (!inBody.every((x) => !ixDependsOn(x, r) || coefficientOf(x, r) === 1 || laneUniform(x, r))) return undefined;
  const idle = vecAxis >= 0 ? 1 - ir.shape[vecAxis] / (4 * Math.ceil(ir.shape[vecAxis] / 4)) : 0;
  if (vecAxis >= 0 && idle < 0.25) {
    const v = ir.outVars[vecAxis];
    if (!inBody.some((x) => ixDependsOn(x, v) && coefficientOf(x, v) !== 1)) return undefined;
  }
  const others = ir.outVars.map((_, a) => a).filter((a) => rowsOfAxis(ir, a) > 1);
  const plain = { width: 4, vectors: 1, vecAxis: -1, panel: 0, lanesOnReduction: true } as const;
  if (!others.length) return extent < 16 ? undefined : { ...plain, rows: 1, rowAxis: -1 };
  const rowAxis = bestRowAxis(ir, inBody, others, r, 1);
  const rows = rowsOfAxis(ir, rowAxis);
  const cols = columnsOf(ir, inBody, rowAxis, rows);
  // short reductions (8x8 and 4x4 images) only with columns: their loop overhead is then shared by more products
  if (!cols) return extent < 16 ? undefined : { ...plain, rows, rowAxis };
  return { ...plain, rows: cols.rows, rowAxis, vectors: cols.cols, colAxis: cols.axis };
};

/**
 * Columns for a lanes-along-the-reduction tile: an output axis other than the rows, 3 or 2 positions of it, where
 * that takes fewer loads per product than rows alone (a load that does not move with the columns is shared by them);
 * at most 6 accumulators, so the rows drop to 2. With 8 (4 rows x 2 columns) the UNet's 3x3 weight gradients ran
 * slower than without columns; with 6 they ran 1.2-1.6x faster than before (the step: 33.3-40.4 -> 31.2-33.1 ms on
 * one thread, alternated).
 */
const columnsOf = (
  ir: KernelIR,
  inBody: readonly Ix[],
  rowAxis: number,
  rows: number,
): { axis: number; cols: number; rows: number } | undefined => {
  const rowVar = ir.outVars[rowAxis];
  const perProduct = (colVar: number | undefined, r: number, c: number) =>
    inBody.reduce((n, x) => n + (ixDependsOn(x, rowVar) ? r : 1) * (colVar !== undefined && ixDependsOn(x, colVar) ? c : 1), 0) / (r * c);
  let best: { axis: number; cols: number; rows: number } | undefined;
  let bestCost = perProduct(undefined, rows, 1);
  ir.outVars.forEach((v, a) => {
    if (a === rowAxis) return;
    const cols = [3, 2].find((c) => ir.shape[a] % c === 0);
    if (!cols) return;
    const r = rows * cols > 6 ? (ir.shape[rowAxis] % 2 === 0 ? 2 : 1) : rows;
    const cost = perProduct(v, r, cols);
    if (cost < bestCost) [best, bestCost] = [{ axis: a, cols, rows: r }, cost];
  });
  return best;
};

/** The distinct loads made in a reduction step (a load read twice is loaded once: the emitter memoises it). */
const stepLoadsOf = (loads: readonly Ix[], reductionVars: readonly number[]): Ix[] => [
  ...new Map(loads.filter((x) => reductionVars.some((v) => ixDependsOn(x, v))).map((x) => [ixKey(x), x])).values(),
];

/**
 * Rows of a tile along an axis: 4 where they divide it, else 3, else 2 (1: no rows). Three rows of 8 columns keep 6
 * accumulators where 2 would keep 4: the first layer's weight gradient of the reference MLP, 66 rows, went from 0.65
 * to 0.44 ms on one thread.
 */
const rowsOfAxis = (ir: KernelIR, a: number): number => [4, 3, 2].find((r) => ir.shape[a] % r === 0) ?? 1;

/**
 * The row axis that leaves the fewest loads per output vector of the tile: a load that does not move with the rows is
 * shared by them (a matmul's B, a conv's image when the rows are output channels), one that does is made once per row;
 * one that moves with the lane variable is made once per vector.
 */
const bestRowAxis = (ir: KernelIR, stepLoads: readonly Ix[], candidates: readonly number[], laneVar: number, vectors: number): number => {
  const perVector = (a: number): number => {
    const rows = rowsOfAxis(ir, a);
    return stepLoads.reduce((n, x) => n + (ixDependsOn(x, ir.outVars[a]) ? rows : 1) * (ixDependsOn(x, laneVar) ? vectors : 1), 0) / rows;
  };
  return candidates.reduce((best, a) => (perVector(a) <= perVector(best) ? a : best));
};

/** The operand a panel packs: one load (buffer and index) that the vector loop and the reduction walk. */
export interface PackedOperand {
  readonly buf: number;
  readonly at: Ix;
  /** the reduction variable and its extent */
  readonly k: number;
  readonly length: number;
}

const sameIx = (a: Ix, b: Ix): boolean => ixKey(a) === ixKey(b);

/**
 * The operand worth packing (a matmul's B), if the kernel has one: a single reduction variable k, and every load
 * that moves with the vector axis and k but not the rows reads one buffer at one index that is a plain sum of
 * variables (contiguous along the vector axis), whose other variables are output axes outside the row loop.
 */
export const packedOperandOf = (ir: KernelIR, vecAxis: number, rowAxis: number): PackedOperand | undefined => {
  const r = reductionOf(ir);
  if (!r || r.vars.length !== 1 || rowAxis < 0 || vecAxis < rowAxis) return undefined;
  const k = r.vars[0];
  const vecVar = ir.outVars[vecAxis];
  const rowVar = ir.outVars[rowAxis];
  const loads: Extract<Scalar, { k: 'load' }>[] = [];
  for (const root of [ir.value, ...ir.extras.map((e) => e.value)]) walk(root, (s) => void (s.k === 'load' && loads.push(s)));
  const streamed = loads.filter((s) => ixDependsOn(s.at, vecVar) && ixDependsOn(s.at, k) && !ixDependsOn(s.at, rowVar));
  if (!streamed.length) return undefined;
  const [first] = streamed;
  if (!streamed.every((s) => s.buf === first.buf && sameIx(s.at, first.at))) return undefined;
  const outer = new Set(ir.outVars.slice(0, rowAxis));
  const plain = first.at.terms.every(([a]) => a.k === 'var' && (a.v === vecVar || a.v === k || outer.has(a.v)));
  if (!plain || coefficientOf(first.at, vecVar) !== 1) return undefined;
  return { buf: first.buf, at: first.at, k, length: ir.vars.get(k)!.extent };
};

/**
 * The panel width along the vector axis (0: none): the largest multiple of the vector step that divides the axis and
 * keeps a packed panel (panel x the reduction's length floats) within PANEL_BYTES; none when the kernel has no
 * operand to pack, or when the whole operand fits already.
 */
const panelOf = (ir: KernelIR, vecAxis: number, rowAxis: number, step: number, panelBytes: number): number => {
  const packed = packedOperandOf(ir, vecAxis, rowAxis);
  if (!packed) return 0;
  const bytesPerColumn = 4 * packed.length;
  const extent = ir.shape[vecAxis];
  if (extent * bytesPerColumn <= panelBytes) return 0;
  let best = step;
  for (let p = step; p < extent; p += step) if (extent % p === 0 && p * bytesPerColumn <= panelBytes) best = p;
  return best;
};

/** Bytes of per-thread scratch a kernel's packed panel takes (0 without one). */
export const scratchBytesOf = (ir: KernelIR, t: Tiling): number =>
  t.panel > 0 ? 4 * t.panel * packedOperandOf(ir, t.vecAxis, t.rowAxis)!.length : 0;

const unaryRoutine: Partial<Record<UnaryOp, (L: Lanes, x: number) => number>> = {
  exp: M.exp,
  log: M.log,
  sin: M.sin,
  cos: M.cos,
  tanh: M.tanh,
  sigmoid: M.sigmoid,
};

export interface EmitOptions {
  /** a sum of products accumulates with f32x4.relaxed_madd (see features.ts); the engine must validate it */
  readonly fma?: boolean;
}

export const emitKernel = (
  ir: KernelIR,
  layout: KernelLayout,
  outputs: { root: number; extras: readonly number[] },
  tiling = chooseTiling(ir),
  options: EmitOptions = {},
): FunctionBody => {
  // (lo, hi): the range of the outermost output axis this call computes (of the panels, for a kernel that packs: see
  // callRange), so threads can split a kernel; thread: which thread calls (0 the main one), for its scratch
  const f = new FunctionBody(['i32', 'i32', 'i32']);
  const L = new Lanes(f, tiling.width);
  const rank = ir.shape.length;
  const rowVar = tiling.rows > 1 ? ir.outVars[tiling.rowAxis] : undefined;
  const colVar = tiling.colAxis !== undefined ? ir.outVars[tiling.colAxis] : undefined;
  const reduction = (() => {
    let r: Extract<Scalar, { k: 'reduce' }> | undefined;
    for (const root of [ir.value, ...ir.extras.map((x) => x.value)]) walk(root, (s) => void (s.k === 'reduce' && (r = s)));
    return r;
  })();
  const onReduction = tiling.lanesOnReduction === true;
  const vecVar = tiling.width !== 4 ? undefined : onReduction ? reduction!.vars[reduction!.vars.length - 1] : ir.outVars[tiling.vecAxis];
  const loopVars = [...ir.outVars, ...(reduction?.vars ?? [])];
  /** the vector axis's extent when it is not a multiple of the vector step (its last step is partial) */
  const raggedExtent =
    tiling.width === 4 && !onReduction && ir.shape[tiling.vecAxis] % (4 * tiling.vectors) !== 0 ? ir.shape[tiling.vecAxis] : undefined;
  const packed = tiling.panel > 0 ? packedOperandOf(ir, tiling.vecAxis, tiling.rowAxis) : undefined;
  const isPacked = (s: Scalar): boolean => packed !== undefined && s.k === 'load' && s.buf === packed.buf && sameIx(s.at, packed.at);
  /** the thread's scratch (set at the top when the kernel packs), the panel's start, and the packed read pointer */
  let scratch = -1;
  let panelStart = -1;
  let packRead = -1;
  const levelOfVar = new Map(loopVars.map((v, i) => [v, i + 1]));
  const bindings = new Map<number, Binding>();
  /** memoised values per loop level (a local, valid while that level's iteration runs) */
  const memo: Map<string, number>[] = loopVars.map(() => new Map()).concat([new Map()]);
  let level = 0;
  let position = { row: 0, vector: 0 };
  const accumulators = new Map<string, number>();
  /** picks computed as an if / else (see branch) */
  const branching = new Set<Scalar>();

  const lookup = (key: string): number | undefined => {
    for (let l = level; l >= 0; l--) {
      const hit = memo[l].get(key);
      if (hit !== undefined) return hit;
    }
    return undefined;
  };
  const remember = <T extends number>(key: string, make: () => T): T => {
    const hit = lookup(key);
    if (hit !== undefined) return hit as T;
    const local = make();
    memo[level].set(key, local);
    return local;
  };

  // ---- indices -------------------------------------------------------------------------------------------------

  const bindingOf = (v: number): Binding => {
    const b = bindings.get(v);
    if (!b) throw new Error(`wasm codegen: variable v${v} used outside its loop`);
    const tileOffset = v === vecVar ? position.vector * 4 : v === colVar ? position.vector : v === rowVar ? position.row : 0;
    return { local: b.local, offset: b.offset + tileOffset };
  };

  /** An index with every variable resolved to (local + constant): [local, coefficient] terms and a constant. */
  interface Resolved {
    readonly terms: readonly (readonly [number, number])[];
    readonly c: number;
  }
  const resolvedKey = (r: Resolved) => `${r.terms.map(([l, c]) => `${c}*L${l}`).join('+')}+${r.c}`;

  const resolve = (x: Ix, laneShift = 0): Resolved => {
    const terms = new Map<number, number>();
    let c = x.c;
    for (const [a, coef] of x.terms) {
      if (a.k === 'var') {
        const b = bindingOf(a.v);
        terms.set(b.local, (terms.get(b.local) ?? 0) + coef);
        c += coef * (b.offset + (a.v === vecVar ? laneShift : 0));
      } else terms.set(atomLocal(a, laneShift), (terms.get(atomLocal(a, laneShift)) ?? 0) + coef);
    }
    return { terms: [...terms].filter(([, k]) => k !== 0).sort(([a], [b]) => a - b), c };
  };

  /** An i32 local holding a div, mod or clamp atom. */
  const atomLocal = (a: Exclude<Atom, { k: 'var' }>, laneShift: number): number => {
    const inner = resolve(a.x, laneShift);
    const tag = a.k === 'clamp' ? `clamp${a.lo},${a.hi}` : `${a.k}${a.d}`;
    return remember(`i:${tag}(${resolvedKey(inner)})`, () => {
      const t = f.local('i32');
      const [lo] = range(a.x, ir.vars);
      pushResolved(inner);
      if (a.k === 'clamp') {
        f.set(t);
        f.i32(a.lo).get(t).get(t).i32(a.lo).op(Op.i32LtS).op(Op.select).set(t);
        f.i32(a.hi).get(t).get(t).i32(a.hi).op(Op.i32GtS).op(Op.select).set(t);
        return t;
      }
      if (lo >= 0) {
        f.i32(a.d)
          .op(a.k === 'div' ? Op.i32DivU : Op.i32RemU)
          .set(t);
        return t;
      }
      // floor division and a non-negative remainder for possibly negative x: r = ((x % d) + d) % d, q = (x - r) / d
      const x = f.local('i32');
      f.tee(x).i32(a.d).op(Op.i32RemS).i32(a.d).op(Op.i32Add).i32(a.d).op(Op.i32RemS).set(t);
      if (a.k === 'div') f.get(x).get(t).op(Op.i32Sub).i32(a.d).op(Op.i32DivS).set(t);
      return t;
    });
  };

  const pushResolved = (r: Resolved, withConst = true): void => {
    let first = true;
    for (const [local, coef] of r.terms) {
      f.get(local);
      if (coef !== 1) f.i32(coef).op(Op.i32Mul);
      if (!first) f.op(Op.i32Add);
      first = false;
    }
    if (withConst && (r.c !== 0 || first)) {
      f.i32(r.c);
      if (!first) f.op(Op.i32Add);
    } else if (first) f.i32(0);
  };

  /**
   * Pushes the dynamic part of the byte address of element x of a buffer at `base` and returns the constant part,
   * for the load's offset immediate. Wasm adds the two as unsigned numbers, so the constant is folded into the
   * offset only when the dynamic part can never be negative (a flip or a pad's shifted index can be).
   */
  const address = (base: number, x: Ix, laneShift = 0): number => {
    const r = resolve(x, laneShift);
    const off = base + 4 * r.c;
    if (off >= 0 && range({ terms: x.terms, c: 0 }, ir.vars)[0] >= 0) {
      if (r.terms.length === 0) f.i32(0);
      else {
        pushResolved({ terms: r.terms, c: 0 }, false);
        f.i32(2).op(Op.i32Shl);
      }
      return off;
    }
    pushResolved(r);
    f.i32(2).op(Op.i32Shl).i32(base).op(Op.i32Add);
    return 0;
  };

  // ---- values --------------------------------------------------------------------------------------------------

  /** structural key of a scalar with its indices resolved at the current tile position */
  const keyOf = (s: Scalar): string => {
    const ix = (x: Ix) => (vecVar !== undefined && ixDependsOn(x, vecVar) ? `${resolvedKey(resolve(x))}@lanes` : resolvedKey(resolve(x)));
    switch (s.k) {
      case 'lit':
        return `c${Object.is(s.v, -0) ? '-0' : s.v}`;
      case 'load':
        return `L${s.buf}[${ix(s.at)}]`;
      case 'un':
        return `${s.op}(${keyOf(s.x)})`;
      case 'bin':
        return `${s.op}(${keyOf(s.a)},${keyOf(s.b)})`;
      case 'where':
        return `where(${keyOf(s.c)},${keyOf(s.a)},${keyOf(s.b)})`;
      case 'guard':
        return `guard(${s.conds.map((c) => `${ix(c.ix)}:${c.lo}:${c.hi}:${c.step ?? 1}`).join('&')},${keyOf(s.x)})`;
      case 'pick':
        return `pick(${ix(s.cond.ix)}:${s.cond.lo}:${s.cond.hi},${keyOf(s.a)},${keyOf(s.b)})`;
      case 'random':
        return `rand(${s.seed},${s.stream},${s.dist},${keyOf(s.counter)},${ix(s.at)})`;
      case 'reduce': // one per kernel: its value is the accumulator of the tile position
        return `reduce@${position.row},${position.vector}`;
    }
  };

  const value = (s: Scalar): number => {
    if (s.k === 'reduce') {
      const acc = accumulators.get(keyOf(s));
      if (acc === undefined) throw new Error('wasm codegen: reduction value read before its loop');
      return acc;
    }
    return remember(`v:${keyOf(s)}`, () => compute(s));
  };

  const dependsOnVec = (x: Ix) => vecVar !== undefined && ixDependsOn(x, vecVar);

  /** The lane index vector of x (f32x4 of the index at lanes 0..3), or the scalar index, as a value of the lane type. */
  const indexValue = (x: Ix): number => {
    const t = L.tmp();
    if (!dependsOnVec(x)) {
      pushResolved(resolve(x));
      f.op(Op.f32ConvertI32S);
      if (L.width === 4) f.simd(Simd.f32x4Splat);
      f.set(t);
      return t;
    }
    for (let lane = 0; lane < 4; lane++) {
      if (lane > 0) f.get(t);
      pushResolved(resolve(x, lane));
      f.op(Op.f32ConvertI32S);
      if (lane === 0) f.simd(Simd.f32x4Splat);
      else f.simd(Simd.f32x4ReplaceLane, lane);
      f.set(t);
    }
    return t;
  };

  /** pushes an i32 that is 1 where condition c holds at the resolved index r, else 0 */
  const condCheck = (c: Cond, r: Resolved) => {
    const [lo, hi] = range(c.ix, ir.vars);
    const x = f.local('i32');
    pushResolved(r);
    f.set(x);
    const tests: (() => void)[] = [];
    if (lo < c.lo) tests.push(() => f.get(x).i32(c.lo).op(Op.i32GeS));
    if (hi > c.hi) tests.push(() => f.get(x).i32(c.hi).op(Op.i32LeS));
    if (c.step) tests.push(() => f.get(x).i32(c.step!).op(Op.i32RemS).op(Op.i32Eqz));
    if (!tests.length) f.i32(1);
    tests.forEach((t, i) => (t(), i > 0 && f.op(Op.i32And)));
  };

  /** A lane mask (all ones where the condition holds) for an index condition. */
  const condMask = (c: Cond): number => {
    const [lo, hi] = range(c.ix, ir.vars);
    const mask = L.tmp();
    const step = vecVar !== undefined ? coefficientOf(c.ix, vecVar) : undefined;
    if (L.width === 4 && dependsOnVec(c.ix) && step !== undefined && !c.step) {
      // affine along the lanes: the four indices are base + step * [0, 1, 2, 3], compared as an i32x4
      const idx = f.local('v128');
      pushResolved(resolve(c.ix));
      f.simd(Simd.i32x4Splat)
        .simd(Simd.v128Const, ...[0, 1, 2, 3].flatMap((l) => [...new Uint8Array(Int32Array.of(l * step).buffer)]))
        .simd(Simd.i32x4Add)
        .set(idx);
      const tests: (() => void)[] = [];
      if (lo < c.lo) tests.push(() => f.get(idx).i32(c.lo).simd(Simd.i32x4Splat).simd(Simd.i32x4GeS));
      if (hi > c.hi) tests.push(() => f.get(idx).i32(c.hi).simd(Simd.i32x4Splat).simd(Simd.i32x4LeS));
      if (!tests.length) f.i32(-1).simd(Simd.i32x4Splat);
      tests.forEach((t, i) => (t(), i > 0 && f.simd(Simd.v128And)));
      f.set(mask);
      return mask;
    }
    if (L.width === 1 || !dependsOnVec(c.ix)) {
      condCheck(c, resolve(c.ix));
      f.i32(-1).op(Op.i32Mul);
      if (L.width === 4) f.simd(Simd.i32x4Splat);
      else f.op(Op.f32ReinterpretI32);
      f.set(mask);
      return mask;
    }
    for (let lane = 0; lane < 4; lane++) {
      if (lane === 0) f.i32(0).simd(Simd.i32x4Splat);
      condCheck(c, resolve(c.ix, lane));
      f.i32(-1).op(Op.i32Mul).simd(Simd.i32x4ReplaceLane, lane);
    }
    f.set(mask);
    return mask;
  };

  /** whether a gathered load can come from a transposed 4 x 4 block (see transposeAxisOf) */
  const transposable = (x: Ix): boolean =>
    tiling.transposed === true && coefficientOf(x, rowVar!) === 1 && coefficientOf(x, vecVar!) !== undefined;
  /**
   * The tile position's vector of a load that gathers along the lanes but is contiguous along the rows: the block's 4
   * lanes (at row 0) are 4 vectors along the rows, and row r's vector is their lane r (four shuffles of pairs, then
   * four of the results); the block is loaded once for the tile's 4 rows.
   */
  const transposedLoad = (buf: number, x: Ix): number => {
    const row = position.row;
    position = { ...position, row: 0 };
    const key = `T${buf}[${resolvedKey(resolve(x))}]`;
    const hit = lookup(`${key}#${row}`);
    if (hit !== undefined) {
      position = { ...position, row };
      return hit;
    }
    const base = layout.offsetOf(buf);
    const lanes = [0, 1, 2, 3].map((lane) => {
      const t = L.tmp();
      const off = address(base, x, lane);
      f.load('v128', off, 2).set(t);
      return t;
    });
    position = { ...position, row };
    const bytes = (ls: number[]) => ls.flatMap((l) => [4 * l, 4 * l + 1, 4 * l + 2, 4 * l + 3]);
    const shuffle = (a: number, b: number, ls: number[]) => {
      const t = L.tmp();
      f.get(a)
        .get(b)
        .simd(Simd.i8x16Shuffle, ...bytes(ls))
        .set(t);
      return t;
    };
    // pairs: (l0[0], l1[0], l0[1], l1[1]), (l0[2], l1[2], l0[3], l1[3]), the same of l2, l3; then row r's four lanes
    const lo01 = shuffle(lanes[0], lanes[1], [0, 4, 1, 5]);
    const hi01 = shuffle(lanes[0], lanes[1], [2, 6, 3, 7]);
    const lo23 = shuffle(lanes[2], lanes[3], [0, 4, 1, 5]);
    const hi23 = shuffle(lanes[2], lanes[3], [2, 6, 3, 7]);
    const rows = [
      shuffle(lo01, lo23, [0, 1, 4, 5]),
      shuffle(lo01, lo23, [2, 3, 6, 7]),
      shuffle(hi01, hi23, [0, 1, 4, 5]),
      shuffle(hi01, hi23, [2, 3, 6, 7]),
    ];
    rows.forEach((t, r) => memo[level].set(`${key}#${r}`, t));
    return rows[row];
  };

  const compute = (s: Scalar): number => {
    switch (s.k) {
      case 'lit':
        return L.constLocal(s.v);
      case 'load': {
        const t = L.tmp();
        if (isPacked(s)) {
          f.get(packRead)
            .load('v128', 16 * position.vector, 4)
            .set(t);
          return t;
        }
        const base = layout.offsetOf(s.buf);
        const walked = pointerFor(s.at);
        if (walked && (L.width === 1 || !dependsOnVec(s.at) || coefficientOf(s.at, vecVar!) === 1)) {
          f.get(walked.local);
          f.load(L.width === 1 ? 'f32' : !dependsOnVec(s.at) ? 'splat' : 'v128', walked.own ? 0 : base + 4 * walked.c, 2).set(t);
        } else if (L.width === 1) {
          const off = address(base, s.at);
          f.load('f32', off).set(t);
        } else if (!dependsOnVec(s.at) || laneUniform(s.at, vecVar!)) {
          const off = address(base, s.at);
          f.load('splat', off).set(t);
        } else if (coefficientOf(s.at, vecVar!) === 1) {
          const off = address(base, s.at);
          f.load('v128', off, 2).set(t);
        } else if (transposable(s.at)) {
          return transposedLoad(s.buf, s.at);
        } else {
          for (let lane = 0; lane < 4; lane++) {
            if (lane > 0) f.get(t);
            const off = address(base, s.at, lane);
            f.load('f32', off);
            f.simd(lane === 0 ? Simd.f32x4Splat : Simd.f32x4ReplaceLane, ...(lane === 0 ? [] : [lane]));
            f.set(t);
          }
        }
        return t;
      }
      case 'un': {
        const x = value(s.x);
        const routine = unaryRoutine[s.op];
        if (routine) return routine(L, x);
        switch (s.op) {
          case 'neg':
            return L.neg(x);
          case 'sqrt':
            return L.sqrt(x);
          case 'rsqrt':
            return L.div({ c: 1 }, L.sqrt(x));
          case 'relu':
            return L.max(x, { c: 0 });
          case 'abs':
            return L.abs(x);
          case 'floor':
            return L.floor(x);
          default:
            throw new Error(`wasm codegen: no routine for ${s.op}`);
        }
      }
      case 'bin': {
        if (s.op === 'pow' && s.b.k === 'lit') {
          const x = value(s.a);
          const p = s.b.v;
          if (p === 1) return x;
          if (p === 2) return L.mul(x, x);
          if (p === 3) return L.mul(L.mul(x, x), x);
          if (p === 0.5) return L.sqrt(x);
          if (p === -0.5) return L.div({ c: 1 }, L.sqrt(x));
          if (p === -1) return L.div({ c: 1 }, x);
          if (p === 0) return L.constLocal(1);
        }
        const a = value(s.a);
        const b = value(s.b);
        switch (s.op) {
          case 'add':
            return L.add(a, b);
          case 'sub':
            return L.sub(a, b);
          case 'mul':
            return L.mul(a, b);
          case 'div':
            return L.div(a, b);
          case 'max':
            return L.max(a, b);
          case 'min':
            return L.min(a, b);
          case 'pow':
            return M.pow(L, a, b);
          default:
            return L.maskToFloat(L.compare(s.op, a, b));
        }
      }
      case 'where': {
        const c = value(s.c);
        return L.select(L.compare('ne', c, { c: 0 }), value(s.a), value(s.b));
      }
      case 'guard': {
        const x = value(s.x);
        if (!s.conds.length) return x;
        const masks = s.conds.map(condMask);
        let m = masks[0];
        for (const other of masks.slice(1)) m = maskAnd(m, other);
        return L.select(m, x, { c: 0 });
      }
      case 'pick': {
        if (branching.has(s)) return branch(s);
        const a = value(s.a);
        const b = value(s.b);
        return L.select(condMask(s.cond), a, b);
      }
      case 'random': {
        const counter = value(s.counter);
        return randomDraw(L, randomBase(s.seed, s.stream), counter, indexValue(s.at), s.dist === 'normal');
      }
      case 'reduce':
        throw new Error('unreachable');
    }
  };

  /**
   * A pick whose condition is the same on every lane, as an if / else: only the branch taken is computed (a time
   * embedding's sin or cos, not both). What a branch computes at this level stays inside it (its memo entries are
   * dropped at the branch's end); what it reads from outer levels was computed there, before the loop.
   */
  const branch = (s: Extract<Scalar, { k: 'pick' }>): number => {
    const out = L.tmp();
    const arm = (x: Scalar) => {
      const before = new Set(memo[level].keys());
      f.get(value(x)).set(out);
      for (const key of [...memo[level].keys()]) if (!before.has(key)) memo[level].delete(key);
    };
    condCheck(s.cond, resolve(s.cond.ix));
    f.if();
    arm(s.a);
    f.op(Op.else);
    arm(s.b);
    f.end();
    return out;
  };

  const maskAnd = (a: number, b: number): number => {
    const t = L.tmp();
    if (L.width === 4) f.get(a).get(b).simd(Simd.v128And).set(t);
    else f.get(a).op(Op.i32ReinterpretF32).get(b).op(Op.i32ReinterpretF32).op(Op.i32And).op(Op.f32ReinterpretI32).set(t);
    return t;
  };

  // ---- loop nest -----------------------------------------------------------------------------------------------

  const positions: { row: number; vector: number }[] = [];
  for (let row = 0; row < tiling.rows; row++) for (let vector = 0; vector < tiling.vectors; vector++) positions.push({ row, vector });

  /** scalars outside the reduction body, by the loop level they belong to; and those of the body */
  const levelOf = new Map<Scalar, number>();
  const inBody = new Set<Scalar>();
  if (reduction) walk(reduction.body, (s) => inBody.add(s));
  const afterReduce = new Set<Scalar>();
  const ixLevel = (x: Ix) => Math.max(0, ...loopVars.filter((v) => ixDependsOn(x, v)).map((v) => levelOfVar.get(v)!));
  // a reduction's value is available once every output loop is open and the reduction has run
  const computeLevel = (s: Scalar): number => scalarLevel(s, ixLevel, levelOf, rank);
  const roots = [ir.value, ...ir.extras.map((x) => x.value)];
  // picks computed as an if / else (branch): outside a reduction's body, a condition that does not move with the
  // lanes, and a transcendental in a branch (else a select of both is cheaper than a branch)
  const costly = (x: Scalar) => {
    let found = false;
    walk(x, (t) => (found ||= (t.k === 'un' && unaryRoutine[t.op] !== undefined) || (t.k === 'bin' && t.op === 'pow')));
    return found;
  };
  for (const root of roots)
    walk(root, (s) => {
      if (s.k !== 'pick' || inBody.has(s) || onReduction || (L.width === 4 && dependsOnVec(s.cond.ix))) return;
      if (reduction && walkHas(s, reduction)) return;
      if (costly(s.a) || costly(s.b)) branching.add(s);
    });
  // scalars precomputed at their level: every one outside the branches, and those inside at an outer level (hoisted)
  const precomputed = new Set<Scalar>();
  const outside = (s: Scalar) => {
    if (precomputed.has(s)) return;
    precomputed.add(s);
    if (s.k === 'pick' && branching.has(s)) {
      const own = computeLevel(s);
      for (const arm of [s.a, s.b]) walk(arm, (t) => void (t.k !== 'lit' && computeLevel(t) < own && precomputed.add(t)));
    } else if (s.k !== 'reduce') mapChildren(s, (c) => (outside(c), c));
  };
  roots.forEach(outside);
  const byLevel: Scalar[][] = loopVars.map(() => []).concat([[]]);
  for (const root of roots)
    walk(root, (s) => {
      if (s.k === 'lit' || inBody.has(s) || !precomputed.has(s)) return;
      computeLevel(s);
      if (s.k === 'reduce' || (reduction && walkHas(s, reduction))) afterReduce.add(s);
      else byLevel[computeLevel(s)].push(s);
    });
  const bodyByLevel: Scalar[][] = loopVars.map(() => []).concat([[]]);
  if (reduction) walk(reduction.body, (s) => s.k !== 'lit' && bodyByLevel[computeLevel(s)].push(s));

  const forEachPosition = (body: () => void) => {
    for (const p of positions) {
      position = p;
      body();
    }
    position = { row: 0, vector: 0 };
  };
  const preEmit = (list: readonly Scalar[]) => forEachPosition(() => list.forEach((s) => value(s)));

  const openLoop = (v: number, step: number, body: () => void, bounds?: { from: { local: number }; to: { local: number } }) => {
    const local = f.local('i32');
    bindings.set(v, { local, offset: 0 });
    f.forRange(local, bounds?.from ?? 0, bounds?.to ?? ir.vars.get(v)!.extent, step, () => {
      level = levelOfVar.get(v)!;
      body();
      memo[levelOfVar.get(v)!].clear();
      level = levelOfVar.get(v)! - 1;
    });
    bindings.delete(v);
  };

  const store = (node: number, s: Scalar) => {
    const base = layout.offsetOf(node);
    const flat: Ix = { terms: flatTerms(), c: 0 };
    const contiguous = L.width === 1 || tiling.vecAxis === rank - 1;
    forEachPosition(() => {
      const x = value(s);
      if (raggedExtent !== undefined) return storeRagged(base, flat, x, contiguous, raggedExtent);
      if (onReduction) {
        const off = address(base, flat);
        f.get(x).simd(Simd.f32x4ExtractLane, 0).store('f32', off, 2);
        return;
      }
      if (contiguous) {
        const off = address(base, flat);
        f.get(x).store(L.width === 4 ? 'v128' : 'f32', off, 2);
        return;
      }
      for (let lane = 0; lane < 4; lane++) {
        const off = address(base, flat, lane);
        f.get(x).simd(Simd.f32x4ExtractLane, lane).store('f32', off, 2);
      }
    });
  };
  /** the last vector of a ragged axis stores only its lanes inside the extent (lane l while j + l < extent) */
  const storeRagged = (base: number, flat: Ix, x: number, contiguous: boolean, extent: number) => {
    const j = bindings.get(vecVar!)!.local;
    const lane = (l: number) => {
      f.get(j)
        .i32(extent - 1 - l)
        .op(Op.i32LeS)
        .if();
      const off = address(base, flat, l);
      f.get(x).simd(Simd.f32x4ExtractLane, l).store('f32', off, 2).end();
    };
    if (!contiguous) return [0, 1, 2, 3].forEach(lane);
    f.get(j)
      .i32(extent - 4)
      .op(Op.i32LeS)
      .if();
    const off = address(base, flat);
    f.get(x).store('v128', off, 2).op(Op.else);
    [0, 1, 2].forEach(lane);
    f.end();
  };
  const flatTerms = (): (readonly [Atom, number])[] => {
    let stride = 1;
    const out: [Atom, number][] = [];
    for (let d = rank - 1; d >= 0; d--) {
      if (ir.shape[d] !== 1) out.push([{ k: 'var', v: ir.outVars[d] }, stride]);
      stride *= ir.shape[d];
    }
    return out;
  };

  /**
   * Running pointers for the innermost reduction loop: a load whose index is affine in its variable reads at
   * (pointer + constant), and the pointer steps once per iteration, shared by every tile position and lane offset
   * that reads the same row (their constants differ only).
   */
  let innermost: number | undefined;
  const pointers = new Map<string, { local: number; step: number }>();
  const pointerKey = (x: Ix): { key: string; c: number; terms: Resolved['terms']; own: number } | undefined => {
    if (innermost === undefined || !ixDependsOn(x, innermost)) return undefined;
    const step = coefficientOf(x, innermost);
    if (step === undefined) return undefined;
    const x0 = substituteIx(x, innermost, 0, ir.vars);
    const r0 = resolve(x0);
    // the pointer itself must stay non-negative (wasm adds it to the offset unsigned): when it could go below zero,
    // the constant goes into the pointer and the pointer is not shared with other constants
    const inPointer = step < 0 || range({ terms: x.terms, c: 0 }, ir.vars)[0] < 0;
    if (inPointer) return { key: `${resolvedKey(r0)}|${step}|own`, c: 0, terms: r0.terms, own: r0.c };
    return { key: `${resolvedKey({ terms: r0.terms, c: 0 })}|${step}`, c: r0.c, terms: r0.terms, own: 0 };
  };
  const pointerFor = (x: Ix): { local: number; c: number; own: boolean } | undefined => {
    const pk = pointerKey(x);
    const p = pk && pointers.get(pk.key);
    return p && pk ? { local: p.local, c: pk.c, own: pk.key.endsWith('|own') } : undefined;
  };
  const makePointers = (loads: readonly Scalar[], v: number) => {
    forEachPosition(() => {
      for (const s of loads) {
        if (s.k !== 'load' || isPacked(s)) continue;
        const pk = pointerKey(s.at);
        if (!pk || pointers.has(pk.key)) continue;
        const local = f.local('i32');
        pushResolved({ terms: pk.terms, c: pk.own });
        f.i32(2).op(Op.i32Shl);
        if (pk.own !== 0) f.i32(layout.offsetOf(s.buf)).op(Op.i32Add);
        f.set(local);
        pointers.set(pk.key, { local, step: 4 * coefficientOf(s.at, v)! * (v === vecVar ? 4 : 1) });
      }
    });
  };

  const reduceLoops = (r: Extract<Scalar, { k: 'reduce' }>) => {
    forEachPosition(() => {
      const acc = L.constLocal(r.op === 'sum' ? 0 : -Infinity);
      accumulators.set(keyOf(r), acc);
    });
    const open = (i: number) => {
      if (i === r.vars.length) {
        const body = r.body.k === 'guard' && r.body.conds.length === 0 ? r.body.x : r.body; // an empty guard is x
        const fused = options.fma === true && L.width === 4 && r.op === 'sum' && body.k === 'bin' && body.op === 'mul';
        forEachPosition(() => {
          const acc = accumulators.get(keyOf(r))!;
          if (fused) L.relaxedMulAdd(value(body.a), value(body.b), acc, acc);
          else if (r.op === 'sum') L.add(acc, value(body), acc);
          else L.max(acc, value(body), acc);
        });
        return;
      }
      const last = i === r.vars.length - 1;
      if (last) {
        innermost = r.vars[i];
        makePointers(bodyByLevel[rank + i + 1], r.vars[i]);
      }
      if (packed) {
        // this tile's column block of the packed panel: scratch + 4 (j - panel start) K
        packRead = f.local('i32');
        f.get(bindings.get(vecVar!)!.local)
          .get(panelStart)
          .op(Op.i32Sub)
          .i32(4 * packed.length)
          .op(Op.i32Mul);
        f.get(scratch).op(Op.i32Add).set(packRead);
      }
      openLoop(r.vars[i], r.vars[i] === vecVar ? 4 : 1, () => {
        preEmit(bodyByLevel[rank + i + 1].filter((s) => s !== r.body));
        open(i + 1);
        if (last) for (const p of pointers.values()) f.get(p.local).i32(p.step).op(Op.i32Add).set(p.local);
        if (packed)
          f.get(packRead)
            .i32(16 * tiling.vectors)
            .op(Op.i32Add)
            .set(packRead);
      });
      if (last) {
        innermost = undefined;
        pointers.clear();
      }
    };
    preEmit(bodyByLevel.slice(0, rank + 1).flat());
    open(0);
    // lanes along the reduction: combine them, (l0 + l2) + (l1 + l3) in every lane, so the epilogue sees splats
    if (onReduction)
      forEachPosition(() => {
        const acc = accumulators.get(keyOf(r))!;
        const combine = r.op === 'sum' ? Simd.f32x4Add : Simd.f32x4Max;
        const swap = (lanes: number[]) => lanes.flatMap((l) => [4 * l, 4 * l + 1, 4 * l + 2, 4 * l + 3]);
        f.get(acc)
          .get(acc)
          .simd(Simd.i8x16Shuffle, ...swap([2, 3, 0, 1]))
          .get(acc)
          .simd(combine)
          .set(acc);
        f.get(acc)
          .get(acc)
          .simd(Simd.i8x16Shuffle, ...swap([1, 0, 3, 2]))
          .get(acc)
          .simd(combine)
          .set(acc);
      });
  };

  const outLoops = (d: number) => {
    if (d === rank) {
      if (reduction) reduceLoops(reduction);
      preEmit([...afterReduce].filter((s) => s.k !== 'reduce'));
      ir.extras.forEach((x, j) => store(outputs.extras[j], x.value));
      store(outputs.root, ir.value);
      return;
    }
    const v = ir.outVars[d];
    const step = v === vecVar ? 4 * tiling.vectors : v === colVar ? tiling.vectors : v === rowVar ? tiling.rows : 1;
    const loop = () =>
      openLoop(
        v,
        step,
        () => {
          preEmit(byLevel[d + 1]);
          outLoops(d + 1);
        },
        d === 0 && tiling.panel === 0 ? { from: { local: 0 }, to: { local: 1 } } : v === vecVar ? panelBounds : undefined,
      );
    if (!(tiling.panel > 0 && v === rowVar)) return loop();
    // the panel loop, just outside the row loop, over the call's range: the vector loop inside walks [p, p + panel)
    const p = f.local('i32');
    const pEnd = f.local('i32');
    f.forRange(p, { local: 0 }, { local: 1 }, tiling.panel, () => {
      f.get(p).i32(tiling.panel).op(Op.i32Add).set(pEnd);
      panelStart = p;
      pack(p);
      panelBounds = { from: { local: p }, to: { local: pEnd } };
      loop();
      panelBounds = undefined;
    });
  };
  /**
   * Copies the packed operand's panel [p, p + panel) x K into the thread's scratch, tile block by tile block, each
   * block as K rows of the tile's width: the stores are consecutive, the loads are the operand's own rows.
   */
  const pack = (p: number) => {
    if (!packed) return;
    const width = 4 * tiling.vectors;
    const block = f.local('i32');
    const column = f.local('i32');
    const k = f.local('i32');
    const dst = f.local('i32');
    const base = layout.offsetOf(packed.buf);
    f.get(scratch).set(dst);
    f.forRange(block, 0, tiling.panel, width, () => {
      f.get(p).get(block).op(Op.i32Add).set(column);
      bindings.set(vecVar!, { local: column, offset: 0 });
      bindings.set(packed.k, { local: k, offset: 0 });
      f.forRange(k, 0, packed.length, 1, () => {
        for (let vector = 0; vector < tiling.vectors; vector++) {
          position = { row: 0, vector };
          f.get(dst);
          const off = address(base, packed.at);
          f.load('v128', off, 2).store('v128', 16 * vector, 4);
        }
        position = { row: 0, vector: 0 };
        f.get(dst)
          .i32(16 * tiling.vectors)
          .op(Op.i32Add)
          .set(dst);
      });
      bindings.delete(vecVar!);
      bindings.delete(packed.k);
    });
  };
  let panelBounds: { from: { local: number }; to: { local: number } } | undefined;
  if (packed) {
    if (!layout.scratch) throw new Error('wasm codegen: a packed kernel needs a scratch area');
    scratch = f.local('i32');
    f.get(2).i32(layout.scratch.bytesPerThread).op(Op.i32Mul).i32(layout.scratch.base).op(Op.i32Add).set(scratch);
  }
  preEmit(byLevel[0]);
  outLoops(0);
  return f;
};

const walkHas = (root: Scalar, target: Scalar): boolean => {
  let found = false;
  walk(root, (s) => (found ||= s === target));
  return found;
};
