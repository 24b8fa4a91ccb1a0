// The kernel IR: what one fused kernel computes, as data. The output is iterated over its coordinates (one 'out'
// variable per axis); the value of each element is a scalar expression tree over loads of buffers at integer index
// expressions (indexExpr.ts), literals, the primitives' arithmetic and at most one reduction (a loop over 'red'
// variables). Code generators (gpu.js source, WebAssembly) consume it; optimisations are functions of it.
import type { BinaryOp, CompareOp, RandomDist, UnaryOp } from '../../core/ir.ts';
import { range, type Ix, type VarInfo } from './indexExpr.ts';

/** lo <= ix <= hi, or (with `step`) also ix divisible by step. */
export interface Cond {
  readonly ix: Ix;
  readonly lo: number;
  readonly hi: number;
  readonly step?: number;
}

export type Scalar =
  | { readonly k: 'lit'; readonly v: number }
  /** element `at` of the buffer of graph node `buf` */
  | { readonly k: 'load'; readonly buf: number; readonly at: Ix }
  | { readonly k: 'un'; readonly op: UnaryOp; readonly x: Scalar }
  | { readonly k: 'bin'; readonly op: BinaryOp | CompareOp; readonly a: Scalar; readonly b: Scalar }
  | { readonly k: 'where'; readonly c: Scalar; readonly a: Scalar; readonly b: Scalar }
  /** x where every condition on the indices holds, else 0 (pad's zeros, conv2d's padding) */
  | { readonly k: 'guard'; readonly conds: readonly Cond[]; readonly x: Scalar }
  /** a where the condition on the indices holds, else b (concat) */
  | { readonly k: 'pick'; readonly cond: Cond; readonly a: Scalar; readonly b: Scalar }
  /** the counter-based RNG at flat element `at` of the random node */
  | {
      readonly k: 'random';
      readonly seed: number;
      readonly stream: number;
      readonly dist: RandomDist;
      readonly counter: Scalar;
      readonly at: Ix;
    }
  /** sum or max of body over the reduction variables `vars` (innermost last) */
  | { readonly k: 'reduce'; readonly op: 'sum' | 'max'; readonly vars: readonly number[]; readonly body: Scalar };

export interface KernelIR {
  /** the output's shape; out variable i runs over axis i */
  readonly shape: readonly number[];
  readonly outVars: readonly number[];
  /** every variable, output and reduction */
  readonly vars: ReadonlyMap<number, VarInfo>;
  /** the value of output element (outVars) */
  readonly value: Scalar;
  /** further outputs of the same shape at the same element (multi-output kernels) */
  readonly extras: readonly { readonly node: number; readonly value: Scalar }[];
  /** graph nodes whose buffers the kernel reads, in first-use order */
  readonly reads: readonly number[];
}

/** Visits every scalar node once, children before parents. */
export const walk = (s: Scalar, visit: (s: Scalar) => void, seen = new Set<Scalar>()): void => {
  if (seen.has(s)) return;
  seen.add(s);
  switch (s.k) {
    case 'un':
      walk(s.x, visit, seen);
      break;
    case 'bin':
      walk(s.a, visit, seen);
      walk(s.b, visit, seen);
      break;
    case 'where':
      walk(s.c, visit, seen);
      walk(s.a, visit, seen);
      walk(s.b, visit, seen);
      break;
    case 'guard':
      walk(s.x, visit, seen);
      break;
    case 'pick':
      walk(s.a, visit, seen);
      walk(s.b, visit, seen);
      break;
    case 'random':
      walk(s.counter, visit, seen);
      break;
    case 'reduce':
      walk(s.body, visit, seen);
      break;
    default:
      break;
  }
  visit(s);
};

/** s with each scalar child replaced by f(child) (indices and conditions kept); leaves are returned as they are. */
export const mapChildren = (s: Scalar, f: (child: Scalar) => Scalar): Scalar => {
  switch (s.k) {
    case 'lit':
    case 'load':
      return s;
    case 'un':
      return { ...s, x: f(s.x) };
    case 'bin':
      return { ...s, a: f(s.a), b: f(s.b) };
    case 'where':
      return { ...s, c: f(s.c), a: f(s.a), b: f(s.b) };
    case 'guard':
      return { ...s, x: f(s.x) };
    case 'pick':
      return { ...s, a: f(s.a), b: f(s.b) };
    case 'random':
      return { ...s, counter: f(s.counter) };
    case 'reduce':
      return { ...s, body: f(s.body) };
  }
};

/** The reduction of a kernel, if it has one (fusion puts at most one core in a kernel). */
export const reductionOf = (k: KernelIR): Extract<Scalar, { k: 'reduce' }> | undefined => {
  let found: Extract<Scalar, { k: 'reduce' }> | undefined;
  for (const root of [k.value, ...k.extras.map((e) => e.value)])
    walk(root, (s) => {
      if (s.k === 'reduce') {
        if (found && found !== s) throw new Error('kernel IR: more than one reduction in a kernel');
        found = s;
      }
    });
  return found;
};

/**
 * The largest integer any index of the kernel takes (output element, loaded element, or an intermediate of index
 * arithmetic), plus one: a backend whose index arithmetic is exact only below some bound compares against this.
 */
export const indexExtent = (k: KernelIR): number => {
  let hi = k.shape.reduce((a, b) => a * b, 1);
  const visitIx = (x: Ix): void => {
    const [lo, h] = range(x, k.vars);
    hi = Math.max(hi, h + 1, -lo + 1);
    for (const [a] of x.terms) if (a.k !== 'var') visitIx(a.x);
  };
  for (const root of [k.value, ...k.extras.map((e) => e.value)])
    walk(root, (s) => {
      if (s.k === 'load' || s.k === 'random') visitIx(s.at);
      else if (s.k === 'guard') s.conds.forEach((c) => visitIx(c.ix));
      else if (s.k === 'pick') visitIx(s.cond.ix);
    });
  return hi;
};

/**
 * The loop level a scalar can be computed at: the deepest level among the variables its indices use (ixLevel maps an
 * index expression to that level), and `reduceLevel` for a reduction's value. Memoised per scalar in `memo`.
 */
export const scalarLevel = (s: Scalar, ixLevel: (x: Ix) => number, memo: Map<Scalar, number>, reduceLevel = 0): number => {
  const hit = memo.get(s);
  if (hit !== undefined) return hit;
  const of = (t: Scalar) => scalarLevel(t, ixLevel, memo, reduceLevel);
  let l = 0;
  switch (s.k) {
    case 'load':
      l = ixLevel(s.at);
      break;
    case 'un':
      l = of(s.x);
      break;
    case 'bin':
      l = Math.max(of(s.a), of(s.b));
      break;
    case 'where':
      l = Math.max(of(s.c), of(s.a), of(s.b));
      break;
    case 'guard':
      l = Math.max(of(s.x), ...s.conds.map((c) => ixLevel(c.ix)));
      break;
    case 'pick':
      l = Math.max(ixLevel(s.cond.ix), of(s.a), of(s.b));
      break;
    case 'random':
      l = Math.max(of(s.counter), ixLevel(s.at));
      break;
    case 'reduce':
      l = reduceLevel;
      break;
    case 'lit':
      break;
  }
  memo.set(s, l);
  return l;
};
