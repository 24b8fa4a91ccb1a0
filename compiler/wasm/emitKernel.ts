// Kernel IR -> one WebAssembly function over the plan's memory (buffer offsets are constants of the module).
// The output is walked by nested loops over its axes with integer indices (exact at every size the memory holds).
// The innermost axis runs four lanes at a time (f32x4) when its extent allows: a load whose index steps by one
// along it is a v128.load, one that does not depend on it a load32_splat, any other a four-lane gather. A kernel
// with a reduction is register-tiled: R rows x 4*CV columns of the output are computed together, so one pass of
// the reduction loop updates R*CV vector accumulators and every operand load is shared (memoised by its resolved
// address) by the tile positions that read it: for a matmul, one splat of A per row and one vector of B per
// column block. Values are computed at the outermost loop level whose variables they depend on.
import { randomBase } from '../../core/rng.ts';
import type { UnaryOp } from '../../core/ir.ts';
import { coefficientOf, ixDependsOn, range, substituteIx, type Atom, type Ix } from '../kernel/indexExpr.ts';
import { reductionOf, scalarLevel, walk, type Cond, type KernelIR, type Scalar } from '../kernel/ir.ts';
import { FunctionBody, Op, Simd } from './encoder.ts';
import { Lanes } from './lanes.ts';
import * as M from './math.ts';
import { randomDraw } from './rng.ts';

export interface KernelLayout {
  /** byte offset of a node's buffer in the plan's memory */
  offsetOf(node: number): number;
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
}

const scalarTiling: Tiling = { width: 1, rows: 1, vectors: 1, vecAxis: -1, rowAxis: -1 };

/** The step of the outermost output loop: a thread's share of a kernel is a multiple of it. */
export const outerStep = (ir: KernelIR, t: Tiling): number => {
  if (ir.shape.length === 0) return 1;
  if (t.vecAxis === 0) return t.width * t.vectors;
  return t.rowAxis === 0 ? t.rows : 1;
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
export const chooseTiling = (ir: KernelIR): Tiling => {
  const rank = ir.shape.length;
  if (rank === 0) return scalarTiling;
  const loads = loadsOf(ir);
  const costAlong = (axis: number): number => {
    const v = ir.outVars[axis];
    // gathers cost 4 loads each; the output store along a non-innermost axis is a 4-lane scatter
    const gathers = loads.filter((x) => ixDependsOn(x, v) && coefficientOf(x, v) !== 1).length;
    return 4 * gathers + (axis === rank - 1 ? 0 : 4) - loads.filter((x) => !ixDependsOn(x, v)).length * 0.5;
  };
  const candidates = ir.outVars.map((_, a) => a).filter((a) => ir.shape[a] % 4 === 0);
  if (!candidates.length) return scalarTiling;
  const vecAxis = candidates.reduce((best, a) =>
    costAlong(a) < costAlong(best) || (costAlong(a) === costAlong(best) && a > best) ? a : best,
  );
  const hasReduction = reductionOf(ir) !== undefined;
  const vectors = hasReduction && ir.shape[vecAxis] % 8 === 0 ? 2 : 1;
  if (!hasReduction || rank < 2) return { width: 4, rows: 1, vectors, vecAxis, rowAxis: -1 };
  const others = ir.outVars.map((_, a) => a).filter((a) => a !== vecAxis && ir.shape[a] % 2 === 0);
  if (!others.length) return { width: 4, rows: 1, vectors, vecAxis, rowAxis: -1 };
  const rowAxis = others[others.length - 1];
  return { width: 4, rows: ir.shape[rowAxis] % 4 === 0 ? 4 : 2, vectors, vecAxis, rowAxis };
};

const unaryRoutine: Partial<Record<UnaryOp, (L: Lanes, x: number) => number>> = {
  exp: M.exp,
  log: M.log,
  sin: M.sin,
  cos: M.cos,
  tanh: M.tanh,
  sigmoid: M.sigmoid,
};

export const emitKernel = (
  ir: KernelIR,
  layout: KernelLayout,
  outputs: { root: number; extras: readonly number[] },
  tiling = chooseTiling(ir),
): FunctionBody => {
  // (lo, hi): the range of the outermost output axis this call computes, so threads can split a kernel by rows
  const f = new FunctionBody(['i32', 'i32']);
  const L = new Lanes(f, tiling.width);
  const rank = ir.shape.length;
  const vecVar = tiling.width === 4 ? ir.outVars[tiling.vecAxis] : undefined;
  const rowVar = tiling.rows > 1 ? ir.outVars[tiling.rowAxis] : undefined;
  const reduction = (() => {
    let r: Extract<Scalar, { k: 'reduce' }> | undefined;
    for (const root of [ir.value, ...ir.extras.map((x) => x.value)]) walk(root, (s) => void (s.k === 'reduce' && (r = s)));
    return r;
  })();
  const loopVars = [...ir.outVars, ...(reduction?.vars ?? [])];
  const levelOfVar = new Map(loopVars.map((v, i) => [v, i + 1]));
  const bindings = new Map<number, Binding>();
  /** memoised values per loop level (a local, valid while that level's iteration runs) */
  const memo: Map<string, number>[] = loopVars.map(() => new Map()).concat([new Map()]);
  let level = 0;
  let position = { row: 0, vector: 0 };
  const accumulators = new Map<string, number>();

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
    const tileOffset = v === vecVar ? position.vector * 4 : v === rowVar ? position.row : 0;
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

  /** A lane mask (all ones where the condition holds) for an index condition. */
  const condMask = (c: Cond): number => {
    const [lo, hi] = range(c.ix, ir.vars);
    /** pushes an i32 that is 1 where the condition holds, else 0 */
    const checks = (r: Resolved) => {
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
      checks(resolve(c.ix));
      f.i32(-1).op(Op.i32Mul);
      if (L.width === 4) f.simd(Simd.i32x4Splat);
      else f.op(Op.f32ReinterpretI32);
      f.set(mask);
      return mask;
    }
    for (let lane = 0; lane < 4; lane++) {
      if (lane === 0) f.i32(0).simd(Simd.i32x4Splat);
      checks(resolve(c.ix, lane));
      f.i32(-1).op(Op.i32Mul).simd(Simd.i32x4ReplaceLane, lane);
    }
    f.set(mask);
    return mask;
  };

  const compute = (s: Scalar): number => {
    switch (s.k) {
      case 'lit':
        return L.constLocal(s.v);
      case 'load': {
        const t = L.tmp();
        const base = layout.offsetOf(s.buf);
        const walked = pointerFor(s.at);
        if (walked && (L.width === 1 || !dependsOnVec(s.at) || coefficientOf(s.at, vecVar!) === 1)) {
          f.get(walked.local);
          f.load(L.width === 1 ? 'f32' : !dependsOnVec(s.at) ? 'splat' : 'v128', walked.own ? 0 : base + 4 * walked.c, 2).set(t);
        } else if (L.width === 1) {
          const off = address(base, s.at);
          f.load('f32', off).set(t);
        } else if (!dependsOnVec(s.at)) {
          const off = address(base, s.at);
          f.load('splat', off).set(t);
        } else if (coefficientOf(s.at, vecVar!) === 1) {
          const off = address(base, s.at);
          f.load('v128', off, 2).set(t);
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
  const byLevel: Scalar[][] = loopVars.map(() => []).concat([[]]);
  for (const root of roots)
    walk(root, (s) => {
      if (s.k === 'lit' || inBody.has(s)) return;
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
        if (s.k !== 'load') continue;
        const pk = pointerKey(s.at);
        if (!pk || pointers.has(pk.key)) continue;
        const local = f.local('i32');
        pushResolved({ terms: pk.terms, c: pk.own });
        f.i32(2).op(Op.i32Shl);
        if (pk.own !== 0) f.i32(layout.offsetOf(s.buf)).op(Op.i32Add);
        f.set(local);
        pointers.set(pk.key, { local, step: 4 * coefficientOf(s.at, v)! });
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
        forEachPosition(() => {
          const acc = accumulators.get(keyOf(r))!;
          const v = value(r.body);
          if (r.op === 'sum') L.add(acc, v, acc);
          else L.max(acc, v, acc);
        });
        return;
      }
      const last = i === r.vars.length - 1;
      if (last) {
        innermost = r.vars[i];
        makePointers(bodyByLevel[rank + i + 1], r.vars[i]);
      }
      openLoop(r.vars[i], 1, () => {
        preEmit(bodyByLevel[rank + i + 1].filter((s) => s !== r.body));
        open(i + 1);
        if (last) for (const p of pointers.values()) f.get(p.local).i32(p.step).op(Op.i32Add).set(p.local);
      });
      if (last) {
        innermost = undefined;
        pointers.clear();
      }
    };
    preEmit(bodyByLevel.slice(0, rank + 1).flat());
    open(0);
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
    const step = v === vecVar ? 4 * tiling.vectors : v === rowVar ? tiling.rows : 1;
    openLoop(
      v,
      step,
      () => {
        preEmit(byLevel[d + 1]);
        outLoops(d + 1);
      },
      d === 0 ? { from: { local: 0 }, to: { local: 1 } } : undefined,
    );
  };
  preEmit(byLevel[0]);
  outLoops(0);
  return f;
};

const walkHas = (root: Scalar, target: Scalar): boolean => {
  let found = false;
  walk(root, (s) => (found ||= s === target));
  return found;
};
