// A scalar expression's key: equal keys compute equal values, so code generators compute each once (common
// subexpressions across lanes, blocks and loop levels). How an index expression reads is the printer's own (it may
// name variables by their current binding), so the printer passes its index and condition keys in.
import type { Ix } from './indexExpr.ts';
import type { Cond, Scalar } from './ir.ts';

/** A memoised key function for scalars, given the printer's keys of index expressions and conditions. */
export const scalarKeys = (ixKey: (x: Ix) => string, condKey: (c: Cond) => string): ((s: Scalar) => string) => {
  const keys = new WeakMap<Scalar, string>();
  const key = (s: Scalar): string => {
    const hit = keys.get(s);
    if (hit) return hit;
    let k: string;
    switch (s.k) {
      case 'lit':
        k = `l${Object.is(s.v, -0) ? '-0' : s.v}`;
        break;
      case 'load':
        k = `L${s.buf}[${ixKey(s.at)}]`;
        break;
      case 'un':
        k = `${s.op}(${key(s.x)})`;
        break;
      case 'bin':
        k = `${s.op}(${key(s.a)},${key(s.b)})`;
        break;
      case 'where':
        k = `where(${key(s.c)},${key(s.a)},${key(s.b)})`;
        break;
      case 'guard':
        k = `guard(${s.conds.map(condKey).join('&')},${key(s.x)})`;
        break;
      case 'pick':
        k = `pick(${condKey(s.cond)},${key(s.a)},${key(s.b)})`;
        break;
      case 'random':
        k = `rand(${s.seed},${s.stream},${s.dist},${key(s.counter)},${ixKey(s.at)})`;
        break;
      case 'reduce':
        k = `${s.op}[${s.vars.join(',')}](${key(s.body)})`;
        break;
    }
    keys.set(s, k);
    return k;
  };
  return key;
};
