// The kernel IR's meaning, in float64 on the host: the reference that the IR's transformations (lanes.ts, ...) are
// tested against. Slow and plain on purpose: one element at a time, every index computed exactly.
import { unaryFns, binaryFns } from '../../core/primitives/elementwise.ts';
import { normalAt, randomKey, uniformAt } from '../../core/rng.ts';
import type { Atom, Ix, VarInfo } from './indexExpr.ts';
import type { Cond, Scalar } from './ir.ts';

/** Buffer contents by graph node id. */
export type Buffers = ReadonlyMap<number, ArrayLike<number>>;

const atomValue = (a: Atom, env: ReadonlyMap<number, number>): number => {
  switch (a.k) {
    case 'var': {
      const v = env.get(a.v);
      if (v === undefined) throw new Error(`evaluate: variable v${a.v} unbound`);
      return v;
    }
    case 'div':
      return Math.floor(ixValue(a.x, env) / a.d);
    case 'mod': {
      const x = ixValue(a.x, env);
      return x - Math.floor(x / a.d) * a.d;
    }
    case 'clamp':
      return Math.min(Math.max(ixValue(a.x, env), a.lo), a.hi);
  }
};

export const ixValue = (x: Ix, env: ReadonlyMap<number, number>): number =>
  x.terms.reduce((acc, [a, c]) => acc + c * atomValue(a, env), x.c);

const holds = (c: Cond, env: ReadonlyMap<number, number>): boolean => {
  const x = ixValue(c.ix, env);
  return x >= c.lo && x <= c.hi && (!c.step || x % c.step === 0);
};

/** The value of s with the variables in env bound; loads read `buffers` (a read out of bounds throws). */
export const scalarValue = (s: Scalar, env: Map<number, number>, buffers: Buffers, vars: ReadonlyMap<number, VarInfo>): number => {
  const go = (t: Scalar): number => scalarValue(t, env, buffers, vars);
  switch (s.k) {
    case 'lit':
      return s.v;
    case 'load': {
      const buf = buffers.get(s.buf);
      const i = ixValue(s.at, env);
      if (!buf || !(i >= 0 && i < buf.length)) throw new Error(`evaluate: load of buffer ${s.buf} at ${i} out of bounds`);
      return buf[i];
    }
    case 'un':
      return unaryFns[s.op](go(s.x));
    case 'bin':
      return binaryFns[s.op](go(s.a), go(s.b));
    case 'where':
      return go(s.c) !== 0 ? go(s.a) : go(s.b);
    case 'guard':
      return s.conds.every((c) => holds(c, env)) ? go(s.x) : 0;
    case 'pick':
      return holds(s.cond, env) ? go(s.a) : go(s.b);
    case 'random': {
      const key = randomKey(s.seed, s.stream, go(s.counter));
      const i = ixValue(s.at, env);
      return s.dist === 'normal' ? normalAt(key, i) : uniformAt(key, i);
    }
    case 'reduce': {
      let acc = s.op === 'sum' ? 0 : -Infinity;
      const loop = (d: number): void => {
        if (d === s.vars.length) {
          const v = go(s.body);
          acc = s.op === 'sum' ? acc + v : Number.isNaN(v) || v > acc ? v : acc;
          return;
        }
        const extent = vars.get(s.vars[d])!.extent;
        for (let i = 0; i < extent; i++) {
          env.set(s.vars[d], i);
          loop(d + 1);
        }
        env.delete(s.vars[d]);
      };
      loop(0);
      return acc;
    }
  }
};

/** Every element of `values` (lanes, or one value) over the grid of outVars, in row-major order, lanes innermost. */
export const evaluateGrid = (
  grid: {
    readonly shape: readonly number[];
    readonly outVars: readonly number[];
    readonly vars: ReadonlyMap<number, VarInfo>;
    readonly values: readonly Scalar[];
  },
  buffers: Buffers,
): Float64Array => {
  const n = grid.shape.reduce((a, b) => a * b, 1);
  const out = new Float64Array(n * grid.values.length);
  const env = new Map<number, number>();
  for (let flat = 0; flat < n; flat++) {
    let rest = flat;
    for (let d = grid.shape.length - 1; d >= 0; d--) {
      env.set(grid.outVars[d], rest % grid.shape[d]);
      rest = Math.floor(rest / grid.shape[d]);
    }
    grid.values.forEach((v, lane) => (out[flat * grid.values.length + lane] = scalarValue(v, env, buffers, grid.vars)));
  }
  return out;
};
